"""The hub: built-in benchmark specs, and the lookup that turns a `--bench` word into a spec."""

from __future__ import annotations

import difflib
from pathlib import Path

from gnomon.errors import UserError
from gnomon.hub.spec import BenchmarkSpec, load_spec

BUILTIN_DIR = Path(__file__).parent / "benchmarks"


def builtin_ids() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def resolve(name: str) -> BenchmarkSpec:
    """A built-in id, or a path to a spec file; unknown names get the nearest ids suggested."""
    path = Path(name)
    if name.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise UserError(f"benchmark file not found: {name}")
        return load_spec(path)
    builtin = BUILTIN_DIR / f"{name}.yaml"
    if builtin.is_file():
        return load_spec(builtin)
    near = difflib.get_close_matches(name, builtin_ids(), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(near)}?" if near else f"; known: {', '.join(builtin_ids())}"
    raise UserError(f"unknown benchmark {name!r}{hint}")


def resolve_many(names: str) -> list[BenchmarkSpec]:
    specs = [resolve(n.strip()) for n in names.split(",") if n.strip()]
    if not specs:
        raise UserError("--bench names no benchmark")
    seen: set[str] = set()
    for spec in specs:
        if spec.id in seen:
            raise UserError(f"benchmark {spec.id!r} is named twice in --bench")
        seen.add(spec.id)
    return specs


def all_specs() -> list[BenchmarkSpec]:
    return [load_spec(BUILTIN_DIR / f"{i}.yaml") for i in builtin_ids()]
