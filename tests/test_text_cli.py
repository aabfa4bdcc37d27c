"""Hostile text through the real CLI: lone surrogates in data rows, a model path that is not
UTF-8, and a served model whose output holds `\\ud800`; every command shows it, none crashes,
and what was stored reads back exactly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from gnomon_cli import ENV, GNOMON, gnomon, ok
from loopback import running

from gnomon.rank.web import create_app
from gnomon.store import Store

pytestmark = pytest.mark.slow
Q = "Which \ud800 one\udcff?"


def _hostile_data(data_root: Path, tmp_path: Path) -> Path:
    """ARC-Easy rows with lone surrogates (JSON escapes, as any JSON writer emits them)."""
    rows = [json.loads(line) for line in (data_root / "arc_easy" / "test.jsonl").open()][:4]
    for row in rows:
        row["question"] = Q + row["question"]
        row["choices"]["text"][0] = "\ud83d alone " + row["choices"]["text"][0]
    out = tmp_path / "data"
    out.mkdir(parents=True)
    (out / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="ascii")
    return out


def _run(*args: object) -> subprocess.CompletedProcess[str]:
    """argv as bytes, so a path that is not UTF-8 reaches gnomon as the user's shell sends it."""
    argv = [
        os.fsencode(str(GNOMON)),
        *(a if isinstance(a, bytes) else os.fsencode(a) for a in args),
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=ENV)


def test_lone_surrogates_and_non_utf8_paths_through_every_command(
    llama_dir: Path, data_root: Path, tmp_path: Path
) -> None:
    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b"/odd-\xff\xfe"))  # not UTF-8
    data = _hostile_data(data_root, odd)
    store, out = odd / "store.sqlite", odd / "out"
    common = ("--bench", "arc_easy", "--data", data, "--store", store, "--device", "cpu",
              "--dtype", "float32")  # fmt: skip
    run = ok(_run("run", "--model", f"hf:{llama_dir}", *common, "--out", out))
    assert "odd-\ufffd\ufffd" in run.stdout + run.stderr  # odd bytes shown as U+FFFD
    results = json.loads((out / "results.json").read_bytes().decode("utf-8"))
    assert results["store"] == str(store)  # JSON keeps the exact path
    lines = (out / "samples.jsonl").read_bytes().decode("utf-8").splitlines()
    assert len(lines) == 4 and all("target" in json.loads(line) for line in lines)
    model = odd / "model"
    shutil.copytree(llama_dir, model)  # the same files: the same identity, all reused
    copied = ok(_run("run", "--model", f"hf:{model}", *common))
    assert "4 reused from the store" in copied.stdout + copied.stderr
    assert "odd-\ufffd\ufffd/model" in copied.stdout + copied.stderr

    db = Store(store, create=False)
    run_row = db.runs()[-1]  # the first, which computed
    prompts = [s["prompt"] for s in db.samples(run_row["run_id"])]
    assert all(Q in p for p in prompts)  # stored and read back exactly
    db.close()
    again = ok(_run("run", "--model", f"hf:{llama_dir}", *common))
    assert "4 reused from the store" in again.stdout + again.stderr  # the keys hashed alike

    shown = ok(gnomon("runs", "show", run_row["run_id"], "--store", store, "--samples", "4"))
    assert "\ufffd" in shown.stdout
    ok(gnomon("runs", "list", "--store", store))
    ok(gnomon("rank", "--store", store))
    site = tmp_path / "site"
    ok(gnomon("rank", "export", site, "--store", store))
    samples = [p.read_text(encoding="utf-8") for p in (site / "run").rglob("all-1.html")]
    assert samples and all("Which \ufffd one\ufffd?" in page for page in samples)
    json.loads((site / "board.json").read_text(encoding="utf-8"))
    with running(create_app(store)) as base, httpx.Client(base_url=base) as client:
        home = client.get("/")
        assert home.status_code == 200
        run_page = client.get(f"/run/{run_row['run_id']}", follow_redirects=True)
        assert run_page.status_code == 200 and "Which \ufffd one\ufffd?" in run_page.text
        assert client.get("/api/board.json").status_code == 200


class _Completions(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint whose completions hold lone surrogates (JSON escapes)."""

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": "tiny\udcff", "object": "model"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        text = "Think \ud800 hard.\nThe answer is 7.\n#### 7 \udcff"
        self._send({"choices": [{"text": text, "index": 0, "finish_reason": "stop"}],
                    "usage": {"total_tokens": 5}})  # fmt: skip

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def surrogate_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Completions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_served_output_with_lone_surrogates_is_stored_and_shown(
    surrogate_server: str, data_root: Path, tmp_path: Path
) -> None:
    store, out = tmp_path / "s.sqlite", tmp_path / "out"
    env = {**ENV, "K": "key"}
    args = ["run", "--model", "openai:tiny\udcff", "--base-url", surrogate_server,
            "--api-key-env", "K", "--bench", "gsm8k", "--data", data_root, "--limit", "3",
            "--store", store, "--out", out]  # fmt: skip
    argv = [os.fsencode(str(a)) for a in (GNOMON, *args)]  # the name holds the byte 0xff
    ok(subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env))
    db = Store(store, create=False)
    (run,) = db.runs()
    assert run["status"] == "complete" and run["model"] == "openai:tiny\udcff"
    outputs = [s["output"] for s in db.samples(run["run_id"])]
    assert outputs and all("Think \ud800 hard." in o for o in outputs)
    db.close()
    lines = [json.loads(x) for x in (out / "samples.jsonl").read_text("utf-8").splitlines()]
    assert all(line["output"].endswith("#### 7 \udcff") for line in lines)
    assert json.loads((out / "results.json").read_text("utf-8"))["benchmarks"]["gsm8k"]
    shown = ok(gnomon("runs", "show", run["run_id"], "--store", store, "--samples", "4"))
    assert "Traceback" not in shown.stderr
