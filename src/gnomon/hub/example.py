"""An example prompt for `gnomon hub show`: from the user's rows when it can, else made-up rows."""

from __future__ import annotations

from pathlib import Path

from gnomon.data import Row, load_fewshot, load_split
from gnomon.errors import UserError
from gnomon.hub.spec import BenchmarkSpec
from gnomon.prompts import Renderer, Sample


def _synthetic(spec: BenchmarkSpec, split: str) -> list[Row]:
    from gnomon.rowgen import make_rows

    rows = make_rows(spec.id, split)
    return [Row(i, r, f"synthetic {spec.id}/{split}[{i}]") for i, r in enumerate(rows)]


def example_sample(
    spec: BenchmarkSpec, data_dir: Path | None, shots: int | None, index: int
) -> tuple[Sample, str]:
    renderer = Renderer(spec, shots)
    fewshot_split = spec.fewshot.split or spec.source.eval_split
    try:
        rows = load_split(spec, spec.source.eval_split, data_dir)
        pool = load_fewshot(spec, data_dir) if renderer.shots else []
        note = f"row {index} of {spec.source.eval_split}"
    except UserError:
        from gnomon.rowgen import maker

        found = maker(spec.id)
        if data_dir is not None or found is None:
            raise
        needed = {spec.source.eval_split} | ({fewshot_split} if not spec.fewshot.file else set())
        if not needed <= set(found.sizes):
            raise
        rows = _synthetic(spec, spec.source.eval_split)
        pool = load_fewshot(spec, None) if spec.fewshot.file else _synthetic(spec, fewshot_split)
        note = "made-up row in the real schema: the dataset is not reachable; pass --data DIR"
    if index >= len(rows):
        raise UserError(f"--index {index}: the split has {len(rows)} rows")
    same = spec.fewshot.split == spec.source.eval_split
    sample = renderer.render(rows[: index + 1], pool, same)[index]
    return sample, note
