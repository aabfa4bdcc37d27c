"""Rows of the chat (reasoning-model) forms: the same datasets as their base forms, so the same
makers (MATH-500, AIME 2024 and 2025, GPQA diamond, MMLU-Pro) under the chat specs' ids."""

from __future__ import annotations

from gnomon.rowgen import rows
from gnomon.rowgen.gpqa import make as gpqa
from gnomon.rowgen.math import aime24, aime25, math_500
from gnomon.rowgen.mmlu_pro import make as mmlu_pro

rows("math_500_chat", sizes={"test": 12})(math_500)
rows("aime24_chat", sizes={"train": 8})(aime24)
rows("aime25_chat", sizes={"test": 8})(aime25)
rows("gpqa_diamond_chat", sizes={"train": 12})(gpqa)
rows("mmlu_pro_chat", sizes={"test": 12})(mmlu_pro)
