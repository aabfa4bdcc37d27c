"""`gnomon judge-agreement` and the judges' reliability figures, over real runs.

One scripted OpenAI-compatible server on loopback plays two models under test (`subject`,
`other`) and three judges (`judge-a`, `judge-b`, `judge-c`) whose verdicts follow tables the
test holds, so every agreement figure is computed here independently (scikit-learn's
`cohen_kappa_score`, SciPy's `spearmanr`, numpy's `corrcoef`) from the same tables. The
leaderboard's judge columns are tested here too: they read the same real store, built once.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gnomon_cli import ENV, gnomon, ok
from loopback import chat_app, running

from gnomon.scoring.agreement import cohen_kappa, ranks, spearman, with_interval

N = 12
ROWS = [
    {"id": f"q{i}", "question": f"Question number {i}?", "baseline": f"baseline answer {i}"}
    for i in range(N)
]
MODELS = ("subject", "other")  # judged by judge-a and judge-b
THIRD = "third"  # judged by judge-a only: nothing to pair
JUDGES = ("judge-a", "judge-b", "judge-c")


def answer_of(model: str, i: int) -> str:
    return f"{model} says {i}"


def _tables() -> dict[str, Any]:
    """Per judge: the model's outcome as A and as B (1, 0.5, 0) per (model, question); a
    rating 1-10 and a yes/no per question of `subject`. judge-b mostly follows judge-a."""
    rng = random.Random(13)
    out: dict[str, Any] = {}
    base_pair = {(m, i): (rng.choice([0, 0.5, 1]), rng.choice([0, 0.5, 1]))
                 for m in (*MODELS, THIRD) for i in range(N)}  # fmt: skip
    base_rating = [rng.randint(1, 10) for _ in range(N)]
    base_yes = [rng.random() < 0.5 for _ in range(N)]
    for judge in JUDGES:
        pair, rating, yes = dict(base_pair), list(base_rating), list(base_yes)
        if judge != "judge-a":
            for key in rng.sample(sorted(pair), 8):
                pair[key] = (rng.choice([0, 0.5, 1]), rng.choice([0, 0.5, 1]))
            rating = [min(10, max(1, r + rng.choice([-2, -1, 0, 0, 1, 3]))) for r in rating]
            yes = [not y if rng.random() < 0.3 else y for y in yes]
        out[judge] = {"pair": pair, "rating": rating, "yes": yes}
    return out


TABLES = _tables()
LABEL_AS_A = {1: "A>B", 0.5: "A=B", 0: "B>A"}  # the model is A; its outcome -> the label
LABEL_AS_B = {1: "B>>A", 0.5: "A=B", 0: "A>>B"}


class Judges:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.asked: list[str] = []

    def answer(self, model: str, text: str) -> str:
        if model in (*MODELS, THIRD):
            i = int(re.search(r"Question number (\d+)", text).group(1))  # type: ignore[union-attr]
            return answer_of(model, i)
        table = TABLES[model]
        i = int(re.search(r"ID: q(\d+)", text).group(1))  # type: ignore[union-attr]
        if "<<A>>" in text:
            a = re.search(r"<<A>>(.*)<</A>>", text, re.S).group(1)  # type: ignore[union-attr]
            who = next(m for m in (*MODELS, THIRD) if answer_of(m, i) in text)
            as_a, as_b = table["pair"][(who, i)]
            if a == answer_of(who, i):
                return f"Fine. [[{LABEL_AS_A[as_a]}]]"
            return f"My verdict: [[{LABEL_AS_B[as_b]}]]"
        if "Rate" in text:
            return f"Rating: [[{table['rating'][i]}]]"
        return "Yes." if table["yes"][i] else "No."

    def app(self) -> Any:
        return chat_app(self.reply)

    def reply(self, body: dict) -> str:
        text = "\n\n".join(m["content"] for m in body["messages"])
        with self.lock:
            self.asked.append(body["model"])
        return self.answer(body["model"], text)


def spec(bench: str, metrics: list[str], judge: dict[str, Any]) -> str:
    return json.dumps({
        "id": bench, "title": bench.title(), "dimension": "subjective", "version": 1,
        "source": {"files": "data", "eval_split": "test", "id_field": "id"},
        "prompt": {"template": "{{ question }}", "target": "baseline"},
        "mode": "judged", "metrics": metrics, "generation": {"until": [], "max_tokens": 16},
        "judge": {"max_tokens": 16, **judge},
    })  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A store holding: `paired` judged by judge-a and judge-b for both models (and by judge-a
    for `third`); `rated` and `yesno` judged by judge-a and judge-b for `subject`, and `rated`
    by judge-c for `other`. `third` is judged again with a reworded judge prompt."""
    root = tmp_path_factory.mktemp("judges")
    (root / "data").mkdir()
    (root / "data" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    judged = {
        "paired": (["win_rate"], {"verdict": "pairwise", "baseline": "baseline", "template":
                   "ID: {{ id }}\n<<A>>{{ answer_a }}<</A>>\n<<B>>{{ answer_b }}<</B>>"}),
        "rated": (["rating"], {"template": "ID: {{ id }}\n{{ answer }}\nRate it 1-10 as [[N]]."}),
        "yesno": (["yes_rate"], {"verdict": "yes_no",
                  "template": "ID: {{ id }}\n{{ answer }}\nGood? yes or no"}),
    }  # fmt: skip
    for bench, (metrics, judge) in judged.items():
        (root / f"{bench}.yaml").write_text(spec(bench, metrics, judge))
    metrics, judge = judged["paired"]  # the same benchmark, another judge prompt
    judge = {**judge, "template": "Judge fairly.\n" + judge["template"]}
    (root / "paired-reworded.yaml").write_text(spec("paired", metrics, judge))
    store = root / "store.sqlite"
    judges = Judges()
    with running(judges.app()) as url:
        base = f"{url}/v1"

        def run(model: str, bench: str, judge: str) -> Any:
            return ok(gnomon(
                "run", "--model", f"openai:{model}", "--base-url", base, "--chat-api",
                "--bench", root / f"{bench}.yaml", "--store", store, "--max-retries", "0",
                "--judge", f"openai:{judge}", "--judge-base-url", base,
                "--out", root / f"out-{model}-{bench}-{judge}", env=KEYED,
            ))  # fmt: skip

        reports = {}
        for model in MODELS:
            for judge in ("judge-a", "judge-b"):
                reports[(model, "paired", judge)] = run(model, "paired", judge)
        for bench in ("rated", "yesno"):
            for judge in ("judge-a", "judge-b"):
                reports[("subject", bench, judge)] = run("subject", bench, judge)
        reports[("other", "rated", "judge-c")] = run("other", "rated", "judge-c")
        reports[(THIRD, "paired", "judge-a")] = run(THIRD, "paired", "judge-a")
        run(THIRD, "paired-reworded", "judge-a")  # newer: its cell in `paired`
        yield {"root": root, "store": store, "url": base, "reports": reports,
               "judges": judges}  # fmt: skip


KEYED = {**ENV, "OPENAI_API_KEY": "sk-test", "COLUMNS": "200"}


def agree(world: dict[str, Any], *args: object) -> Any:
    return gnomon("judge-agreement", *args, "--store", world["store"], env=KEYED)


def as_json(world: dict[str, Any], *args: object) -> dict[str, Any]:
    return json.loads(ok(agree(world, *args, "--json")).stdout)


# ------------------------------------------------------------------------- the statistics


def test_kappa_and_spearman_match_independent_implementations() -> None:
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(5)
    for _ in range(30):
        a = rng.integers(0, 3, 40).astype(float)
        b = np.where(rng.random(40) < 0.6, a, rng.integers(0, 3, 40)).astype(float)
        assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
        x = rng.integers(1, 6, 25).astype(float)  # many ties
        y = x + rng.integers(-2, 3, 25)
        assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    # a hand-computed table: 10 items, observed 0.7, chance 0.5*0.6 + 0.5*0.4 = 0.5 -> 0.4
    a = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=float)
    b = np.array([1, 1, 1, 1, 0, 1, 1, 0, 0, 0], dtype=float)
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert list(ranks(np.array([3.0, 1.0, 3.0, 2.0]))) == [3.5, 1.0, 3.5, 2.0]
    assert np.isnan(cohen_kappa(np.ones(5), np.ones(5)))  # one label only: undefined


def test_bootstrap_interval_covers_and_keeps_items_whole() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, (200, 2)).astype(float)
    b = np.where(rng.random((200, 2)) < 0.8, a, 1 - a)
    figure = with_interval(lambda x, y: float(np.mean(x == y)), a, b)
    assert figure.ci_low < figure.value < figure.ci_high
    assert figure.value == pytest.approx(np.mean(a == b))
    assert 0.03 < figure.ci_high - figure.ci_low < 0.2
    assert with_interval(lambda x, y: float(np.mean(x == y)), a, b) == figure  # seeded


# ------------------------------------------------------------------------ pairwise, e2e


def _pairwise_expected(models: tuple[str, ...]) -> dict[str, float]:
    from sklearn.metrics import cohen_kappa_score

    ta, tb = TABLES["judge-a"]["pair"], TABLES["judge-b"]["pair"]
    keys = [(m, i) for m in models for i in range(N)]
    order_a = [str(o) for k in keys for o in ta[k]]
    order_b = [str(o) for k in keys for o in tb[k]]

    def sign(pair: tuple[float, float]) -> str:
        mean = sum(pair) / 2
        return "win" if mean > 0.5 else ("loss" if mean < 0.5 else "tie")

    sample_a, sample_b = [sign(ta[k]) for k in keys], [sign(tb[k]) for k in keys]
    return {
        "n": len(keys),
        "order_agree": float(np.mean([x == y for x, y in zip(order_a, order_b, strict=True)])),
        "order_kappa": cohen_kappa_score(order_a, order_b),
        "sample_agree": float(np.mean([x == y for x, y in zip(sample_a, sample_b, strict=True)])),
        "sample_kappa": cohen_kappa_score(sample_a, sample_b),
        "flips_a": float(np.mean([ta[k][0] != ta[k][1] for k in keys])),
        "flips_b": float(np.mean([tb[k][0] != tb[k][1] for k in keys])),
    }


def test_pairwise_agreement_from_two_real_judge_runs(world: dict[str, Any]) -> None:
    want = _pairwise_expected(MODELS)
    got = as_json(world, "openai:judge-a", "openai:judge-b", "--bench", "paired")
    assert got["verdict"] == "pairwise" and got["n"] == want["n"] == 2 * N
    assert got["models"] == ["openai:other", "openai:subject"]
    figures = got["figures"]
    assert figures["outcome agreement, per order"]["value"] == pytest.approx(want["order_agree"])
    assert figures["outcome agreement, per order"]["n"] == 4 * N
    assert figures["Cohen's kappa, per order"]["value"] == pytest.approx(want["order_kappa"])
    assert figures["outcome agreement, per sample"]["value"] == pytest.approx(want["sample_agree"])
    assert figures["Cohen's kappa, per sample"]["value"] == pytest.approx(want["sample_kappa"])
    for figure in figures.values():
        low, high = figure["ci95"]
        assert low <= figure["value"] <= high and figure["method"] == "bootstrap"
    judges = got["judges"]
    assert judges["a"]["key"] == f"openai:judge-a@{world['url']}"
    assert judges["a"]["name"] == "openai:judge-a"
    assert judges["a"]["position_flip_rate"]["value"] == pytest.approx(want["flips_a"])
    assert judges["b"]["position_flip_rate"]["value"] == pytest.approx(want["flips_b"])
    (hash_a,) = judges["a"]["judge_prompt_hashes"]  # one judge prompt, both judges
    assert judges["b"]["judge_prompt_hashes"] == {hash_a: 2 * N}
    # one model only; the judges named by their stored keys and in the other order
    one = as_json(world, judges["b"]["key"], judges["a"]["key"], "--bench", "paired",
                  "--model", "openai:subject")  # fmt: skip
    want_one = _pairwise_expected(("subject",))
    assert one["n"] == N and one["models"] == ["openai:subject"]
    kappa = one["figures"]["Cohen's kappa, per order"]["value"]
    assert kappa == pytest.approx(want_one["order_kappa"])  # symmetric in the two judges
    # the table a person reads
    text = ok(agree(world, "openai:judge-a", "openai:judge-b", "--bench", "paired")).stdout
    assert f"on {2 * N} samples both judged" in text
    assert re.search(rf"Cohen's kappa, per order\s*│\s*{want['order_kappa']:.3f}", text)
    assert f"judge prompt {hash_a} ({2 * N})" in text


def test_rating_and_yes_no_agreement(world: dict[str, Any]) -> None:
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

    ra = np.array(TABLES["judge-a"]["rating"], dtype=float)
    rb = np.array(TABLES["judge-b"]["rating"], dtype=float)
    got = as_json(world, "openai:judge-a", "openai:judge-b", "--bench", "rated")
    assert got["verdict"] == "rating" and got["n"] == N
    figures = got["figures"]
    assert figures["Spearman's rho"]["value"] == pytest.approx(spearmanr(ra, rb).statistic)
    assert figures["Pearson's r"]["value"] == pytest.approx(np.corrcoef(ra, rb)[0, 1])
    assert figures["mean absolute difference"]["value"] == pytest.approx(np.mean(abs(ra - rb)))
    assert figures["exact agreement"]["value"] == pytest.approx(np.mean(ra == rb))
    assert got["judges"]["a"]["mean"]["value"] == pytest.approx(ra.mean())

    ya, yb = TABLES["judge-a"]["yes"], TABLES["judge-b"]["yes"]
    got = as_json(world, "openai:judge-a", "openai:judge-b", "--bench", "yesno")
    assert got["verdict"] == "yes_no" and got["n"] == N
    assert got["figures"]["agreement"]["value"] == pytest.approx(
        np.mean([x == y for x, y in zip(ya, yb, strict=True)])
    )
    assert got["figures"]["Cohen's kappa"]["value"] == pytest.approx(cohen_kappa_score(ya, yb))


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "args, message",
    [
        (("openai:judge-z", "openai:judge-b", "--bench", "paired"),
         "no judge 'openai:judge-z' in the store; its judges: openai:judge-a"),
        (("openai:judge-a", "openai:judge-b", "--bench", "nope"),
         "no judged scores of 'nope' in"),
        (("openai:judge-a", "openai:judge-c", "--bench", "paired"),
         "judge 'openai:judge-c' did not judge paired; its judges: openai:judge-a"),
        (("openai:judge-a", "openai:judge-c", "--bench", "rated"),
         "share no judged samples of rated"),
        (("openai:judge-a", "openai:judge-a", "--bench", "rated"), "are the same judge"),
        (("openai:judge-a", "openai:judge-b", "--bench", "paired", "--model", "zzz"),
         "no model 'zzz' was judged on paired by both judges; those that were: openai:other"),
        (("hf:/no/such/dir", "openai:judge-b", "--bench", "paired"),
         "no judge 'hf:/no/such/dir' in the store"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(world: dict[str, Any], args: tuple[str, ...], message: str) -> None:
    proc = agree(world, *args)
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_empty_and_missing_store(tmp_path: Path) -> None:
    proc = gnomon("judge-agreement", "a", "b", "--bench", "x", "--store", tmp_path / "no.sqlite")
    assert proc.returncode == 2 and "no store at" in proc.stderr
    from gnomon.store import Store

    Store(tmp_path / "empty.sqlite").close()
    proc = gnomon("judge-agreement", "a", "b", "--bench", "x", "--store", tmp_path / "empty.sqlite")
    assert proc.returncode == 2 and "the store holds no judged scores yet" in proc.stderr


# ------------------------------------------------------------ reliability in a run's report


def test_run_report_and_results_json_show_judge_prompt_and_reliability(
    world: dict[str, Any],
) -> None:
    url = world["url"]
    table = TABLES["judge-a"]["pair"]
    flips = float(np.mean([table[("subject", i)][0] != table[("subject", i)][1] for i in range(N)]))
    stdout = world["reports"][("subject", "paired", "judge-a")].stdout
    results = json.loads(
        (world["root"] / "out-subject-paired-judge-a" / "results.json").read_text()
    )
    bench = results["benchmarks"]["paired"]
    assert bench["judge"] == f"openai:judge-a@{url}" and bench["judge_name"] == "openai:judge-a"
    prompt = bench["judge_prompt_hash"]
    assert re.fullmatch(r"[0-9a-f]{8}", prompt)
    reliability = bench["judge_reliability"]
    assert reliability["metric"] == "position_flip_rate"
    assert reliability["value"] == pytest.approx(flips)
    low, high = reliability["ci95"]
    assert low <= flips <= high
    assert (
        f"paired: judged by openai:judge-a (openai:judge-a@{url}), judge prompt {prompt}; "
        f"{100 * flips:.1f}% of verdicts flip when the answers swap places" in stdout
    )
    # another judge prompt template, another hash; a rating judge asked once has no figure
    rated = json.loads((world["root"] / "out-subject-rated-judge-a" / "results.json").read_text())
    rated_bench = rated["benchmarks"]["rated"]
    assert rated_bench["judge_prompt_hash"] != prompt
    assert rated_bench["judge_reliability"] is None
    assert (
        "rated: judged by openai:judge-a"
        in world["reports"][("subject", "rated", "judge-a")].stdout
    )
    assert "reliability —" in world["reports"][("subject", "rated", "judge-a")].stdout


def test_reliability_figures() -> None:
    from gnomon.judge_info import judge_prompt_hash, reliability
    from gnomon.stats import Score

    consistent = Score(0.75, 0.05, 0.65, 0.85, 40, None, "wilson")
    found = reliability({"win_rate": consistent, "position_consistency": consistent})
    assert found is not None and found.metric == "position_flip_rate"
    assert (found.value, found.ci_low, found.ci_high) == pytest.approx((0.25, 0.15, 0.35))
    spread = Score(0.4, 0.1, 0.2, 0.6, 40, None, "t")
    found = reliability({"rating": consistent, "rating_spread": spread})
    assert found is not None and found.metric == "rating_spread" and found.value == 0.4
    assert found.shown() == "0.40 spread"
    assert reliability({"rating": consistent}) is None
    judge = {"template": "x {{ answer }}", "verdict": "rating"}
    assert judge_prompt_hash({"judge": judge}) == judge_prompt_hash({"judge": dict(judge)})
    assert judge_prompt_hash({"judge": {**judge, "template": "y"}}) != judge_prompt_hash(
        {"judge": judge}
    )
    assert judge_prompt_hash({"id": "no judge"}) is None


# ------------------------------------------------------------------------- the leaderboard


def test_board_keeps_judges_apart_and_shows_them(world: dict[str, Any]) -> None:
    from gnomon.rank.board import load_board
    from gnomon.rank.serialize import board_json
    from gnomon.store import Store

    url = world["url"]
    store = Store(world["store"], create=False)
    try:
        board = load_board(store)
    finally:
        store.close()
    # judge-a judged three models' answers, judge-b two: judge-a's scores are the standard
    # column (the means use it), judge-b's a column of their own, never averaged in
    standard = board.benches["paired"]
    assert standard.judge == "openai:judge-a" and standard.averaged
    assert standard.judge_key == f"openai:judge-a@{url}"
    (other,) = [b for b in board.settings_of("paired") if not b.standard]
    assert other.id == "paired@judge=openai:judge-b" and not other.averaged
    assert other.judge == "openai:judge-b" and other.title == "Paired · judged by openai:judge-b"
    by_model = {m.name: m for m in board.models}
    third = by_model["openai:third"].entries
    assert set(third) == {"paired"}  # another judge prompt: the same column, marked
    assert third["paired"].odd_judge_prompt
    subject_hash = by_model["openai:subject"].entries["paired"].judge_prompt_hash
    assert third["paired"].judge_prompt_hash != subject_hash
    for name in MODELS:
        entries = by_model[f"openai:{name}"].entries
        assert entries["paired"].judge == standard.judge_key
        assert entries[other.id].judge == f"openai:judge-b@{url}"
        table = TABLES["judge-a"]["pair"]
        flips = np.mean([table[(name, i)][0] != table[(name, i)][1] for i in range(N)])
        assert entries["paired"].reliability.value == pytest.approx(flips)
        assert entries["paired"].judge_prompt_hash == entries[other.id].judge_prompt_hash
        assert not entries["paired"].odd_judge_prompt
    # the runs were asked through the chat API, the standard setting of a judged benchmark:
    # the subjective mean is made of the standard columns
    assert "subjective" in board.dimensions
    subject = by_model["openai:subject"]
    means = [subject.entries[b.id].score.value for b in board.benches_of("subjective", False)]
    assert subject.dimensions["subjective"].value == pytest.approx(np.mean(means))
    # one judge a benchmark in the means: its standard column alone (a raw 1-10 rating is not
    # a share, so `rated` is shown but not averaged)
    assert [b.id for b in board.benches_of("subjective", False)] == ["paired", "yesno"]
    api = board_json(board)
    assert api["benchmarks"]["paired"]["judge"] == {"name": "openai:judge-a",
                                                    "key": standard.judge_key}  # fmt: skip
    assert api["benchmarks"][other.id]["setting"]["judge"] == "openai:judge-b"
    cell = next(m for m in api["models"] if m["name"] == "openai:subject")["benchmarks"]["paired"]
    assert cell["judge_name"] == "openai:judge-a" and len(cell["judge_prompt_hash"]) == 8
    assert cell["judge_reliability"]["metric"] == "position_flip_rate"


def test_rank_terminal_and_pages_show_the_judge(world: dict[str, Any]) -> None:
    import httpx
    from loopback import running as serving

    from gnomon.rank.web import create_app

    text = ok(gnomon("rank", "--benchmarks", "--store", world["store"], env=KEYED)).stdout
    flat = " ".join(text.split())
    assert "judge:" in text and "% flip" in text and "subjective" in text
    assert "paired (judge openai:judge-a), paired@judge=openai:judge-b (judge openai:judge-b)" in (
        flat
    )
    with serving(create_app(world["store"])) as base, httpx.Client(base_url=base) as client:
        home = client.get("/").text
        assert "judged by openai:judge-a</span>" in home
        assert "judged by openai:judge-b</span>" in home
        assert 'class="mark judge" data-judge="openai:judge-a"' in home
        page = client.get("/bench/paired").text
        assert 'id="bench-judge"' in page and "<strong>openai:judge-a</strong>" in page
        assert page.count('class="judge-reliability"') == 3  # subject, other, third
        assert "% flip" in page and page.count("≠ judge prompt</span>") == 1
    from gnomon.rank.export import export_site
    from gnomon.rank.links import name_of
    from gnomon.store import Store

    store = Store(world["store"], create=False)
    site = world["root"] / "site"
    try:
        export_site(store, site, compare_top=0, samples=False)
    finally:
        store.close()
    index = (site / "index.html").read_text()
    assert "judged by openai:judge-a</span>" in index and "judged by openai:judge-b</span>" in index
    other = (site / "bench" / f"{name_of('paired@judge=openai:judge-b')}.html").read_text()
    assert "<strong>openai:judge-b</strong>" in other and other.count("% flip") >= 2


def test_new_dimensions_group_and_average_like_the_others(tmp_path: Path) -> None:
    from gnomon.rank.board import DIMENSIONS, load_board
    from gnomon.rank.terminal import board_table
    from gnomon.store import Store
    from gnomon_testing.synthetic import write_run

    store = Store(tmp_path / "dims.sqlite")
    dims = {"bench_if": "instruction-following", "bench_agent": "agent", "bench_k": "knowledge"}
    try:
        for model, ability in (("alpha", 1.0), ("bravo", -1.0)):
            for bench, dim in dims.items():
                write_run(store, model=model, ability=ability, bench=bench, kind="choice",
                          dimension=dim, samples=30)  # fmt: skip
        board = load_board(store)
    finally:
        store.close()
    assert board.dimensions == [d for d in DIMENSIONS if d in dims.values()]
    assert {"instruction-following", "agent", "subjective"} <= set(DIMENSIONS)
    alpha = next(m for m in board.models if m.name == "alpha")
    for bench, dim in dims.items():
        assert alpha.dimensions[dim].value == pytest.approx(alpha.entries[bench].score.value)
    assert alpha.overall.value == pytest.approx(np.mean([alpha.dimensions[d].value
                                                         for d in dims.values()]))  # fmt: skip
    from rich.console import Console

    console = Console(width=250, record=True)
    console.print(board_table(board))
    shown = console.export_text()
    assert "instruction-following" in shown and "agent" in shown


def test_judges_are_named_as_judge_named_them_or_as_rank_shows_them(tmp_path: Path) -> None:
    from gnomon.engines.builtin.hf import fingerprint
    from gnomon.errors import UserError
    from gnomon.judge_agreement import resolve_judge
    from gnomon.judge_info import judge_names

    local = tmp_path / "judge-model"
    local.mkdir()
    (local / "config.json").write_text("{}")
    local_key = f"hf:local:{fingerprint(local)}|float32"
    displays = {
        "openai:j@http://a:1/v1": "openai:j",
        "openai:j@http://b:1/v1": "openai:j",
        "openai:id:gpt-x": "openai:gpt-x",
        local_key: f"hf:{local}",
    }
    names = judge_names(displays)
    assert len(set(names.values())) == 4 and names["openai:id:gpt-x"] == "openai:gpt-x"
    for key, name in names.items():  # the name the leaderboard shows, and the key itself
        assert resolve_judge(name, displays) == key
        assert resolve_judge(key, displays) == key
    assert resolve_judge(f"hf:{local}", displays) == local_key
    assert resolve_judge(str(local), displays) == local_key  # hf: is the default engine
    with pytest.raises(UserError, match="'openai:j' names 2 judges: .*give one of these keys"):
        resolve_judge("openai:j", displays)
    with pytest.raises(UserError, match="no judge 'hf:gpt2' in the store; its judges: "):
        resolve_judge("hf:gpt2", displays)
