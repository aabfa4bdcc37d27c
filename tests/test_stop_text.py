"""Stop strings met in generated text (`engines/stop_text.py`): a row stops at the first token
whose text completes a stop string, found from a window of trailing tokens, as the row's whole
decoded text would show it; in a conversation, not inside its `<think>` block."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gnomon.engines.hf_answers import RowReader
from gnomon.engines.stop_text import StopText

TEXTS = [
    "Q: Tom has 3 apples.\nA: He eats 1, so 2 remain. The answer is 2.\n\nQ: next",
    "naïve café 😀😀 e\u0301 日本語のテキスト 🇫🇷 done\n\n  tabs\tand   spaces",
    "x" * 40 + "Question:" + " y" * 10 + "</s> after",
    "emoji👩‍👩‍👧 then 한국어 text; stop at ### here ### twice",
]


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def tokenizer(request: pytest.FixtureRequest) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(request.getfixturevalue(f"{request.param}_dir"))


def first_hit_by_brute_force(reader: RowReader, ids: list[int], stops: tuple[str, ...]) -> int:
    for k in range(1, len(ids) + 1):
        text = reader.decode(ids[:k])
        if any(s in text for s in stops):
            return k
    return 0


def first_hit_step_by_step(
    check: StopText, ids: list[int], stops: tuple[str, ...], thinking: bool = False
) -> int:
    for k in range(1, len(ids) + 1):
        if check.hits([ids[:k]], [stops], [thinking])[0]:
            return k
    return 0


def test_a_row_stops_at_the_token_that_completes_a_stop_string(tokenizer: Any) -> None:
    reader = RowReader.of(tokenizer, None)
    check = StopText(reader)
    rng = random.Random(7)
    tried = 0
    for text in TEXTS:
        ids = tokenizer.encode(text, add_special_tokens=False)
        ids = ids[: next((i for i, t in enumerate(ids) if t in reader.end_ids), len(ids))]
        decoded = reader.decode(ids)  # a row ends at its end token ("</s>" here) anyway
        for _ in range(12):
            start = rng.randrange(len(decoded) - 3)
            stop = decoded[start : start + rng.randint(1, 9)]
            stops = (stop, "@@never@@")
            want = first_hit_by_brute_force(reader, ids, stops)
            assert want > 0
            assert first_hit_step_by_step(check, ids, stops) == want, (text, stop)
            tried += 1
    assert tried == 12 * len(TEXTS)


def test_rows_are_checked_together_each_with_its_own_stops(tokenizer: Any) -> None:
    check = StopText(RowReader.of(tokenizer, None))
    ids = [tokenizer.encode(t, add_special_tokens=False) for t in TEXTS]
    stops = [("\n\n",), ("😀",), ("Question:",), ("zzz",)]
    batch = check.hits(ids, stops, [False] * 4)
    alone = [check.hits([i], [s], [False])[0] for i, s in zip(ids, stops, strict=True)]
    assert batch == alone
    # a stop met long before the newest token is not news: the row had already stopped
    assert batch == [False, False, False, False]
    cut = [
        i[: first_hit_step_by_step(check, i, s) or len(i)] for i, s in zip(ids, stops, strict=True)
    ]
    assert check.hits(cut, stops, [False] * 4) == [True, True, True, False]


def test_no_stops_and_no_tokens_never_stop(tokenizer: Any) -> None:
    check = StopText(RowReader.of(tokenizer, None))
    ids = tokenizer.encode("a b\n\n c", add_special_tokens=False)
    assert check.hits([ids, [], ids], [(), ("\n\n",), ("",)], [False] * 3) == [False] * 3


def test_a_stop_inside_the_thinking_block_does_not_end_a_conversation(tokenizer: Any) -> None:
    reader = RowReader.of(tokenizer, None)
    check = StopText(reader)
    text = "<think>first idea\n\nsecond idea</think>The answer is 4.\n\nExtra"
    ids = tokenizer.encode(text, add_special_tokens=False)
    stops = ("\n\n",)
    plain = first_hit_step_by_step(check, ids, stops)
    chat = first_hit_step_by_step(check, ids, stops, thinking=True)
    assert 0 < plain < chat
    assert "second" not in reader.decode(ids[:plain])
    assert reader.decode(ids[:chat]).split("</think>")[1].startswith("The answer is 4.\n\n")
    # what reading the answer says agrees: its finish comes from the same rule
    assert reader.stopped(ids[:chat], stops, thinking=True)
    assert not reader.stopped(ids[: chat - 1], stops, thinking=True)


def test_the_window_covers_every_character_of_the_longest_stop() -> None:
    assert StopText.window(()) == 0
    assert StopText.window(("ab", "\n\n\n")) == 4 * 3 + 2


def test_model_generate_criteria_read_only_the_generated_columns(tokenizer: Any) -> None:
    import torch

    check = StopText(RowReader.of(tokenizer, None))
    prompt = tokenizer.encode("Answer:\n", add_special_tokens=False)
    gen = tokenizer.encode("\nmore text\n\nend", add_special_tokens=False)
    criteria = check.criteria(("\n\n",), len(prompt))
    hit_at = []
    for k in range(1, len(gen) + 1):
        ids = torch.tensor([prompt + gen[:k]])
        if bool(criteria(ids, None)[0]):
            hit_at.append(k)
    text_at = first_hit_by_brute_force(check.reader, gen, ("\n\n",))
    assert hit_at[:1] == [text_at] and text_at > 1  # not at the first "\n" after the prompt's
