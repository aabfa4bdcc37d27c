"""`gnomon serve` in one process, `gnomon run --model openai:...` in another: the same scores as a
local run, resumable, and the API key never written into the store."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from gnomon_cli import ENV, GNOMON, gnomon, ok, summary

pytestmark = pytest.mark.slow
KEY = "sk-test-not-a-real-key-5f1c"


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(chat_llama_dir: Path) -> str:
    port = free_port()
    env = {**ENV, "GNOMON_API_KEY": KEY}
    proc = subprocess.Popen(
        [str(GNOMON), "serve", "--model", f"hf:{chat_llama_dir}", "--name", "tiny", "--port",
         str(port), "--device", "cpu", "--dtype", "float32"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            headers = {"Authorization": f"Bearer {KEY}"}
            if httpx.get(f"{url}/models", headers=headers, timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError(proc.communicate()[0].decode())
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def samples(out: Path) -> dict[tuple[str, str], dict]:
    lines = (out / "samples.jsonl").read_text().splitlines()
    return {(s["benchmark"], s["sample_id"]): s for s in map(json.loads, lines)}


def test_served_run_matches_local_and_resumes(
    server: str, llama_dir: Path, data_root: Path, tmp_path: Path
) -> None:
    bench = ["--bench", "mmlu,arc_easy", "--data", data_root, "--limit", "12"]
    local_out, served_out = tmp_path / "local", tmp_path / "served"
    ok(gnomon("run", "--model", f"hf:{llama_dir}", *bench, "--store", tmp_path / "l.sqlite",
              "--device", "cpu", "--dtype", "float32", "--out", local_out))  # fmt: skip
    env = {**ENV, "MY_KEY": KEY}
    store = tmp_path / "s.sqlite"
    args = ["run", "--model", "openai:tiny", "--base-url", server, "--api-key-env", "MY_KEY",
            *bench, "--store", store]  # fmt: skip
    first = ok(gnomon(*args, "--out", served_out, env=env))
    assert summary(first.stdout) == (24, 0, 24)
    local, served = samples(local_out), samples(served_out)
    assert local.keys() == served.keys()
    for key, ours in served.items():
        theirs = local[key]
        assert ours["prediction"] == theirs["prediction"], key
        for a, b in zip(ours["choice_logprobs"], theirs["choice_logprobs"], strict=True):
            assert a == pytest.approx(b, abs=1e-4), key
    assert summary(ok(gnomon(*args, env=env)).stdout) == (24, 24, 0)
    with sqlite3.connect(store) as conn:
        dump = "\n".join(conn.iterdump())
    assert KEY not in dump


def test_wrong_key_stops_with_one_line(server: str, data_root: Path, tmp_path: Path) -> None:
    env = {**ENV, "OPENAI_API_KEY": "sk-wrong"}
    proc = gnomon("run", "--model", "openai:tiny", "--base-url", server, "--bench", "mmlu",
                  "--data", data_root, "--limit", "2", "--store", tmp_path / "s",
                  env=env)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "401" in last and "sk-wrong" not in proc.stderr


def test_unknown_served_model_lists_the_served_ones(
    server: str, data_root: Path, tmp_path: Path
) -> None:
    env = {**ENV, "OPENAI_API_KEY": KEY}
    proc = gnomon("run", "--model", "openai:nope", "--base-url", server, "--bench", "mmlu",
                  "--limit", "1", "--data", data_root, "--store", tmp_path / "s",
                  env=env)  # fmt: skip
    assert proc.returncode == 2
    assert "tiny" in proc.stderr.strip().splitlines()[-1]


def test_key_file_is_read_and_not_echoed(server: str, data_root: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    os.chmod(key_file, 0o600)
    proc = gnomon("run", "--model", "openai:tiny", "--base-url", server, "--api-key-file",
                  key_file, "--bench", "arc_easy", "--data", data_root, "--limit", "2",
                  "--store", tmp_path / "s")  # fmt: skip
    ok(proc)
    assert KEY not in proc.stdout + proc.stderr


def test_chat_only_endpoint_runs_choice_benchmarks_by_generation(
    server: str, data_root: Path, tmp_path: Path
) -> None:
    env = {**ENV, "OPENAI_API_KEY": KEY}
    out = tmp_path / "out"
    proc = ok(gnomon("run", "--model", "openai:tiny", "--base-url", server, "--chat-api",
                     "--bench", "arc_easy", "--data", data_root, "--limit", "3", "--store",
                     tmp_path / "s", "--out", out, env=env))  # fmt: skip
    assert summary(proc.stdout) == (3, 0, 3)
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["choice_scored_by"] == "generation"
    bench = results["benchmarks"]["arc_easy"]
    assert set(bench["metrics"]) == {"acc"}
    lines = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert all("output" in s for s in lines)
    from gnomon.hub import resolve

    assert bench["prompt_hash"] != resolve("arc_easy").prompt_hash()


FAULTS = ["429", "500", "malformed", "502", "429-after", "close", "503"]


def test_faults_between_client_and_server_cost_retries_not_samples(
    server: str, llama_dir: Path, data_root: Path, tmp_path: Path
) -> None:
    """A fault-injecting proxy in front of `gnomon serve`: every fourth POST gets a 429 (with and
    without Retry-After), a 5xx, a malformed body or a connection dropped mid-body."""
    from test_openai_engine import proxied

    def plan(n: int, body: dict) -> str | None:
        return FAULTS[(n // 4) % len(FAULTS)] if n % 4 == 1 else None

    bench = ["--bench", "mmlu,arc_easy", "--data", data_root, "--limit", "8"]
    ok(gnomon("run", "--model", f"hf:{llama_dir}", *bench, "--store", tmp_path / "l.sqlite",
              "--device", "cpu", "--dtype", "float32", "--out", tmp_path / "local"))  # fmt: skip
    env = {**ENV, "OPENAI_API_KEY": KEY}
    with proxied(server.removesuffix("/v1"), plan) as (url, proxy):
        proc = ok(gnomon("run", "--model", "openai:tiny", "--base-url", f"{url}/v1", *bench,
                         "--store", tmp_path / "s.sqlite", "--out", tmp_path / "served",
                         "--concurrency", "4", env=env))  # fmt: skip
    assert summary(proc.stdout) == (16, 0, 16)
    assert "could not be answered" not in proc.stdout
    injected = [plan(n, {}) for n in range(len(proxy.posts))]
    assert sum(f is not None for f in injected) >= 5, injected
    local, served = samples(tmp_path / "local"), samples(tmp_path / "served")
    lines = (tmp_path / "served" / "samples.jsonl").read_text().splitlines()
    assert len(lines) == len(served) == len(local) == 16  # every sample exactly once
    for key, ours in served.items():
        assert ours["prediction"] == local[key]["prediction"], key
        for a, b in zip(ours["choice_logprobs"], local[key]["choice_logprobs"], strict=True):
            assert a == pytest.approx(b, abs=1e-4), key


def test_a_restarted_served_run_sends_only_what_is_missing(
    server: str, data_root: Path, tmp_path: Path
) -> None:
    env = {**ENV, "OPENAI_API_KEY": KEY}
    store = tmp_path / "s.sqlite"
    args = ["run", "--model", "openai:tiny", "--base-url", server, "--bench", "arc_easy",
            "--data", data_root, "--store", store]  # fmt: skip
    assert summary(ok(gnomon(*args, "--limit", "3", env=env)).stdout) == (3, 0, 3)
    assert summary(ok(gnomon(*args, "--limit", "7", env=env)).stdout) == (7, 3, 4)
    with sqlite3.connect(store) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM results").fetchone()
    assert count == 7


def test_model_id_names_the_served_model_across_urls(
    server: str, data_root: Path, tmp_path: Path
) -> None:
    """The same checkpoint behind another port (here a proxy) reuses what `--model-id` stored."""
    from test_openai_engine import proxied

    env = {**ENV, "OPENAI_API_KEY": KEY}
    base = ["run", "--model", "openai:tiny", "--bench", "arc_easy", "--data", data_root,
            "--limit", "3", "--store", tmp_path / "s.sqlite"]  # fmt: skip
    named = ["--model-id", "tiny-llama-seed1"]
    assert summary(ok(gnomon(*base, "--base-url", server, *named, env=env)).stdout) == (3, 0, 3)
    with proxied(server.removesuffix("/v1"), lambda n, body: None) as (url, proxy):
        moved = ok(gnomon(*base, "--base-url", f"{url}/v1", *named, env=env))
        assert summary(moved.stdout) == (3, 3, 0) and not proxy.posts
        unnamed = ok(gnomon(*base, "--base-url", f"{url}/v1", env=env))
        assert summary(unnamed.stdout) == (3, 0, 3)  # without it, a new URL is a new model
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        keys = {k for (k,) in conn.execute("SELECT DISTINCT model_key FROM runs")}
    assert "openai:id:tiny-llama-seed1" in keys


def test_max_retries_and_timeout_flags(server: str, data_root: Path, tmp_path: Path) -> None:
    """`--timeout` bounds a whole request (the proxy answers after 1.5 s); `--max-retries 1`
    makes each sample two attempts, then a failed sample."""
    from test_openai_engine import proxied

    env = {**ENV, "OPENAI_API_KEY": KEY}
    with proxied(server.removesuffix("/v1"), lambda n, body: "slow") as (url, proxy):
        proc = ok(gnomon("run", "--model", "openai:tiny", "--base-url", f"{url}/v1",
                         "--bench", "arc_easy", "--data", data_root, "--limit", "2",
                         "--store", tmp_path / "s.sqlite", "--timeout", "0.5",
                         "--max-retries", "1", env=env))  # fmt: skip
    assert "2 samples could not be answered" in proc.stdout
    assert "within 0.5 s" in proc.stdout
    assert len(proxy.posts) == 2 * 2  # 2 questions (a list of its choices each), 2 attempts


@pytest.mark.parametrize(
    "flags",
    [("--timeout", "0"), ("--timeout", "nan"), ("--timeout", "inf"), ("--max-retries", "-1"),
     ("--max-retries", "x"), ("--model-id", ""), ("--model-id", "a\nb")],
)  # fmt: skip
def test_bad_client_flags_are_one_line_errors(
    flags: tuple[str, str], data_root: Path, tmp_path: Path
) -> None:
    proc = gnomon("run", "--model", "openai:tiny", "--base-url", "http://127.0.0.1:9/v1",
                  "--bench", "arc_easy", "--data", data_root, "--store", tmp_path / "s",
                  *flags)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr


def test_model_id_is_for_served_models_only(llama_dir: Path, data_root: Path, tmp_path: Path):
    proc = gnomon("run", "--model", f"hf:{llama_dir}", "--model-id", "x", "--bench", "arc_easy",
                  "--data", data_root, "--store", tmp_path / "s")  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: --model-id")
