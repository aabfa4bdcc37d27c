"""The speed sweep's verdicts and tables: per shape, task and condition, the median walls, their
ratio, the tokens each side put through the model, and whether every prediction agreed."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from gnomon_side import Outcome


@dataclass
class Cell:
    """One task on one shape under one condition: every timed run of both sides."""

    shape: str
    task: str  # score | gen | served
    condition: str  # quiet | busy
    label: str  # what ran, for the table
    gnomon: list[Outcome] = field(default_factory=list)  # in-process gnomon
    peer: list[Outcome] = field(default_factory=list)  # lm-eval, or gnomon through serve
    peer_tokens: int | None = None  # lm-eval's, counted with its own code
    peer_padded: int | None = None  # scoring: with its padding; gen: prompt tokens only
    server_ready_s: list[float] = field(default_factory=list)
    load_before: tuple[float, float, float] | None = None
    error: str | None = None
    variant: str = ""  # gen: which GSM8K task (speed_sweep.GEN_TASKS)

    @property
    def peer_name(self) -> str:
        return "served" if self.task == "served" else "lm-eval"


def _median(outcomes: list[Outcome]) -> float:
    return statistics.median(o.wall_s for o in outcomes)


def _logprob_diffs(a: Outcome, b: Outcome) -> tuple[float, float]:
    """Largest per-choice |difference|, absolute and relative to the larger magnitude."""
    worst_abs = worst_rel = 0.0
    for key, mine in a.logprobs.items():
        for x, y in zip(mine, b.logprobs.get(key, []), strict=False):
            diff = abs(x - y)
            worst_abs = max(worst_abs, diff)
            worst_rel = max(worst_rel, diff / max(abs(x), abs(y), 1e-30))
    return worst_abs, worst_rel


def verdict(cell: Cell) -> dict[str, Any]:
    """Everything the tables and the JSON say about one cell."""
    out: dict[str, Any] = {
        "shape": cell.shape,
        "task": cell.task,
        "condition": cell.condition,
        "label": cell.label,
        "variant": cell.variant,
        "peer": cell.peer_name,
        "load_before": cell.load_before,
        "error": cell.error,
    }
    if cell.error or not cell.gnomon or not cell.peer:
        out["ok"] = False
        return out
    g, p = cell.gnomon, cell.peer
    for name, runs in (("gnomon", g), (cell.peer_name, p)):
        out[name] = {
            "wall_s": [o.wall_s for o in runs],
            "median_wall_s": _median(runs),
            "cpu_s": [o.cpu_s for o in runs],
            "tool_s": [o.tool_s for o in runs],
        }
    out["gnomon"]["tokens"] = g[0].tokens
    if cell.task == "served":
        out["ratio"] = _median(p) / _median(g)  # served / in-process: the overhead
        # a server is started once and then serves many runs; with its start-up paid here too:
        ready = statistics.median(cell.server_ready_s)
        out["ratio_with_server_start"] = (_median(p) + ready) / _median(g)
        out["served"]["tokens"] = p[0].tokens
        out["served"]["server_ready_s"] = cell.server_ready_s
    else:
        out["ratio"] = _median(p) / _median(g)  # lm-eval / gnomon: the speed-up
        out["lm-eval"]["tokens"] = cell.peer_tokens
        out["lm-eval"]["prompt_tokens" if cell.task == "gen" else "padded"] = cell.peer_padded
    keys = sorted(p[0].predictions)
    runs = g + p
    identical = [k for k in keys if len({repr(r.predictions.get(k)) for r in runs}) == 1]
    missing = sorted(set(keys) ^ set(g[0].predictions))
    out["questions"] = len(keys)
    out["identical"] = len(identical)
    out["missing"] = [list(k) for k in missing]
    out["identical_by_bench"] = {
        bench: [sum(k[0] == bench for k in identical), sum(k[0] == bench for k in keys)]
        for bench in sorted({k[0] for k in keys})
    }
    same_prompt = sum(g[0].prompts.get(k) == p[0].prompts.get(k) for k in keys)
    out["identical_prompts"] = same_prompt if cell.task != "served" else None
    if g[0].logprobs:
        out["max_abs_logprob_diff"], out["max_rel_logprob_diff"] = _logprob_diffs(g[0], p[0])
    out["differing"] = [
        {"key": list(k), "gnomon": g[0].predictions.get(k), cell.peer_name: p[0].predictions.get(k)}
        for k in keys
        if k not in identical
    ][:20]
    out["ok"] = len(identical) == len(keys) and not missing
    return out


def _s(value: float) -> str:
    return f"{value:.1f} s"


def _n(value: int | None) -> str:
    return f"{value:,}" if value is not None else "?"


def _identical(v: dict[str, Any]) -> str:
    text = f"{v['identical']}/{v['questions']}"
    if len(v["identical_by_bench"]) > 1:
        parts = [
            f"{b.removeprefix('sweep_')} {i}/{n}" for b, (i, n) in v["identical_by_bench"].items()
        ]
        text += f" ({', '.join(parts)})"
    return text if v["ok"] else f"**{text}**"


def _diff(v: dict[str, Any]) -> str:
    if "max_abs_logprob_diff" not in v:
        return "–"
    return f"{v['max_abs_logprob_diff']:.1e} / {v['max_rel_logprob_diff']:.1e}"


def shape_table(verdicts: list[dict[str, Any]]) -> list[str]:
    """gnomon against lm-eval on one shape: a row per task and condition."""
    lines = [
        "| task | condition | gnomon | lm-eval | lm-eval / gnomon | tokens gnomon / lm-eval "
        "| identical predictions | max loglik diff abs / rel |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        if v["task"] == "served":
            continue
        if v.get("error") or "ratio" not in v:
            lines.append(f"| {v['label']} | {v['condition']} | failed: {v.get('error')} |||||")
            continue
        tokens = f"{_n(v['gnomon']['tokens'])} / {_n(v['lm-eval']['tokens'])}"
        lines.append(
            f"| {v['label']} | {v['condition']} | {_s(v['gnomon']['median_wall_s'])} "
            f"| {_s(v['lm-eval']['median_wall_s'])} | **{v['ratio']:.2f}x** | {tokens} "
            f"| {_identical(v)} | {_diff(v)} |"
        )
    return lines


def served_table(verdicts: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| shape | condition | in-process | served | served / in-process | server start "
        "| (served + start) / in-process | tokens in-process / served | identical predictions "
        "| max loglik diff abs / rel |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        if v.get("error") or "ratio" not in v:
            lines.append(f"| {v['shape']} | {v['condition']} | failed: {v.get('error')} |||||||")
            continue
        ready = statistics.median(v["served"]["server_ready_s"])
        tokens = f"{_n(v['gnomon']['tokens'])} / {_n(v['served']['tokens'])}"
        lines.append(
            f"| {v['shape']} | {v['condition']} | {_s(v['gnomon']['median_wall_s'])} "
            f"| {_s(v['served']['median_wall_s'])} | **{v['ratio']:.2f}x** | {_s(ready)} "
            f"| {v['ratio_with_server_start']:.2f}x | {tokens} | {_identical(v)} | {_diff(v)} |"
        )
    return lines


def summary_table(verdicts: list[dict[str, Any]], shapes: list[str]) -> list[str]:
    """One line per shape and condition: the three ratios the issue is judged by."""

    def ratio(shape: str, cond: str, task: str) -> str:
        found = []
        for v in verdicts:
            if (v["shape"], v["condition"], v["task"]) == (shape, cond, task):
                mark = "" if v.get("ok") else " (differs)"
                text = f"{v['ratio']:.2f}x{mark}" if "ratio" in v else "failed"
                found.append(f"{v['variant']} {text}" if v.get("variant") else text)
        return ", ".join(found) or "–"

    lines = [
        "| shape | condition | score: lm-eval / gnomon | gen: lm-eval / gnomon "
        "| served / in-process |",
        "|---|---|---|---|---|",
    ]
    conditions = sorted({v["condition"] for v in verdicts}, key=["quiet", "busy"].index)
    for shape in shapes:
        for cond in conditions:
            cells = [ratio(shape, cond, t) for t in ("score", "gen", "served")]
            lines.append(f"| {shape} | {cond} | " + " | ".join(cells) + " |")
    return lines
