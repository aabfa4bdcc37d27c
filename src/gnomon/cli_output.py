"""What the `gnomon` commands share: library quieting before heavy imports, and the scores
table every command that reports a run prints."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from gnomon.console import out

if TYPE_CHECKING:
    from gnomon.report import BenchReport


def quiet_libraries(needs_hub: bool = True) -> None:
    from gnomon.hubnet import prefer_offline_when_unreachable

    if needs_hub:
        prefer_offline_when_unreachable()
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None or x != x else f"{x:.{digits}f}"


SHOWN_CLUSTERS = 12  # more (MMLU's 57 subjects) are in results.json only


def print_reports(reports: list, title: str) -> None:
    table = Table(title=Text(title), title_justify="left")
    for column in ("benchmark", "metric", "value", "stderr", "95% CI", "n", "prompt"):
        table.add_column(column, justify="right" if column in ("value", "stderr", "n") else "left")
    for report in reports:
        n = f"{report.done}" if report.complete else f"{report.done}/{report.planned} (partial)"
        if report.truncated:
            n += f", {report.truncated} truncated"
        if getattr(report, "cut_at_max_tokens", 0):
            n += f", {report.cut_at_max_tokens} cut at max tokens"
        if report.no_answer:
            n += f", {report.no_answer} no answer"
        for name, score in report.metrics.items():
            ci = f"[{_fmt(score.ci_low)}, {_fmt(score.ci_high)}]"
            shown = f"{name} (headline)" if name == report.headline else name
            table.add_row(
                report.bench, shown, _fmt(score.value), _fmt(score.stderr), ci, n,
                report.prompt_hash,
            )  # fmt: skip
        if getattr(report, "normalised", None) is not None:
            # the Open LLM Leaderboard's figure: above random guessing, rescaled to 0..1
            table.add_row(report.bench, "normalised", _fmt(report.normalised), "", "", n, "")
    out.print(table)
    for report in reports:  # a benchmark's few categories (MT-Bench's 8), each scored
        per = (getattr(report, "clusters", None) or {}).get(report.headline)
        if per and len(per) <= SHOWN_CLUSTERS:
            shown = ", ".join(f"{c} {_fmt(s.value)} (n={s.n})" for c, s in per.items())
            line = f"{report.bench} {report.headline} by {report.cluster_by}: {shown}"
            out.print(line, markup=False, highlight=False)
    for report in reports:
        if report.headline_note:
            out.print(f"{report.bench}: {report.headline_note}")
        if getattr(report, "judge", None):
            out.print(judge_line(report), soft_wrap=True)


def judge_line(report: BenchReport) -> str:
    """Who judged a benchmark, with which prompt, and how reliable the judge was on it."""
    from gnomon.judge_info import FLIPS

    found = report.judge_reliability
    if found is None:
        reliable = "reliability — (no repeated or swapped judgments to measure it)"
    elif found.metric == FLIPS:
        ci = f"[{_pct(found.ci_low)}, {_pct(found.ci_high)}]"
        reliable = f"{_pct(found.value)} of verdicts flip when the answers swap places {ci}"
    else:
        ci = f"[{_fmt(found.ci_low, 3)}, {_fmt(found.ci_high, 3)}]"
        reliable = f"spread of repeated ratings {_fmt(found.value, 3)} {ci}"
    return (
        f"{report.bench}: judged by {report.judge_name or report.judge} ({report.judge}), "
        f"judge prompt {report.judge_prompt_hash or '—'}"
        + (f", {report.judge_sampling}" if report.judge_sampling else "")
        + f"; {reliable}"
    )


def _pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.1f}%"
