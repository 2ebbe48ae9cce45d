"""JSON bodies must be valid Unicode: a lone surrogate escape is refused before any handler runs.

JSON may spell a UTF-16 surrogate on its own ("\\udcff"); Python's ``json`` decodes it into a
``str`` that no UTF-8 encoder, tokenizer or database accepts, so a question holding one used to
reach the embedder and fail there (500), and an error echoing it could not be written at all.
FastAPI reads bodies through ``Request.json``; its documented way to change that is a custom
``Request`` behind a custom ``APIRoute`` (https://fastapi.tiangolo.com/how-to/custom-request-and-route/).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from assistant.errors import ApiError


class _UnicodeRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            value = json.loads(await self.body())
            try:
                # One encoding of the bounded body (BodyLimit): exact, whatever depth or key holds it.
                json.dumps(value, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ApiError(400, "the request body is not valid Unicode: it holds a lone surrogate escape "
                                    "(\\ud800-\\udfff without its pair)", "invalid_unicode") from exc
            self._json = value
        return self._json


class UnicodeRoute(APIRoute):
    """An API route whose JSON body is refused with 400 when it holds a lone surrogate."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(_UnicodeRequest(request.scope, request.receive))

        return route
