"""Generation with a judge model as the last-resort extractor.

The spec's other extractors (regex, math) are tried in order; only when none of them finds an
answer is the judge asked for the answer the response gives, so a run pays for the judge on the
few odd answers and nowhere else. The spec's first text metric (e.g. `exact_match`) scores the
first answer found along that chain (each extractor in order, then the judge), compared as the
first extractor's value would be; the `<metric>_<name>` metrics of later extractors still score
each on its own, as without a judge. `extractor` in the result says what produced the scored
answer: `regex:<name>` (or `math:<name>`), `judge` or `none`.
"""

from __future__ import annotations

from typing import Any

from gnomon.engines.base import GenerateRequest, GenerateResult, Message
from gnomon.hub.spec import BenchmarkSpec
from gnomon.modes.generate import GenerateMode, references_of
from gnomon.prompts import Sample
from gnomon.scoring.extractors import run_pipeline
from gnomon.scoring.metrics import text_fn

EXTRACT_VERSION = 1  # bump when the prompt or the reading of the reply below changes
NONE_REPLY = "NONE"
INSTRUCTION = (
    "Below are a question and a response to it. What final answer does the response give?\n"
    "Reply with only the final answer, exactly as the response states it, and nothing else. "
    f"If the response gives no final answer, reply {NONE_REPLY}."
)
MAX_TOKENS = 64


def extraction_request(question: str, response: str) -> GenerateRequest:
    user = f"{INSTRUCTION}\n\n### Question\n{question}\n\n### Response\n{response}"
    return GenerateRequest(user, (), MAX_TOKENS, 0.0, messages=(Message("user", user),))


def read_reply(reply: str) -> str | None:
    """The answer in the judge's reply: its last non-empty line, without a closing full stop;
    None when it says there is none."""
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    if not lines:
        return None
    answer = lines[-1].strip().strip("`*").strip()
    if answer.endswith(".") and not answer.endswith(".."):
        answer = answer[:-1].rstrip()
    if not answer or answer.upper().strip(".") == NONE_REPLY:
        return None
    return answer


class JudgeExtractMode(GenerateMode):
    judged = True

    def __init__(self, spec: BenchmarkSpec) -> None:
        super().__init__(spec)
        self.chain = [extractor for _, extractor in self.extractors]
        self.kinds = {e.name: e.kind for e, _ in self.extractors}
        self.judge_name = next(e.name for e in spec.extract if e.kind == "judge")

    def scorer_config(self) -> dict[str, Any]:
        return {
            **super().scorer_config(),
            "judge_extract": {"prompt": INSTRUCTION, "max_tokens": MAX_TOKENS},
            "judge_extract_version": EXTRACT_VERSION,
        }

    def judge_requests(self, sample: Sample, answers: list[Any]) -> list[GenerateRequest]:
        output = answers[-1].text  # a conversation's last turn is the one scored
        _, found_by = run_pipeline(self.chain, output, choices=sample.choices)
        if found_by != "none":
            return []  # a regex read it: the judge is not asked
        question = sample.judge["question"] if sample.judge else sample.context
        if sample.turns:  # the question the scored answer answers
            question = sample.turns[-1]
        return [extraction_request(question, output)]

    def judged_result(
        self, sample: Sample, answers: list[Any], verdicts: list[GenerateResult]
    ) -> dict[str, Any]:
        result = self.result(sample, answers)
        output = answers[-1].text
        fallback = self.spec.extract[0].fallback
        value, found_by = run_pipeline(self.chain, output, fallback, sample.choices)
        source = f"{self.kinds[found_by]}:{found_by}" if found_by != "none" else "none"
        if verdicts:
            judged = read_reply(verdicts[0].text)
            result["judge_replies"] = [verdicts[0].text]
            result["extracted"][self.judge_name] = judged
            if judged is not None:
                value, source = judged, "judge"
        references = references_of(sample)
        for metric in self.text_metrics:  # as the first extractor's answer is scored
            fn = text_fn(metric)
            result["metrics"][metric] = fn(value, references, self.spec.normalize)
        if self.text_metrics:
            result["correct"] = bool(result["metrics"][self.text_metrics[0]])
        result["prediction"] = value
        result["extractor"] = source
        return result
