"""Reading a judge's reply: a rating, a pairwise preference, or a yes/no.

Judges are asked to end with a bracketed verdict, but they explain first and sometimes quote
the format while doing so; a reply is read by its last rating, and a pairwise reply whose
bracketed verdicts disagree is refused rather than guessed. A reply that holds no verdict
raises `VerdictError`, which fails that sample with the reason (its answers stay stored).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PARSER_VERSION = 1  # bump when a reply is read differently: every judged sample is re-scored


class VerdictError(ValueError):
    pass


def _quote(reply: str) -> str:
    flat = " ".join(reply.split())
    return repr(flat if len(flat) <= 120 else flat[:117] + "...")


_NUMBER = r"(\d+(?:\.\d+)?)"
_BRACKETED = re.compile(r"\[\[\s*" + _NUMBER + r"\s*\]\]")
_LABELLED = re.compile(r"\brating\s*[:=]\s*\[*\s*" + _NUMBER, re.IGNORECASE)


def parse_rating(reply: str, scale: int = 10) -> float:
    """`[[7]]` (MT-Bench) or `Rating: 7`; the last one given, on 1..scale."""
    found = _BRACKETED.findall(reply) or _LABELLED.findall(reply)
    if not found:
        raise VerdictError(
            f"no rating in the judge's reply (expected [[N]] or 'Rating: N', N in 1-{scale}): "
            + _quote(reply)
        )
    value = float(found[-1])
    if not 1 <= value <= scale:
        raise VerdictError(f"the judge's rating {found[-1]} is outside 1-{scale}: {_quote(reply)}")
    return value


_FASTCHAT = (re.compile(r"\[\[(\d+\.?\d*)\]\]"), re.compile(r"\[(\d+\.?\d*)\]"))


def parse_rating_fastchat(reply: str, scale: int = 10) -> float:
    """FastChat's llm_judge reading of an MT-Bench reply: the first `[[N]]`, else the first
    `[N]`. FastChat keeps any number it finds; here one outside 1..scale is refused, as
    `parse_rating` refuses it, since a rating off the scale would move the mean."""
    match = _FASTCHAT[0].search(reply) or _FASTCHAT[1].search(reply)
    if match is None:
        raise VerdictError(
            f"no rating in the judge's reply (expected [[N]] or [N], N in 1-{scale}): "
            + _quote(reply)
        )
    value = float(match.group(1))
    if not 1 <= value <= scale:
        raise VerdictError(
            f"the judge's rating {match.group(1)} is outside 1-{scale}: {_quote(reply)}"
        )
    return value


# A pairwise label, read as the first answer's (A's) result: 1 win, 0.5 tie, 0 loss.
PAIRWISE = {
    "A>>B": 1.0, "A>B": 1.0, "A=B": 0.5, "B>A": 0.0, "B>>A": 0.0,
    "A": 1.0, "B": 0.0, "C": 0.5,  # MT-Bench pair: C is a tie
}  # fmt: skip
_SAME = {
    "B<<A": "A>>B", "B<A": "A>B", "B=A": "A=B", "A<B": "B>A", "A<<B": "B>>A",
    "TIE": "A=B", "A=B=C": "A=B",
}  # fmt: skip
_PAIR = re.compile(r"\[\[\s*([AB]\s*(?:>>|<<|>|<|=)\s*[AB]|[ABC]|tie)\s*\]\]", re.IGNORECASE)


def parse_pairwise(reply: str) -> str:
    """The label of `[[A>>B]]`..`[[B>>A]]` (Arena-Hard) or `[[A]]`/`[[B]]`/`[[C]]` (MT-Bench
    pair). Several different labels in one reply are refused."""
    labels = []
    for raw in _PAIR.findall(reply):
        label = re.sub(r"\s+", "", raw).upper()
        label = _SAME.get(label, label)
        if label in PAIRWISE and label not in labels:
            labels.append(label)
    if not labels:
        raise VerdictError(
            "no verdict in the judge's reply (expected [[A>>B]], [[A>B]], [[A=B]], [[B>A]], "
            f"[[B>>A]], or [[A]], [[B]], [[C]]): {_quote(reply)}"
        )
    if len({PAIRWISE[label] for label in labels}) > 1:
        raise VerdictError(f"conflicting verdicts {labels} in the judge's reply: {_quote(reply)}")
    return labels[-1]


def parse_labelled(reply: str, labels: Mapping[str, str]) -> str:
    """A reply that is one of a spec's bare tokens (`judge.labels`), read as its pairwise label.
    The whole reply must be the token: AlpacaEval's judge answers with an identifier and
    nothing else, and its identifiers differ only in case (`m`, `M`), so no search for a token
    inside prose could be trusted."""
    token = reply.strip()
    if token in labels:
        return labels[token]
    expected = " or ".join(repr(t) for t in labels)
    raise VerdictError(f"the judge's reply is not {expected}: {_quote(reply)}")


_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def parse_yes_no(reply: str) -> bool:
    """The first "yes" or "no" word of the reply."""
    match = _YES_NO.search(reply)
    if match is None:
        raise VerdictError(f"no yes or no in the judge's reply: {_quote(reply)}")
    return match.group(1).lower() == "yes"
