"""`gnomon serve`: a local model behind an OpenAI-compatible HTTP API, so a model on one machine
can be evaluated from another and OpenAI-compatible clients can be tested against a real server.

Importing this package is cheap (the CLI reads the defaults below for its help); FastAPI, torch
and uvicorn load with `gnomon.serve.app`.
"""

# Requests that may wait behind the running one: room for a couple of clients at gnomon's
# default concurrency (8); beyond it a request is refused at once with 503 and Retry-After.
DEFAULT_MAX_QUEUE = 16
# Seconds a request may wait to start before it is answered 503 with Retry-After.
DEFAULT_QUEUE_TIMEOUT = 120.0


def check_port(host: str, port: int) -> None:
    """A port already taken is a one-line error before the model loads, not a server log line
    (and exit 3) after it."""
    import socket

    from gnomon.errors import UserError

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
