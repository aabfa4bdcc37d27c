"""The parts of a benchmark spec (`spec.py`): where rows come from, how shots are chosen, the
prompt's templates, generation, code, extraction, normalisation and the judge. Each validates
itself; `BenchmarkSpec` checks how they fit together."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from jinja2 import TemplateError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# the exemplars and tables gnomon ships (written by scripts/hub_fewshot.py from reference tasks)
FEWSHOT_DIR = Path(__file__).parent / "fewshot"

SUBSET_SPLIT = "{subset}"  # eval_split when each subset is a split, not a config


class Source(_Strict):
    """Where rows come from: a `datasets` hub id, or local files (`--data` overrides either)."""

    hub: str | None = None
    config: str | None = None
    files: str | None = Field(
        default=None, description="a local folder holding <split>.jsonl, relative to the spec file"
    )
    data_files: str | None = Field(
        default=None,
        description="hub: the file (or glob) of the dataset repository to read, where the "
        "repository holds several tables (Arena-Hard-Auto's questions beside its answers)",
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
    chat: bool = Field(
        default=False,
        description="generate and judged modes: the prompt is the user's turn of a conversation, "
        "sent as chat messages (a served model's chat API, a local model's own chat template), "
        "for benchmarks defined on chat models only (zero-shot reasoning forms)",
    )
    system: str | None = Field(
        default=None,
        description="chat benchmarks: the benchmark's own system message, sent before the "
        "user's turn (LiveCodeBench's), in place of `--system-prompt`",
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
    fences: Literal["first_python", "last"] = Field(
        default="first_python",
        description="which fenced block holds the code: the first Python one (else the text "
        "without a prose preamble), or `last`: the block between the last two lines holding "
        "``` and nothing without two (LiveCodeBench's extraction)",
    )
    completion_as: Literal["code", "text"] = Field(
        default="code",
        description="code: the program is `solution_prefix + completion`; text: the completion "
        "is the string constant COMPLETION, followed by `solution_prefix`, a harness (in the "
        "solution's process, not trusted) that runs it per test, as stdin programs need",
    )


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


class ToolCalling(_Strict):
    """`mode: tool_call`: the model is given the row's functions as OpenAI `tools` and its calls
    are checked as the Berkeley Function Calling Leaderboard checks them. `prompt.solution`
    gives, as JSON text, `functions` (BFCL's function docs), `messages` (the conversation) and,
    for the AST checker, `answers` (BFCL's possible answers)."""

    checker: Literal["ast", "irrelevance", "relevance"] = Field(
        description="ast: the calls against the possible answers; irrelevance: right when no "
        "call is made; relevance: right when at least one is"
    )
    category: str | None = Field(
        default=None,
        description="BFCL's test category (simple_python, multiple, parallel, ...), whose name "
        "picks the AST rule as in BFCL",
    )
    language: Literal["python"] = "python"
    interface: Literal["tools", "prompt"] = Field(
        default="tools",
        description="tools: the functions as OpenAI `tools`, the calls read from the answer's "
        "tool calls (BFCL's function-calling models); prompt: the functions in BFCL's system "
        "prompt, the calls read from the text as Python (BFCL's prompted models)",
    )

    @model_validator(mode="after")
    def _category_for_ast(self) -> ToolCalling:
        if self.checker == "ast" and not self.category:
            raise ValueError("the ast checker needs `category` (BFCL's test category)")
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
PairwiseLabel = Literal["A>>B", "A>B", "A=B", "B>A", "B>>A"]


class JudgeSpec(_Strict):
    """How a judge model is asked about an answer, and how its reply is read.

    `template` (Jinja2) sees the row's fields plus `question` (the rendered prompt), `answer`
    (the model's answer), `reference` (the target), `questions`/`answers` (a conversation's
    turns, one item each), with `per_turn` also `turn` (the turn judged, 1-based; the lists
    then stop at it) and, for `pairwise`, `answer_a`/`answer_b`.
    Verdicts: `rating` reads `[[N]]` or `Rating: N` on a 1..`scale` scale (MT-Bench single);
    `pairwise` reads `[[A>>B]]` .. `[[B>>A]]` (Arena-Hard) or `[[A]]`/`[[B]]`/`[[C]]` (MT-Bench
    pair, C a tie), asked in both orders against `baseline`, or, with `labels`, a reply that is
    exactly one of the given tokens (AlpacaEval's `m` / `M`); `yes_no` reads the first yes or no.
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
    labels: dict[str, PairwiseLabel] | None = Field(
        default=None,
        description="pairwise: replies read as verdicts, reply text (stripped) -> `A>>B`..`B>>A`, "
        "for judges asked to answer with a bare identifier (AlpacaEval: `m` first, `M` second)",
    )
    max_tokens: Annotated[int, Field(gt=0)] = 1024
    per_turn: bool = Field(
        default=False,
        description="a conversation (`prompt.turns`): ask the judge once per turn, the templates "
        "seeing `turn` (1-based) and `questions`/`answers` up to that turn (MT-Bench judges "
        "turn 1 alone, then turn 2 with the whole exchange); metrics per turn `<metric>_turnN`",
    )
    turn_template: str | None = Field(
        default=None, description="per_turn: the template for turns after the first"
    )
    turn_system: str | None = Field(
        default=None, description="per_turn: the system message for turns after the first"
    )
    samples: Annotated[int, Field(ge=1, le=100)] = Field(
        default=1,
        description="rating: judge each answer this many times, sampling at `temperature`; "
        "`rating` is their mean and `rating_spread` their standard deviation",
    )
    temperature: Annotated[float, Field(ge=0, le=2)] | None = Field(
        default=None, description="the judge's temperature (default 0, or 0.7 when samples > 1)"
    )
    rating_read: Literal["last", "fastchat"] = Field(
        default="last",
        description="rating: which rating of the reply counts: the last `[[N]]` (else "
        "`Rating: N`), or `fastchat`: the first `[[N]]`, else the first `[N]`, as FastChat's "
        "llm_judge reads MT-Bench replies",
    )

    @model_validator(mode="after")
    def _baseline(self) -> JudgeSpec:
        if self.labels is not None and (self.verdict != "pairwise" or not self.labels):
            raise ValueError("`labels` maps replies to pairwise verdicts: at least one, pairwise")
        if self.verdict == "pairwise" and not self.baseline:
            raise ValueError("a pairwise judge needs `baseline` (the answer compared against)")
        if self.verdict != "pairwise" and self.baseline is not None:
            raise ValueError("`baseline` is for pairwise verdicts only")
        if not self.per_turn and (self.turn_template is not None or self.turn_system is not None):
            raise ValueError("`turn_template` and `turn_system` need `per_turn: true`")
        if self.rating_read != "last" and self.verdict != "rating":
            raise ValueError("`rating_read` is for rating judges")
        if self.samples > 1 and self.verdict != "rating":
            raise ValueError(
                "`samples` > 1 is for rating judges (a pairwise judge's reliability is its "
                "position consistency)"
            )
        return self

    @property
    def judge_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return SAMPLED_JUDGE_TEMPERATURE if self.samples > 1 else 0.0

    def hashed(self) -> dict:
        """The fields that decide a score, new ones only where set: a spec written before they
        existed keeps its scorer hash."""
        later = {"labels", "per_turn", "turn_template", "turn_system", "samples", "temperature"}
        later |= {"rating_read"}
        defaults = {name: JudgeSpec.model_fields[name].default for name in later}
        unset = {name for name in later if getattr(self, name) == defaults[name]}
        return self.model_dump(exclude=unset)


SAMPLED_JUDGE_TEMPERATURE = 0.7  # a judge asked several times samples, or it repeats itself
