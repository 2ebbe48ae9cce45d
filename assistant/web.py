"""Serves the browser front end (web/) from the API process, under a strict Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.errors import ApiError

WEB_DIR = Path(__file__).resolve().parents[1] / "web"

# No inline script or style, no plugins, no framing; the page talks only to its own origin.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

# The browser libraries, served from web/node_modules exactly as npm shipped them (no build step).
VENDOR = {
    "marked.esm.js": "marked/lib/marked.esm.js",
    "purify.es.mjs": "dompurify/dist/purify.es.mjs",
    # Swagger UI of /docs (web/docs.html, started by web/static/docs.js).
    "swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
}

# /docs is Swagger UI served from the app under the same CSP as every page (FastAPI's own /docs
# and /redoc load their scripts from a CDN with an inline bootstrap; create_app turns them off).
PAGES = {"/": "index.html", "/contribute": "contribute.html", "/earnings": "earnings.html", "/docs": "docs.html"}


class SecurityHeaders:
    """Adds the CSP and related headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def mount_web(app: FastAPI, web_dir: Path = WEB_DIR) -> None:
    """The chat (/), contribute and earnings pages, their static files and the page config."""
    static = web_dir / "static"
    modules = web_dir / "node_modules"

    def page(name: str) -> Callable[[], Awaitable[FileResponse]]:
        async def serve() -> FileResponse:
            return FileResponse(web_dir / name, media_type="text/html", headers={"Cache-Control": "no-cache"})
        return serve

    for path, name in PAGES.items():
        app.add_api_route(path, page(name), methods=["GET"], include_in_schema=False)
    app.add_api_route("/earnings/{address}", page("earnings.html"), methods=["GET"], include_in_schema=False)

    @app.get("/vendor/{name}", include_in_schema=False)
    async def vendor(name: str) -> FileResponse:
        if name not in VENDOR or not (modules / VENDOR[name]).is_file():
            raise ApiError(404, f"no vendor file {name!r} (run `make install`: npm ci --prefix web)", "not_found")
        media_type = "text/css" if name.endswith(".css") else "text/javascript"
        return FileResponse(modules / VENDOR[name], media_type=media_type,
                            headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/web-config.json", include_in_schema=False)
    async def web_config(request: Request) -> dict[str, Any]:
        """What the page needs before its first call: the dev key when one is configured (kept in
        sessionStorage by the page, never in a URL) and the token's display unit."""
        return {"dev_api_key": request.app.state.settings.app.dev_api_key, "token": "ocUSD", "decimals": 6}

    app.mount("/static", StaticFiles(directory=static), name="static")
    app.add_middleware(SecurityHeaders)
