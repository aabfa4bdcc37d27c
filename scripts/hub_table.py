"""Print the README's table of hub benchmarks (Markdown) from `gnomon hub list --json`'s data,
so the README lists exactly what the hub holds; tests/test_hub_suites.py checks they agree.

    .venv/bin/python scripts/hub_table.py
"""

from __future__ import annotations

from gnomon.hub.listing import DIMENSIONS, hub_entries

BEGIN, END = "<!-- hub table: scripts/hub_table.py -->", "<!-- end of hub table -->"


def hub_table() -> str:
    entries = hub_entries([])
    lines = [
        BEGIN,
        f"{len(entries)} benchmarks in {len({e['family'] for e in entries})} families.",
        "",
        "| dimension | benchmark | lang | mode | shots | metrics | reference |",
        "|---|---|---|---|---|---|---|",
    ]
    for dimension in DIMENSIONS:
        for e in (e for e in entries if e["dimension"] == dimension):
            reference = f"`{e['reference']}`" if e["reference"] else ""
            lines.append(
                f"| {dimension} | `{e['id']}` | {','.join(e['languages'])} | {e['mode']} "
                f"| {e['shots']} | {', '.join(e['metrics'])} | {reference} |"
            )
    lines.append(END)
    return "\n".join(lines)


if __name__ == "__main__":
    print(hub_table())
