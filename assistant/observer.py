"""The request observer (ASGI middleware): request id in and out, metrics, one JSON access line.

Hand-rolled rather than asgi-correlation-id + a Prometheus instrumentator: it is one small
class, it labels by the route template (bounded cardinality) and it times streamed answers to
their last byte, which is what the latency histogram must mean for SSE.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.logs import request_id
from assistant.metrics import HttpMetrics

log = logging.getLogger("openchat.access")

HEADER = b"x-request-id"
# A caller's id is echoed only if it is short and plain: it ends up in log lines and headers.
_VALID_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def accept_request_id(raw: bytes | None) -> str:
    """The caller's X-Request-ID if acceptable, else a new random one."""
    if raw:
        try:
            value = raw.decode("ascii")
        except UnicodeDecodeError:
            value = ""
        if _VALID_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex


def route_label(scope: Scope, status: int) -> str:
    """The matched route's template (``/v1/answers/{answer_id}``), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "<unmatched>" if status == 404 else "<other>"


class RequestObserver:
    """Outermost middleware: sees every request, including ones refused by inner middleware."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = accept_request_id(dict(scope["headers"]).get(HEADER))
        token = request_id.set(rid)
        status = 500
        started = time.perf_counter()

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            elapsed = time.perf_counter() - started
            route = route_label(scope, status)
            method = scope.get("method", "")
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(elapsed)
            log.info("request", extra={"request_id": rid, "method": method, "path": scope.get("path"), "route": route,
                                       "status": status, "duration_ms": round(elapsed * 1000, 2),
                                       "client": (scope.get("client") or ("", 0))[0]})
            request_id.reset(token)
