"""Whole texts scored by rolling windows (lm-evaluation-harness's loglikelihood_rolling), on top
of `HFEngine`'s ordinary scoring: each window is a (context, continuation) pair of token ids, so
the windows share the batching, context grouping and caches of `score`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

from gnomon.engines.base import RollingRequest, ScoreResult
from gnomon.engines.planning import rolling_windows


class HFRolling:
    """What `HFEngine` brings: its tokenizer's encoding, the prefix token, the window, and
    scoring of token pairs."""

    max_length: int

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    @property
    def prefix_token_id(self) -> int:
        raise NotImplementedError

    def _score_pairs(
        self, pairs: list[tuple[list[int], list[int]]]
    ) -> Iterator[list[tuple[int, ScoreResult]]]:
        raise NotImplementedError

    def score_rolling(
        self, requests: Sequence[RollingRequest]
    ) -> Iterator[list[tuple[int, ScoreResult]]]:
        """Each text tokenised whole (the tokenizer's own special tokens, as lm-evaluation-
        harness's `tok_encode`), cut into rolling windows, and the windows scored as ordinary
        (context, continuation) pairs: they share the batching, context grouping and caches of
        `score`. A text's result is the sum over its windows, yielded when its last is done; a
        text of no tokens at all (a tokenizer that adds none to "") has no windows and scores
        0, as in lm-evaluation-harness."""
        owners: list[int] = []
        pairs: list[tuple[list[int], list[int]]] = []
        for index, req in enumerate(requests):
            windows = rolling_windows(self.encode(req.text), self.prefix_token_id, self.max_length)
            pairs.extend(windows)
            owners.extend([index] * len(windows))
        left = Counter(owners)
        sums = dict.fromkeys(left, 0.0)
        greedy = dict.fromkeys(left, True)
        empty = [(i, ScoreResult(0.0, True)) for i in range(len(requests)) if i not in left]
        if empty:
            yield empty
        for batch in self._score_pairs(pairs):
            done = []
            for window, result in batch:
                index = owners[window]
                sums[index] += result.logprob
                greedy[index] = greedy[index] and result.is_greedy
                left[index] -= 1
                if not left[index]:
                    done.append((index, ScoreResult(sums[index], greedy[index])))
            if done:
                yield done
