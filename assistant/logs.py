"""Structured logs: one JSON object per line, each carrying the id of the request it belongs to."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

# Set by the request observer for the duration of a request; copied into threadpool calls by
# anyio, so log lines written by sync code running for a request carry its id too.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

JSON_FIELDS = "{asctime}{levelname}{name}{message}"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (or None outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        record.__dict__.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
        return True


def json_handler(stream: object = None) -> logging.Handler:
    """A stream handler writing JSON lines with time, level, logger, message and request_id."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter(JSON_FIELDS, style="{", rename_fields={"levelname": "level",
                                                                             "name": "logger",
                                                                             "asctime": "time"}))
    handler.addFilter(RequestIdFilter())
    return handler


def configure_logging(level: str = "info", stream: object = None) -> None:
    """Route every logger (ours, uvicorn's, celery's) through one JSON handler on the root."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(json_handler(stream))
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # The observer writes one access line per request with its id; uvicorn's would repeat it.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("httpx", "httpcore", "LiteLLM", "litellm"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
