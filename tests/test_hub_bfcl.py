"""BFCL (the Berkeley Function Calling Leaderboard v4): gnomon's checks against BFCL's own code,
over the real rows, and end-to-end runs through the tools interface.

- For every real row of the eleven single-turn categories, candidate answers (the possible
  answers' first option, each argument perturbed, left out, retyped, an extra argument, a wrong
  function, calls reordered, missing or repeated, no call, arguments that are not JSON or not an
  object) get gnomon's verdict and BFCL's (`bfcl_ref.py`: its `ast_checker` and eval runner),
  and they must be equal, candidate by candidate.
- The `tools` gnomon sends for every row equal, key order included, what BFCL's OpenAI
  function-calling handler sends.
- `gnomon run` of real rows on a served model (a scripted OpenAI-compatible server on loopback
  that answers each question with tool calls the test chose) scores them as BFCL does.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bfcl_ref import AST_CATEGORIES, RELEVANCE_CATEGORIES, Reference, load_reference, real_rows
from bfcl_ref import unload as unload_reference
from gnomon_cli import ENV, gnomon, ok
from loopback import chat_app, running

from gnomon.engines.base import ToolCall
from gnomon.hub.bfcl_hooks import category_of
from gnomon.scoring.bfcl import judge_answer, judge_decoded, openai_tools, tool_name, tools_json
from gnomon.scoring.bfcl.prompting import decode_python_calls, with_system_prompt

Row = dict[str, Any]
Candidate = tuple[str, list[tuple[str, str]] | str]  # (label, calls as (name, args) or text)

BENCH = {
    "simple_python": "bfcl_simple",
    **{c: f"bfcl_{c}" for c in AST_CATEGORIES + RELEVANCE_CATEGORIES if c != "simple_python"},
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    yield load_reference(tmp_path_factory.mktemp("bfcl"))
    unload_reference()


# ------------------------------------------------------------------------------ candidates


def _first_options(answer: dict[str, Any]) -> dict[str, Any]:
    """An expected call's arguments, each its first possible value (left out where that is the
    "may be left out" mark)."""
    return {p: values[0] for p, values in answer.items() if values and values[0] != ""}


def _changed(value: Any) -> list[tuple[str, Any]]:
    """Wrong, retyped and equivalent forms of one argument value."""
    if isinstance(value, bool):
        return [("negated", not value), ("as int", int(value)), ("as text", str(value).lower())]
    if isinstance(value, int):
        return [("plus one", value + 1), ("as float", float(value)), ("as text", str(value)),
                ("as bool", bool(value))]  # fmt: skip
    if isinstance(value, float):
        forms = [("plus half", value + 0.5), ("as text", str(value))]
        if value.is_integer():
            forms.append(("as int", int(value)))
        return forms
    if isinstance(value, str):
        return [
            ("suffixed", value + " extra"), ("case and spacing", f" {value.upper()}. "),
            ("quotes", value.replace('"', "'")), ("as number", 7), ("as list", [value]),
        ]  # fmt: skip
    if isinstance(value, list):
        forms: list[tuple[str, Any]] = [("reversed", value[::-1]), ("appended", [*value, 1])]
        if value:
            forms += [("shortened", value[:-1]), ("first item", value[0])]
            forms.append(("items as text", [str(v) for v in value]))
            if isinstance(value[0], int) and not isinstance(value[0], bool):
                forms.append(("items as float", [float(v) for v in value]))
        if value and isinstance(value[0], dict):
            first = dict(value[0])
            key = next(iter(first), None)
            if key is not None:
                first.pop(key)
                forms.append(("first dict short", [first, *value[1:]]))
        return forms
    if isinstance(value, dict):
        forms = [("as text", json.dumps(value)), ("extra key", {**value, "zz_extra": 1})]
        for key in list(value)[:3]:
            forms.append((f"without {key}", {k: v for k, v in value.items() if k != key}))
            forms += [(f"{key} {label}", {**value, key: v}) for label, v in _changed(value[key])]
        return forms
    return [("as text", str(value))]


def _ast_candidates(row: Row, shown: Callable[[str], str] = tool_name) -> list[Candidate]:
    """`shown`: a function's name as the model sees it (the tools interface's, or its own)."""
    expected = [(shown(next(iter(a))), next(iter(a.values()))) for a in row["ground_truth"]]
    base = [(name, _first_options(answer)) for name, answer in expected]

    def calls(items: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
        return [(name, json.dumps(args)) for name, args in items]

    out: list[Candidate] = [("first options", calls(base))]
    for i, (name, answer) in enumerate(expected):
        args = base[i][1]

        def instead(call_name: str, new: dict[str, Any], at: int = i) -> list[tuple[str, str]]:
            """The first-option calls with call `at` replaced."""
            return calls([*base[:at], (call_name, new), *base[at + 1 :]])

        full = {p: next((v for v in vs if v != ""), "") for p, vs in answer.items()}
        full = {p: v for p, v in full.items() if v != ""}
        if full != args:
            out.append(("optional given", instead(name, full)))
        for param, value in full.items():
            without = {p: v for p, v in args.items() if p != param}
            out.append((f"{param} left out", instead(name, without)))
            for label, changed in _changed(value):
                out.append((f"{param} {label}", instead(name, {**args, param: changed})))
            for option in answer[param][1:3]:  # other possible values are right too
                if option != "":
                    out.append((f"{param} option", instead(name, {**args, param: option})))
        out.append(("extra param", instead(name, {**args, "zz_extra": 1})))
        out.append(("null param", instead(name, {**args, "zz_none": None})))
        out.append(("wrong name", instead(name + "_x", args)))
        spelt = next(iter(row["ground_truth"][i]))
        other = tool_name(spelt) if shown(spelt) == spelt else spelt
        if other != name:  # the name as the other interface spells it (dots or underscores)
            out.append(("other spelling", instead(other, args)))
    for doc in row["function"]:
        if shown(doc["name"]) not in {n for n, _ in expected}:
            out.append(("other function", calls([(shown(doc["name"]), base[0][1]), *base[1:]])))
            break
    if len(base) > 1:
        out.append(("reversed order", calls(base[::-1])))
        out.append(("rotated order", calls([*base[1:], base[0]])))
        out.append(("one call missing", calls(base[:-1])))
    out.append(("call repeated", calls([*base, base[0]])))
    out.append(("no call", "I cannot call a function for this."))
    out.append(("empty text", ""))
    out.append(("arguments not JSON", [(base[0][0], '{"a": 1')]))
    out.append(("arguments not an object", [(name, "[1, 2]") for name, _ in base]))
    out.append(("empty arguments", [(name, "") for name, _ in base]))
    return out


def _relevance_candidates(row: Row) -> list[Candidate]:
    doc = row["function"][0] if row["function"] else {"name": "lookup", "parameters": {}}
    name = tool_name(doc["name"])
    props = doc["parameters"].get("properties", {})
    filled = {p: 1 if props[p].get("type") in ("integer", "float") else "x" for p in props}
    return [
        ("no call", "That is not something these functions can do."),
        ("empty text", ""),
        ("call", [(name, json.dumps(filled))]),
        ("call without arguments", [(name, "{}")]),
        ("unknown function", [("not_a_function", "{}")]),
        ("two calls", [(name, "{}"), (name, json.dumps(filled))]),
        ("arguments not JSON", [(name, "{oops")]),
        ("arguments null", [(name, "null")]),
        ("one of two not an object", [(name, "{}"), (name, "3")]),
    ]


def _bfcl_result(candidate: list[tuple[str, str]] | str) -> Any:
    """The result BFCL's OpenAI handler records: `{name: arguments}` per call, else the text."""
    if isinstance(candidate, str):
        return candidate
    return [{name: arguments} for name, arguments in candidate]


def _gnomon_verdict(row: Row, category: str, candidate: list[tuple[str, str]] | str) -> bool:
    calls = () if isinstance(candidate, str) else tuple(ToolCall(n, a) for n, a in candidate)
    checker = "ast"
    if category in RELEVANCE_CATEGORIES:
        checker = "relevance" if category == "live_relevance" else "irrelevance"
    _, verdict = judge_answer(
        checker, calls, functions=row["function"], answers=row.get("ground_truth", ()),
        category=category,
    )  # fmt: skip
    return verdict.valid


# ------------------------------------------------------------------------ the checker proof


@pytest.mark.parametrize("category", AST_CATEGORIES + RELEVANCE_CATEGORIES)
def test_verdicts_equal_bfcl_on_every_real_row(reference: Reference, category: str) -> None:
    rows = real_rows(category)
    make = _relevance_candidates if category in RELEVANCE_CATEGORIES else _ast_candidates
    tally: Counter[tuple[str, bool]] = Counter()
    crashed: list[str] = []
    differ: list[str] = []
    for row in rows:
        for label, candidate in make(row):
            ours = _gnomon_verdict(row, category, candidate)
            try:
                theirs = reference.verdict(row, category, _bfcl_result(copy.deepcopy(candidate)))
            except Exception as exc:  # BFCL's checker fails on a few malformed answers
                crashed.append(f"{row['id']} {label}: {exc!r}")
                assert not ours, f"{row['id']} {label}: BFCL raised ({exc!r}), gnomon passed it"
                continue
            tally[label, theirs] += 1
            if ours != theirs:
                differ.append(f"{row['id']} [{label}] {candidate!r:.300}: BFCL {theirs}")
    assert not differ, f"{len(differ)} verdicts differ from BFCL's:\n" + "\n".join(differ[:20])
    assert len(crashed) <= len(rows) // 20, crashed[:10]
    # the candidates reach both verdicts, and the ground truth passes where it can be written
    assert sum(n for (_, ok_), n in tally.items() if ok_) > 0
    assert sum(n for (_, ok_), n in tally.items() if not ok_) > 0
    if category not in RELEVANCE_CATEGORIES:
        assert tally["first options", True] >= 0.9 * len(rows), tally
        assert tally["wrong name", True] == 0 and tally["no call", True] == 0
    elif category == "live_relevance":
        assert tally["call", True] == len(rows) and tally["no call", True] == 0
    else:
        assert tally["no call", True] == len(rows) and tally["call", True] == 0
        assert tally["arguments not JSON", True] == len(rows)  # no decodable call: right


@pytest.mark.parametrize("category", AST_CATEGORIES + RELEVANCE_CATEGORIES)
def test_tools_equal_bfcls_openai_conversion(reference: Reference, category: str) -> None:
    for row in real_rows(category):
        theirs = reference.tools(row, category)
        assert openai_tools(row["function"]) == theirs, row["id"]
        # the same text, key order and all: the model sees the docs as BFCL sends them
        assert tools_json(row["function"]) == json.dumps(theirs, ensure_ascii=False), row["id"]
        assert category_of(row["id"]) == category


def test_checker_rules_hand_picked() -> None:
    """A few of BFCL's rules spelled out, independent of the reference: normalised strings, an
    int for a float, optional parameters, bools that are not ints, calls in any order."""
    doc = {
        "name": "geo.distance",
        "parameters": {
            "type": "dict",
            "properties": {
                "city": {"type": "string"}, "km": {"type": "float"}, "exact": {"type": "boolean"},
                "stops": {"type": "array", "items": {"type": "integer"}},
            },
            "required": ["city"],
        },
    }  # fmt: skip
    answer = {"geo.distance": {"city": ["New York, NY"], "km": [5.0, ""], "exact": ["", False],
                               "stops": [[1, 2], ""]}}  # fmt: skip

    def verdict(args: dict[str, Any], name: str = "geo_distance", category: str = "simple") -> bool:
        call = ToolCall(name, json.dumps(args))
        return judge_answer("ast", [call], functions=[doc], answers=[answer], category=category)[
            1
        ].valid

    assert verdict({"city": "new york ny"}) and verdict({"city": "New-York NY", "km": 5})
    assert not verdict({"city": "Boston"}) and not verdict({"city": "new york ny", "km": 6})
    assert not verdict({"city": "new york ny", "exact": 0})  # 0 is no bool
    assert verdict({"city": "new york ny", "exact": False, "stops": [1, 2]})
    assert not verdict({"city": "new york ny", "stops": [2, 1]})
    # BFCL's item check lets any items pass when "" (may be left out) is among the answers, and
    # [1.0, 2.0] == [1, 2] in Python
    assert verdict({"city": "new york ny", "stops": [1.0, 2.0]})
    assert not verdict({"city": "new york ny"}, name="geo.distance")  # tools have no dots
    assert not verdict({"km": 5.0})  # the required city missing
    two = [answer, {"geo.distance": {"city": ["Paris"]}}]
    calls = [
        ToolCall("geo_distance", '{"city": "Paris"}'),
        ToolCall("geo_distance", '{"city": "New York, NY"}'),
    ]
    assert judge_answer("ast", calls, functions=[doc], answers=two, category="parallel")[1].valid
    assert not judge_answer("ast", calls[:1], functions=[doc], answers=two, category="parallel")[
        1
    ].valid
    bad = [ToolCall("geo_distance", '{"city": "Paris"')]
    decoded, found = judge_answer("ast", bad, functions=[doc], answers=[answer], category="simple")
    assert not found.valid and "not JSON" in found.reason and decoded.error
    assert judge_answer("irrelevance", bad)[1].valid  # no decodable call: none was made
    assert not judge_answer("relevance", bad)[1].valid


# ----------------------------------------------- models prompted with the docs (no tools)


def _python(calls: list[tuple[str, str]]) -> list[str]:
    """Each (name, arguments as JSON) as the Python call a prompted model writes; arguments
    that are not a JSON object become a call that does not parse."""
    out = []
    for name, arguments in calls:
        try:
            args = json.loads(arguments)
        except ValueError:
            args = None
        if isinstance(args, dict):
            out.append(f"{name}(" + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ")")
        else:
            out.append(f"{name}(oops=")
    return out


def _prompted_candidates(row: Row, category: str) -> list[tuple[str, str]]:
    """Texts a prompted model might write: the calls of the tools candidates in Python syntax,
    then the first options written in the ways models write them (bare, fenced, with prose,
    quoted) and with argument syntax BFCL reads in its own ways."""
    if category in RELEVANCE_CATEGORIES:
        doc = row["function"][0] if row["function"] else {"name": "lookup"}
        base = [(doc["name"], "{}")]
        made = [(label, c) for label, c in _relevance_candidates(row) if label != "call"]
        made.append(("call", [(doc["name"], json.dumps({"x": 1}))]))
    else:
        made = _ast_candidates(row, shown=lambda name: name)
        base = dict(made)["first options"]  # type: ignore[assignment]
    out = []
    for label, candidate in made:
        text = (
            candidate if isinstance(candidate, str) else "[" + ", ".join(_python(candidate)) + "]"
        )
        out.append((label, text))
    calls = _python(base)  # type: ignore[arg-type]
    joined = ", ".join(calls)
    out += [
        ("bare", joined), ("fenced python", f"```python\n[{joined}]\n```"),
        ("fenced", f"```\n[{joined}]\n```"), ("prose", f"Sure! [{joined}]"),
        ("quoted", f"'[{joined}]'"), ("empty list", "[]"), ("a number", "[1]"),
        ("comprehension", f"[{calls[0]} for x in y]"),
    ]  # fmt: skip
    name = base[0][0]
    args = json.loads(base[0][1])
    tail = "" if len(calls) == 1 else ", " + ", ".join(calls[1:])

    def first(text: str) -> str:
        return f"[{name}({text}){tail}]"

    keys = list(args)
    out.append(("positional", first(", ".join(["1", *(f"{k}={v!r}" for k, v in args.items())]))))
    for key in keys[:2]:
        value = args[key]
        rest = ", ".join(f"{k}={v!r}" for k, v in args.items() if k != key)
        rest = ", " + rest if rest else ""
        forms = {
            "variable": "some_variable", "subscript": "data[0]", "nested call": "g(x=1)",
            "bare call": "g()", "lambda": "lambda x: x", "f-string": 'f"{x}"',
            "starred dict": "{**extra}", "attribute": "math.pi", "comparison": "1 < 2",
            "none": "None", "set": "{1, 2}", "not": "not True",
        }  # fmt: skip
        if isinstance(value, int | float) and not isinstance(value, bool):
            forms |= {
                "sum": f"{value - 1} + 1", "product": f"{value} * 1", "plus sign": f"+{value}",
                "minus sign": f"-{value}", "power": f"{value} ** 1", "division": f"{value} / 1",
                "zero division": f"{value} / 0",  # (BFCL would compute 10 ** 10 ** 10)
            }  # fmt: skip
        if isinstance(value, str):
            forms |= {
                "concatenated": f"{value[:1]!r} + {value[1:]!r}",
                "negated text": f"-{value!r}",
            }
        if isinstance(value, list):
            forms |= {
                "tuple": repr(tuple(value)) if len(value) != 1 else f"({value[0]!r},)",
                "repeated list": f"{value!r} * 1", "joined lists": f"{value[:1]!r} + {value[1:]!r}",
            }  # fmt: skip
        for label, text in forms.items():
            out.append((f"{key} {label}", first(f"{key}={text}{rest}")))
    return out


@pytest.mark.parametrize("category", AST_CATEGORIES + RELEVANCE_CATEGORIES)
def test_prompted_verdicts_equal_bfcl_on_every_real_row(
    reference: Reference, category: str
) -> None:
    checker = "ast"
    if category in RELEVANCE_CATEGORIES:
        checker = "relevance" if category == "live_relevance" else "irrelevance"
    tally: Counter[tuple[str, bool]] = Counter()
    differ: list[str] = []
    for row in real_rows(category):
        for label, text in _prompted_candidates(row, category):
            decoded = decode_python_calls(text)
            try:
                theirs_decoded = reference.decode_prompted(text)
            except Exception:  # BFCL's decoder raises on what it cannot read
                theirs_decoded = None
            if theirs_decoded is None:
                same = bool(decoded.error)
            else:
                same = not decoded.error and repr(decoded.as_bfcl()) == repr(theirs_decoded)
            if not same:
                differ.append(
                    f"{row['id']} [{label}] {text!r:.200}: decoded {theirs_decoded!r:.200}"
                )
                continue
            ours = judge_decoded(
                checker, decoded, functions=row["function"],
                answers=row.get("ground_truth", ()), category=category, underscored=False,
            ).valid  # fmt: skip
            theirs = reference.verdict(row, category, text, prompted=True)
            tally[label, theirs] += 1
            if ours != theirs:
                differ.append(f"{row['id']} [{label}] {text!r:.200}: BFCL {theirs}")
    assert not differ, f"{len(differ)} differ from BFCL's:\n" + "\n".join(differ[:20])
    if category not in RELEVANCE_CATEGORIES:
        n = len(real_rows(category))
        assert tally["first options", True] >= 0.9 * n and tally["bare", True] >= 0.9 * n
        assert tally["other spelling", True] == 0 and tally["fenced python", True] == 0
    assert sum(v for (_, ok_), v in tally.items() if ok_) > 0
    assert sum(v for (_, ok_), v in tally.items() if not ok_) > 0


@pytest.mark.parametrize("category", AST_CATEGORIES + RELEVANCE_CATEGORIES)
def test_prompted_messages_equal_bfcls(reference: Reference, category: str) -> None:
    for row in real_rows(category):
        ours = with_system_prompt(row["question"][0], row["function"], "python")
        assert ours == reference.messages(row, category), row["id"]


def test_model_output_is_never_run() -> None:
    """BFCL `eval`s an argument written as an expression; gnomon computes only arithmetic on
    literals, within bounds, and reads anything else as an answer that does not decode."""
    assert decode_python_calls("[f(a=2*3, b='x'+'y', c=[0]*2)]").as_bfcl() == [
        {"f": {"a": 6, "b": "xy", "c": [0, 0]}}
    ]
    for text in (
        "[f(a=__import__('os').getpid() + 1)]", "[f(a=10 ** 10 ** 10)]", "[f(a='x' * 10**9)]",
        "[f(a=len('abc') + 1)]", "[f(a=(lambda: 1)() + 1)]",
    ):  # fmt: skip
        decoded = decode_python_calls(text)
        assert decoded.error and not decoded.calls, text


# ---------------------------------------------------------------- end to end, served model


class ToolServer:
    """An OpenAI-compatible chat server that answers each question (the last user message) with
    the tool calls the test scripted for it, and keeps every request body."""

    def __init__(self, script: dict[str, list[tuple[str, str]] | str]) -> None:
        self.script = script
        self.bodies: list[dict[str, Any]] = []

    def app(self) -> Any:
        usage = {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59}
        return chat_app(self.reply, usage=usage, bodies=self.bodies)

    def reply(self, body: dict) -> dict[str, Any]:
        asked = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
        planned = self.script[asked]
        if isinstance(planned, str):
            return {"content": planned}
        calls = [
            {"id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
             "function": {"name": n, "arguments": a}}
            for n, a in planned
        ]  # fmt: skip
        return {"content": None, "tool_calls": calls, "finish_reason": "tool_calls"}


KEYED = {**ENV, "OPENAI_API_KEY": "sk-test", "COLUMNS": "200"}


def _planned(row: Row, category: str, turn: int) -> list[tuple[str, str]] | str:
    """The server's answer to row number `turn`: a rule the test knows, mixing right, wrong and
    undecodable answers."""
    if category in RELEVANCE_CATEGORIES:
        return _relevance_candidates(row)[turn % 3][1]
    candidates = dict(_ast_candidates(row))
    label = ["first options", "extra param", "first options", "arguments not JSON",
             "no call", "first options"][turn % 6]  # fmt: skip
    return candidates[label]


def test_served_run_scores_real_rows_as_bfcl(reference: Reference, tmp_path: Path) -> None:
    picked = {"simple_python": 6, "parallel_multiple": 6, "irrelevance": 3, "live_relevance": 3}
    data = tmp_path / "data"
    script: dict[str, Any] = {}
    expected: dict[str, dict[str, bool]] = {}
    for category, n in picked.items():
        rows = real_rows(category)[:n]
        bench = BENCH[category]
        (data / bench).mkdir(parents=True)
        (data / bench / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        expected[bench] = {}
        for turn, row in enumerate(rows):
            planned = _planned(row, category, turn)
            script[row["question"][0][-1]["content"]] = planned
            expected[bench][row["id"]] = reference.verdict(row, category, _bfcl_result(planned))
    server = ToolServer(script)
    out = tmp_path / "out"
    with running(server.app()) as url:
        args = [
            "run", "--model", "openai:fc", "--base-url", f"{url}/v1", "--chat-api", "--bench",
            ",".join(expected), "--data", data, "--store", tmp_path / "s.sqlite", "--out", out,
            "--max-retries", "0",
        ]  # fmt: skip
        ok(gnomon(*args, env=KEYED))
        sent = len(server.bodies)
        again = ok(gnomon(*args, env=KEYED))  # everything stored: nothing asked again
    assert sent == sum(picked.values()) and len(server.bodies) == sent
    assert "0 computed" in again.stdout
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    for bench, verdicts in expected.items():
        got = {s["sample_id"]: s["correct"] for s in samples if s["benchmark"] == bench}
        assert got == verdicts, bench
        accuracy = results["benchmarks"][bench]["metrics"]["accuracy"]["value"]
        assert accuracy == pytest.approx(sum(verdicts.values()) / len(verdicts))
    assert 0 < sum(v for b in expected.values() for v in b.values()) < len(samples)
    # the requests: BFCL's first turn as the messages, the tools as BFCL's handler sends them
    by_question = {b["messages"][-1]["content"]: b for b in server.bodies}
    for category in picked:
        for row in real_rows(category)[: picked[category]]:
            body = by_question[row["question"][0][-1]["content"]]
            assert body["messages"] == row["question"][0]
            assert body["tools"] == reference.tools(row, category)
            assert json.dumps(body["tools"]) == json.dumps(reference.tools(row, category))
    # an undecodable call is wrong, and what the model wrote is kept for inspection
    broken = [s for s in samples if s.get("extractor") == "invalid_arguments"]
    assert broken and all(not s["correct"] or s["benchmark"] == "bfcl_irrelevance" for s in broken)
    store = sqlite3.connect(tmp_path / "s.sqlite")
    payloads = [json.loads(p) for (p,) in store.execute("SELECT payload FROM results")]
    kept = [p for p in payloads if p.get("extractor") == "invalid_arguments"]
    assert kept and all(c["arguments"] == '{"a": 1' for p in kept for c in p["tool_calls"])
    assert all("not JSON" in p["error"] for p in kept)


def test_served_prompted_run_scores_real_rows_as_bfcl(reference: Reference, tmp_path: Path) -> None:
    """The prompted variants on a served model: BFCL's system prompt and no tools in each
    request, the calls read from the reply's text, scored as BFCL's prompting path scores them."""
    picked = {"simple_python": 4, "irrelevance": 2}
    data = tmp_path / "data"
    script: dict[str, Any] = {}
    expected: dict[str, dict[str, bool]] = {}
    for category, n in picked.items():
        bench = BENCH[category] + "_prompt"
        rows = real_rows(category)[:n]
        (data / bench).mkdir(parents=True)
        (data / bench / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        expected[bench] = {}
        for turn, row in enumerate(rows):
            texts = dict(_prompted_candidates(row, category))
            labels = ["first options", "bare", "fenced python", "extra param"]
            if category == "irrelevance":
                labels = ["no call", "call"]
            text = texts[labels[turn % len(labels)]]
            script[row["question"][0][-1]["content"]] = text
            expected[bench][row["id"]] = reference.verdict(row, category, text, prompted=True)
    server = ToolServer(script)
    out = tmp_path / "out"
    with running(server.app()) as url:
        ok(gnomon(
            "run", "--model", "openai:plain", "--base-url", f"{url}/v1", "--chat-api", "--bench",
            ",".join(expected), "--data", data, "--store", tmp_path / "s.sqlite", "--out", out,
            "--max-retries", "0", env=KEYED,
        ))  # fmt: skip
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    for bench, verdicts in expected.items():
        assert {
            s["sample_id"]: s["correct"] for s in samples if s["benchmark"] == bench
        } == verdicts
    assert {True, False} <= {v for b in expected.values() for v in b.values()}
    for category in picked:
        for row in real_rows(category)[: picked[category]]:
            body = next(b for b in server.bodies if b["messages"][-1] == row["question"][0][-1])
            assert "tools" not in body
            assert body["messages"] == reference.messages(row, category)


def test_rows_without_answers_need_the_package(tmp_path: Path) -> None:
    """Rows lacking `ground_truth`, with no bfcl_eval installed to read them from: one line."""
    row = {k: v for k, v in real_rows("simple_python")[0].items() if k != "ground_truth"}
    (tmp_path / "test.jsonl").write_text(json.dumps(row) + "\n")
    proc = gnomon(
        "run", "--model", "openai:fc", "--base-url", "http://127.0.0.1:9/v1", "--chat-api",
        "--bench", "bfcl_simple", "--data", tmp_path, "--store", tmp_path / "s.sqlite",
        env=KEYED,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "pip install bfcl-eval" in proc.stderr


def test_served_model_needs_the_chat_api(tmp_path: Path) -> None:
    row = real_rows("irrelevance")[0]
    (tmp_path / "test.jsonl").write_text(json.dumps(row) + "\n")
    proc = gnomon(
        "run", "--model", "openai:fc", "--base-url", "http://127.0.0.1:9/v1", "--bench",
        "bfcl_irrelevance", "--data", tmp_path, "--store", tmp_path / "s.sqlite", env=KEYED,
    )  # fmt: skip
    assert proc.returncode == 2 and "--chat-api" in proc.stderr, proc.stderr


# ------------------------------------------------------- end to end, local chat template


@pytest.mark.slow
def test_local_model_calls_through_its_chat_template(
    llama_dir: Path, tmp_path: Path, one_thread: None
) -> None:
    """The tiny Llama with a Hermes-style tool template, taught to answer one question with the
    right call and another with a wrong argument: `gnomon run` renders the tools through the
    template, reads the calls back from the text and scores them 1 and 0."""
    from test_conversations import TOOL_TEMPLATE, _teach, _with_template

    from gnomon.rowgen import make_rows

    rows = make_rows("bfcl_simple", "test", 2)
    lessons = []
    for row, owner in zip(rows, ("right", "wrong"), strict=True):
        answer = next(iter(row["ground_truth"][0].values()))
        args = {"owner": answer["owner"][0] if owner == "right" else "Nobody"}
        name = tool_name(row["function"][0]["name"])
        call = json.dumps({"name": name, "arguments": args})
        tools = json.loads(tools_json(row["function"]))
        lessons.append((row["question"][0], tools, f"<tool_call>\n{call}\n</tool_call>"))
    model = _with_template(llama_dir, tmp_path / "m", TOOL_TEMPLATE)
    _teach(model, lessons)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    ok(gnomon(
        "run", "--model", f"hf:{model}", "--bench", "bfcl_simple", "--data", tmp_path / "data",
        "--store", tmp_path / "s.sqlite", "--out", out, "--device", "cpu",
    ))  # fmt: skip
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["correct"] for s in samples] == [True, False]
    assert all(s["extractor"] == "tool_calls" for s in samples)
    result = json.loads((out / "results.json").read_text())["benchmarks"]["bfcl_simple"]
    assert result["metrics"]["accuracy"]["value"] == 0.5


def test_a_file_of_text_answers_cannot_be_scored(tmp_path: Path) -> None:
    row = real_rows("simple_python")[0]
    (tmp_path / "test.jsonl").write_text(json.dumps(row) + "\n")
    answers = tmp_path / "answers.jsonl"
    answers.write_text(json.dumps({"id": row["id"], "output": "calculate_triangle_area()"}) + "\n")
    store = tmp_path / "s.sqlite"
    proc = gnomon(
        "score", "--bench", "bfcl_simple", answers, "--data", tmp_path, "--store", store, env=KEYED
    )
    assert proc.returncode == 2 and "tool calls" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
