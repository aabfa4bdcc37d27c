"""An answer's style as Arena-Hard's style control counts it: its length and its markdown.

Arena-Hard v2.0 (`utils/add_markdown_info.py` of arena-hard-auto) counts, outside fenced code,
headers (`#` to `######` followed by a space, at a line start), list items (`1. ` or `-`/`*`/`+`
then a space, at a line start, after any indentation) and bold spans (`**x**` or `__x__` on one
line), and the answer's length in tokens. Those counts feed `scoring.pairwise.style_features`.

Two things differ on purpose. Arena-Hard removes a fenced block by deleting the text between
its fences and leaves the fences (six backticks); that is kept here, since it is what the
counts are of. Tokens are counted as words and runs of punctuation rather than with tiktoken's
`o200k_base` vocabulary, which is a download gnomon cannot rely on; the style fit only sees
ratios of lengths, (m - b) / (m + b), and counts per token, so a count proportional to BPE
tokens changes little, but the numbers are not Arena-Hard's token counts.
"""

from __future__ import annotations

import re

_FENCED = re.compile(r"```([^`]*)```")
_HEADERS = [re.compile(rf"^#{{{level}}}\s", re.MULTILINE) for level in range(1, 7)]
_ORDERED = re.compile(r"^\s*\d+\.\s", re.MULTILINE)
_UNORDERED = re.compile(r"^\s*[-*+]\s", re.MULTILINE)
_BOLD = (re.compile(r"\*\*[^*\n]+\*\*"), re.compile(r"__[^_\n]+__"))
_TOKEN = re.compile(r"\w+|[^\w\s]+")


def count_tokens(text: str) -> int:
    """Words and runs of punctuation: a stand-in for BPE tokens that needs no vocabulary."""
    return len(_TOKEN.findall(text))


def markdown_style(answer: str) -> tuple[int, int, int, int]:
    """(tokens, headers, list items, bold spans) of one answer; tokens at least 1, so an empty
    answer still has a style (`style_features` divides by it)."""
    prose = answer
    for block in _FENCED.findall(answer):
        prose = prose.replace(block, "")
    headers = sum(len(p.findall(prose)) for p in _HEADERS)
    lists = len(_ORDERED.findall(prose)) + len(_UNORDERED.findall(prose))
    bold = sum(len(p.findall(prose)) for p in _BOLD)
    return max(count_tokens(answer), 1), headers, lists, bold
