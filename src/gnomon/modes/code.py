"""Code generation: completions run with their tests in the sandbox, scored by unbiased pass@k.

A sample's completions are judged together, and a batch of samples at once, so the sandbox's
worker pool stays busy while the engine generates the next batch's text.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from gnomon.engines.base import GenerateRequest, GenerateResult
from gnomon.hub.spec import BenchmarkSpec
from gnomon.modes.base import Answer, Mode, answer_facts
from gnomon.modes.turns import stops, turn_request
from gnomon.prompts import Sample
from gnomon.sandbox import Limits, Program, Sandbox, Verdict

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_PYTHON_TAGS = {"", "python", "py", "python3"}
_CODE_START = re.compile(r"^(def |class |import |from |@|async def |#|if __name__)")


def pass_at_k(n: int, c: int, k: int) -> float:
    """The Codex paper's unbiased estimator 1 - C(n-c, k) / C(n, k), as a stable product."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def clean_completion(text: str) -> str:
    """The code in a chat model's answer: the first Python fenced block if there is one, else
    the text without a leading line of prose ("Here is the function:")."""
    if "```" in text:
        blocks = [body for tag, body in _FENCE.findall(text) if tag.lower() in _PYTHON_TAGS]
        if blocks:
            return blocks[0]
    lines = text.split("\n")
    while lines and lines[0].strip() and not lines[0][:1].isspace():
        first = lines[0].strip()
        if _CODE_START.match(first) or not re.match(r"^[A-Z][\w ,'’-]*\b.*[:.!]$", first):
            break
        if _compiles(first):
            break
        lines.pop(0)
    return "\n".join(lines)


def last_fenced_block(text: str) -> str:
    """LiveCodeBench's extraction: the lines between the last two lines that hold ``` (fence
    tags and all), or nothing where fewer than two do."""
    lines = text.split("\n")
    fences = [i for i, line in enumerate(lines) if "```" in line]
    if len(fences) < 2:
        return ""
    return "\n".join(lines[fences[-2] + 1 : fences[-1]])


def _compiles(line: str) -> bool:
    try:
        compile(line if not line.endswith(":") else line + "\n    pass", "<line>", "exec")
    except SyntaxError:
        return False
    return True


class CodeMode(Mode):
    verb = "generate"
    scores_in_background = True

    def __init__(self, spec: BenchmarkSpec, samples: int = 1, temperature: float | None = None):
        super().__init__(spec)
        assert spec.generation is not None and spec.code is not None  # spec validation
        self.generation = spec.generation
        self.code = spec.code
        self.samples = samples
        # several samples of one greedy decode would be identical: sample unless told otherwise
        self.temperature = temperature if temperature is not None else (0.8 if samples > 1 else 0.0)
        self._sandbox: Sandbox | None = None

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            limits = Limits(
                wall_seconds=self.code.wall_seconds,
                cpu_seconds=max(1, int(self.code.wall_seconds)),
                memory_bytes=self.code.memory_mb << 20,
            )
            self._sandbox = Sandbox(limits)
        return self._sandbox

    def settings(self) -> dict[str, Any]:
        return {
            **self.generation.model_dump(),
            "samples": self.samples,
            "temperature": self.temperature,
        }

    def metric_names(self) -> list[str]:
        return [m for m in self.spec.metrics if int(m.split("@")[1]) <= self.samples]

    def requests(self, sample: Sample) -> list[GenerateRequest]:
        g, until = self.generation, stops(sample, self.generation)
        if self.spec.prompt.chat:  # one user turn, sent as a conversation
            (first,) = turn_request(sample, g, [])
            assert isinstance(first, GenerateRequest)
            return [
                dataclasses.replace(first, temperature=self.temperature, seed=i)
                for i in range(self.samples)
            ]
        return [
            GenerateRequest(sample.context, until, g.max_tokens, self.temperature, seed=i)
            for i in range(self.samples)
        ]

    def extract(self, raw: str) -> str:
        """The code in an answer, as the spec's `fences` reads it."""
        if not self.code.strip_fences:
            return raw
        return last_fenced_block(raw) if self.code.fences == "last" else clean_completion(raw)

    def scorer_config(self) -> dict[str, Any]:
        config = super().scorer_config() | {
            "strip_fences": self.code.strip_fences,
            "wall_seconds": self.code.wall_seconds,
            "memory_mb": self.code.memory_mb,
        }
        if self.code.fences != "first_python":  # only where set: stored scores stay current
            config["fences"] = self.code.fences
        if self.code.completion_as != "code":
            config["completion_as"] = self.code.completion_as
        return config

    def legacy_answers(self, sample: Sample, payload: dict[str, Any]) -> list[Answer] | None:
        runs = payload.get("runs")
        if not isinstance(runs, list) or len(runs) != self.samples:
            return None
        raws = [r.get("raw") if isinstance(r, dict) else None for r in runs]
        if not all(isinstance(raw, str) for raw in raws):
            return None
        truncated = bool(payload.get("truncated"))
        return [GenerateResult(str(raw), truncated) for raw in raws]

    def result(self, sample: Sample, answers: list[GenerateResult]) -> dict[str, Any]:
        return self.results([(sample, answers)])[0]

    def results(self, batch: list[tuple[Sample, list[Any]]]) -> list[dict[str, Any]]:
        programs: list[Program] = []
        owners: list[tuple[int, int]] = []
        verdicts: dict[tuple[int, int], Verdict | tuple[str, str]] = {}
        completions: dict[tuple[int, int], str] = {}
        for s_index, (sample, answers) in enumerate(batch):
            program = sample.program or {"error": "no tests"}
            for a_index, answer in enumerate(answers):
                raw = answer.text
                code = self.extract(raw)
                completions[(s_index, a_index)] = code
                if "error" in program:
                    verdicts[(s_index, a_index)] = ("failed", program["error"])
                elif not code.strip():
                    verdicts[(s_index, a_index)] = ("failed", "the completion is empty")
                else:
                    owners.append((s_index, a_index))
                    programs.append(self._program(program, code))
        for index, verdict in self.sandbox.run_many(programs):
            verdicts[owners[index]] = verdict
        return [
            self._sample_result(s_index, sample, answers, verdicts, completions)
            for s_index, (sample, answers) in enumerate(batch)
        ]

    def _program(self, program: dict[str, str], code: str) -> Program:
        prefix = program["solution_prefix"]
        if self.code.completion_as == "text":
            # the prefix is a harness that runs the completion per test, in the solution's own
            # process: none of it is the judge's (it would shadow the harness's functions)
            solution = f"COMPLETION = {code!r}\n{prefix}"
            return Program(solution, program["tests"], program["call"])
        # the prompt: its helpers are trusted
        return Program(prefix + code, program["tests"], program["call"], helpers=prefix)

    def _sample_result(
        self,
        s_index: int,
        sample: Sample,
        answers: list[GenerateResult],
        verdicts: dict[tuple[int, int], Verdict | tuple[str, str]],
        completions: dict[tuple[int, int], str],
    ) -> dict[str, Any]:
        runs = []
        for a_index, answer in enumerate(answers):
            verdict = verdicts[(s_index, a_index)]
            run: dict[str, Any] = {
                "completion": completions[(s_index, a_index)],
                "raw": answer.text,
            }
            if isinstance(verdict, Verdict):
                run |= {
                    "status": verdict.status,
                    "reason": verdict.reason,
                    "stdout": verdict.stdout,
                    "stderr": verdict.stderr,
                    "seconds": round(verdict.seconds, 3),
                }
            else:
                run |= {"status": verdict[0], "reason": verdict[1]}
            runs.append(run)
        n, c = len(runs), sum(r["status"] == "passed" for r in runs)
        metrics = {name: pass_at_k(n, c, int(name.split("@")[1])) for name in self.metric_names()}
        facts: dict[str, Any] = {}
        if self.spec.prompt.chat:  # a chat model's answer: counted as reasoning forms count them
            facts = answer_facts(answers)
            facts["extractor"] = "fenced" if runs[0]["completion"].strip() else "none"
        return facts | {
            "prediction": runs[0]["completion"],
            # tests run by a harness hold the data of every case: the row's target says more
            "target": (sample.program or {}).get("tests", "")
            if self.code.completion_as == "code"
            else sample.target,
            "correct": runs[0]["status"] == "passed",
            "metrics": metrics,
            "passed": c,
            "n": n,
            "runs": runs,
            "reason": runs[0]["reason"],
            "truncated": any(a.truncated for a in answers),
        }
