"""Real rows load: the one real sample row that `evalscope` ships for most benchmarks, rebuilt in
the dataset's raw schema (tests/data/real_rows/<id>.jsonl, with `<id>.fewshot.jsonl` where the
spec draws shots from another split), goes through gnomon's loader, templates and mode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gnomon.hub import resolve
from gnomon.pipeline.judging import Judge
from gnomon.pipeline.plan import plan_bench

REAL_ROWS = Path(__file__).parent / "data" / "real_rows"
FILES = sorted(p for p in REAL_ROWS.glob("*.jsonl") if not p.name.endswith(".fewshot.jsonl"))


def test_real_rows_name_hub_benchmarks() -> None:
    for path in REAL_ROWS.glob("*.jsonl"):
        resolve(path.name.split(".")[0])  # raises on a file named for no benchmark


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_real_row_renders(path: Path, tmp_path: Path) -> None:
    spec = resolve(path.stem)
    data = tmp_path / spec.id
    data.mkdir()
    if spec.source.splits_are_subsets:  # MuSR: a file per subset, named for its split
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for subset in spec.source.subsets or ():
            mine = [r for r in rows if r.get(spec.source.subset_field) == subset]
            (data / f"{subset}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mine))
    else:
        shutil.copy(path, data / f"{spec.source.eval_split}.jsonl")
    fewshot = path.with_name(f"{path.stem}.fewshot.jsonl")
    split = spec.fewshot.split or spec.source.eval_split
    if split != spec.source.eval_split:
        shutil.copy(fewshot if fewshot.is_file() else path, data / f"{split}.jsonl")
    # as many shots as the real rows give (the standard count where they give enough)
    pool = fewshot if fewshot.is_file() else path
    available = sum(1 for line in pool.read_text(encoding="utf-8").splitlines() if line.strip())
    shots = min(spec.fewshot.count, available - int(split == spec.source.eval_split))
    # a judged benchmark plans with a judge (never loaded: nothing is asked here)
    judge = Judge("judge", lambda: None, tmp_path / "s.sqlite") if spec.asks_judge else None  # type: ignore[arg-type,return-value]
    plan = plan_bench(spec, tmp_path, shots, None, "real-rows", judge=judge)
    assert plan.samples
    for sample in plan.samples:
        requests = plan.mode.requests(sample)
        # what the model reads (a choice may be its own context: WinoGrande)
        assert requests and all(r.context.strip() for r in requests)
        assert sample.target not in ("", None, [])
