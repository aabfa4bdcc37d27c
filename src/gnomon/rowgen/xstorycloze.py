"""XStoryCloze rows (juletxara/xstory_cloze, one config per language): `story_id`,
`input_sentence_1`..`input_sentence_4`, `sentence_quiz1`, `sentence_quiz2` and
`answer_right_ending` (1 or 2), made per language. Rows carry their language in `language`, the
field the loader tags hub rows with (`source.subset_field`)."""

from __future__ import annotations

import uuid

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._langs import sentence
from gnomon.rowgen._text import rng

LANGUAGES = ["ar", "en", "es", "eu", "hi", "id", "my", "ru", "sw", "te", "zh"]


@rows("xstorycloze", sizes={"eval": 22, "train": 11})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    """`n` stories spread over the 11 languages, in the order of lm-eval's group."""
    r = rng("xstorycloze", split, seed)
    k = len(LANGUAGES)
    out = []
    for i, language in enumerate(LANGUAGES):
        for _ in range(n // k + (i < n % k)):
            story = {f"input_sentence_{j}": sentence(r, language) for j in range(1, 5)}
            # endings of different lengths, the right one first or second
            endings = [sentence(r, language, short=True), sentence(r, language)]
            r.shuffle(endings)
            out.append(
                {
                    "story_id": str(uuid.UUID(int=r.getrandbits(128))),
                    **story,
                    "sentence_quiz1": endings[0],
                    "sentence_quiz2": endings[1],
                    "answer_right_ending": r.choice([1, 2]),
                    "language": language,
                }
            )
    return out
