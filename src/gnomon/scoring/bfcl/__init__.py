"""The Berkeley Function Calling Leaderboard's single-turn checks: function docs as OpenAI tools
(`tools.py`), the AST check of calls against possible answers (`ast_check.py`), the verdict
on one answer (`verdict.py`), and BFCL's system prompt and Python-call reading for models
prompted with the docs instead (`prompting.py`)."""

from gnomon.scoring.bfcl.ast_check import Verdict, check_calls, normalise, tool_name
from gnomon.scoring.bfcl.tools import openai_tools, tools_json
from gnomon.scoring.bfcl.verdict import Decoded, decode_calls, judge_answer, judge_decoded

__all__ = [
    "Decoded",
    "Verdict",
    "check_calls",
    "decode_calls",
    "judge_answer",
    "judge_decoded",
    "normalise",
    "openai_tools",
    "tool_name",
    "tools_json",
]
