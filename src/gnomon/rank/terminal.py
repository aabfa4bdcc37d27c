"""`gnomon rank` in the terminal: the same board and comparisons the web pages show."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from gnomon.errors import UserError
from gnomon.rank.board import Board, Interval, Model
from gnomon.rank.compare import Comparison
from gnomon.rank.render import pct, pvalue, signed_pct
from gnomon.stats import Score

EMPTY = (
    "no results in {store} yet. Run a first evaluation, e.g.\n"
    "  gnomon run --model gpt2 --bench arc_easy --limit 100 --store {store}\n"
    "(or `gnomon demo` offline), then `gnomon rank` again."
)


def _cell(score: Score | Interval | None, star: bool = False) -> str:
    if score is None:
        return "—"
    return f"{pct(score.value)}{'*' if star else ''}\n{pct(score.ci_low)}–{pct(score.ci_high)}"


def board_table(board: Board, benchmarks: bool = False) -> Table:
    caption = "— not run · * mean lacks some of its benchmarks · (partial) run still in progress"
    if benchmarks and len(board.standard_benches) < len(board.benches):
        caption += " · bench@setting: another setting (0shot, chat, generation), not in the means"
    table = Table(
        title=Text("gnomon leaderboard (scores in %, 95% intervals)"),
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
                table.add_column(bench.id, justify="right", style="dim")
    for i, m in enumerate(board.models, 1):
        name = m.name + (" (partial)" if m.in_progress else "")
        row = [str(i), name, _cell(m.overall, m.overall is not None and not m.complete)]
        for dim in board.dimensions:
            row.append(_cell(m.dimensions.get(dim), bool(m.missing.get(dim))))
            if benchmarks:
                for bench in board.benches_of(dim):
                    entry = m.entries.get(bench.id)
                    row.append(_cell(entry.score if entry else None))
        table.add_row(*row)
    return table


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
        r = bc.result
        table.add_row(
            bc.bench, bc.metric, pct(bc.a_mean), pct(bc.b_mean), signed_pct(r.mean_diff),
            f"[{signed_pct(r.ci_low)}, {signed_pct(r.ci_high)}]", pvalue(r.p_value), str(r.n),
            str(len(bc.differ)),
        )  # fmt: skip
    if cmp.overall is not None:
        o = cmp.overall
        table.add_row(
            "overall", "", "", "", signed_pct(o.mean_diff),
            f"[{signed_pct(o.ci_low)}, {signed_pct(o.ci_high)}]", pvalue(o.p_value), str(o.n), "",
        )  # fmt: skip
    return table
