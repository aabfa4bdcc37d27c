"""Per-sample metrics and the extraction pipeline (gnomon.scoring): token F1 by hand-worked
cases, exact match and regex extraction identical to gnomon.extract (lm-evaluation-harness's
reading), and math equivalence on MATH / GSM8K-style answers through math-verify."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from gnomon import extract
from gnomon.hub import all_specs
from gnomon.hub.spec import Extractor as ExtractorSpec
from gnomon.hub.spec import Normalize
from gnomon.scoring import metrics
from gnomon.scoring.aggregate import AGGREGATIONS
from gnomon.scoring.extractors import (
    Extractor,
    MathExtractor,
    RegexExtractor,
    math_equal,
    run_pipeline,
)
from gnomon.scoring.metrics import (
    SAMPLE_METRICS,
    is_known_metric,
    lookup,
    metrics_for_mode,
    text_metric,
)

PLAIN = Normalize()
GSM8K = Normalize(
    ignore_case=True,
    ignore_punctuation=False,
    regexes_to_ignore=[",", "\\$", "(?s).*#### ", "\\.$"],
)
LOOSE = Normalize(ignore_case=True, ignore_punctuation=True)

OUTPUTS = [
    "",
    " ",
    "I do not know.",
    "#### 1234",
    "#### 1,234",
    "The answer is 1,234.\n#### 1,234.",
    "#### -5",
    "Total: $5.",
    "She pays $1,234.00 in total.",
    "First 12, then 13.\n#### 13\nQuestion: #### 14",
    "####12",
    "#### ",
    "Hmm... the answer is 4",
    "It is -7 degrees",
    "Numbers: 1, 2, 3",
    "$$",
    "-.5 and .,",
    "PARIS!",
    "paris",
    "Paris, France",
]


# --- token F1 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prediction", "references", "expected"),
    [
        ("The cat sat", ["a cat sat down"], 0.8),  # P = 2/2, R = 2/3
        ("x x y", ["x y y"], 2 / 3),  # bags: one x and one y in common of three each
        ("Paris!", ["paris"], 1.0),  # case and punctuation do not count
        ("the", [""], 1.0),  # both empty once articles go: they agree
        ("", ["an"], 1.0),
        ("hello", [""], 0.0),  # one empty: nothing in common
        ("", ["world"], 0.0),
        ("red", ["blue"], 0.0),
        ("blue", ["red", "blue sky"], 2 / 3),  # best reference: P = 1, R = 1/2
        ("blue sky", ["red", "the blue sky", "sky"], 1.0),
        ("new  york\tcity", ["New York"], 0.8),  # P = 2/3, R = 1
        ("theatre an anthem", ["theatre anthem"], 1.0),  # articles only as whole words
    ],
)
def test_token_f1_hand_worked(prediction: str, references: list[str], expected: float) -> None:
    assert metrics.token_f1(prediction, references, PLAIN) == pytest.approx(expected, abs=1e-12)


def test_token_f1_applies_the_specs_normalisation_first() -> None:
    rules = Normalize(regexes_to_ignore=["(?s).*ANSWER: "])
    assert metrics.token_f1("I think ANSWER: blue", ["blue"], rules) == 1.0
    assert metrics.token_f1("I think ANSWER: blue", ["blue"], PLAIN) == pytest.approx(0.4)  # 1/4, 1


# --- exact match and regex extraction: as gnomon.extract --------------------------------------


@pytest.mark.parametrize("rules", [PLAIN, GSM8K, LOOSE])
@pytest.mark.parametrize("reference", ["1234", "-5", "Paris", "paris.", "", "13"])
def test_exact_match_identical_to_extract(rules: Normalize, reference: str) -> None:
    for prediction in OUTPUTS:
        expected = extract.exact_match(prediction, reference, rules)
        assert metrics.exact_match(prediction, [reference], rules) == expected, prediction


def test_exact_match_takes_the_best_reference() -> None:
    assert metrics.exact_match("Paris", ["London", "paris"], LOOSE) == 1.0
    assert metrics.exact_match("Paris", ["London", "Rome"], LOOSE) == 0.0
    assert metrics.exact_match("Paris", "paris", LOOSE) == 1.0  # one reference as a string
    with pytest.raises(ValueError, match="at least one reference"):
        metrics.exact_match("Paris", [], LOOSE)


def test_contains() -> None:
    assert metrics.contains("It is Paris, France.", ["paris"], LOOSE) == 1.0
    assert metrics.contains("It is Lyon.", ["paris"], LOOSE) == 0.0


EXTRACTOR_SPECS = [
    ExtractorSpec(name="strict", regex=r"#### (\-?[0-9\.\,]+)"),
    ExtractorSpec(name="flexible", regex=r"(-?[$0-9.,]{2,})|(-?[0-9]+)", group_select=-1),
    ExtractorSpec(name="second", regex=r"(\d+)", group_select=1),
    ExtractorSpec(name="far", regex=r"(\d+)", group_select=5),
    ExtractorSpec(name="empty_groups", regex=r"(x?)(y?)!"),
    ExtractorSpec(name="no_groups", regex=r"[A-Z][a-z]*", fallback="NONE"),
    ExtractorSpec(name="maybe_empty", regex=r"\d*"),
]


@pytest.mark.parametrize("spec", EXTRACTOR_SPECS, ids=lambda s: s.name)
def test_regex_extractor_with_its_fallback_is_extract_regex(spec: ExtractorSpec) -> None:
    ours, theirs = RegexExtractor(spec), extract.RegexExtractor(spec)
    for text in [*OUTPUTS, "!", "x!", "y!", "xy! and !", "1 2 3 4 5 6"]:
        value, name = run_pipeline([ours], text, ours.fallback)
        assert value == theirs(text), text
        found = ours(text)
        assert (found is None) == (name == "none")
        assert found is None or found == value


def test_pipeline_takes_the_first_extractor_that_finds_an_answer() -> None:
    strict, flexible = (RegexExtractor(s) for s in EXTRACTOR_SPECS[:2])
    pipeline = [strict, flexible]
    assert run_pipeline(pipeline, "12 apples\n#### 13") == ("13", "strict")
    assert run_pipeline(pipeline, "12 apples, then 14") == ("14", "flexible")
    assert run_pipeline(pipeline, "no numbers") == ("[invalid]", "none")
    assert run_pipeline(pipeline, "no numbers", fallback="?") == ("?", "none")
    assert run_pipeline([], "#### 13") == ("[invalid]", "none")
    assert all(isinstance(e, Extractor) for e in [strict, MathExtractor()])


# --- math equivalence -------------------------------------------------------------------------

EQUAL = [
    ("\\frac{1}{2}", "0.5"),
    ("0.5", "\\frac{1}{2}"),
    ("1/2", "\\frac{1}{2}"),
    ("\\dfrac{1}{2}", "1/2"),
    ("$\\boxed{\\dfrac{3}{4}}$", "\\frac{3}{4}"),
    ("So the answer is $\\boxed{\\dfrac{3}{4}}$.", "0.75"),
    ("The answer is 3/4", "\\frac34"),
    ("$18", "18"),
    ("18.00", "18"),
    ("\\$18.00", "18"),
    ("The cost is \\$18.00.", "18"),
    ("She pays $18.", "\\$18"),
    ("I think 1,000 apples", "1000"),
    ("x=5", "5"),
    ("So x = 5.", "5"),
    ("5", "x=5"),
    ("$[1, 3)$", "[1,3)"),
    ("[1, 3)", "[1,3)"),
    ("The interval is $(-\\infty, 2]$.", "(-\\infty,2]"),
    ("The final answer is $\\boxed{2\\sqrt{3}}$.", "\\sqrt{12}"),
    ("$10\\text{ cm}$", "10"),
    ("10 cm", "10"),
    ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72"),
]
NOT_EQUAL = [
    ("\\frac{1}{3}", "0.5"),
    ("Final answer: 0.6", "\\frac{1}{2}"),
    ("$17", "18"),
    ("18.01", "18"),
    ("(1,3)", "[1,3)"),
    ("[1,3]", "[1,3)"),
    ("x=6", "5"),
    ("\\boxed{2\\sqrt{2}}", "2\\sqrt{3}"),
    ("I do not know", "5"),
    ("", "5"),
]


@pytest.mark.parametrize(("prediction", "reference"), EQUAL)
def test_math_equal(prediction: str, reference: str) -> None:
    assert math_equal(prediction, reference)
    assert metrics.math_equiv(prediction, ["7", reference], PLAIN) == 1.0


@pytest.mark.parametrize(("prediction", "reference"), NOT_EQUAL)
def test_math_not_equal(prediction: str, reference: str) -> None:
    assert not math_equal(prediction, reference)
    assert metrics.math_equiv(prediction, [reference], PLAIN) == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("So the answer is $\\boxed{\\dfrac{3}{4}}$.", "\\frac{3}{4}"),
        ("The answer is 3/4", "3/4"),
        ("She pays \\$18.00 in total.", "18.00"),
        ("The interval is $[1, 3)$.", "[1, 3)"),
        ("I do not know", None),
        ("", None),
    ],
)
def test_math_extractor(text: str, expected: str | None) -> None:
    extractor = MathExtractor()
    assert extractor(text) == expected
    if expected is not None:  # what it extracts reads back as the same answer
        assert math_equal(expected, text)
    assert run_pipeline([extractor], text)[1] == ("none" if expected is None else "math")


def test_math_works_in_worker_threads() -> None:
    """math-verify's own timeouts use SIGALRM, which only the main thread may set: a scorer in a
    background thread must still get answers, not an exception."""
    assert threading.current_thread() is threading.main_thread()
    cases = [(p, r, True) for p, r in EQUAL[:8]] + [(p, r, False) for p, r in NOT_EQUAL[:6]]
    with ThreadPoolExecutor(max_workers=3) as pool:
        got = list(pool.map(lambda c: math_equal(c[0], c[1]), cases))
        extracted = pool.submit(MathExtractor(), "The answer is $\\boxed{7}$.").result()
    assert got == [want for _, _, want in cases]
    assert extracted == "7"


# --- the registry -----------------------------------------------------------------------------


def test_known_metrics_by_mode() -> None:
    assert is_known_metric("exact_match", "generate")
    assert is_known_metric("token_f1", "generate")
    assert is_known_metric("math_equiv", "generate")
    assert is_known_metric("bleu", "generate") and is_known_metric("chrf", "generate")
    assert is_known_metric("acc", "choice") and is_known_metric("acc_norm", "choice")
    assert is_known_metric("pass@1", "code") and is_known_metric("pass@100", "code")
    assert not is_known_metric("pass@0", "code")
    assert not is_known_metric("pass@01", "code")
    assert not is_known_metric("pass@1", "generate")
    assert not is_known_metric("exact_match", "choice")
    assert not is_known_metric("acc", "generate")
    assert not is_known_metric("bleu_score", "generate")
    assert metrics_for_mode("code") == ["pass@k"]
    assert {"acc", "acc_norm"} <= set(metrics_for_mode("choice"))
    assert lookup("pass@10") is lookup("pass@1")


def test_builtin_benchmarks_use_known_metrics() -> None:
    for spec in all_specs():
        for name in spec.metrics:
            assert is_known_metric(name, spec.mode), (spec.id, name)


def test_every_metric_names_an_aggregation() -> None:
    for metric in SAMPLE_METRICS.values():
        assert metric.aggregation in AGGREGATIONS, metric.name
        assert (metric.fn is not None) == (metric.kind in ("text", "output")), metric.name


def test_a_metric_is_one_decorated_function() -> None:
    try:

        @text_metric("test_length_ratio", description="shorter of the two over the longer")
        def ratio(prediction: str, reference: str, normalize: Normalize) -> float:
            lengths = sorted([len(prediction), len(reference)])
            return lengths[0] / lengths[1] if lengths[1] else 1.0

        assert is_known_metric("test_length_ratio", "generate")
        entry = SAMPLE_METRICS["test_length_ratio"]
        assert entry.fn is ratio
        assert ratio("ab", ["abcd", "abc"], PLAIN) == pytest.approx(2 / 3)
        with pytest.raises(ValueError, match="registered twice"):
            text_metric("test_length_ratio")(lambda p, r, n: 0.0)
    finally:
        SAMPLE_METRICS.pop("test_length_ratio", None)
