"""TriviaQA rows (mandarjoshi/trivia_qa, rc.nocontext): `question`, `question_id`,
`question_source`, `entity_pages` and `search_results` (empty in rc.nocontext), and `answer`, a
record whose `aliases` list holds every accepted spelling (`value`, `normalized_aliases`, ...)."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import NOUNS, noun_phrase, question, rng

_PAGE_FIELDS = ("doc_source", "filename", "title", "wiki_context")
_SEARCH_FIELDS = ("description", "filename", "rank", "title", "url", "search_context")


@rows("triviaqa", sizes={"validation": 12, "train": 8})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("triviaqa", split, seed)
    out = []
    for i in range(n):
        value = noun_phrase(r).removeprefix("the ").title()
        aliases = [value, value.lower(), f"The {value}", f"{value}."][: 1 + i % 4]
        if i % 5 == 4:
            aliases.append(r.choice(NOUNS))  # an alias unlike the others
        out.append(
            {
                "question": question(r).rstrip("?"),
                "question_id": f"tc_{seed}_{i}",
                "question_source": "http://www.triviaquiz.example/",
                "entity_pages": {k: [] for k in _PAGE_FIELDS},
                "search_results": {k: [] for k in _SEARCH_FIELDS},
                "answer": {
                    "aliases": aliases,
                    "normalized_aliases": sorted({a.lower().rstrip(".") for a in aliases}),
                    "matched_wiki_entity_name": "",
                    "normalized_matched_wiki_entity_name": "",
                    "normalized_value": value.lower(),
                    "type": "WikipediaEntity" if i % 2 else "FreeForm",
                    "value": value,
                },
            }
        )
    return out
