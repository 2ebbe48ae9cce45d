"""Serves the browser front end (web/) from the API process, under a strict Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.errors import ApiError
from assistant.ratelimit import retry_after_header
from assistant.sessions import QuotaUnavailable, client_bucket, open_session_account
from assistant.settings import LOCAL_HOSTS, is_loopback

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
    # The wallet pages (claim a voucher, top up on chain): ethers' ES module build, one file.
    "ethers.min.js": "ethers/dist/ethers.min.js",
    # Charts (earnings and spending per day, an answer's shares): uPlot, ~50 KB, no dependencies.
    "uPlot.esm.js": "uplot/dist/uPlot.esm.js",
    "uPlot.min.css": "uplot/dist/uPlot.min.css",
}

# /docs is Swagger UI served from the app under the same CSP as every page (FastAPI's own /docs
# and /redoc load their scripts from a CDN with an inline bootstrap; create_app turns them off).
PAGES = {"/": "index.html", "/contribute": "contribute.html", "/earnings": "earnings.html", "/balance": "balance.html",
         "/docs": "docs.html"}
# The Host names (brackets off, as URL.hostname gives them) of a browser on this machine.
_LOCAL_NAMES = frozenset(h.strip("[]") for h in LOCAL_HOSTS)
_NO_STORE = {"Cache-Control": "no-store"}
_PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip")


def dev_key_for(request: Request) -> str | None:
    """The dev key, for a browser on this machine only: the server is bound to loopback, the
    client connected from loopback, and it named the server by a local name (a page of another
    site that rebinds its own name to 127.0.0.1 sends that name as its Host, and gets nothing)."""
    app = request.app.state.settings.app
    if not app.dev_key_enabled:
        return None
    if request.client is None or not is_loopback(request.client.host):
        return None
    # A browser never sends these; a reverse proxy does. Through a proxy on this machine that
    # did not set X-Forwarded-For (nginx's default), the client looks local but is a visitor.
    if any(name in request.headers for name in _PROXY_HEADERS):
        return None
    if (request.url.hostname or "").lower() not in _LOCAL_NAMES:
        return None
    return app.dev_api_key


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
    async def web_config(request: Request) -> JSONResponse:
        """What the page needs before its first call: the dev key for a browser on this machine
        (kept in sessionStorage by the page, never in a URL), else whether it may open a session
        account of its own; and the token's display unit."""
        app_settings = request.app.state.settings.app
        dev_key = dev_key_for(request)
        body = {"dev_api_key": dev_key, "session_accounts": dev_key is None and app_settings.session_accounts,
                "session_grant": app_settings.session_grant, "token": "ocUSD", "decimals": 6}
        return JSONResponse(body, headers=_NO_STORE)  # it depends on who asks: never from a cache

    @app.post("/web-session", include_in_schema=False, status_code=201)
    async def web_session(request: Request) -> JSONResponse:
        """A new account of this browser's own, its key (shown once) and the free grant deposited
        into it; bounded per client IP and in all per day (assistant/sessions.py)."""
        app_settings = request.app.state.settings.app
        if not app_settings.session_accounts:
            raise ApiError(404, "this server opens no accounts for visitors: paste an API key the operator issued",
                           "session_accounts_off")
        # A JSON request: a form or a plain fetch() from another site cannot send one without a
        # CORS preflight, which this app never grants, so no other page opens accounts in a
        # visitor's name (and spends its IP's quota).
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise ApiError(415, "send Content-Type: application/json", "unsupported_media_type")
        client = request.client.host if request.client else None
        counts = request.app.state.session_counts
        try:
            refused = await run_in_threadpool(request.app.state.session_quota.take, client_bucket(client))
        except QuotaUnavailable:
            counts.labels("unavailable").inc()
            raise ApiError(503, "new accounts cannot be counted right now; try again later",
                           "session_quota_unavailable") from None
        if refused is not None:
            bound, wait = refused
            counts.labels(f"refused_{bound}").inc()
            what = "from this address" if bound == "ip" else "on this server"
            raise ApiError(429, f"no more new accounts {what} today; retry in {int(wait)} s, or paste an API key",
                           "session_limit_reached", headers=retry_after_header(wait))
        opened = await run_in_threadpool(open_session_account, request.app.state.engine, app_settings.session_grant)
        counts.labels("opened").inc()
        return JSONResponse({"account": opened.account, "key": opened.key, "granted": opened.granted},
                            status_code=201, headers=_NO_STORE)

    app.mount("/static", StaticFiles(directory=static), name="static")
    app.add_middleware(SecurityHeaders)
