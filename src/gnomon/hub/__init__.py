"""The hub: built-in benchmark specs, and the lookup that turns a `--bench` word into a spec."""

from __future__ import annotations

import difflib
from pathlib import Path

from gnomon.errors import UserError
from gnomon.hub.spec import BenchmarkSpec, load_spec
from gnomon.hub.suite import PREFIX, is_suite_file, load_suite, suite_path

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
    """Comma-separated hub ids, spec files and suites (`suite:ID`, or a suite file); a benchmark
    that two suites share runs once, one named twice outright is a mistake."""
    specs: list[BenchmarkSpec] = []
    seen: set[str] = set()
    named: set[str] = set()  # named outright, not through a suite
    for word in (n.strip() for n in names.split(",")):
        if not word:
            continue
        if word.startswith(PREFIX) or (
            word.endswith((".yaml", ".yml")) and Path(word).is_file() and is_suite_file(Path(word))
        ):
            for spec in resolve_suite(word):
                if spec.id not in seen:
                    seen.add(spec.id)
                    specs.append(spec)
            continue
        spec = resolve(word)
        if spec.id in named:
            raise UserError(f"benchmark {spec.id!r} is named twice in --bench")
        named.add(spec.id)
        if spec.id not in seen:
            seen.add(spec.id)
            specs.append(spec)
    if not specs:
        raise UserError("--bench names no benchmark")
    return specs


def resolve_suite(name: str) -> list[BenchmarkSpec]:
    """Every benchmark a suite names, each resolved relative to the suite file's folder."""
    path = suite_path(name)
    suite, lines = load_suite(path)
    specs = []
    for bench in suite.benchmarks:
        local = path.parent / bench
        try:
            spec = resolve(str(local) if bench.endswith((".yaml", ".yml")) else bench)
        except UserError as exc:
            raise UserError(f"{path}:{lines.get(bench, 1)}: suite {suite.id}: {exc}") from None
        specs.append(spec)
    return specs


def all_specs() -> list[BenchmarkSpec]:
    return [load_spec(BUILTIN_DIR / f"{i}.yaml") for i in builtin_ids()]
