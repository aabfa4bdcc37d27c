"""An example prompt for `gnomon hub show`: from the user's rows when it can, else made-up rows."""

from __future__ import annotations

from pathlib import Path

from gnomon.data import Row, load_fewshot, load_split, prepare_split
from gnomon.errors import UserError
from gnomon.hub.spec import SUBSET_SPLIT, BenchmarkSpec
from gnomon.prompts import Renderer, Sample


def _split_names(spec: BenchmarkSpec, split: str) -> list[str]:
    return list(spec.source.subsets or ()) if split == SUBSET_SPLIT else [split]


def _synthetic(spec: BenchmarkSpec, split: str) -> list[Row]:
    from gnomon.rowgen import make_rows

    rows: list[Row] = []
    for name in _split_names(spec, split):
        tag = {spec.source.subset_field: name} if split == SUBSET_SPLIT else {}
        base, made = len(rows), make_rows(spec.id, name)
        rows += [
            Row(base + i, {**tag, **r}, f"synthetic {spec.id}/{name}[{i}]")
            for i, r in enumerate(made)
        ]
    return prepare_split(spec, rows)


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
        needed = _split_names(spec, spec.source.eval_split)
        if not spec.fewshot.file:
            needed += _split_names(spec, fewshot_split)
        if not set(needed) <= set(found.sizes):
            raise
        rows = _synthetic(spec, spec.source.eval_split)
        pool = load_fewshot(spec, None) if spec.fewshot.file else _synthetic(spec, fewshot_split)
        note = "made-up row in the real schema: the dataset is not reachable; pass --data DIR"
    if index >= len(rows):
        raise UserError(f"--index {index}: the split has {len(rows)} rows")
    same = spec.fewshot.split == spec.source.eval_split
    sample = renderer.render(rows[: index + 1], pool, same)[index]
    return sample, note
