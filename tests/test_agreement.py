"""gnomon agrees with lm-evaluation-harness on the same model, data and template.

Two halves, both against lm-evaluation-harness installed as a test dependency:
- per-choice log-likelihoods from gnomon's `HFEngine` equal those of lm-eval's `hf` backend
  (`HFLM.loglikelihood`) to 1e-4 in float32, with the same is_greedy flags, for real benchmark
  requests and for the tokenisation edge cases (trailing whitespace, empty context, continuations
  without a leading space, left truncation at the model window);
- the prompts gnomon renders are the ones lm-eval builds from its *own* task YAML files (included
  unchanged; only the dataset is pointed at the synthetic JSONL files the tests write).
"""

from __future__ import annotations

import json
from pathlib import Path

import lm_eval
import pytest
import yaml
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from gnomon.engines.base import ScoreRequest, ScoreResult
from gnomon.engines.hf import HFEngine
from gnomon.hub import resolve
from gnomon.run import BenchPlan, plan_bench
from gnomon.tiny import MMLU_SUBJECTS
from gnomon_testing.windows import small_window_copy

TOLERANCE = 1e-4
BATCH_SIZE = 3  # small and odd: batches of mixed lengths, and a short last batch
WINDOW = 128  # model window for the truncation test; 5-shot MMLU prompts are ~3x longer
LM_EVAL_TASKS = Path(lm_eval.__file__).parent / "tasks"
ARCHS = ["llama", "qwen2"]


# ---------------------------------------------------------------------------- helpers
def _plan(bench: str, data_root: Path, shots: int | None = None) -> BenchPlan:
    """gnomon's own planning path (spec, rows, few-shot pool, renderer), as `gnomon run` uses."""
    return plan_bench(resolve(bench), data_root, shots, None, "agreement-test")


def _requests(plan: BenchPlan, limit: int | None = None) -> list[ScoreRequest]:
    return [req for s in plan.samples[:limit] for req in plan.mode.requests(s)]


def _gnomon_scores(model_dir: Path, requests: list[ScoreRequest]) -> list[ScoreResult]:
    engine = HFEngine(str(model_dir), device="cpu", dtype="float32", batch_size=BATCH_SIZE)
    got: dict[int, ScoreResult] = {}
    for batch in engine.score(requests):
        for index, result in batch:
            assert index not in got, f"request {index} answered twice"
            got[index] = result
    assert sorted(got) == list(range(len(requests))), "some requests were not answered"
    return [got[i] for i in range(len(requests))]


def _lm_eval_scores(model_dir: Path, requests: list[ScoreRequest]) -> list[tuple[float, bool]]:
    lm = HFLM(pretrained=str(model_dir), device="cpu", dtype="float32", batch_size=BATCH_SIZE)
    instances = [
        Instance(request_type="loglikelihood", doc={}, arguments=(r.context, r.continuation), idx=i)
        for i, r in enumerate(requests)
    ]
    return lm.loglikelihood(instances, disable_tqdm=True)


def _assert_agree(model_dir: Path, requests: list[ScoreRequest]) -> list[ScoreResult]:
    ours = _gnomon_scores(model_dir, requests)
    theirs = _lm_eval_scores(model_dir, requests)
    assert len(theirs) == len(requests)
    problems = []
    for i, (req, mine, (logprob, greedy)) in enumerate(zip(requests, ours, theirs, strict=True)):
        if abs(mine.logprob - logprob) > TOLERANCE or mine.is_greedy != greedy:
            problems.append(
                f"#{i} ...{req.context[-40:]!r} + {req.continuation[:40]!r}: gnomon "
                f"({mine.logprob:.6f}, {mine.is_greedy}) vs lm-eval ({logprob:.6f}, {greedy})"
            )
    assert not problems, f"{len(problems)} of {len(requests)} disagree:\n" + "\n".join(
        problems[:20]
    )
    return ours


def _edge_requests(model_dir: Path) -> list[ScoreRequest]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    # lm-eval's conditioning token for an empty context: BOS, or EOS where there is no BOS
    prefix = tok.bos_token if tok.bos_token is not None else tok.eos_token
    question = "Question: Which river moves the heavy stone across the valley?\nAnswer:"
    edge = [
        ScoreRequest(question + " ", "B"),  # one trailing space moves into the continuation
        ScoreRequest(question + "   ", " B"),  # several, in front of a leading space
        ScoreRequest("The river moves the stone.\n", "The garden holds it."),  # trailing newline
        ScoreRequest("The river moves the stone.\n\n", "Question: why?"),
        ScoreRequest("Answer:\n \t", "C"),  # mixed trailing whitespace
        ScoreRequest("", " A"),  # empty context: conditioned on the prefix token
        ScoreRequest("", "The river moves slowly."),
        ScoreRequest("", prefix + " the river"),  # continuation starting with the prefix token
        ScoreRequest(question, "B"),  # continuation without a leading space
        ScoreRequest("The river", "s move the stones"),  # continuation mid-word
        ScoreRequest("12", "34 + 5 = 39"),  # digits merge across the boundary (or not)
        ScoreRequest(question, " the small river and the quiet garden"),  # multi-token
        ScoreRequest(question, " B"),
        ScoreRequest(question, " B"),  # a duplicate request
        ScoreRequest(question, " B."),  # same context, continuations of different lengths
        ScoreRequest("Le café du village", " crème brûlée, naïve façade"),  # non-ASCII
    ]
    if tok.bos_token is not None:
        edge.append(ScoreRequest(tok.bos_token + question, " A"))  # context with explicit BOS
        edge.append(ScoreRequest("  ", "The river"))  # whitespace-only context
    return edge


def _greedy_requests(model_dir: Path, contexts: list[str]) -> list[ScoreRequest]:
    """Continuations the model itself picks greedily, so that is_greedy is True for some."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    out = []
    for context in contexts:
        ids = tok(context)["input_ids"]
        new: list[int] = []
        with torch.inference_mode():
            for _ in range(4):
                new.append(int(model(torch.tensor([ids + new])).logits[0, -1].argmax()))
        for n in (1, 4):
            text = tok.decode(new[:n], skip_special_tokens=True)
            if text.strip():
                out.append(ScoreRequest(context, text))
    return out


def _small_window_copy(src: Path, dst: Path) -> Path:
    """Both engines must find the `WINDOW`-token window in the config and cut from the left."""
    return small_window_copy(src, dst, WINDOW)


# ---------------------------------------------------------------------------- log-likelihoods
@pytest.mark.parametrize("arch", ARCHS)
def test_loglikelihoods_match_lm_eval(
    arch: str, request: pytest.FixtureRequest, data_root: Path
) -> None:
    model_dir: Path = request.getfixturevalue(f"{arch}_dir")
    mmlu = _requests(_plan("mmlu", data_root, 5))  # one-token continuations, shared 5-shot prefix
    arc = _requests(_plan("arc_easy", data_root))  # multi-token continuations
    hellaswag = _requests(_plan("hellaswag", data_root))
    edge = _edge_requests(model_dir)
    greedy = _greedy_requests(model_dir, [r.context for r in arc[::25] + hellaswag[::25]])
    assert len(mmlu) == 4 * 40 and len(arc) > 100 and len(hellaswag) == 4 * 30
    results = _assert_agree(model_dir, mmlu + arc + hellaswag + edge + greedy)
    assert not any(r.truncated for r in results)
    # the comparison is only meaningful if the greedy flags are not all the same
    assert len({r.is_greedy for r in results}) == 2


@pytest.mark.parametrize("arch", ARCHS)
def test_left_truncation_matches_lm_eval(
    arch: str,
    request: pytest.FixtureRequest,
    data_root: Path,
    tmp_path: Path,
) -> None:
    from transformers import AutoTokenizer

    model_dir = _small_window_copy(request.getfixturevalue(f"{arch}_dir"), tmp_path / "m")
    tok = AutoTokenizer.from_pretrained(model_dir)
    mmlu = _requests(_plan("mmlu", data_root, 5), limit=6)
    arc = _requests(_plan("arc_easy", data_root, 3), limit=6)  # ARC 3-shot, ~150 tokens
    # contexts whose context + continuation sit right at the window edge, excess -2..+2
    text = _plan("mmlu", data_root, 5).samples[0].context
    by_total: dict[int, ScoreRequest] = {}
    for end in range(len(text) // 8, len(text)):
        context = text[:end].rstrip()
        total = len(tok(context + " river")["input_ids"])
        if WINDOW - 1 <= total <= WINDOW + 3:
            by_total.setdefault(total, ScoreRequest(context, " river"))
        elif total > WINDOW + 3:
            break
    assert len(by_total) >= 4, sorted(by_total)
    boundary = list(by_total.values())
    words = text.split(" ")
    # a long continuation leaves only a sliver of the context
    long_cont = " " + " ".join(words[:60])
    assert WINDOW // 2 < len(tok(long_cont)["input_ids"]) < WINDOW - 8
    tail = [ScoreRequest(mmlu[0].context, long_cont), ScoreRequest(mmlu[0].context, " A")]
    results = _assert_agree(model_dir, mmlu + arc + boundary + tail)
    assert all(r.truncated for r in results[: len(mmlu)])
    at_edge = results[len(mmlu) + len(arc) : -len(tail)]
    assert {r.truncated for r in at_edge} == {False, True}  # both sides of the edge are covered


# ---------------------------------------------------------------------------- prompts
def _write_task(
    tasks_dir: Path, cache_dir: Path, name: str, lm_eval_yaml: Path, files: dict[str, Path]
) -> None:
    """A task that includes lm-eval's own YAML unchanged and only swaps the dataset for JSONL."""
    config = {
        "include": str(lm_eval_yaml),
        "task": name,
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {
            "data_files": {split: str(path) for split, path in files.items()},
            "cache_dir": str(cache_dir),
        },
    }
    (tasks_dir / f"{name}.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


@pytest.fixture(scope="module")
def lm_eval_docs(
    data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[tuple[list[Instance], object]]]:
    """lm-eval's requests and target for every doc, in doc order, keyed by gnomon benchmark id.

    Built as lm-eval's evaluator builds them: num_fewshot set on the task, the few-shot seed set
    to its default (1234), then `build_all_requests`.
    """
    root = tmp_path_factory.mktemp("lm_eval_tasks")
    tasks_dir, cache_dir = root / "tasks", root / "hf_cache"
    tasks_dir.mkdir()
    tasks: dict[str, tuple[str, int]] = {}  # lm-eval task name -> (gnomon bench, shots)
    for subject in sorted(MMLU_SUBJECTS):  # one lm-eval task per subject, as lm-eval's mmlu
        files = {}
        for split in ("test", "dev"):
            rows = [
                line
                for line in (data_root / "mmlu" / f"{split}.jsonl").read_text().splitlines()
                if json.loads(line)["subject"] == subject
            ]
            files[split] = root / f"mmlu_{subject}_{split}.jsonl"
            files[split].write_text("\n".join(rows) + "\n", encoding="utf-8")
        name = f"gnomon_mmlu_{subject}"
        yaml_path = LM_EVAL_TASKS / "mmlu" / "default" / f"mmlu_{subject}.yaml"
        _write_task(tasks_dir, cache_dir, name, yaml_path, files)
        tasks[name] = ("mmlu", 5)
    for bench, yaml_rel, splits, shots in (
        ("arc_easy", "arc/arc_easy.yaml", ("train", "validation", "test"), 0),
        ("hellaswag", "hellaswag/hellaswag.yaml", ("train", "validation"), 0),
        ("gsm8k", "gsm8k/gsm8k.yaml", ("train", "test"), 5),
    ):
        files = {s: data_root / bench / f"{s}.jsonl" for s in splits}
        _write_task(tasks_dir, cache_dir, f"gnomon_{bench}", LM_EVAL_TASKS / yaml_rel, files)
        tasks[f"gnomon_{bench}"] = (bench, shots)

    manager = TaskManager(include_path=str(tasks_dir), include_defaults=False)
    loaded = manager.load(sorted(tasks))["tasks"]
    assert sorted(loaded) == sorted(tasks)
    out: dict[str, list[tuple[list[Instance], object]]] = {}
    for name in sorted(tasks):
        bench, shots = tasks[name]
        task = loaded[name]
        task.set_config(key="num_fewshot", value=shots)
        task.set_fewshot_seed(seed=1234)
        task.build_all_requests()
        per_doc: dict[int, list[Instance]] = {}
        for inst in task.instances:
            per_doc.setdefault(inst.doc_id, []).append(inst)
        out.setdefault(bench, []).extend(
            (sorted(insts, key=lambda i: i.idx), task.doc_to_target(insts[0].doc))
            for _, insts in sorted(per_doc.items())
        )
    return out


@pytest.mark.parametrize(
    ("bench", "shots"), [("mmlu", 5), ("arc_easy", 0), ("hellaswag", 0), ("gsm8k", 5)]
)
def test_prompts_match_lm_eval(
    bench: str,
    shots: int,
    data_root: Path,
    lm_eval_docs: dict[str, list[tuple[list[Instance], object]]],
) -> None:
    """Contexts, continuations, targets and stop sequences are lm-eval's, row for row.

    MMLU shots are the first five dev rows of the subject (`first_n`); GSM8K's are drawn by
    lm-eval's default sampler, one `Random(1234)` drawing 5 train rows per test doc in doc order,
    which gnomon's `_ShotPicker` reproduces draw for draw.
    """
    _check_prompts(bench, shots, data_root, lm_eval_docs)


def _check_prompts(
    bench: str,
    shots: int,
    data_root: Path,
    lm_eval_docs: dict[str, list[tuple[list[Instance], object]]],
) -> None:
    plan = _plan(bench, data_root, shots)
    samples = plan.samples
    if bench == "mmlu":  # lm-eval runs MMLU subject by subject (its per-subject tasks)
        samples = sorted(samples, key=lambda s: (s.cluster, s.index))
    theirs = lm_eval_docs[bench]
    assert len(theirs) == len(samples)
    for sample, (insts, target) in zip(samples, theirs, strict=True):
        where = f"{bench} row {sample.index}"
        if shots:  # the shots are really there, so equal contexts are not vacuous
            assert sample.context.count("\nAnswer:") == shots + 1, where
        assert target == sample.target, where
        ours = plan.mode.requests(sample)
        if plan.mode.verb == "score":
            assert [i.request_type for i in insts] == ["loglikelihood"] * len(insts)
            assert [i.arguments for i in insts] == [(r.context, r.continuation) for r in ours], (
                where
            )
        else:
            (inst,) = insts
            (req,) = ours
            context, gen_kwargs = inst.arguments
            assert context == req.context, where
            assert list(gen_kwargs["until"]) == list(req.until), where
            assert gen_kwargs.get("max_gen_toks", 256) == req.max_tokens  # 256: HFLM's default
