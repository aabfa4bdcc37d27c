"""Rows of a benchmark split, from local JSONL files or the `datasets` hub, each with its origin.

Every row remembers where it came from (file and line), so that a bad row is reported there,
before any model is loaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gnomon.errors import UserError
from gnomon.hub.spec import FEWSHOT_DIR, SUBSET_SPLIT, BenchmarkSpec
from gnomon.templating import ENV, evaluate


@dataclass(frozen=True)
class Row:
    index: int  # 0-based position in its split
    fields: dict[str, Any]
    origin: str  # "path:line" or "hub-id/split[index]", for error messages


def _local_dir(spec: BenchmarkSpec, data_dir: Path | None) -> Path | None:
    """`--data DIR` holds `<split>.jsonl`, or one subfolder per benchmark id when several run
    (a benchmark without one reads its spec's own files or packaged data, if any)."""
    if data_dir is not None:
        nested = data_dir / spec.id
        if nested.is_dir():
            return nested
        # a spec with its own rows (files, a package's), run beside others that read --data,
        # keeps them
        own = spec.source.files or spec.source.package
        if own and not any(data_dir.glob("*.jsonl")):
            return Path(spec.source.files) if spec.source.files else None
        return data_dir
    return Path(spec.source.files) if spec.source.files else None


def read_jsonl(path: Path, *, errors: str = "strict") -> list[Row]:
    """`errors="surrogateescape"` keeps bytes that are not UTF-8 as lone surrogates (stored and
    hashed losslessly, see `gnomon.text`) instead of refusing the line. A UTF-8 byte order mark,
    as some Windows tools write, is skipped."""
    rows: list[Row] = []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    for number, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").splitlines(), start=1):
        try:
            line = raw.decode("utf-8", errors)
        except UnicodeDecodeError as exc:
            raise UserError(f"{path}:{number}: not UTF-8 text (byte {exc.start + 1})") from None
        if not line.strip():
            continue
        try:
            fields = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(fields, dict):
            raise UserError(f"{path}:{number}: a row must be a JSON object")
        rows.append(Row(index=len(rows), fields=fields, origin=f"{path}:{number}"))
    return rows


def _load_hub(spec: BenchmarkSpec, split: str) -> list[Row]:
    """One hub config, or each of `source.subsets` in turn (configs, or splits when `split` is
    `{subset}`), every row tagged with its subset."""
    import datasets  # imported late: it is slow to import and local runs do not need it

    hub = spec.source.hub
    by_split = split == SUBSET_SPLIT and spec.source.subsets is not None
    configs: list[str | None] = (
        list(spec.source.subsets) if spec.source.subsets else [spec.source.config]
    )
    rows: list[Row] = []
    for config in configs:
        if by_split:
            config, split = spec.source.config, str(config)
        try:
            table = datasets.load_dataset(
                hub, config, split=split, data_files=spec.source.data_files
            )
        except Exception as exc:  # the hub client raises many types; all mean "could not load"
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise UserError(
                f"cannot load {hub} ({config or 'default'}, split {split}) from the "
                f"datasets hub: {reason}. Offline? Pass --data DIR with {split}.jsonl"
            ) from None
        subset = split if by_split else config
        tag = {spec.source.subset_field: subset} if spec.source.subsets else {}
        where = f"{hub}/{subset}" if spec.source.subsets and not by_split else hub
        # a list, not a generator: `len(rows)` must not grow while the subset is added
        base = len(rows)
        rows += [
            Row(base + i, {**dict(r), **tag}, f"{where}/{split}[{i}]") for i, r in enumerate(table)
        ]
    return rows


def package_file(reference: str) -> Path:
    """The file `pkg:path/in/it` names inside an installed package, found without importing the
    package (a spec is data: naming a module must not run it) and never outside its folder."""
    import importlib.util

    package, _, inner = reference.partition(":")
    if not _PACKAGE.fullmatch(package) or not inner:
        raise UserError(f"{reference!r}: a packaged file is `package:path/in/it`")
    found = importlib.util.find_spec(package)
    folders = list(found.submodule_search_locations or []) if found else []
    if not folders:
        raise UserError(f"{reference!r}: no installed package {package!r}")
    root = Path(folders[0]).resolve()
    path = (root / inner).resolve()
    if not path.is_relative_to(root):
        raise UserError(f"{reference!r}: the path leaves the package")
    if not path.is_file():
        raise UserError(f"{reference!r}: no such file in {package}")
    return path


_PACKAGE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _load_package(spec: BenchmarkSpec, split: str) -> list[Row]:
    """A data file an installed package ships (HumanEval's), so it works offline."""
    import gzip

    reference = spec.source.package or ""
    path = package_file(reference)
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UserError(f"{spec.id}: cannot read {reference}: {exc}") from None
    rows: list[Row] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            fields = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            raise UserError(f"{reference}:{number}: not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"{reference}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(fields, dict):
            raise UserError(f"{reference}:{number}: a row must be a JSON object")
        rows.append(Row(len(rows), fields, f"{reference}:{number}"))
    return rows


def _read_local(spec: BenchmarkSpec, local: Path, split: str) -> list[Row]:
    """`<split>.jsonl`; or, when each subset is a split, each `<subset>.jsonl` in turn, every
    row tagged with its subset (rows may carry the tag already)."""
    names = list(spec.source.subsets or ()) if split == SUBSET_SPLIT else [split]
    rows: list[Row] = []
    for name in names:
        path = local / f"{name}.jsonl"
        if not path.is_file():
            raise UserError(f"{spec.id}: no {name}.jsonl in {local}")
        tag = {spec.source.subset_field: name} if split == SUBSET_SPLIT else {}
        base = len(rows)
        rows += [Row(base + r.index, {**tag, **r.fields}, r.origin) for r in read_jsonl(path)]
    return rows


def load_split(spec: BenchmarkSpec, split: str, data_dir: Path | None) -> list[Row]:
    """A split's rows, after the spec's `where` filter and split hook. A row keeps its index in
    the split as read, so its sample id does not move when a filter drops rows before it."""
    local = _local_dir(spec, data_dir)
    if local is None and spec.source.package is not None:
        rows = _load_package(spec, split)
    elif local is None:
        rows = _load_hub(spec, split)
    else:
        rows = _read_local(spec, local, split)
    return prepare_split(spec, rows)


def group_key(value: object) -> object:
    """A row field's value as a key to group rows by: itself, or (a list or mapping, which a
    user's row may hold where text is expected) its canonical JSON text."""
    try:
        hash(value)
    except TypeError:
        return json.dumps(value, sort_keys=True, default=str)
    return value


def prepare_split(spec: BenchmarkSpec, rows: list[Row]) -> list[Row]:
    """lm-eval's `process_docs` where it is more than a function of one row: the `where`
    filter, then the split hook over each subset's rows in order (indices kept)."""
    source = spec.source
    if source.where is None and source.process_split is None:
        return rows
    if source.where is not None:
        keep = ENV.compile_expression(source.where, undefined_to_none=False)
        rows = [r for r in rows if evaluate(r.origin, "source.where", keep, r.fields)]
    if source.process_split is not None:
        from gnomon.hub.hooks import SPLIT_HOOKS

        hook = SPLIT_HOOKS.get(source.process_split)
        if hook is None:
            raise UserError(f"{spec.id}: unknown split hook {source.process_split!r}")
        steps: dict[object, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        prepared = []
        for row in rows:
            subset = group_key(row.fields.get(source.subset_field))
            if subset not in steps:  # each subset starts afresh, as lm-eval's subtasks do
                steps[subset] = hook()
            step = steps[subset]
            try:
                prepared.append(Row(row.index, step(row.fields), row.origin))
            except KeyError as exc:
                raise UserError(f"{row.origin}: row lacks field `{exc.args[0]}`") from None
            except (TypeError, ValueError) as exc:
                raise UserError(f"{row.origin}: cannot prepare row: {exc}") from None
        rows = prepared
    return rows


def load_fewshot(spec: BenchmarkSpec, data_dir: Path | None) -> list[Row]:
    """The pool shots are drawn from: a split of the benchmark, or the fixed exemplars gnomon
    ships (`fewshot.file`: those a reference implementation writes into its task, e.g. Minerva's
    four MATH solutions), which `--data` does not replace."""
    if spec.fewshot.file is None:
        return load_split(spec, spec.fewshot.split or spec.source.eval_split, data_dir)
    name = spec.fewshot.file
    try:
        raw = (FEWSHOT_DIR / name).read_bytes()
    except (FileNotFoundError, OSError):
        raise UserError(f"{spec.id}: no few-shot file {name!r} in gnomon's hub/fewshot") from None
    rows: list[Row] = []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if line.strip():
            rows.append(Row(len(rows), json.loads(line), f"gnomon/hub/fewshot/{name}:{number}"))
    return rows
