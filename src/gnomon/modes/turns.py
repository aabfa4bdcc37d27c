"""Conversations (`prompt.turns`): each turn is asked with the model's own earlier answers.

Turn k cannot be asked before turn k-1 is answered, so a conversation is a multi-stage sample
(one request per stage): the runner stores each turn's answer as it comes, and a resumed run
rebuilds the next turn from the stored answers and sends only what is missing. The requests are
conversations (`messages`), so a served model needs its chat API and a local model its chat
template.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gnomon.engines.base import GenerateRequest, GenerateResult, Message
from gnomon.hub.spec import BenchmarkSpec, Generation
from gnomon.modes.base import Mode
from gnomon.prompts import Sample
from gnomon.requests import Answer, Request


def questions(sample: Sample) -> list[str]:
    """The user's turns: the rendered prompt, then each follow-up."""
    return [sample.context, *sample.turns]


def turn_request(
    sample: Sample, generation: Generation, answers: Sequence[Answer]
) -> list[Request]:
    """The next turn: the conversation so far, the model's answers as its assistant turns, then
    the next user turn; [] once every turn is answered."""
    users = questions(sample)
    asked = len(answers)
    if asked >= len(users):
        return []
    messages = [Message("system", sample.system)] if sample.system else []
    for user, answer in zip(users, answers, strict=False):
        assert isinstance(answer, GenerateResult)  # every turn is a generation
        messages += [Message("user", user), Message("assistant", answer.text)]
    messages.append(Message("user", users[asked]))
    flat = "\n\n".join(m.content for m in messages)  # for engines that read plain text
    g = generation
    until = stops(sample, g)
    return [GenerateRequest(flat, until, g.max_tokens, messages=tuple(messages))]


def stops(sample: Sample, generation: Generation) -> tuple[str, ...]:
    """The sample's own stop sequences where the spec's depend on the row, else the spec's."""
    return sample.until if sample.until is not None else tuple(generation.until)


class GeneratingMode(Mode):
    """The requests of a mode that answers by generation (free text, judged): greedy decoding
    of the prompt, or, when the spec has `prompt.turns`, one turn per stage."""

    verb = "generate"

    def __init__(self, spec: BenchmarkSpec) -> None:
        super().__init__(spec)
        assert spec.generation is not None  # guaranteed by spec validation
        self.generation = spec.generation
        self.multi_stage = spec.prompt.turns is not None  # a later turn quotes earlier answers

    def requests(self, sample: Sample) -> list[Request]:
        g = self.generation
        if self.spec.prompt.chat:  # one user turn, sent as a conversation
            return turn_request(sample, g, [])
        return [GenerateRequest(sample.context, stops(sample, g), g.max_tokens)]

    def stage_requests(self, sample: Sample, answers: list[Answer]) -> list[Request]:
        if not self.multi_stage:
            return super().stage_requests(sample, answers)
        return turn_request(sample, self.generation, answers)

    def settings(self) -> dict[str, Any]:
        return {"greedy": True, **self.generation.model_dump()}
