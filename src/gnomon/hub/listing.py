"""What `gnomon hub list` shows: every benchmark's identity card, grouped by dimension."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

from rich.table import Table

from gnomon.console import out
from gnomon.hub import BUILTIN_DIR, builtin_ids
from gnomon.hub.spec import BenchmarkSpec, Dimension, load_spec
from gnomon.hub.suite import SUITE_DIR, load_suite, suite_ids

DIMENSIONS: tuple[Dimension, ...] = get_args(Dimension)  # in the order leaderboards report


def source_text(spec: BenchmarkSpec) -> str:
    """Where the rows come from, in words: never a "None" placeholder."""
    s = spec.source
    if s.hub:
        where = s.hub + (f" ({s.config})" if s.config else "")
        where += f" {s.data_files}" if s.data_files else ""
        if s.subsets:
            where += f" ({len(s.subsets)} subsets)"
    elif s.package:
        where = f"package {s.package}"
    else:
        where = f"files {s.files}"
    return f"{where}, split {s.eval_split}"


def entry(spec: BenchmarkSpec, origin: str) -> dict[str, Any]:
    return {
        "id": spec.id,
        "family": spec.family_id,
        "title": spec.title,
        "dimension": spec.dimension,
        "languages": list(spec.languages),
        "mode": spec.mode,
        "shots": spec.fewshot.count,
        "metrics": list(spec.metrics),
        "headline": spec.headline or spec.metrics[0],
        "items": spec.items,
        "reference": spec.reference,
        "proof": spec.proof or None,
        "source": source_text(spec),
        "version": spec.version,
        "spec": origin,
    }


def hub_entries(files: list[Path]) -> list[dict[str, Any]]:
    entries = [entry(load_spec(BUILTIN_DIR / f"{i}.yaml"), "built-in") for i in builtin_ids()]
    entries += [entry(load_spec(path), str(path)) for path in files]
    order = {d: i for i, d in enumerate(DIMENSIONS)}
    return sorted(entries, key=lambda e: (order[e["dimension"]], e["family"], e["id"]))


def print_hub_json(entries: list[dict[str, Any]]) -> None:
    print(json.dumps(entries, ensure_ascii=False, indent=1))


def print_hub(entries: list[dict[str, Any]]) -> None:
    families = {e["family"] for e in entries}
    out.print(f"{len(entries)} benchmarks in {len(families)} families")
    for dimension in DIMENSIONS:
        group = [e for e in entries if e["dimension"] == dimension]
        if not group:
            continue
        table = Table(title=f"{dimension} ({len({e['family'] for e in group})} families)")
        for column in ("id", "title", "lang", "items", "mode", "shots", "metrics", "reference"):
            table.add_column(column, overflow="fold")
        for e in group:
            table.add_row(
                e["id"] + ("" if e["spec"] == "built-in" else f" ({e['spec']})"),
                e["title"],
                ",".join(e["languages"]),
                "" if e["items"] is None else str(e["items"]),
                e["mode"],
                str(e["shots"]),
                ",".join(e["metrics"]),
                e["reference"] or "",
            )
        out.print(table)
    suites = Table(title="suites (--bench suite:ID)")
    for column in ("id", "title", "benchmarks", "pending"):
        suites.add_column(column, overflow="fold")
    for sid in suite_ids():
        suite, _ = load_suite(SUITE_DIR / f"{sid}.yaml")
        suites.add_row(
            f"suite:{sid}", suite.title, str(len(suite.benchmarks)), ", ".join(suite.pending)
        )
    out.print(suites)
