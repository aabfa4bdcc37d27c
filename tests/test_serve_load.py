"""`gnomon serve` under load and at shutdown, with real servers, clients and signals.

The model is the tiny Llama with a 32k window and its EOS made unreachable, so a greedy
completion with a large `max_tokens` runs for tens of seconds unless it is stopped: every bound
asserted here is far below what finishing that work would take.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from gnomon_cli import ENV, GNOMON, gnomon
from loopback import running

from gnomon.engines.hf import HFEngine
from gnomon.serve.app import create_app

NAME = "endless"
WINDOW = 32768
LONG = 30000  # tokens: about 20-40 s of greedy decoding on a CPU core
BOUND = 5.0  # seconds: what stopping or answering may take here, on a busy shared machine


@pytest.fixture(scope="module")
def endless_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama that never chooses EOS: its output row is zero, so its logit (0) stays below
    the largest of a thousand random others."""
    import torch
    import transformers

    from gnomon.tiny import build_model

    path = build_model(tmp_path_factory.mktemp("endless"), "llama", seed=1, max_positions=WINDOW)
    model = transformers.AutoModelForCausalLM.from_pretrained(path)
    eos = transformers.AutoTokenizer.from_pretrained(path).eos_token_id
    with torch.no_grad():
        model.get_output_embeddings().weight[eos] = 0
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def engine(endless_dir: Path) -> HFEngine:
    return HFEngine(str(endless_dir), device="cpu", dtype="float32", batch_size=1)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as executor:
        yield executor


def _body(max_tokens: int, prompt: str = "The small river") -> dict:
    return {"model": NAME, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0}


def _post(url: str, max_tokens: int, timeout: float) -> Callable[[], httpx.Response]:
    """A request in its own connection; on timeout httpx closes it, as a client giving up does."""
    return lambda: httpx.post(f"{url}/v1/completions", json=_body(max_tokens), timeout=timeout)


def _health(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=BOUND).json()


def _until(what: Callable[[], bool], seconds: float = BOUND) -> float:
    """Seconds until `what()` held; fails after `seconds`."""
    start = time.monotonic()
    while not what():
        assert time.monotonic() - start < seconds, "timed out waiting"
        time.sleep(0.02)
    return time.monotonic() - start


def _timed_out(future: Future) -> None:
    with pytest.raises(httpx.ReadTimeout):
        future.result(timeout=60)


def _served_promptly(url: str) -> None:
    """The next request is answered at once: no abandoned work is ahead of it."""
    start = time.monotonic()
    response = httpx.post(f"{url}/v1/completions", json=_body(4), timeout=60)
    elapsed = time.monotonic() - start
    assert response.status_code == 200, response.text
    assert elapsed < BOUND, f"the next request took {elapsed:.1f} s"
    assert float(response.headers["X-Queue-Time"]) < BOUND
    assert float(response.headers["X-Compute-Time"]) >= 0


def test_running_generation_stops_when_its_client_leaves(engine, pool) -> None:
    with running(create_app(engine, NAME)) as url:
        gone = pool.submit(_post(url, LONG, timeout=1.5))
        _timed_out(gone)
        _served_promptly(url)
        health = _health(url)
        assert (health["running"], health["queued"]) == (0, 0)
        assert (health["started"], health["cancelled"], health["finished"]) == (2, 1, 1)


def test_queued_request_whose_client_left_never_starts(engine, pool) -> None:
    with running(create_app(engine, NAME)) as url:
        first = pool.submit(_post(url, LONG, timeout=3.0))
        _until(lambda: _health(url).get("running", 1) == 1)
        second = pool.submit(_post(url, LONG, timeout=1.0))
        _timed_out(second)
        # withdrawn while the first still runs: it leaves the queue and never starts
        _until(lambda: _health(url).get("queued", 0) == 0)
        _timed_out(first)
        _served_promptly(url)  # had the second started, its whole generation would be ahead
        health = _health(url)
        assert (health["running"], health["queued"]) == (0, 0)
        assert (health["started"], health["cancelled"], health["finished"]) == (2, 2, 1)


def _unavailable(response: httpx.Response, code: str) -> int:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["type"] == "server_error" and error["message"]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 600
    return retry_after


def test_full_queue_and_late_start_are_503_with_retry_after(engine, pool) -> None:
    app = create_app(engine, NAME, max_queue=1, queue_timeout=1.0)
    with running(app) as url:
        _served_promptly(url)  # one finished request: Retry-After has a compute time to go by
        busy = pool.submit(_post(url, LONG, timeout=BOUND))
        _until(lambda: _health(url)["running"] == 1)
        waiting = pool.submit(_post(url, 4, timeout=BOUND))
        _until(lambda: _health(url)["queued"] == 1)

        start = time.monotonic()
        refused = httpx.post(f"{url}/v1/completions", json=_body(4), timeout=BOUND)
        assert time.monotonic() - start < 1.0, "a full queue must answer at once"
        _unavailable(refused, "server_busy")
        assert "max-queue" in refused.json()["error"]["message"]

        late = waiting.result(timeout=BOUND)  # queued for queue_timeout, then refused
        _unavailable(late, "queue_timeout")
        assert 1.0 <= float(late.headers["X-Queue-Time"]) < BOUND
        health = _health(url)
        assert (health["running"], health["queued"], health["rejected"]) == (1, 0, 2)
        _timed_out(busy)
        _served_promptly(url)


def _free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_serve_promptly(endless_dir: Path, pool, sig: signal.Signals) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(GNOMON), "serve", "--model", f"hf:{endless_dir}", "--name", NAME, "--port",
         str(port), "--device", "cpu", "--dtype", "float32"],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        _until(lambda: _up(url), seconds=90)
        running_ = pool.submit(_post(url, LONG, timeout=60))
        _until(lambda: _health(url).get("running", 1) == 1)
        queued = pool.submit(_post(url, LONG, timeout=60))
        _until(lambda: _health(url).get("queued", 1) == 1)

        proc.send_signal(sig)
        start = time.monotonic()
        try:
            output, _ = proc.communicate(timeout=3 * BOUND)
        except subprocess.TimeoutExpired:
            pytest.fail("gnomon serve was still running 15 s after the signal")
        elapsed = time.monotonic() - start
        assert elapsed < 2 * BOUND, f"exit took {elapsed:.1f} s"
        assert proc.returncode == 0, output
        assert "Traceback" not in output
        name = signal.Signals(sig).name
        line = (
            f"stopped on {name}: 1 running request(s) cancelled, 1 queued request(s) answered 503"
        )
        assert line in output
        for future in (running_, queued):
            response = future.result(timeout=BOUND)
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "server_shutting_down"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v1/models", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_taken_port_is_one_line_before_loading(endless_dir: Path) -> None:
    with closing(socket.socket()) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = gnomon("serve", "--model", f"hf:{endless_dir}", "--port", port, "--device", "cpu")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in proc.stderr and "serving" not in proc.stderr


def test_serving_a_served_model_is_one_line() -> None:
    """`serve` drives a local model; an `openai:` one is refused before anything is reached."""
    proc = gnomon("serve", "--model", "openai:some-model", timeout=60)
    assert proc.returncode == 2, proc.stderr
    said = "error: gnomon serve serves local models (hf:), not openai: models"
    assert proc.stderr.strip() == said
