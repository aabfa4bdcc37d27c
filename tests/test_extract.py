"""Answer extraction and scoring: gsm8k's filters and exact match as lm-evaluation-harness defines
them, and the choice mode's acc / acc_norm."""

from __future__ import annotations

import re

import pytest

from gnomon.engines.base import GenerateResult, ScoreResult
from gnomon.extract import RegexExtractor, exact_match, normalize
from gnomon.hub import resolve
from gnomon.hub.spec import Extractor, Normalize
from gnomon.modes import mode_for
from gnomon.prompts import Sample

STRICT = r"#### (\-?[0-9\.\,]+)"
FLEXIBLE = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"
IGNORE = [",", "\\$", "(?s).*#### ", "\\.$"]
REFERENCE = "She has 3+4=<<3+4=7>>7 apples.\nThen 1,200 more.\n#### 1234"

OUTPUTS = [
    "",
    "I do not know.",
    "#### 1234",
    "#### 1,234",
    "The answer is 1,234.\n#### 1,234.",
    "#### -5",
    "Total: $5.",
    "She pays $1,234.00 in total.",
    "First 12, then 13.\n#### 13\nQuestion: #### 14",
    "#### 3 and later #### 4",
    "####12",
    "#### ",
    "Hmm... the answer is 4",
    "the answer is 4...",
    "It is 7",
    "It is -7 degrees",
    "Numbers: 1, 2, 3",
    "So 1,234 apples",
    "$$",
    "-.5 and .,",
    "#### 1234\n\n",
    "12 apples and 3",
]


def harness_regex(pattern: str, group_select: int, text: str) -> str:
    """lm-evaluation-harness's RegexFilter, written out."""
    found = re.compile(pattern).findall(text)
    if not found:
        return "[invalid]"
    match = found[group_select]
    if isinstance(match, tuple):
        nonempty = [m for m in match if m]
        match = nonempty[0] if nonempty else "[invalid]"
    return match.strip()


def harness_exact_match(prediction: str, reference: str) -> float:
    """lm-evaluation-harness's exact_match with gsm8k's options, written out."""
    for pattern in IGNORE:
        prediction = re.sub(pattern, "", prediction)
        reference = re.sub(pattern, "", reference)
    return float(prediction.lower() == reference.lower())


@pytest.fixture(scope="module")
def extractors() -> dict[str, RegexExtractor]:
    spec = resolve("gsm8k")
    return {e.name: RegexExtractor(e) for e in spec.extract}


def test_gsm8k_spec_uses_the_harness_filters() -> None:
    spec = resolve("gsm8k")
    assert [(e.name, e.regex, e.group_select, e.fallback) for e in spec.extract] == [
        ("strict", STRICT, 0, "[invalid]"),
        ("flexible", FLEXIBLE, -1, "[invalid]"),
    ]
    assert spec.normalize == Normalize(ignore_case=True, regexes_to_ignore=IGNORE)


@pytest.mark.parametrize("output", OUTPUTS)
def test_extraction_equals_the_harness(extractors: dict[str, RegexExtractor], output: str) -> None:
    assert extractors["strict"](output) == harness_regex(STRICT, 0, output)
    assert extractors["flexible"](output) == harness_regex(FLEXIBLE, -1, output)


@pytest.mark.parametrize("output", OUTPUTS)
def test_extraction_equals_lm_eval_itself(
    extractors: dict[str, RegexExtractor], output: str
) -> None:
    extraction = pytest.importorskip("lm_eval.filters.extraction")
    strict = extraction.RegexFilter(regex_pattern=STRICT, group_select=0)
    flexible = extraction.RegexFilter(regex_pattern=FLEXIBLE, group_select=-1)
    assert [extractors["strict"](output)] == strict.apply([[output]], [{}])[0]
    assert [extractors["flexible"](output)] == flexible.apply([[output]], [{}])[0]


@pytest.mark.parametrize(
    ("output", "strict", "flexible"),
    [
        ("#### 1,234", "1,234", "1,234"),
        ("First 12, then 13.\n#### 13\nQuestion: #### 14", "13", "14"),
        ("#### 3 and later #### 4", "3", "4"),
        ("Total: $5.", "[invalid]", "$5."),
        ("It is 7", "[invalid]", "7"),
        ("It is -7 degrees", "[invalid]", "-7"),
        ("12 apples and 3", "[invalid]", "3"),
        ("####12", "[invalid]", "12"),
        ("I do not know.", "[invalid]", "[invalid]"),
        ("", "[invalid]", "[invalid]"),
    ],
)
def test_extraction_literal(
    extractors: dict[str, RegexExtractor], output: str, strict: str, flexible: str
) -> None:
    assert extractors["strict"](output) == strict
    assert extractors["flexible"](output) == flexible


def test_group_select_out_of_range_falls_back() -> None:
    extractor = RegexExtractor(Extractor(name="x", regex=r"\d", group_select=3, fallback="none"))
    assert extractor("1 2") == "none"
    assert extractor("1 2 3 4") == "4"


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("reference", [REFERENCE, "#### 5", "#### 13", "#### -7", "#### 12"])
def test_exact_match_equals_the_harness(
    extractors: dict[str, RegexExtractor], output: str, reference: str
) -> None:
    rules = resolve("gsm8k").normalize
    for extractor in extractors.values():
        prediction = extractor(output)
        assert exact_match(prediction, reference, rules) == harness_exact_match(
            prediction, reference
        )


def test_exact_match_equals_lm_eval_itself() -> None:
    metrics = pytest.importorskip("lm_eval.api.metrics")
    rules = resolve("gsm8k").normalize
    for output in OUTPUTS:
        for reference in (REFERENCE, "#### 5", "#### 13"):
            want = metrics.exact_match_hf_evaluate(
                predictions=[output],
                references=[reference],
                regexes_to_ignore=IGNORE,
                ignore_case=True,
                ignore_punctuation=False,
            )["exact_match"]
            assert exact_match(output, reference, rules) == float(want)


@pytest.mark.parametrize(
    ("prediction", "reference", "match"),
    [
        ("1,234", REFERENCE, 1.0),
        ("1234", REFERENCE, 1.0),
        ("$1,234.", REFERENCE, 1.0),
        ("1235", REFERENCE, 0.0),
        ("$5.", "#### 5", 1.0),
        ("5.0", "#### 5", 0.0),
        ("12", "#### 13", 0.0),
        ("-7", "#### -7", 1.0),
        ("[invalid]", "#### 5", 0.0),
        ("ABC", "#### abc", 1.0),  # ignore_case
    ],
)
def test_exact_match_literal(prediction: str, reference: str, match: float) -> None:
    assert exact_match(prediction, reference, resolve("gsm8k").normalize) == match


def test_normalize_options() -> None:
    assert normalize("A.b, C!", Normalize(ignore_punctuation=True)) == "Ab C"
    assert normalize("A.b, C!", Normalize(ignore_case=True)) == "a.b, c!"
    assert normalize("x 1,000.", Normalize(regexes_to_ignore=[",", r"\.$"])) == "x 1000"


def test_generate_mode_scores_both_filters() -> None:
    spec = resolve("gsm8k")
    mode = mode_for(spec)
    sample = Sample("gsm8k", "0", 0, "Question: q\nAnswer:", (), "...\n#### 1,234", None, "m:1")
    assert mode.metric_names() == ["exact_match", "exact_match_flexible"]
    result = mode.result(sample, [GenerateResult("It costs $1,234.", truncated=True)])
    assert result["metrics"] == {"exact_match": 0.0, "exact_match_flexible": 1.0}
    assert result["extracted"] == {"strict": "[invalid]", "flexible": "$1,234."}
    assert result["prediction"] == "[invalid]" and result["correct"] is False
    assert result["truncated"] is True
    result = mode.result(sample, [GenerateResult("So 1234.\n#### 1234\n\nQuestion")])
    assert result["metrics"] == {"exact_match": 1.0, "exact_match_flexible": 1.0}
    assert result["correct"] is True


# ----------------------------------------------------------------- choice mode


def choice_sample(choices: tuple[str, ...], target: int) -> Sample:
    return Sample("arc_easy", "s", 0, "Question: q\nAnswer:", choices, target, None, "m:1")


def score(mode, sample: Sample, logprobs: list[float]) -> dict:
    return mode.result(sample, [ScoreResult(lp, False) for lp in logprobs])


def test_choice_requests_use_the_target_delimiter() -> None:
    mode = mode_for(resolve("arc_easy"))
    requests = mode.requests(choice_sample(("red", "blue"), 0))
    assert [(r.context, r.continuation) for r in requests] == [
        ("Question: q\nAnswer:", " red"),
        ("Question: q\nAnswer:", " blue"),
    ]


def test_acc_norm_divides_by_the_choice_length_without_the_delimiter() -> None:
    mode = mode_for(resolve("arc_easy"))
    sample = choice_sample(("a", "bbb"), 1)
    # per character: -2/1 = -2 < -5/3; counting the leading space it would be -1 > -1.25
    result = score(mode, sample, [-2.0, -5.0])
    assert result["prediction"] == 0
    assert result["metrics"] == {"acc": 0.0, "acc_norm": 1.0}
    assert result["correct"] is False
    assert result["target_text"] == "bbb" and result["prediction_text"] == "a"


def test_ties_go_to_the_first_index() -> None:
    mode = mode_for(resolve("arc_easy"))
    sample = choice_sample(("ab", "cd", "abcd"), 1)
    result = score(mode, sample, [-4.0, -4.0, -8.0])  # acc: 0 and 1 tie; acc_norm: all -2
    assert result["prediction"] == 0
    assert result["metrics"] == {"acc": 0.0, "acc_norm": 0.0}
    result = score(mode, choice_sample(("ab", "cd", "abcd"), 0), [-4.0, -4.0, -8.0])
    assert result["metrics"] == {"acc": 1.0, "acc_norm": 1.0}


def test_acc_norm_matches_the_harness_formula() -> None:
    np = pytest.importorskip("numpy")
    mode = mode_for(resolve("hellaswag"))
    choices = ("a short one.", "a much longer ending than the others.", "mid length.", "x")
    for logprobs in ([-10.0, -20.0, -12.0, -3.0], [-30.0, -31.0, -29.5, -20.0]):
        for target in range(4):
            result = score(mode, choice_sample(choices, target), logprobs)
            lengths = np.array([float(len(c)) for c in choices])
            want_norm = int(np.argmax(np.array(logprobs) / lengths))
            assert result["metrics"]["acc"] == float(int(np.argmax(logprobs)) == target)
            assert result["metrics"]["acc_norm"] == float(want_norm == target)
            assert result["choice_logprobs"] == logprobs


def test_mmlu_reports_acc_only() -> None:
    mode = mode_for(resolve("mmlu"))
    sample = Sample("mmlu", "0", 0, "Q\nAnswer:", ("A", "B", "C", "D"), 2, "x", "m:1")
    answers = [ScoreResult(lp, i == 2, i == 3) for i, lp in enumerate([-3.0, -2.0, -1.0, -4.0])]
    result = mode.result(sample, answers)
    assert result["metrics"] == {"acc": 1.0}
    assert result["choice_greedy"] == [False, False, True, False]
    assert result["truncated"] is True and result["correct"] is True
    assert [r.continuation for r in mode.requests(sample)] == [" A", " B", " C", " D"]
