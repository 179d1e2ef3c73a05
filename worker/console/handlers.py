"""Routing for the console: a request in, a `Response` out (no sockets here).

Actions go through the functions the CLI and the JSON API use:
`reingest.run` and `dlq.replay` / `dlq.purge`. Every POST except the login
needs the admin token configured, a live session and that session's CSRF
token; anything else is refused with 403 before any work is done.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import redis

from ..errors import WorkerError
from ..logs import get_logger
from ..ops import dlq, reingest
from ..pipeline.deps import Deps
from ..settings import require_strong_admin_token
from . import activity, auth, data, views

log = get_logger("wire.console")

Enqueue = Callable[[dict[str, Any], bool], None]
Rediscover = Callable[[str], None]
Replay = Callable[[str, dict[str, Any]], None]

SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)
GET_PATHS = ("/", "/queues", "/stories", "/dead", "/dead/purge", "/reingest", "/login", "/console.css")
POST_PATHS = ("/login", "/logout", "/dead/replay", "/dead/purge", "/reingest/run")


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def handles(method: str, path: str) -> bool:
    """True for the paths the console answers (the JSON API keeps the others)."""
    if method == "GET":
        return path in GET_PATHS or path.startswith("/story/")
    return method == "POST" and path in POST_PATHS


def _html(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, text.encode("utf-8"), headers=list(headers or []))


def _redirect(location: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(303, b"", headers=[("Location", location)] + list(headers or []))


def _form(body: bytes) -> dict[str, str]:
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in parsed.items() if v}


class Console:
    def __init__(self, deps: Deps, enqueue: Enqueue, rediscover: Rediscover, replay: Replay,
                 clock: Callable[[], float] = time.time) -> None:
        self.deps = deps
        self.enqueue = enqueue
        self.rediscover = rediscover
        self.replay = replay
        self.clock = clock
        require_strong_admin_token(deps.settings.admin_token)
        self.token = deps.settings.admin_token or None
        self.prefix = deps.keys.prefix

    def handle(self, method: str, path: str, query: str, cookie_header: str | None, body: bytes,
               client: str = "unknown") -> Response:
        """Answer one request; `client` is who the login limiter counts (worker.peers)."""
        now = self.clock()
        cookies = auth.parse_cookies(cookie_header)
        try:
            session = (auth.load(self.deps.redis, self.prefix, cookies.get(auth.SESSION_COOKIE), self.token)
                       if self.token else None)
            if session is not None and session.ended:
                log.info("console_session_ended", reason="admin token changed")
                resp = _redirect("/login", [("Set-Cookie", auth.cookie(auth.SESSION_COOKIE, "", 0))])
            elif method == "POST":
                resp = self._post(path, _form(body), cookies, session, now, client)
            else:
                resp = self._get(path, parse_qs(query), cookies, session, now)
        except redis.RedisError as exc:
            ctx = views.Ctx(now=now, token_configured=bool(self.token))
            resp = _html(503, views.error_page(503, f"Redis unavailable: {type(exc).__name__}", ctx))
        resp.headers.extend(SECURITY_HEADERS)
        return resp

    def _ctx(self, session: auth.Session | None, now: float) -> views.Ctx:
        flash = auth.pop_flash(self.deps.redis, self.prefix, session)
        return views.Ctx(now=now, token_configured=bool(self.token), logged_in=session is not None,
                         csrf=session.csrf if session else "", flash=flash)

    # -------------------------------------------------------------------------------- GET

    def _get(self, path: str, query: dict[str, list[str]], cookies: dict[str, str],
             session: auth.Session | None, now: float) -> Response:
        if path == "/console.css":
            return Response(200, views.CSS.encode(), "text/css; charset=utf-8")
        d = self.deps
        ctx = self._ctx(session, now)
        if path == "/":
            activity.snapshot(d.redis, self.prefix, d.keys.metrics(), now)
            return _html(200, views.sources_page(data.overview(d, now), ctx))
        if path == "/queues":
            return _html(200, views.queues_page(data.overview(d, now), ctx))
        if path == "/stories":
            return _html(200, views.stories_page(data.recent_stories(d), ctx))
        if path.startswith("/story/"):
            story = data.story(d, unquote(path.removeprefix("/story/")))
            if story is None:
                return _html(404, views.error_page(404, "No such event in the items stream (trimmed?).", ctx))
            return _html(200, views.story_page(story, ctx))
        if path == "/dead":
            after = (query.get("after") or [""])[0] or None
            try:
                return _html(200, views.dead_page(data.dead_letters(d, after), ctx))
            except ValueError as exc:
                return _html(400, views.error_page(400, str(exc), ctx))
        if path == "/dead/purge":
            if not ctx.can_act:
                return self._refuse(ctx, session)
            return _html(200, views.purge_page(int(d.redis.xlen(d.keys.dead_stream)), ctx))
        if path == "/reingest":
            return _html(200, views.reingest_page(ctx, [s.name for s in d.sources.sources]))
        # /login
        login_csrf = secrets.token_urlsafe(32)
        return _html(200, views.login_page(ctx, login_csrf),
                     [("Set-Cookie", auth.cookie(auth.LOGIN_COOKIE, login_csrf, auth.LOGIN_COOKIE_MAX_AGE))])

    # -------------------------------------------------------------------------------- POST

    def _refuse(self, ctx: views.Ctx, session: auth.Session | None, why: str | None = None) -> Response:
        if why is None:
            why = ("The console is read-only: WIRE_ADMIN_TOKEN is not set." if not self.token
                   else "Log in with the admin token first." if session is None
                   else "Forged or stale form: the CSRF token is missing or wrong. Reload the page and retry.")
        return _html(403, views.error_page(403, why, ctx))

    def _post(self, path: str, form: dict[str, str], cookies: dict[str, str],
              session: auth.Session | None, now: float, client: str) -> Response:
        d = self.deps
        if path == "/login":
            return self._login(form, cookies, now, client)
        ctx = views.Ctx(now=now, token_configured=bool(self.token), logged_in=session is not None,
                        csrf=session.csrf if session else "")
        if not self.token or session is None:
            log.warning("console_refused", path=path, reason="no token" if not self.token else "no session")
            return self._refuse(ctx, session)
        if not auth.same(form.get("csrf"), session.csrf):
            log.warning("console_refused", path=path, reason="csrf")
            return self._refuse(ctx, session, "Forged or stale form: the CSRF token is missing or wrong. "
                                              "Reload the page and retry.")
        if path == "/logout":
            auth.destroy(d.redis, self.prefix, session.id)
            return _redirect("/", [("Set-Cookie", auth.cookie(auth.SESSION_COOKIE, "", 0))])
        if path == "/dead/replay":
            ids = None if form.get("all") == "1" else [form.get("id", "")]
            if ids == [""]:
                return _html(400, views.error_page(400, "Give a dead-letter id or all=1.", ctx))
            done = dlq.replay(d.redis, d.keys, ids, self.replay)
            log.info("console_dlq_replay", count=len(done))
            msg = f"{len(done)} dead letter(s) replayed." if done else "No such dead letter (already replayed?)."
            auth.set_flash(d.redis, self.prefix, session, msg)
            return _redirect("/dead")
        if path == "/dead/purge":
            if form.get("confirm") != "yes":
                return _html(400, views.error_page(400, "Purge needs the confirmation box ticked.", ctx))
            count = dlq.purge(d.redis, d.keys)
            log.info("console_dlq_purge", count=count)
            auth.set_flash(d.redis, self.prefix, session, f"{count} dead letter(s) deleted.")
            return _redirect("/dead")
        return self._reingest(form, ctx)

    def _reingest(self, form: dict[str, str], ctx: views.Ctx) -> Response:
        names = [s.name for s in self.deps.sources.sources]
        urls = tuple(u.strip() for u in form.get("urls", "").splitlines() if u.strip())
        req = reingest.Request(urls=urls, source=form.get("source") or None, since=form.get("since") or None,
                               force=form.get("force") == "1")
        try:
            result = reingest.run(req, self.deps, self.enqueue, self.rediscover)
        except WorkerError as exc:
            return _html(400, views.reingest_page(ctx, names, form, error=str(exc)))
        log.info("console_reingest", count=result["count"], force=result["force"])
        return _html(200, views.reingest_page(ctx, names, {}, result=result))

    def _login(self, form: dict[str, str], cookies: dict[str, str], now: float, client: str) -> Response:
        ctx = views.Ctx(now=now, token_configured=bool(self.token))
        r = self.deps.redis
        if not self.token:
            return self._refuse(ctx, None)
        if not auth.same(form.get("csrf"), cookies.get(auth.LOGIN_COOKIE)):
            return self._refuse(ctx, None, "Forged or stale login form: reload the login page and retry.")
        verdict = auth.count_login(r, self.prefix, client, now)
        if not verdict.allowed:
            log.warning("console_login_limited", client=client, attempts=verdict.count)
            return _html(429, views.error_page(429, "Too many failed logins from your address; wait a minute.", ctx),
                         [("Retry-After", str(verdict.retry_after))])
        if not auth.check_token(form.get("token"), self.token):
            log.warning("console_login_failed", client=client)
            fresh = secrets.token_urlsafe(32)
            return _html(401, views.login_page(ctx, fresh, "Wrong token."),
                         [("Set-Cookie", auth.cookie(auth.LOGIN_COOKIE, fresh, auth.LOGIN_COOKIE_MAX_AGE))])
        auth.forgive_login(r, self.prefix, client, now)
        session = auth.create(r, self.prefix, self.token, now=now)
        log.info("console_login", client=client)
        return _redirect("/", [("Set-Cookie", auth.cookie(auth.SESSION_COOKIE, session.id, auth.SESSION_TTL)),
                               ("Set-Cookie", auth.cookie(auth.LOGIN_COOKIE, "", 0))])
