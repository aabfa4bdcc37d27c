"""Offline detection: without a reachable hub, the HF libraries retry for a long time before
failing. One quick connection test switches them to their offline mode (local cache only)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

_FLAGS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def prefer_offline_when_unreachable(timeout: float = 2.0) -> bool:
    """Returns True when the libraries were put in offline mode (already, or just now)."""
    if any(os.environ.get(f, "").lower() in ("1", "true", "yes") for f in _FLAGS):
        return True
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        with socket.create_connection((host or "huggingface.co", 443), timeout=timeout):
            return False
    except OSError:
        for flag in _FLAGS:
            os.environ[flag] = "1"
        return True
