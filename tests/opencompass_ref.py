"""OpenCompass's own prompt assembly, run from the files of the installed `opencompass` wheel.

The wheel is installed without its dependencies (scripts/bootstrap: `--no-deps`), so its package
`__init__` files, which import the whole framework, cannot run. The few modules that build a
prompt (`PromptTemplate`, `PromptList`, the retrievers' in-context example assembly and the base
model's template parser) are loaded here from their files one by one; the framework plumbing
they import at module level (mmengine's registries and config classes, the distributed-rank
helper) is replaced by inert stand-ins, since none of it takes part in building a prompt.
A dataset config is executed as OpenCompass executes it (its own loops and f-strings build the
templates); the classes it names only as `type=` references are recorded by name.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERSION = "0.5.4"


def package_root() -> Path:
    """The installed `opencompass` package folder (the wheel pinned in constraints.txt)."""
    dist = importlib.metadata.distribution("opencompass")
    assert dist.version == VERSION, f"opencompass {dist.version} installed, tests pin {VERSION}"
    return Path(str(dist.locate_file("opencompass")))


class _Named:
    """A class a config names only as `type=X`: kept as its name."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Named(name)


class _Registry:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def register_module(self, *args: Any, **kwargs: Any) -> Any:
        return lambda cls: cls


def _stubs() -> dict[str, types.ModuleType]:
    mmengine = types.ModuleType("mmengine")
    config = types.ModuleType("mmengine.config")
    config.Config = config.ConfigDict = dict
    registry = types.ModuleType("mmengine.registry")
    registry.Registry = _Registry
    registry.METRICS = None
    dist = types.ModuleType("mmengine.dist")
    dist.is_main_process = lambda: True
    mmengine.dist = dist
    return {
        "mmengine": mmengine,
        "mmengine.config": config,
        "mmengine.registry": registry,
        "mmengine.dist": dist,
    }


@dataclass
class OpenCompass:
    """The loaded pieces: OpenCompass's classes, and its dataset configs."""

    root: Path
    PromptTemplate: Any
    FixKRetriever: Any
    LMTemplateParser: Any
    modules: dict[str, types.ModuleType]  # the loaded files, importable again by a config

    def dataset_configs(self, rel: str, variable: str) -> list[dict[str, Any]]:
        """Execute `configs/datasets/<rel>` and return its list `variable`."""
        path = self.root / "configs" / "datasets" / rel
        stub_names = [
            "opencompass.openicl.icl_inferencer",
            "opencompass.openicl.icl_evaluator",
            "opencompass.datasets",
            "opencompass.evaluator",
            "opencompass.utils.text_postprocessors",
        ]
        with _modules({n: _StubModule(n) for n in stub_names}, self.modules):
            namespace: dict[str, Any] = {"__name__": f"oc_config_{path.stem}"}
            exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
        return list(namespace[variable])


@contextmanager
def _modules(*groups: dict[str, types.ModuleType]) -> Iterator[None]:
    """Make these modules importable for the duration, then take OpenCompass's and the stand-ins'
    names out of `sys.modules` again (what they imported for real, torch or datasets, stays:
    importing those twice in one process is not safe)."""
    ours = ("opencompass", "mmengine")
    saved = {n: m for n, m in sys.modules.items() if n.split(".")[0] in ours}
    try:
        for group in groups:
            sys.modules.update(group)
        yield
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] in ours]:
            del sys.modules[name]
        sys.modules.update(saved)


def load() -> OpenCompass:
    root = package_root()
    loaded: dict[str, types.ModuleType] = {}

    def package(name: str, folder: Path) -> None:
        module = types.ModuleType(name)
        module.__path__ = [str(folder)]
        loaded[name] = module
        sys.modules[name] = module

    def module(name: str, rel: str) -> types.ModuleType:
        spec = importlib.util.spec_from_file_location(name, root / rel)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded[name] = mod
        spec.loader.exec_module(mod)
        return mod

    with _modules(_stubs()):
        package("opencompass", root)
        package("opencompass.utils", root / "utils")
        package("opencompass.openicl", root / "openicl")
        package("opencompass.openicl.utils", root / "openicl" / "utils")
        package("opencompass.openicl.icl_retriever", root / "openicl" / "icl_retriever")
        package("opencompass.models", root / "models")
        module("opencompass.registry", "registry.py")
        module("opencompass.utils.prompt", "utils/prompt.py")
        module("opencompass.utils.types", "utils/types.py")
        template = module(
            "opencompass.openicl.icl_prompt_template", "openicl/icl_prompt_template.py"
        )
        loaded["opencompass.openicl"].PromptTemplate = template.PromptTemplate
        module("opencompass.openicl.utils.logging", "openicl/utils/logging.py")
        base = module(
            "opencompass.openicl.icl_retriever.icl_base_retriever",
            "openicl/icl_retriever/icl_base_retriever.py",
        )
        loaded["opencompass.openicl.icl_retriever"].BaseRetriever = base.BaseRetriever
        fix_k = module(
            "opencompass.openicl.icl_retriever.icl_fix_k_retriever",
            "openicl/icl_retriever/icl_fix_k_retriever.py",
        )
        loaded["opencompass.openicl.icl_retriever"].FixKRetriever = fix_k.FixKRetriever
        # a zero-shot config names ZeroRetriever only as its `type=`: no example to retrieve
        loaded["opencompass.openicl.icl_retriever"].ZeroRetriever = _Named("ZeroRetriever")
        models_base = module("opencompass.models.base", "models/base.py")
    return OpenCompass(
        root, template.PromptTemplate, fix_k.FixKRetriever, models_base.LMTemplateParser, loaded
    )


@dataclass
class _Reader:
    output_column: str


@dataclass
class _Dataset:
    """What a retriever reads of OpenCompass's `BaseDataset`: the reader and the two splits."""

    reader: _Reader
    train: list[dict[str, Any]]
    test: list[dict[str, Any]]


def ppl_prompts(
    oc: OpenCompass, config: dict[str, Any], train: list[dict[str, Any]], test: list[dict[str, Any]]
) -> list[dict[str, str]]:
    """Per test row, label -> the text a base model (no meta template) is scored on, built as
    `PPLInferencer.inference` builds it: retrieve, `generate_ice`, then per label
    `generate_label_prompt`, then the model's `parse_template(..., mode="ppl")`."""
    infer = config["infer_cfg"]
    assert infer["inferencer"]["type"].name == "PPLInferencer", infer["inferencer"]
    assert "prompt_template" not in infer, "only ice_template configs are handled here"
    ice_cfg = {k: v for k, v in infer["ice_template"].items() if k != "type"}
    ice_template = oc.PromptTemplate(**ice_cfg)
    retriever_cfg = dict(infer["retriever"])
    assert retriever_cfg.pop("type") is oc.FixKRetriever
    reader = _Reader(config["reader_cfg"]["output_column"])
    retriever = oc.FixKRetriever(_Dataset(reader, train, test), **retriever_cfg)
    parser = oc.LMTemplateParser(None)
    labels = retriever.get_labels(ice_template=ice_template)
    out = []
    for idx, ice_ids in enumerate(retriever.retrieve()):
        ice = retriever.generate_ice(ice_ids, ice_template=ice_template)
        out.append(
            {
                label: parser.parse_template(
                    retriever.generate_label_prompt(idx, ice, label, ice_template=ice_template),
                    mode="ppl",
                )
                for label in labels
            }
        )
    return out


def base_model(oc: OpenCompass, path: Path) -> Any:
    """OpenCompass's `HuggingFaceBaseModel` (the class its base-model configs use) over a local
    model, in float32 on the CPU; its logger and NPU probe are the only stand-ins."""
    import logging

    device = types.ModuleType("mmengine.device")
    device.is_npu_available = lambda: False
    utils_logging = types.ModuleType("opencompass.utils.logging")
    utils_logging.get_logger = lambda *a, **k: logging.getLogger("opencompass")
    base_api = types.ModuleType("opencompass.models.base_api")
    base_api.APITemplateParser = object  # chat meta templates only; a base model has none
    extra = {
        "mmengine.device": device,
        "opencompass.utils.logging": utils_logging,
        "opencompass.models.base_api": base_api,
    }
    with _modules(_stubs(), oc.modules, extra):
        name = "opencompass.models.huggingface_above_v4_33"
        spec = importlib.util.spec_from_file_location(
            name, oc.root / "models" / "huggingface_above_v4_33.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        model = module.HuggingFaceBaseModel(
            path=str(path), model_kwargs={"device_map": "cpu", "torch_dtype": "float32"}
        )
    # OpenCompass 0.5.4 encodes with `batch_encode_plus`, which transformers 5 folded into the
    # tokenizer's call (same arguments, same result)
    if not hasattr(model.tokenizer, "batch_encode_plus"):
        model.tokenizer.batch_encode_plus = model.tokenizer.__call__
    return model
