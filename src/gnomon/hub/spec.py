"""The benchmark spec: a declarative file, validated on load, that defines how a benchmark runs.

Everything that changes what a model sees goes through here, so that its hash can travel with every
stored result (see `prompt_hash`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    model_validator,
)

from gnomon import text
from gnomon.errors import UserError
from gnomon.hub.spec_parts import (
    FEWSHOT_DIR,
    SUBSET_SPLIT,
    ChoiceMatch,
    Code,
    Extractor,
    FewShot,
    Generation,
    JudgeSpec,
    Normalize,
    Prompt,
    Regexes,
    Source,
    ToolCalling,
    VerdictKind,
    _Strict,
)
from gnomon.hub.yaml_file import read_mapping

# the parts are defined in spec_parts.py; read them from here
__all__ = [
    "BenchmarkSpec",
    "Dimension",
    "FEWSHOT_DIR",
    "load_spec",
    "SUBSET_SPLIT",
    "ChoiceMatch",
    "Code",
    "Extractor",
    "FewShot",
    "Generation",
    "JudgeSpec",
    "Normalize",
    "Prompt",
    "Regexes",
    "Source",
    "ToolCalling",
    "VerdictKind",
]

Dimension = Literal[
    "knowledge",
    "reasoning",
    "math",
    "code",
    "language",
    "instruction-following",
    "subjective",  # open-ended answers judged by another model (MT-Bench, AlpacaEval, Arena-Hard)
    "long-context",
    "agent",
]


REFERENCE_PATTERN = r"^(lm-eval|opencompass|paper):[^\s]+$"


class BenchmarkSpec(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
    title: str
    dimension: Dimension
    version: Annotated[int, Field(ge=1)]
    description: str = ""
    family: str | None = Field(
        default=None, description="the benchmark this is a setting of (variants share it)"
    )
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$|^multilingual$")]] = Field(
        default_factory=lambda: ["en"], min_length=1
    )
    items: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="rows in the real evaluation split (all subsets)"
    )
    reference: Annotated[str, Field(pattern=REFERENCE_PATTERN)] | None = Field(
        default=None,
        description="the implementation this one matches: `lm-eval:TASK` (`{field}` filled from "
        "each row, for task groups), `opencompass:CONFIG`, or `paper:URL` where neither has it",
    )
    proof: str = Field(
        default="", description="how the match with `reference` is proven (the test that does)"
    )
    source: Source
    fewshot: FewShot = FewShot()
    prompt: Prompt
    mode: Literal["choice", "generate", "code", "judged", "target", "rolling", "tool_call"] = Field(
        description="choice: loglikelihood per choice; generate: greedy text, extracted; code: "
        "programs run on tests; judged: a judge model's verdicts; target: the loglikelihood of "
        "the target after the prompt; rolling: the loglikelihood of the whole rendered text; "
        "tool_call: a conversation with tools, the model's calls checked (`tools`)"
    )
    metrics: list[str]
    headline: str | None = Field(
        default=None, description="the metric leaderboards report; the first metric if unset"
    )
    generation: Generation | None = None
    code: Code | None = None
    extract: list[Extractor] = Field(default_factory=list)
    judge: JudgeSpec | None = Field(
        default=None, description="judged mode: how the judge model is asked and read"
    )
    tools: ToolCalling | None = Field(
        default=None, description="tool_call mode: how the model's calls are checked"
    )
    normalize: Normalize = Normalize()
    cluster_by: str | None = Field(
        default=None, description="row field whose values cluster items (e.g. subject)"
    )
    scorer: str | None = Field(
        default=None,
        description="generate mode: a registered scorer (`gnomon.scoring.scorers`; lm-eval's "
        "`process_results`) that computes `metrics` from the output, the target and the worked "
        "solution (`prompt.solution`), in place of `extract` and text metrics",
    )
    baseline: (
        Annotated[float, Field(ge=0, lt=1)] | dict[str, Annotated[float, Field(ge=0, lt=1)]] | None
    ) = Field(
        default=None,
        description="the random-guess score (1 / number of choices; 0 for generation) that the "
        "Open LLM Leaderboard's normalised score rescales from: one number, or one per value of "
        "`cluster_by` (each subtask normalised, then averaged)",
    )

    @model_validator(mode="after")
    def _mode_fields(self) -> BenchmarkSpec:
        from gnomon.scoring.metrics import is_known_metric, is_scorer_metric, metrics_for_mode

        if not self.metrics:
            raise ValueError("`metrics` must name at least one metric")
        if self.mode == "rolling" and (self.fewshot.count or self.prompt.description):
            # words and bytes are counted on the rendered text: shots would be counted too
            raise ValueError("rolling mode scores one text: no few-shot `count`, no description")
        if self.mode == "judged":
            self._judged_fields()
        if (self.mode == "tool_call") != (self.tools is not None):
            raise ValueError("a `tools` section goes with `mode: tool_call`, and it needs one")
        if self.mode == "tool_call" and self.prompt.solution is None:
            raise ValueError(
                "tool_call mode reads the functions, messages and answers from `prompt.solution`"
            )
        if isinstance(self.baseline, dict) and (not self.baseline or self.cluster_by is None):
            raise ValueError("a `baseline` per subtask needs `cluster_by` and at least one entry")
        if self.scorer is not None:
            return self._scorer_fields()
        for metric in self.metrics:
            if not is_known_metric(metric, self.mode):
                known = ", ".join(metrics_for_mode(self.mode))
                raise ValueError(
                    f"metric {metric!r} is not available in {self.mode} mode (known: {known})"
                )
            if self.mode == "generate" and is_scorer_metric(metric):
                raise ValueError(f"metric {metric!r} is computed by a registered `scorer`")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError("`metrics` names a metric twice")
        if self.headline is not None and self.headline not in self.metrics:
            raise ValueError(f"headline {self.headline!r} is not one of `metrics`")
        if self.mode == "choice" and self.prompt.choices is None:
            raise ValueError("choice mode needs `prompt.choices`")
        if self.mode != "judged" and self.judge is not None:
            raise ValueError("a `judge` section needs `mode: judged`")
        judges = [e for e in self.extract if e.kind == "judge"]
        last = self.extract[-1].kind if self.extract else None
        if judges and (self.mode != "generate" or len(judges) > 1 or last != "judge"):
            raise ValueError("a judge extractor comes once, last, in generate mode")
        if any(e.kind == "multi_choice" for e in self.extract) and (
            self.mode != "generate" or self.prompt.choices is None
        ):
            raise ValueError("a multi_choice extractor needs generate mode and `prompt.choices`")
        if self.mode in ("generate", "code", "judged", "tool_call") and self.generation is None:
            raise ValueError(f"{self.mode} mode needs a `generation` section")
        if self.mode == "code" and self.code is None:
            raise ValueError("code mode needs a `code` section (tests, call)")
        if self.mode != "choice" and (
            self.prompt.choices_in != "continuation" or self.prompt.labels is not None
        ):
            raise ValueError("`prompt.choices_in` and `prompt.labels` are for choice mode")
        if "mc2" in self.metrics and self.prompt.labels is None:
            raise ValueError("metric `mc2` needs `prompt.labels` (which choices are true)")
        if self.prompt.turns is not None and self.mode not in ("generate", "judged"):
            raise ValueError("`prompt.turns` (a conversation) is for generate and judged modes")
        if self.prompt.chat and self.mode not in ("generate", "judged", "code"):
            raise ValueError(
                "`prompt.chat` (a chat conversation) is for generate, judged and code modes"
            )
        if self.prompt.system is not None and not self.prompt.chat:
            raise ValueError("`prompt.system` is the system message of a `prompt.chat` benchmark")
        return self

    def _scorer_fields(self) -> BenchmarkSpec:
        from gnomon.scoring.scorers import SCORERS

        found = SCORERS.get(self.scorer or "")
        if found is None:
            raise ValueError(f"unknown scorer {self.scorer!r} (known: {', '.join(SCORERS)})")
        if self.mode != "generate" or self.extract or self.generation is None:
            raise ValueError("a `scorer` is for generate mode (with `generation`, no `extract`)")
        if found.needs_solution and self.prompt.solution is None:
            raise ValueError(
                f"scorer {self.scorer} reads the worked solution: set `prompt.solution`"
            )
        unknown = [m for m in self.metrics if m not in found.metrics]
        if unknown or len(set(self.metrics)) != len(self.metrics):
            raise ValueError(
                f"scorer {self.scorer} computes {', '.join(found.metrics)}; `metrics` names "
                + (f"{unknown[0]!r}" if unknown else "a metric twice")
            )
        if self.headline is not None and self.headline not in self.metrics:
            raise ValueError(f"headline {self.headline!r} is not one of `metrics`")
        return self

    def _judged_fields(self) -> None:
        from gnomon.scoring.metrics import is_known_metric, judge_corpus_metrics, judge_metrics

        if self.judge is None:
            raise ValueError("judged mode needs a `judge` section (template, verdict)")
        if self.judge.per_turn and self.prompt.turns is None:
            raise ValueError("`judge.per_turn` judges a conversation: it needs `prompt.turns`")
        turns = 1 + len(self.prompt.turns or ()) if self.judge.per_turn else 0
        corpus = judge_corpus_metrics(self.judge.verdict)
        if self.judge.per_turn and any(m in corpus for m in self.metrics):
            raise ValueError("pairwise corpus statistics take one judgment a sample: no per_turn")
        produced = judge_metrics(self.judge.verdict, turns, self.judge.samples) + corpus
        for metric in self.metrics:  # known ones: the registry is checked after
            if is_known_metric(metric, "judged") and metric not in produced:
                raise ValueError(
                    f"metric {metric!r} is not produced by a {self.judge.verdict} judge "
                    f"({', '.join(produced)})"
                )

    @property
    def family_id(self) -> str:
        return self.family or self.id

    @property
    def conversation(self) -> bool:
        """Whether the prompt is sent as chat messages (`prompt.turns` or `prompt.chat`), so a
        served model needs its chat API and a local model a chat template."""
        return self.prompt.chat or self.prompt.turns is not None

    @property
    def asks_judge(self) -> bool:
        """Whether scoring needs a judge model: judged mode, or a judge extractor."""
        return self.mode == "judged" or any(e.kind == "judge" for e in self.extract)

    def prompt_hash(self, shots: int | None = None, variant: str | None = None) -> str:
        """Hash of everything that shapes the prompt text, so a score always names its prompt.
        `variant` names a mode's own rewriting of the prompt (e.g. lettered options)."""
        fewshot = _dump_set(self.fewshot, LATER_FIELDS["fewshot"])
        if shots is not None:
            fewshot["count"] = shots
        if not fewshot["count"]:  # how shots would be drawn shapes no zero-shot prompt
            fewshot.pop("exclude_eval_row", None)
        if self.fewshot.file is not None:  # the exemplars themselves, not only their file name
            shipped = FEWSHOT_DIR / self.fewshot.file
            if shipped.is_file():
                fewshot["file_sha256"] = hashlib.sha256(shipped.read_bytes()).hexdigest()
        payload = {
            "prompt": _dump_set(self.prompt, LATER_FIELDS["prompt"]),
            "fewshot": fewshot,
            "process": self.source.process,
            "mode": self.mode,
            "generation": self.generation.model_dump() if self.generation else None,
            "code": _dump_set(self.code, LATER_FIELDS["code"]) if self.code else None,
        }
        if variant:
            payload["variant"] = variant
        if self.tools is not None:  # how the functions reach the model shapes its prompt
            payload["tools"] = {"interface": self.tools.interface, "language": self.tools.language}
        for key in ("where", "process_split"):  # only where set: other specs hash as before
            if getattr(self.source, key) is not None:
                payload[key] = getattr(self.source, key)
        blob = text.encode(json.dumps(payload, sort_keys=True, ensure_ascii=False))
        return hashlib.sha256(blob).hexdigest()[:16]


# Fields added after specs were first stored: left at their defaults they stay out of the prompt
# hash, so a spec that does not use them keeps the hash its stored scores carry.
LATER_FIELDS: dict[str, tuple[str, ...]] = {
    "prompt": ("turns", "choices_in", "labels", "solution", "fewshot_end", "chat", "system"),
    "fewshot": ("exclude_eval_row", "file"),
    "code": ("fences", "completion_as"),
}


def _dump_set(model: BaseModel, later: tuple[str, ...]) -> dict[str, object]:
    data = model.model_dump()
    for name in later:
        if getattr(model, name) == type(model).model_fields[name].default:
            data.pop(name)
    return data


def load_spec(path: Path) -> BenchmarkSpec:
    """Load and validate a spec file; any problem becomes one line naming the file and field."""
    raw, _ = read_mapping(path, "benchmark file")
    try:
        spec = BenchmarkSpec.model_validate(raw)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        first = errors[0]  # an unknown field first: it usually explains a "missing" one
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise UserError(f"{path}: field `{field}`: {message}{more}") from None
    if spec.source.files is not None:
        local = (path.parent / spec.source.files).resolve()
        spec = spec.model_copy(
            update={"source": spec.source.model_copy(update={"files": str(local)})}
        )
    return spec
