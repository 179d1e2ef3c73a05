"""Pure rendering: plain dicts in, HTML text out. Every value goes through `e()`.

Story titles, bodies, URLs and error texts come from the open web and are
hostile: everything is escaped, and a URL becomes a link only when its scheme
is http or https (a `javascript:` URL stays text). The pages need no login,
so URLs and error texts are shown with their credentials masked
(`worker.urls.redact`), stored values from before redaction included. Pages are semantic HTML
with tables, readable without the stylesheet.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from .. import trail
from ..urls import redact, redact_text

NAV = (("/", "Sources"), ("/queues", "Queues & streams"), ("/stories", "Recent stories"),
       ("/dead", "Dead letters"), ("/reingest", "Re-ingest"))


@dataclass(frozen=True)
class Ctx:
    """What every page needs to know about the viewer."""

    now: float
    token_configured: bool
    logged_in: bool = False
    csrf: str = ""
    flash: str | None = None

    @property
    def can_act(self) -> bool:
        return self.token_configured and self.logged_in


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def link(url: Any, text: Any = None) -> str:
    """An <a> for http(s) URLs; any other scheme is shown as text only. Credentials in the URL
    (userinfo, secret query values) are masked in both: the console's pages need no login."""
    s = "" if url is None else redact(str(url))
    label = e(text if text is not None else s)
    if urlsplit(s).scheme.lower() in ("http", "https"):
        return f'<a href="{e(s)}" rel="noopener noreferrer nofollow">{label}</a>'
    return label


def when(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    stamp = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return f'<time datetime="{e(stamp)}">{e(stamp)}</time> <small>({e(ago(now - ts))})</small>'


def ago(seconds: float) -> str:
    if seconds < 0:
        return "in the future"
    if seconds < 90:
        return f"{seconds:.0f}s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h ago"
    return f"{seconds / 86400:.1f}d ago"


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def csrf_field(ctx: Ctx) -> str:
    return f'<input type="hidden" name="csrf" value="{e(ctx.csrf)}">'


def page(title: str, body: str, ctx: Ctx, current: str = "") -> str:
    nav = "".join(
        f'<li><a href="{href}"{" aria-current=page" if href == current else ""}>{e(label)}</a></li>'
        for href, label in NAV)
    if not ctx.token_configured:
        who = "<p class=who>Read-only: <code>WIRE_ADMIN_TOKEN</code> is not set.</p>"
    elif ctx.logged_in:
        who = (f'<form class=who method=post action="/logout">{csrf_field(ctx)}'
               '<span>Signed in as admin.</span> <button type=submit>Log out</button></form>')
    else:
        who = '<p class=who><a href="/login">Log in</a> to replay, purge or re-ingest.</p>'
    flash = f'<p class=flash role=status>{e(ctx.flash)}</p>' if ctx.flash else ""
    return ("<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width, initial-scale=1">'
            f'<title>{e(title)} · wire</title><link rel=stylesheet href="/console.css"></head>'
            f'<body><header><p class=brand><a href="/">wire</a></p><nav><ul>{nav}</ul></nav>{who}</header>'
            f"<main><h1>{e(title)}</h1>{flash}{body}</main></body></html>\n")


def table(head: list[str], rows: list[str], caption: str = "", empty: str = "Nothing here.") -> str:
    if not rows:
        return f"<p>{e(empty)}</p>"
    cap = f"<caption>{e(caption)}</caption>" if caption else ""
    ths = "".join(f"<th scope=col>{e(h)}</th>" for h in head)
    return f'<div class=scroll><table>{cap}<thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


# ----------------------------------------------------------------------------- pages

def sources_page(doc: dict[str, Any], ctx: Ctx) -> str:
    now = ctx.now
    window = doc.get("activity_window", 0.0)
    if window >= 3540:
        span = "last hour"
    elif window >= 60:
        span = f"last {duration(window)} (snapshots only go back that far)"
    else:
        span = "time since the first snapshot, just taken: counts start now"
    rows = []
    for s in doc["sources"]:
        stale = '<strong class=bad>STALE</strong> ' if s["stale"] else ""
        a = s.get("activity", {})
        pauses = "<br>".join(f'{e(p["host"])}: {e(redact_text(p["reason"]) or "paused")}, '
                             f'{e(duration(p["seconds_left"]))} left'
                             for p in s.get("pauses", [])) or "none"
        err = f'<br><small class=bad>{e(redact_text(s["last_error"]))}</small>' if s.get("last_error") else ""
        rows.append(
            f'<tr{" class=stale" if s["stale"] else ""}><th scope=row>{e(s["name"])}</th>'
            f'<td>{e(duration(s["interval_seconds"]))}</td><td>{when(s["last_discovery"], now)}</td>'
            f'<td>{stale}{when(s["last_success"], now)}{err}</td>'
            f'<td class=num>{a.get("fetched", 0)}</td><td class=num>{a.get("published", 0)}</td>'
            f'<td class=num>{a.get("duplicates", 0)}</td><td class=num>{a.get("failures", 0)}</td>'
            f"<td>{pauses}</td></tr>")
    stale_n = sum(1 for s in doc["sources"] if s["stale"])
    summary = (f"<p>{len(doc['sources'])} source(s), <strong>{stale_n} stale</strong> "
               "(no successful discovery for 3 intervals). "
               f"Counts cover the {e(span)}.</p>")
    return page("Sources", summary + table(
        ["Source", "Interval", "Last discovery", "Last success", "Fetched", "Published", "Duplicates",
         "Failures", "Host back-off"], rows, empty="No sources configured."), ctx, "/")


def queues_page(doc: dict[str, Any], ctx: Ctx) -> str:
    q_rows = [f"<tr><th scope=row>{e(q)}</th><td class=num>{n}</td></tr>" for q, n in doc["queues"].items()]
    q_rows.append(f'<tr><th scope=row>in flight (unacked)</th><td class=num>{doc["in_flight"]}</td></tr>')
    q_rows.append(f'<tr><th scope=row>parked (waiting on a host)</th><td class=num>{doc["parked"]}</td></tr>')
    s_rows = []
    for s in doc["streams"]:
        groups = s["groups"] or [None]
        for g in groups:
            s_rows.append(
                f'<tr><th scope=row>{e(s["stream"])}</th><td class=num>{s["length"]}</td>'
                + (f'<td>{e(g["group"])}</td><td class=num>{g["consumers"]}</td><td class=num>{g["pending"]}</td>'
                   f'<td class=num>{e(g["lag"] if g["lag"] is not None else "unknown")}</td>' if g
                   else "<td>(no consumer group)</td><td></td><td></td><td></td>") + "</tr>")
    w_rows = [f"<tr><th scope=row>{e(name)}</th><td>{when(w['last_task_at'], ctx.now)}</td></tr>"
              for name, w in sorted(doc["workers"].items())]
    body = ("<h2>Celery queues</h2>" + table(["Queue", "Waiting"], q_rows)
            + "<h2>Streams</h2>" + table(["Stream", "Length", "Group", "Consumers", "Pending", "Lag"], s_rows)
            + f'<h2>Dead letters</h2><p><a href="/dead">{doc["dead_letters"]} dead letter(s)</a></p>'
            + "<h2>Last task finished, by queue</h2>" + table(["Queue", "Last task"], w_rows, empty="No tasks yet."))
    return page("Queues & streams", body, ctx, "/queues")


def stories_page(items: list[dict[str, Any]], ctx: Ctx) -> str:
    rows = []
    for it in items:
        d = it["item"]
        rows.append(
            f'<tr><td><a href="/story/{quote(it["entry_id"], safe="")}">{e(d.get("title") or "(untitled)")}</a></td>'
            f'<td>{e(d.get("source"))}</td><td>{e(d.get("agency") or "")}</td><td>{e(it["event"])}</td>'
            f'<td class=num>{e(it["version"])}</td><td>{when(it["time"], ctx.now)}</td></tr>')
    return page("Recent stories", f"<p>The last {len(items)} events published to the items stream, newest first.</p>"
                + table(["Title", "Source", "Agency", "Event", "Version", "Published"], rows,
                        empty="Nothing published yet."), ctx, "/stories")


def _decision_rows(entries: list[dict[str, Any]], ctx: Ctx) -> list[str]:
    rows = []
    for d in entries:
        if d.get("event") == "dropped":  # the count heading a full decision log
            rows.append(f'<tr><td colspan=7>{e(d.get("dropped"))} earlier decision(s) dropped: '
                        "the log keeps the newest ones</td></tr>")
            continue
        kind = f' ({e(d["kind"])})' if d.get("kind") else ""
        rows.append(
            f'<tr><td>{when(d.get("time"), ctx.now) if d.get("time") is not None else ""}</td>'
            f'<td>{e(d.get("event"))}{kind}</td><td class=num>{e(d.get("version"))}</td>'
            f'<td class=num>{e(d.get("similarity"))}</td><td>{e(d.get("rule"))}</td>'
            f'<td class=url>{link(d.get("url"))}</td><td class=url>{link(d.get("matched_url"))}</td></tr>')
    return rows


def story_page(s: dict[str, Any], ctx: Ctx) -> str:
    d = s["item"]
    head = ["Time", "Decision", "Version", "Similarity", "Rule", "URL", "Matched"]
    versions = [x for x in s["log"] if x.get("event") in ("new", "update")]
    copies = [x for x in s["log"] if x.get("event") not in ("new", "update")]
    meta = [("Event", f'{e(s["event"])} (version {e(s["version"])})'), ("Story id", f'<code>{e(s["story_id"])}</code>'),
            ("Source", e(d.get("source"))), ("Agency", e(d.get("agency") or "")),
            ("Authors", e(", ".join(map(str, d.get("authors") or [])))), ("Dateline", e(d.get("dateline") or "")),
            ("Published", e(d.get("published_at") or "")), ("Fetched", e(d.get("fetched_at") or "")),
            ("URL", link(d.get("url"))), ("Canonical URL", link(d.get("canonical_url"))),
            ("Words", e(d.get("word_count")))]
    dl = "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in meta)
    paragraphs = "".join(f"<p>{e(p)}</p>" for p in str(d.get("body") or "").split("\n") if p.strip())
    path = [f'<tr><td>{when(ev.get("t"), ctx.now) if ev.get("t") is not None else ""}</td>'
            f"<td>{e(trail.describe(ev))}</td></tr>" for ev in s.get("trail", [])]
    body = (f"<dl class=meta>{dl}</dl>"
            + "<h2>Path of this URL (<code>wire explain</code>)</h2>"
            + table(["Time", "What happened"], path, empty="No path recorded for this URL (expired?).")
            + "<h2>Versions</h2>" + table(head, _decision_rows(versions, ctx), empty="No dedup record (expired?).")
            + "<h2>Copies (duplicates of this story)</h2>" + table(head, _decision_rows(copies, ctx),
                                                                   empty="No copies recorded.")
            + "<h2>Decisions for this URL (<code>wire explain</code>)</h2>"
            + table(head, _decision_rows(s["decisions"], ctx), empty="No decisions recorded for this URL.")
            + f"<h2>Body</h2><article class=body>{paragraphs}</article>")
    return page(str(d.get("title") or "(untitled)"), body, ctx, "/stories")


def dead_page(dl: dict[str, Any], ctx: Ctx) -> str:
    rows = []
    for x in dl["entries"]:
        action = ""
        if ctx.can_act:
            action = (f'<form method=post action="/dead/replay">{csrf_field(ctx)}'
                      f'<input type=hidden name=id value="{e(x["id"])}"><button type=submit>Replay</button></form>')
        rows.append(
            f'<tr id="dl-{e(x["id"])}"><td><code>{e(x["id"])}</code></td><td>{e(x.get("failed_at", ""))}</td>'
            f'<td>{e(x.get("stage", ""))}</td><td>{e(x.get("reason", ""))}</td><td>{e(x.get("source", ""))}</td>'
            f'<td class=url>{link(x.get("url"))}</td><td class=err>{e(redact_text(x.get("error", "")))}</td>'
            f'<td class=num>{e(x.get("attempts", ""))}</td><td>{action}</td></tr>')
    actions = ""
    if ctx.can_act and dl["total"]:
        actions = (f'<div class=actions><form method=post action="/dead/replay">{csrf_field(ctx)}'
                   '<input type=hidden name=all value=1>'
                   f'<button type=submit>Replay all {dl["total"]}</button></form> '
                   '<a class=button href="/dead/purge">Purge…</a></div>')
    more = f'<p><a href="/dead?after={quote(dl["next"], safe="")}">Next page →</a></p>' if dl["next"] else ""
    body = (f'<p>{dl["total"]} dead letter(s), oldest first. Replay re-enqueues at the failed stage '
            "(same code as <code>wire dlq replay</code>).</p>" + actions
            + table(["Id", "Failed at", "Stage", "Reason", "Source", "URL", "Error", "Attempts", ""], rows,
                    empty="No dead letters.") + more)
    return page("Dead letters", body, ctx, "/dead")


def purge_page(total: int, ctx: Ctx) -> str:
    body = (f"<p>This deletes all <strong>{total}</strong> dead letter(s) for good "
            "(same code as <code>wire dlq purge</code>). They cannot be replayed afterwards.</p>"
            f'<form method=post action="/dead/purge">{csrf_field(ctx)}'
            '<p><label><input type=checkbox name=confirm value=yes required> '
            "Yes, delete them all</label></p><p><button type=submit class=danger>Purge</button> "
            '<a href="/dead">Cancel</a></p></form>')
    return page("Purge dead letters?", body, ctx, "/dead")


def reingest_page(ctx: Ctx, sources: list[str], form: dict[str, str] | None = None,
                  result: dict[str, Any] | None = None, error: str | None = None) -> str:
    form = form or {}
    out = ""
    if error:
        out += f'<p class="flash bad" role=alert>Refused: {e(error)}</p>'
    if result is not None:
        items = "".join(f"<li class=url>{link(u)}</li>" for u in result["enqueued"])
        again = "".join(f"<li>{e(n)}</li>" for n in result["rediscovered"])
        out += (f'<section class=result><h2>Enqueued {result["count"]} URL(s)'
                f'{" with force" if result["force"] else ""}</h2><ol>{items}</ol>'
                + (f"<p>Discovery re-run for:</p><ul>{again}</ul>" if again else "") + "</section>")
    if not ctx.can_act:
        why = ("the admin token is not configured" if not ctx.token_configured
               else 'you are not logged in (<a href="/login">log in</a>)')
        return page("Re-ingest", out + f"<p>Re-ingest needs the admin token: {why}.</p>", ctx, "/reingest")
    opts = "".join(f'<option value="{e(n)}"{" selected" if form.get("source") == n else ""}>{e(n)}</option>'
                   for n in sources)
    checked = " checked" if form.get("force") else ""
    out += (f'<form method=post action="/reingest/run" class=stack>{csrf_field(ctx)}'
            "<fieldset><legend>URLs</legend><label for=urls>One URL per line</label>"
            f'<textarea id=urls name=urls rows=6 spellcheck=false>{e(form.get("urls", ""))}</textarea></fieldset>'
            "<fieldset><legend>…or a source and a window</legend>"
            f'<label for=source>Source</label><select id=source name=source><option value="">—</option>{opts}</select>'
            '<label for=since>Window (e.g. 6h, 2d; empty: everything known and re-run discovery)</label>'
            f'<input id=since name=since value="{e(form.get("since", ""))}"></fieldset>'
            f"<p><label><input type=checkbox name=force value=1{checked}> Force (bypass seen-URL, skip and "
            "conditional-GET state, as <code>wire reingest --force</code>)</label></p><p><button type=submit>Re-ingest</button></p></form>")
    return page("Re-ingest", out, ctx, "/reingest")


def login_page(ctx: Ctx, login_csrf: str, error: str | None = None) -> str:
    if not ctx.token_configured:
        return page("Log in", "<p>No admin token is configured: the console is read-only.</p>", ctx)
    err = f'<p class="flash bad" role=alert>{e(error)}</p>' if error else ""
    body = (err + '<form method=post action="/login" class=stack>'
            f'<input type=hidden name=csrf value="{e(login_csrf)}">'
            "<label for=token>Admin token (<code>WIRE_ADMIN_TOKEN</code>)</label>"
            "<input id=token name=token type=password autocomplete=current-password required>"
            "<p><button type=submit>Log in</button></p></form>")
    return page("Log in", body, ctx)


def error_page(code: int, message: str, ctx: Ctx) -> str:
    return page(f"{code}", f"<p>{e(message)}</p><p><a href=\"/\">Back to the console</a></p>", ctx)


CSS = """
:root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#fff;--head:#f6f8fa;--bad:#b42318;--accent:#0550ae}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.25rem 1rem;padding:.5rem 1rem;
 border-bottom:1px solid var(--line);background:var(--head)}
header .brand{margin:0;font-weight:700}
header .brand a{color:var(--fg);text-decoration:none}
nav ul{display:flex;flex-wrap:wrap;gap:.25rem .9rem;list-style:none;margin:0;padding:0}
nav a[aria-current]{font-weight:700;text-decoration:none;color:var(--fg)}
.who{margin:0 0 0 auto;color:var(--muted);font-size:.9em}
main{padding:.5rem 1rem 2rem;max-width:110rem}
h1{font-size:1.35rem;margin:.6rem 0}
h2{font-size:1.1rem;margin:1.4rem 0 .4rem}
a{color:var(--accent)}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border-bottom:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
thead th{background:var(--head);white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.url,li.url{word-break:break-all;min-width:12rem}
td.err{max-width:28rem;word-break:break-word;font-family:ui-monospace,monospace;font-size:.85em}
tr.stale{background:#fff1f0}
.bad{color:var(--bad)}
small{color:var(--muted)}
.flash{padding:.5rem .75rem;border:1px solid var(--line);background:#f0f7ff;border-radius:4px}
.flash.bad{background:#fff1f0;border-color:#f5c2c0}
.actions{display:flex;gap:.5rem;align-items:center;margin:.5rem 0}
form{margin:0}
.stack{max-width:40rem}
.stack label{display:block;margin:.5rem 0 .2rem}
textarea,input:not([type=checkbox]),select{width:100%;font:inherit;padding:.4rem;border:1px solid var(--line);
 border-radius:4px}
fieldset{border:1px solid var(--line);border-radius:4px;margin:.6rem 0}
button,.button{font:inherit;padding:.35rem .8rem;border:1px solid var(--line);border-radius:4px;
 background:var(--head);color:var(--fg);cursor:pointer;text-decoration:none;display:inline-block}
button.danger{background:var(--bad);color:#fff;border-color:var(--bad)}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
dl.meta dt{font-weight:600}
dl.meta dd{margin:0;word-break:break-all}
article.body{max-width:46rem}
@media (max-width:640px){body{font-size:14px}main{padding:.5rem}dl.meta{grid-template-columns:1fr}
 .who{margin:0}th,td{padding:.3rem}}
"""
