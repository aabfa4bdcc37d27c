"""`gnomon judge-agreement`: how far two judges agree on the same answers, before trusting one."""

from __future__ import annotations

import math
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from gnomon.console import StoreOpt, default_store, out


def judge_agreement(
    judge_a: Annotated[
        str, typer.Argument(help="a judge: as --judge named it (openai:NAME, hf:DIR) or its key")
    ],
    judge_b: Annotated[str, typer.Argument(help="the other judge, named the same ways")],
    bench: Annotated[str, typer.Option(help="the judged benchmark (its id in the store)")],
    model: Annotated[
        str | None, typer.Option(help="only this model's answers (its name or key)")
    ] = None,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="the figures as one JSON object")] = False,
) -> None:
    """Compare two judges on the samples both judged (the same models' same answers): outcome
    agreement and Cohen's kappa for pairwise and yes/no verdicts, Spearman's and Pearson's
    correlation for ratings, each with a 95% bootstrap interval."""
    from gnomon import text
    from gnomon.judge_agreement import compare_judges
    from gnomon.store import Store

    db = Store(store or default_store(), create=False)
    try:
        found = compare_judges(db, judge_a, judge_b, bench, model)
    finally:
        db.close()
    if as_json:
        print(text.dumps(found.as_dict(), indent=2))
        return
    title = (
        f"{found.bench}: {found.a.name} vs {found.b.name} on {found.n} samples both judged "
        f"({found.verdict} verdicts; {len(found.models)} model"
        f"{'s' if len(found.models) != 1 else ''})"
    )
    table = Table(title=Text(title), title_justify="left")
    for column in ("measure", "value", "95% CI", "n"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for name, figure in found.figures.items():
        table.add_row(
            name, _num(figure.value), _ci(figure.ci_low, figure.ci_high),
            str(found.counted.get(name, found.n)),
        )  # fmt: skip
    for label, side in (("A", found.a), ("B", found.b)):
        if side.mean is not None:
            what = {"pairwise": "win rate", "yes_no": "yes rate"}.get(found.verdict, "rating")
            table.add_row(
                f"{label}'s mean {what}", _num(side.mean.value),
                _ci(side.mean.ci_low, side.mean.ci_high), str(found.n),
            )  # fmt: skip
        if side.flips is not None:
            table.add_row(
                f"{label}'s verdicts flipping with the order", _num(side.flips.value),
                _ci(side.flips.ci_low, side.flips.ci_high), str(found.n),
            )  # fmt: skip
    out.print(table)
    for label, side in (("A", found.a), ("B", found.b)):
        prompts = ", ".join(f"{h} ({n})" for h, n in side.prompt_hashes.items())
        out.print(f"{label}: {side.name} = {side.key}; judge prompt {prompts}")


def _num(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:.3f}"


def _ci(low: float, high: float) -> str:
    return "—" if math.isnan(low) or math.isnan(high) else f"[{low:.3f}, {high:.3f}]"
