"""`gnomon rank` in the terminal: the same board and comparisons the web pages show."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from gnomon.errors import UserError
from gnomon.judge_info import shown_reliability
from gnomon.rank.board import Board, Entry, Interval, Model
from gnomon.rank.compare import Comparison
from gnomon.rank.render import num, pvalue, signed_num
from gnomon.rank.scale import Scale
from gnomon.stats import Score

EMPTY = (
    "no results in {store} yet. Run a first evaluation, e.g.\n"
    "  gnomon run --model gpt2 --bench arc_easy --limit 100 --store {store}\n"
    "(or `gnomon demo` offline), then `gnomon rank` again."
)


def _cell(score: Score | Interval | None, star: bool = False, scale: Scale | None = None) -> str:
    """A value in its unit (a share in %), with its interval; ↓ marks lower is better."""
    if score is None:
        return "—"
    mark = ("*" if star else "") + (f" {scale.arrow}" if scale and scale.arrow else "")
    return (
        f"{num(score.value, scale)}{mark}\n{num(score.ci_low, scale)}–{num(score.ci_high, scale)}"
    )


def board_table(board: Board, benchmarks: bool = False) -> Table:
    caption = "— not run · * mean lacks some of its benchmarks · (partial) run still in progress"
    if benchmarks and len(board.standard_benches) < len(board.benches):
        caption += " · bench@setting: another setting (0shot, chat, generation), not in the means"
    unaveraged = board.unaveraged
    if unaveraged:
        caption += (
            " · not averaged, in their own units (BLEU in points of 0–100, perplexity;"
            f" ↓ lower is better): {', '.join(b.id for b in unaveraged)}"
            + ("" if benchmarks else " (--benchmarks shows them)")
        )
    judged = [b for b in board.benches.values() if b.judge]
    if judged:
        caption += " · judged by another model: " + ", ".join(
            f"{b.id} (judge {b.judge})" for b in judged if benchmarks or b.averaged
        )
        if any(not b.averaged for b in judged):
            caption += "; one judge a column: another judge's scores are a column of their own"
        if benchmarks:
            caption += "; under a judged score: the judge's reliability (verdicts flipping"
            caption += " when the answers swap places, or the spread of repeated ratings)"
    table = Table(
        title=Text(
            "gnomon leaderboard (scores in %"
            + (", BLEU and perplexity in their own units" if unaveraged else "")
            + ", 95% intervals)"
        ),
        title_justify="left",
        caption=Text(caption),
        caption_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("model")
    table.add_column("overall", justify="right")
    for dim in board.dimensions:
        table.add_column(dim, justify="right")
        if benchmarks:
            for bench in board.benches_of(dim):
                unit = "" if bench.scale.share else f"\n{bench.headline} {bench.scale.arrow}"
                judge = f"\njudge: {bench.judge}" if bench.judge else ""
                table.add_column(bench.id + unit.rstrip() + judge, justify="right", style="dim")
    for i, m in enumerate(board.models, 1):
        name = m.name + (" (partial)" if m.in_progress else "")
        row = [str(i), name, _cell(m.overall, m.overall is not None and not m.complete)]
        for dim in board.dimensions:
            row.append(_cell(m.dimensions.get(dim), bool(m.missing.get(dim))))
            if benchmarks:
                for bench in board.benches_of(dim):
                    entry = m.entries.get(bench.id)
                    cell = _cell(entry.score if entry else None, scale=_scale(entry))
                    if entry is not None and entry.judge:
                        cell += f"\n{shown_reliability(entry.reliability)}"
                        cell += " ≠ judge prompt" if entry.odd_judge_prompt else ""
                    row.append(cell)
        table.add_row(*row)
    return table


def _scale(entry: Entry | None) -> Scale | None:
    return entry.scale if entry else None


def find_model(board: Board, text: str) -> Model:
    """A model by slug, exact name, or a name fragment that picks out exactly one."""
    for model in board.models:
        if text in (model.slug, model.name, model.key):
            return model
    hits = [m for m in board.models if text.lower() in m.name.lower()]
    if len(hits) == 1:
        return hits[0]
    if hits:
        names = ", ".join(m.name for m in hits[:5])
        raise UserError(f"{text!r} matches {len(hits)} models ({names}); be more specific")
    raise UserError(f"no model {text!r} on the leaderboard; `gnomon rank` lists them")


def comparison_table(cmp: Comparison) -> Table:
    table = Table(
        title=Text(f"{cmp.a.name} − {cmp.b.name} (points, paired over shared questions)"),
        title_justify="left",
    )
    for column in ("benchmark", "metric", "A", "B", "A − B", "95% CI", "p", "n", "disagree"):
        table.add_column(column, justify="left" if column in ("benchmark", "metric") else "right")
    for bc in cmp.benches:
        r, sc = bc.result, bc.scale
        table.add_row(
            bc.bench, bc.metric + (f" {sc.arrow}" if sc.arrow else ""), num(bc.a_mean, sc),
            num(bc.b_mean, sc), signed_num(r.mean_diff, sc),
            f"[{signed_num(r.ci_low, sc)}, {signed_num(r.ci_high, sc)}]", pvalue(r.p_value),
            str(r.n), str(len(bc.differ)),
        )  # fmt: skip
    for u in cmp.unpaired:
        table.add_row(
            u.bench, u.metric + (f" {u.scale.arrow}" if u.scale.arrow else ""),
            num(u.a.value if u.a else None, u.scale), num(u.b.value if u.b else None, u.scale),
            "not paired", "", "", "", "",
        )  # fmt: skip
    if cmp.overall is not None:
        o = cmp.overall
        table.add_row(
            "overall", "", "", "", signed_num(o.mean_diff),
            f"[{signed_num(o.ci_low)}, {signed_num(o.ci_high)}]", pvalue(o.p_value), str(o.n), "",
        )  # fmt: skip
    if cmp.unpaired:
        table.caption = Text(
            "not paired: a corpus metric (BLEU, perplexity) has no value per question; each "
            "model's own score is shown, in its unit, and left out of the overall difference"
        )
        table.caption_justify = "left"
    return table
