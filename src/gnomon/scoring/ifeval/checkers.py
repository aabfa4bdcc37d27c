"""One rule per IFEval instruction kind: `rule(response, args) -> bool`.

`args` are the row's kwargs for that instruction with empty values dropped (the reference
drops every falsy value before building its instruction), plus `prompt`, the row's prompt.
The rules follow the behaviour of Google's reference checkers, quirks included (keywords and
section splitters are used as regular expressions, unescaped; bullet counts must be exact;
undetectable language counts as followed), because scores are only comparable when the rules
are identical.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from gnomon.scoring.ifeval.text import (
    UndetectableLanguage,
    count_sentences,
    count_words,
    detect_language,
    word_tokens,
)

Args = Mapping[str, Any]
Rule = Callable[[str, Args], bool]

CHECKERS: dict[str, Rule] = {}

_LESS = "less than"
_AT_LEAST = "at least"
_YES_NO_MAYBE = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


def _checker(instruction_id: str) -> Callable[[Rule], Rule]:
    def register(rule: Rule) -> Rule:
        CHECKERS[instruction_id] = rule
        return rule

    return register


def _compare(count: int, relation: str, threshold: int) -> bool:
    """The reference's two relations; any other relation is rejected as it rejects it."""
    if relation == _LESS:
        return count < threshold
    if relation == _AT_LEAST:
        return count >= threshold
    raise ValueError(f"unknown relation {relation!r} (known: {_LESS!r}, {_AT_LEAST!r})")


def _language_is(text: str, code: str, *, also: bool = True) -> bool:
    """`also` and the detected language is `code`; text langdetect cannot read passes."""
    if not also:
        return False
    try:
        return detect_language(text) == code
    except UndetectableLanguage:
        return True


# --- keywords ---------------------------------------------------------------------------


@_checker("keywords:existence")
def _keywords_exist(response: str, args: Args) -> bool:
    return all(re.search(k, response, flags=re.IGNORECASE) for k in args["keywords"])


@_checker("keywords:frequency")
def _keyword_frequency(response: str, args: Args) -> bool:
    found = len(re.findall(args["keyword"].strip(), response, flags=re.IGNORECASE))
    return _compare(found, args["relation"], args["frequency"])


@_checker("keywords:forbidden_words")
def _forbidden_words(response: str, args: Args) -> bool:
    return not any(
        re.search(r"\b" + w + r"\b", response, flags=re.IGNORECASE) for w in args["forbidden_words"]
    )


def required_letter(given: str | None) -> str:
    """The letter to count. Where the row's `letter` is no ASCII letter (the real data has "#"
    and "!"), the reference counts a letter it draws at random; gnomon draws from the same
    52 letters with a generator seeded by the given text, so that a rerun gives the same
    verdict."""
    if given and len(given) == 1 and given.lower() in string.ascii_lowercase:
        return given.strip().lower()
    return random.Random(given or "").choice(string.ascii_letters).lower()


@_checker("keywords:letter_frequency")
def _letter_frequency(response: str, args: Args) -> bool:
    count = Counter(response.lower())[required_letter(args.get("letter"))]
    # the reference treats any relation but "less than" as "at least"
    if args["let_relation"] == _LESS:
        return count < args["let_frequency"]
    return count >= args["let_frequency"]


# --- language and case ------------------------------------------------------------------


@_checker("language:response_language")
def _response_language(response: str, args: Args) -> bool:
    return _language_is(response, args["language"])


@_checker("change_case:english_capital")
def _english_capital(response: str, args: Args) -> bool:
    return _language_is(response, "en", also=response.isupper())


@_checker("change_case:english_lowercase")
def _english_lowercase(response: str, args: Args) -> bool:
    return _language_is(response, "en", also=response.islower())


@_checker("change_case:capital_word_frequency")
def _capital_words(response: str, args: Args) -> bool:
    count = sum(1 for token in word_tokens(response) if token.isupper())
    if args["capital_relation"] == _LESS:
        return count < args["capital_frequency"]
    return count >= args["capital_frequency"]


# --- length -----------------------------------------------------------------------------


@_checker("length_constraints:number_sentences")
def _sentences(response: str, args: Args) -> bool:
    return _compare(count_sentences(response), args["relation"], args["num_sentences"])


@_checker("length_constraints:number_words")
def _words(response: str, args: Args) -> bool:
    return _compare(count_words(response), args["relation"], args["num_words"])


@_checker("length_constraints:number_paragraphs")
def _paragraphs(response: str, args: Args) -> bool:
    """Paragraphs split on `***`; an empty one is allowed only at either end."""
    parts = re.split(r"\s?\*\*\*\s?", response)
    count = len(parts)
    for index, part in enumerate(parts):
        if not part.strip():
            if index not in (0, len(parts) - 1):
                return False
            count -= 1
    return count == args["num_paragraphs"]


_FIRST_WORD_STOP = frozenset(".,?!'\"")


@_checker("length_constraints:nth_paragraph_first_word")
def _nth_paragraph_first_word(response: str, args: Args) -> bool:
    """Paragraphs split on blank lines: the count must match and the n-th one (counted over
    all splits, empty ones included, as the reference indexes) must start with the word."""
    parts = response.split("\n\n")
    count = sum(1 for part in parts if part.strip())
    nth = args["nth_paragraph"]
    if nth > count:
        return False
    paragraph = parts[nth - 1].strip()
    if not paragraph:
        return False
    word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
    first = ""
    for char in word:
        if char in _FIRST_WORD_STOP:
            break
        first += char.lower()
    return count == args["num_paragraphs"] and first == args["first_word"].lower()


# --- content ----------------------------------------------------------------------------


@_checker("detectable_content:number_placeholders")
def _placeholders(response: str, args: Args) -> bool:
    return len(re.findall(r"\[.*?\]", response)) >= args["num_placeholders"]


@_checker("detectable_content:postscript")
def _postscript(response: str, args: Args) -> bool:
    marker = args["postscript_marker"].strip()
    if marker == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif marker == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + marker.lower() + r".*$"
    return bool(re.findall(pattern, response.lower(), flags=re.MULTILINE))


# --- format -----------------------------------------------------------------------------


@_checker("detectable_format:number_bullet_lists")
def _bullets(response: str, args: Args) -> bool:
    stars = re.findall(r"^\s*\*[^\*].*$", response, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", response, flags=re.MULTILINE)
    return len(stars) + len(dashes) == args["num_bullets"]


@_checker("detectable_format:constrained_response")
def _constrained(response: str, args: Args) -> bool:
    text = response.strip()
    return any(option in text for option in _YES_NO_MAYBE)


@_checker("detectable_format:number_highlighted_sections")
def _highlights(response: str, args: Args) -> bool:
    single = [h for h in re.findall(r"\*[^\n\*]*\*", response) if h.strip("*").strip()]
    double = [
        h
        for h in re.findall(r"\*\*[^\n\*]*\*\*", response)
        if h.removeprefix("**").removesuffix("**").strip()
    ]
    return len(single) + len(double) >= args["num_highlights"]


@_checker("detectable_format:multiple_sections")
def _sections(response: str, args: Args) -> bool:
    splitter = args["section_spliter"].strip()
    parts = re.split(r"\s?" + splitter + r"\s?\d+\s?", response)
    return len(parts) - 1 >= args["num_sections"]


@_checker("detectable_format:json_format")
def _json(response: str, args: Args) -> bool:
    text = response.strip()
    for fence in ("```json", "```Json", "```JSON", "```"):
        text = text.removeprefix(fence)
    text = text.removesuffix("```").strip()
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@_checker("detectable_format:title")
def _title(response: str, args: Args) -> bool:
    return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", response))


# --- combination, start/end, punctuation -------------------------------------------------


@_checker("combination:two_responses")
def _two_responses(response: str, args: Args) -> bool:
    parts = response.split("******")
    kept = []
    for index, part in enumerate(parts):
        if part.strip():
            kept.append(part)
        elif index not in (0, len(parts) - 1):
            return False
    return len(kept) == 2 and kept[0].strip() != kept[1].strip()


@_checker("combination:repeat_prompt")
def _repeat_prompt(response: str, args: Args) -> bool:
    return response.strip().lower().startswith(args["prompt_to_repeat"].strip().lower())


@_checker("startend:end_checker")
def _ends_with(response: str, args: Args) -> bool:
    return response.strip().strip('"').lower().endswith(args["end_phrase"].strip().lower())


@_checker("startend:quotation")
def _quoted(response: str, args: Args) -> bool:
    text = response.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'


@_checker("punctuation:no_comma")
def _no_comma(response: str, args: Args) -> bool:
    return "," not in response
