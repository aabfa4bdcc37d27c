"""`openai:` — a model behind an OpenAI-compatible server, named by the server that serves it
(or by `--model-id`, which the user vouches for)."""

from __future__ import annotations

from gnomon.engines.base import Engine
from gnomon.engines.refs import ApiSettings, LoadOptions, ModelRef
from gnomon.engines.registry import EngineKind
from gnomon.errors import UserError

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def parse(name: str, revision: str | None, model: str) -> ModelRef:
    if not name:
        raise UserError("--model openai:NAME needs the served model's name")
    return ModelRef("openai", name, None, False)  # a server has no revisions to pick


def model_key(ref: ModelRef, dtype: str, api: ApiSettings | None) -> str:
    if api and api.model_id is not None:  # the user vouches: same model wherever it is served
        return f"openai:id:{api.model_id.strip()}"
    base = (api.base_url if api else None) or DEFAULT_BASE_URL
    return f"openai:{ref.name}@{base.rstrip('/')}"


def load(ref: ModelRef, options: LoadOptions) -> Engine:
    from gnomon.engines.openai import OpenAIEngine

    api = options.api or ApiSettings()
    return OpenAIEngine(
        ref.name,
        (api.base_url or DEFAULT_BASE_URL).rstrip("/"),
        api_key=api.api_key(),
        mode="chat" if api.chat else "completions",
        concurrency=api.concurrency,
        requests_per_minute=api.requests_per_minute,
        tokens_per_minute=api.tokens_per_minute,
        max_retries=api.max_retries,
        timeout=api.timeout,
    )


ENGINE = EngineKind("openai", parse, model_key, load, served=True)
