"""The LLM gateway: every remote model goes through litellm (a Router over the configured list).

Models come from settings: ``OPENCHAT_LLM_MODEL`` (one litellm model string, with optional
``OPENCHAT_LLM_API_BASE`` / ``OPENCHAT_LLM_API_KEY``, else litellm's usual provider env keys)
and ``OPENCHAT_LLM_MODELS`` (a litellm Router ``model_list``). A request picks one by its
``model`` field. Provider failures become ``ApiError``: 504 on timeout, 502 otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import assistant.chat  # noqa: F401  (sets LITELLM_LOCAL_MODEL_COST_MAP before litellm loads)
from assistant.errors import ApiError
from assistant.settings import AppSettings

log = logging.getLogger(__name__)


def _litellm() -> Any:
    """litellm, imported on first use: it takes seconds to import, and a process with no
    remote model configured (the CLI, the extractive default) never needs it."""
    import litellm

    litellm.suppress_debug_info = True
    return litellm


@dataclass
class Delta:
    """A piece of streamed model output, or the usage the provider reported at the end."""

    text: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def provider_error(exc: Exception) -> ApiError:
    """A litellm/provider exception as the error our API returns."""
    if isinstance(exc, ApiError):
        return exc
    litellm = _litellm()
    name = exc.__class__.__name__
    if isinstance(exc, litellm.Timeout):
        return ApiError(504, f"the language model did not answer in time ({name})", "upstream_timeout")
    if isinstance(exc, litellm.ContextWindowExceededError):
        return ApiError(400, "the conversation is too long for the model's context window", "context_length_exceeded", "messages")
    message = str(getattr(exc, "message", exc)).splitlines()[0][:300] if str(exc) else name
    return ApiError(502, f"the language model failed: {name}: {message}", "upstream_error")


class LlmGateway:
    """The configured remote models, behind one litellm Router."""

    def __init__(self, settings: AppSettings) -> None:
        model_list: list[dict[str, Any]] = [dict(m) for m in settings.llm_models]
        if settings.llm_model:
            params: dict[str, Any] = {"model": settings.llm_model}
            if settings.llm_api_base:
                params["api_base"] = settings.llm_api_base
            if settings.llm_api_key:
                params["api_key"] = settings.llm_api_key
            model_list.insert(0, {"model_name": settings.llm_model, "litellm_params": params})
        for entry in model_list:
            if "model_name" not in entry or "model" not in entry.get("litellm_params", {}):
                raise ValueError("each OPENCHAT_LLM_MODELS entry needs model_name and litellm_params.model")
        self.model_list = model_list
        self.timeout = settings.llm_timeout
        self.default_context = settings.llm_context_tokens
        # The Router holds no connection until the first call; building it here is safe.
        self.router = (
            _litellm().Router(model_list=model_list, num_retries=settings.llm_retries, timeout=settings.llm_timeout)
            if model_list else None
        )

    def models(self) -> list[str]:
        return list(dict.fromkeys(m["model_name"] for m in self.model_list))

    def _litellm_model(self, name: str) -> str:
        for m in self.model_list:
            if m["model_name"] == name:
                return str(m["litellm_params"]["model"])
        raise KeyError(name)

    def context_window(self, name: str) -> int:
        """The model's input window per litellm's (local) model map, else the configured default."""
        try:
            info = _litellm().get_model_info(self._litellm_model(name))
            return int(info.get("max_input_tokens") or info.get("max_tokens") or self.default_context)
        except Exception:  # noqa: BLE001  litellm raises a bare Exception for models its map lacks (self-hosted, aliases)
            return self.default_context

    def count_tokens(self, name: str, messages: list[dict[str, str]]) -> int:
        try:
            model = self._litellm_model(name)
        except KeyError:
            model = name
        return int(_litellm().token_counter(model=model, messages=messages))

    async def stream(self, name: str, messages: list[dict[str, str]], **params: Any) -> AsyncIterator[Delta]:
        """Open a streamed completion; raises ``ApiError`` before the first delta if the provider fails."""
        if self.router is None:
            raise ApiError(404, f"model {name!r} does not exist", "model_not_found", "model")
        try:
            response = await self.router.acompletion(
                model=name, messages=messages, stream=True, stream_options={"include_usage": True},
                timeout=self.timeout, **params,
            )
        except Exception as exc:
            raise provider_error(exc) from exc
        return self._deltas(response)

    @staticmethod
    async def _deltas(response: Any) -> AsyncIterator[Delta]:
        try:
            async for chunk in response:
                usage = getattr(chunk, "usage", None)
                choices = getattr(chunk, "choices", None) or []
                text = ""
                if choices:
                    text = getattr(choices[0].delta, "content", None) or ""
                if text:
                    yield Delta(text=text)
                if usage is not None and getattr(usage, "prompt_tokens", None):
                    yield Delta(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
        except Exception as exc:
            raise provider_error(exc) from exc
