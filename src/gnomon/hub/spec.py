"""The benchmark spec: a declarative file, validated on load, that defines how a benchmark runs.

Everything that changes what a model sees goes through here, so that its hash can travel with every
stored result (see `prompt_hash`).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from jinja2 import TemplateError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from gnomon import text
from gnomon.errors import UserError

Dimension = Literal[
    "knowledge",
    "reasoning",
    "math",
    "code",
    "language",
    "instruction-following",
    "long-context",
    "agent",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SUBSET_SPLIT = "{subset}"  # eval_split when each subset is a split, not a config


class Source(_Strict):
    """Where rows come from: a `datasets` hub id, or local files (`--data` overrides either)."""

    hub: str | None = None
    config: str | None = None
    files: str | None = Field(
        default=None, description="a local folder holding <split>.jsonl, relative to the spec file"
    )
    package: str | None = Field(
        default=None,
        description="a data file shipped in an installed package: `pkg:path/file.jsonl[.gz]`",
    )
    eval_split: str = Field(
        description="the split scored; `{subset}` when each subset is a split of one dataset "
        "rather than a config (MuSR), read locally from `<subset>.jsonl`"
    )
    subsets: list[str] | None = Field(
        default=None,
        min_length=1,
        description="hub configs loaded one after another (BBH's 27 tasks), each row tagged with "
        "its config in `subset_field`; local rows carry that field themselves",
    )
    subset_field: str = "subset"
    process: str | None = Field(default=None, description="name of a registered row hook")
    where: str | None = Field(
        default=None,
        description="a Jinja2 expression over a row: rows for which it is false are left out of "
        "every split read from the dataset (lm-eval's filtering `process_docs`, e.g. MATH's "
        "`level == 'Level 5'`); a kept row keeps its index (its sample id)",
    )
    process_split: str | None = Field(
        default=None,
        description="name of a registered split hook: code over a whole split (each subset's "
        "rows in order), for row preparation that is no function of one row (GPQA's shuffle)",
    )
    id_field: str | None = Field(default=None, description="row field holding a stable id")

    @model_validator(mode="after")
    def _one_origin(self) -> Source:
        if self.hub is None and self.files is None and self.package is None:
            raise ValueError("needs `hub` (a datasets id), `files` (a folder) or `package`")
        if self.splits_are_subsets and not self.subsets:
            raise ValueError("`eval_split: {subset}` needs `subsets` (the split names)")
        if self.where is not None:
            from gnomon.templating import ENV

            try:
                ENV.compile_expression(self.where)
            except TemplateError as exc:
                raise ValueError(f"`where` is not a valid expression: {exc.message}") from None
        return self

    @property
    def splits_are_subsets(self) -> bool:
        return self.eval_split == SUBSET_SPLIT


class FewShot(_Strict):
    """How examples are chosen: lm-evaluation-harness's `first_n` or its seeded random sampler."""

    count: Annotated[int, Field(ge=0)] = 0
    split: str | None = None
    sampler: Literal["first_n", "random"] = "first_n"
    seed: int = 1234
    group_by: str | None = Field(
        default=None, description="take shots only from rows with the same value of this field"
    )
    ids: list[str] | None = Field(
        default=None, description="the shots' ids (the source's id field), in this order"
    )
    exclude_eval_row: bool | None = Field(
        default=None,
        description="true: draw one shot more and drop the row being asked (an equal row) if "
        "drawn, as lm-eval does whenever its task names no test split; false: never, even from "
        "the eval split (lm-eval's RACE); unset: when the few-shot split is the eval split",
    )
    file: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]*\.jsonl$")] | None = Field(
        default=None,
        description="fixed exemplars shipped with gnomon (gnomon/hub/fewshot/FILE, JSONL rows in "
        "the dataset's schema), taken in file order, instead of rows of a split",
    )

    @model_validator(mode="after")
    def _split_needed(self) -> FewShot:
        if self.file is not None and self.split is not None:
            raise ValueError("few-shot examples come from a `file` or a `split`, not both")
        if self.count > 0 and self.split is None and self.file is None:
            raise ValueError(
                "few-shot `count` > 0 needs a `split` (or `file`) to draw examples from"
            )
        return self


class Prompt(_Strict):
    """Jinja2 templates over a row; the layout follows lm-evaluation-harness's few-shot format."""

    description: str = ""
    template: str
    choices: str | list[str] | None = Field(
        default=None, description="a Jinja2 expression giving the list of choices, or the list"
    )
    target: str = Field(
        description="a Jinja2 expression: the gold choice's index (choice mode) or answer text"
    )
    fewshot_target: str | None = Field(
        default=None, description="expression for the answer shown after a few-shot question"
    )
    choices_in: Literal["continuation", "context"] = Field(
        default="continuation",
        description="where each choice goes: after the shared context (the usual case), or "
        "`context`: each choice is its own context and the rendered `template` is the shared "
        "continuation scored after each (lm-evaluation-harness's multiple-input tasks, "
        "WinoGrande's partial scoring)",
    )
    labels: str | None = Field(
        default=None,
        description="a Jinja2 expression giving each choice's truth (1 true, 0 false), for "
        "metrics that weigh every true choice (mc2)",
    )
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    fewshot_end: str | None = Field(
        default=None,
        description="what follows the last shot, before the question, where it differs from "
        "`fewshot_delimiter` (OpenCompass ends its in-context examples with one more separator)",
    )
    solution: str | None = Field(
        default=None,
        description="a Jinja2 expression: the worked solution, for metrics that read the "
        "reference answer out of it (math_verify), when `target` is the short answer",
    )
    turns: list[str] | None = Field(
        default=None,
        min_length=1,
        description="generate and judged modes: the user's follow-up turns (Jinja2 templates), "
        "each sent with the conversation so far, the model's own answers included",
    )


class Generation(_Strict):
    until: list[str] = Field(
        default_factory=list,
        description="stop sequences; one holding `{{ }}` is a Jinja2 template over the row, "
        "for a stop word that depends on it (MGSM's 'Question:' in the row's language)",
    )
    max_tokens: Annotated[int, Field(gt=0)] = 256


class Code(_Strict):
    """How a completion becomes a program: Jinja2 templates over the row, rendered at plan time.

    The program run is `solution_prefix + completion`, then `tests`, then the `call` line."""

    solution_prefix: str = ""
    tests: str
    call: str = ""
    strip_fences: bool = Field(
        default=True, description="take the code out of Markdown fences and chat preambles"
    )
    wall_seconds: Annotated[float, Field(gt=0)] = 10.0
    memory_mb: Annotated[int, Field(gt=0)] = 1024


def _compiles(patterns: list[str]) -> list[str]:
    """Regexes a spec gives are checked when it loads, not when the first answer is scored."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
    return patterns


Regexes = Annotated[list[str], AfterValidator(_compiles)]


class ChoiceMatch(_Strict):
    """How `kind: multi_choice` compares a choice's text with the answer when its letter regex
    finds nothing (lm-evaluation-harness's `multi_choice_regex` options; punctuation here is
    every Unicode punctuation character, as there)."""

    ignore_case: bool = False
    ignore_punctuation: bool = False
    regexes_to_ignore: Regexes = Field(default_factory=list)


class Extractor(_Strict):
    """One step of the answer-extraction pipeline: a regex (lm-evaluation-harness's regex
    filter), or `kind: math`, the final mathematical answer as math-verify reads it (`\\boxed{}`,
    LaTeX, fractions, "the answer is ..."), or `kind: judge`, last: the judge model (--judge)
    asked for the final answer when no step before it found one. `kind: minerva` reads Minerva's
    "Final Answer: The final answer is X. I hope it is correct." line and normalises X as
    Minerva does; `kind: boxed` the last `\\boxed{}` (else the text between the first and last
    `$`, else all of it), as lm-eval's AIME scorer does. `kind: multi_choice` is lm-evaluation-
    harness's `multi_choice_regex`: the regex, else the text of one of the row's choices
    (`prompt.choices`) written in the answer, else a letter after a colon, as "(X)"."""

    name: str
    kind: Literal["regex", "math", "judge", "minerva", "boxed", "multi_choice"] = "regex"
    regex: str | None = None
    group_select: int = 0
    fallback: str = "[invalid]"
    choice_match: ChoiceMatch | None = Field(
        default=None, description="multi_choice: how choice texts are found in the answer"
    )

    @model_validator(mode="after")
    def _regex_given(self) -> Extractor:
        if self.choice_match is not None and self.kind != "multi_choice":
            raise ValueError("`choice_match` is for multi_choice extractors")
        if self.kind in ("regex", "multi_choice"):
            if self.regex is None:
                raise ValueError("a regex extractor needs `regex`")
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"`regex` is not a valid regular expression: {exc}") from None
        elif self.regex is not None:
            raise ValueError(f"a {self.kind} extractor takes no `regex`")
        return self


class Normalize(_Strict):
    ignore_case: bool = False
    ignore_punctuation: bool = False
    regexes_to_ignore: Regexes = Field(default_factory=list)
    math: Literal["minerva", "hendrycks"] | None = Field(
        default=None,
        description="exact_match compares math answers as a published scorer does: `minerva` "
        "(equal, or LaTeX whose difference sympy simplifies to 0), `hendrycks` (equal after "
        "Hendrycks MATH's string normalisation); the other fields then do not apply",
    )


VerdictKind = Literal["rating", "pairwise", "yes_no"]


class JudgeSpec(_Strict):
    """How a judge model is asked about an answer, and how its reply is read.

    `template` (Jinja2) sees the row's fields plus `question` (the rendered prompt), `answer`
    (the model's answer), `reference` (the target), `questions`/`answers` (a conversation's
    turns, one item each) and, for `pairwise`, `answer_a`/`answer_b`.
    Verdicts: `rating` reads `[[N]]` or `Rating: N` on a 1..`scale` scale (MT-Bench single);
    `pairwise` reads `[[A>>B]]` .. `[[B>>A]]` (Arena-Hard) or `[[A]]`/`[[B]]`/`[[C]]` (MT-Bench
    pair, C a tie), asked in both orders against `baseline`; `yes_no` reads the first yes or no.
    """

    template: str
    system: str | None = None
    verdict: VerdictKind = "rating"
    scale: Annotated[int, Field(ge=2, le=100)] = Field(
        default=10, description="rating: the highest score (the lowest is 1)"
    )
    normalize: bool = Field(
        default=False, description="rating: report (N - 1) / (scale - 1), on 0..1, not N"
    )
    baseline: str | None = Field(
        default=None, description="pairwise: a Jinja2 expression giving the baseline's answer"
    )
    max_tokens: Annotated[int, Field(gt=0)] = 1024

    @model_validator(mode="after")
    def _baseline(self) -> JudgeSpec:
        if self.verdict == "pairwise" and not self.baseline:
            raise ValueError("a pairwise judge needs `baseline` (the answer compared against)")
        if self.verdict != "pairwise" and self.baseline is not None:
            raise ValueError("`baseline` is for pairwise verdicts only")
        return self


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
    mode: Literal["choice", "generate", "code", "judged", "target", "rolling"] = Field(
        description="choice: loglikelihood per choice; generate: greedy text, extracted; code: "
        "programs run on tests; judged: a judge model's verdicts; target: the loglikelihood of "
        "the target after the prompt; rolling: the loglikelihood of the whole rendered text"
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
        if self.mode in ("generate", "code", "judged") and self.generation is None:
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
        from gnomon.scoring.metrics import is_known_metric, judge_metrics

        if self.judge is None:
            raise ValueError("judged mode needs a `judge` section (template, verdict)")
        produced = judge_metrics(self.judge.verdict)
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
            shipped = Path(__file__).parent / "fewshot" / self.fewshot.file
            if shipped.is_file():
                fewshot["file_sha256"] = hashlib.sha256(shipped.read_bytes()).hexdigest()
        payload = {
            "prompt": _dump_set(self.prompt, LATER_FIELDS["prompt"]),
            "fewshot": fewshot,
            "process": self.source.process,
            "mode": self.mode,
            "generation": self.generation.model_dump() if self.generation else None,
            "code": self.code.model_dump() if self.code else None,
        }
        if variant:
            payload["variant"] = variant
        for key in ("where", "process_split"):  # only where set: other specs hash as before
            if getattr(self.source, key) is not None:
                payload[key] = getattr(self.source, key)
        blob = text.encode(json.dumps(payload, sort_keys=True, ensure_ascii=False))
        return hashlib.sha256(blob).hexdigest()[:16]


# Fields added after specs were first stored: left at their defaults they stay out of the prompt
# hash, so a spec that does not use them keeps the hash its stored scores carry.
LATER_FIELDS: dict[str, tuple[str, ...]] = {
    "prompt": ("turns", "choices_in", "labels", "solution", "fewshot_end"),
    "fewshot": ("exclude_eval_row", "file"),
}


def _dump_set(model: BaseModel, later: tuple[str, ...]) -> dict[str, object]:
    data = model.model_dump()
    for name in later:
        if getattr(model, name) == type(model).model_fields[name].default:
            data.pop(name)
    return data


def load_spec(path: Path) -> BenchmarkSpec:
    """Load and validate a spec file; any problem becomes one line naming the file and field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start + 1})") from None
    except OSError as exc:
        raise UserError(f"cannot read benchmark file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{path}{where}: not valid YAML") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a benchmark file must be a mapping of fields")
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
