"""`gnomon hub` and `gnomon runs`: reading the benchmark hub and the store's past runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from gnomon.cli_output import print_reports, quiet_libraries
from gnomon.console import StoreOpt, default_store, out

hub_app = typer.Typer(help="Browse the benchmark hub.", no_args_is_help=True)
runs_app = typer.Typer(help="Past runs in the store.", no_args_is_help=True)


@hub_app.command("list")
def hub_list(
    files: Annotated[
        list[Path] | None, typer.Argument(help="spec files to list beside the built-in ones")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per benchmark")] = False,
) -> None:
    """Benchmarks in the hub, grouped by capability dimension, and the suites."""
    from gnomon.hub.listing import hub_entries, print_hub, print_hub_json

    entries = hub_entries(files or [])
    if as_json:
        print_hub_json(entries)
    else:
        print_hub(entries)


@hub_app.command("show")
def hub_show(
    name: Annotated[str, typer.Argument(help="a hub id or a spec file")],
    data: Annotated[Path | None, typer.Option(help="render the example from local rows")] = None,
    shots: Annotated[int | None, typer.Option(min=0)] = None,
    index: Annotated[int, typer.Option(min=0, help="which row to render")] = 0,
) -> None:
    """A benchmark's definition and a fully rendered example prompt."""
    from gnomon.hub import resolve
    from gnomon.hub.example import example_sample
    from gnomon.hub.listing import source_text

    quiet_libraries(needs_hub=data is None)
    spec = resolve(name)
    out.print(
        Text.assemble(
            (spec.id, "bold"), f" — {spec.title} (v{spec.version}, {spec.dimension}, {spec.mode})"
        )
    )
    if spec.description:
        out.print(spec.description)
    out.print(f"family: {spec.family_id}   languages: {', '.join(spec.languages)}", markup=False)
    items = f" ({spec.items} items in the real split)" if spec.items else ""
    out.print(f"source: {source_text(spec)}{items}", markup=False, highlight=False)
    if spec.reference:
        out.print(f"reference: {spec.reference}", markup=False, highlight=False)
        out.print(f"proven by: {spec.proof or '(not stated)'}", markup=False, highlight=False)
    else:
        out.print("reference: none stated (gnomon's own definition)")
    fs = spec.fewshot
    n_shots = fs.count if shots is None else shots
    out.print(
        f"few-shot: {n_shots}"
        + (f" from split {fs.split} ({fs.sampler}" if n_shots and fs.split else "")
        + ((f", by {fs.group_by})" if fs.group_by else ")") if n_shots and fs.split else "")
        + (f" from gnomon/hub/fewshot/{fs.file}" if n_shots and fs.file else "")
    )
    out.print(f"metrics: {', '.join(spec.metrics)}   prompt hash: {spec.prompt_hash(n_shots)}")
    sample, note = example_sample(spec, data, shots, index)
    out.rule(f"example prompt ({note})")
    out.print(sample.context, markup=False, highlight=False, end="")
    out.print(Text("⏎", "dim"))
    out.rule()
    if sample.choices and spec.mode == "choice":  # elsewhere they only help read answers
        delim = spec.prompt.target_delimiter
        # `*` marks the gold choice, or every true one where the benchmark labels them (mc2)
        gold = sample.labels or [int(i in sample.golds) for i in range(len(sample.choices))]
        # choices that are contexts (WinoGrande): each ends its own context, one text follows
        what = "context {} ends" if sample.continuation is not None else "continuation {}"
        for i, choice in enumerate(sample.choices):
            mark = "*" if gold[i] else " "
            shown = choice if sample.continuation is not None else delim + choice
            out.print(f"{mark} {what.format(i)}: {shown!r}", markup=False, highlight=False)
        if sample.continuation is not None:
            shown = delim + sample.continuation
            out.print(f"  then scored: {shown!r}", markup=False, highlight=False)
    else:
        out.print(f"target: {sample.target!r}", markup=False, highlight=False)


@runs_app.command("list")
def runs_list(store: StoreOpt = None) -> None:
    """Runs in the store, newest first."""
    from gnomon.store import Store

    db = Store(store or default_store())
    table = Table()
    for column in (
        "run",
        "created",
        "status",
        "model",
        "benchmarks",
        "samples",
        "reused",
        "re-scored",
        "computed",
        "seconds",
    ):
        table.add_column(column)
    import time

    for r in db.runs():
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"]))
        table.add_row(
            r["run_id"], created, r["status"], r["model"], ",".join(r["config"]["benches"]),
            str(r["planned"]), str(r["reused"]), str(r.get("rescored", 0)), str(r["computed"]),
            f"{r['seconds']:.1f}",
        )  # fmt: skip
    out.print(table if db.runs() else f"no runs in {db.path} yet; start one with `gnomon run`")


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="a run id (or a unique prefix)")],
    store: StoreOpt = None,
    samples: Annotated[int, typer.Option(help="also print the first N samples")] = 0,
    bench: Annotated[str | None, typer.Option(help="only this benchmark's samples")] = None,
    wrong: Annotated[bool, typer.Option("--wrong", help="only samples answered wrongly")] = False,
) -> None:
    """One run's scores, settings and (optionally) samples."""
    from gnomon.report import bench_reports
    from gnomon.store import Store

    db = Store(store or default_store())
    run = db.run(run_id)
    print_reports(
        bench_reports(db, run["run_id"]), f"{run['model']}  (run {run['run_id']}, {run['status']})"
    )
    settings = ", ".join(
        f"{k}={v}" for k, v in {**run["config"], **run["engine"]}.items() if v is not None
    )
    out.print(f"settings: {settings}", markup=False, highlight=False)
    for failed in db.failures(run["run_id"]):  # not scored, with why (a judge's raw replies)
        line = f"failed: {failed['bench']} {failed['sample_id']}: {failed['reason']}"
        out.print(line, markup=False, highlight=False)
    judges = {b["bench"]: b["spec"].get("judge") for b in db.run_benches(run["run_id"])}
    shown = 0
    for sample in db.samples(run["run_id"], bench):
        if shown >= samples:
            break
        if wrong and sample["correct"]:
            continue
        shown += 1
        mark = ("✓", "green") if sample["correct"] else ("✗", "red")
        out.rule(Text(f"{sample['bench']} #{sample['index']} (id {sample['sample_id']})"))
        out.print(sample["prompt"], markup=False, highlight=False)
        verdict = f" prediction={sample['prediction']!r} target={sample['target']!r}"
        out.print(Text.assemble(mark, verdict))  # model text is never read as markup
        if "output" in sample:
            out.print(f"output: {sample['output']!r}", markup=False, highlight=False)
        _print_detail(sample, judges.get(sample["bench"]))
        for i, run in enumerate(sample.get("runs", [])):  # code: why each completion failed
            out.print(f"completion {i}: {run['status']}: {run['reason']}")
            for stream in ("stdout", "stderr"):
                if run.get(stream):
                    out.print(f"  {stream}: {run[stream]!r}")


def _print_detail(sample: dict, judge: dict | None) -> None:
    """What a judged or tool-use score rests on: reasoning, each turn, the tool calls as written
    and the checker's reason, each judge reply with its verdict. Printed as repr, one line each,
    so no model text can move the cursor or pass for gnomon's own output."""
    from gnomon.rank.sample_detail import judgments, tool_calls, turns

    def say(line: str) -> None:
        out.print(line, markup=False, highlight=False)

    if sample.get("reasoning"):
        say(f"reasoning: {sample['reasoning']!r}")
    for t in turns(sample["prompt"], sample):
        if t["question"] is not None and t["turn"] > 1:
            say(f"turn {t['turn']} question: {t['question']!r}")
        say(f"turn {t['turn']} answer: {t['answer']!r}")
    calls = tool_calls(sample)
    if calls is not None:
        say(f"tool calls: {len(calls)}" + ("" if calls else " (none)"))
        for c in calls:
            say(f"  call {c['name']!r} arguments {c['arguments']!r}")
    if sample.get("error"):
        say(f"checker: {sample['error']!r}")
    for j in judgments(sample, judge):
        where = f" ({j['where']})" if j["where"] else ""
        for k, text in enumerate(j["retries"], 1):
            say(f"judge reply {j['index']}{where}, unreadable attempt {k}: {text!r}")
        say(f"judge reply {j['index']}{where}: verdict {j['verdict']} from {j['reply']!r}")
