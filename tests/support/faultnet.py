"""A fault-injecting loopback news network for politeness tests (served by `loopback.SiteServer`).

Several hosts on 127.0.0.x, each a small news site with a feed, sitemaps or a
listing page, and each with one way of being difficult: robots.txt with
Disallow, Crawl-delay and Sitemap lines; a robots.txt that answers 503 for a
while; 500s that recover; 429 with Retry-After; a bot challenge served with
200 once a host has served a few pages; a slow drip; a redirect loop; a 30 MB page; a gzip bomb; a PDF; a feed
that fails a few times. Every article page supports ETag and Last-Modified
(304 on a match).
"""

from __future__ import annotations

import gzip
import html
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.utils import formatdate

from tests.support.loopback import HTML, RSS, TEXT, XML, Resp, Route, Site, SiteServer, fixed, static

DAY = 86400.0

CHALLENGE = """<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>
<h1>Checking your browser before accessing the site.</h1>
<p>Please enable JavaScript and cookies to continue.</p>
<noscript>Enable JavaScript to continue.</noscript></body></html>"""

_WORDS = """council budget harbour minister election court ruling storm farmers prices river bridge
school teachers union strike hospital doctors vaccine research university students market shares
energy pipeline drought rainfall coast fishermen police inquiry mayor residents transport railway
airport runway festival museum library archive volcano earthquake rescue villagers province border
treaty summit delegates exports factory workers wages inflation bank lenders housing tenants rent
wildfire firefighters evacuation forest orchard harvest frost vineyard tourism hotels beaches ferry
satellite launch telescope engineers startup software privacy regulators lawsuit judge verdict jury
appeal parliament coalition opposition senator governor ministry spokesperson statement agreement
""".split()  # noqa: SIM905 - a word list reads better as text


def article_text(seed: int, paragraphs: int = 6) -> tuple[str, list[str]]:
    """A distinct, article-shaped title and body per seed (no two near-duplicates)."""
    rng = random.Random(seed * 7919 + 13)
    title = " ".join(rng.choice(_WORDS) for _ in range(7)).capitalize() + f" ({seed})"
    paras = []
    for _ in range(paragraphs):
        sentences = []
        for _ in range(3):
            words = [rng.choice(_WORDS) for _ in range(rng.randint(14, 22))]
            sentences.append(" ".join(words).capitalize() + ".")
        paras.append(" ".join(sentences))
    return title, paras


def article_page(seed: int, site: str) -> str:
    title, paras = article_text(seed)
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paras)
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)} | {site}</title>
<meta property="og:title" content="{html.escape(title)}">
<meta property="article:published_time" content="{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}">
</head><body><nav><a href="/">{site}</a> | <a href="/world/">World</a></nav>
<article><h1>{html.escape(title)}</h1><div class="byline">By Dana Reporter</div>
<div class="article-body">{body}</div></article>
<footer>&copy; {site}</footer></body></html>"""


# ------------------------------------------------------------------ documents

def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def rss(base: str, paths: Iterable[str]) -> str:
    items = "".join(f"<item><title>Story {html.escape(p)}</title><link>{base}{p}?utm_source=rss</link>"
                    f"<pubDate>{formatdate(time.time() - 600, usegmt=True)}</pubDate></item>" for p in paths)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Feed</title>'
            f"<link>{base}/</link>{items}</channel></rss>")


def news_sitemap(base: str, entries: Iterable[tuple[str, float]]) -> str:
    urls = "".join(
        f"<url><loc>{base}{p}</loc><news:news><news:publication><news:name>Fault News</news:name>"
        f"<news:language>en</news:language></news:publication>"
        f"<news:publication_date>{_iso(ts)}</news:publication_date><news:title>Story {p}</news:title>"
        f"</news:news></url>" for p, ts in entries)
    return ('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{urls}</urlset>')


def url_sitemap(base: str, entries: Iterable[tuple[str, float]]) -> str:
    urls = "".join(f"<url><loc>{base}{p}</loc><lastmod>{_iso(ts)}</lastmod></url>" for p, ts in entries)
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'


def sitemap_index(base: str, entries: Iterable[tuple[str, float]]) -> str:
    maps = "".join(f"<sitemap><loc>{base}{p}</loc><lastmod>{_iso(ts)}</lastmod></sitemap>" for p, ts in entries)
    return (f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{maps}</sitemapindex>')


def drip(delay: float = 0.5, limit: float = 60.0) -> Iterator[bytes]:
    """One byte every `delay` seconds (until the client hangs up or `limit` passes)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        yield b"x"
        time.sleep(delay)


def huge(size: int = 30 * 1024 * 1024) -> Iterator[bytes]:
    chunk = b"<p>" + b"filler " * 9362 + b"</p>\n"  # ~64 KB
    sent = 0
    yield b"<html><body>"
    while sent < size:
        yield chunk
        sent += len(chunk)


_BOMB: bytes | None = None


def gzip_bomb() -> bytes:
    """~50 KB on the wire, 50 MB once inflated."""
    global _BOMB
    if _BOMB is None:
        _BOMB = gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=9)
    return _BOMB


# ------------------------------------------------------------------ the network

@dataclass
class Network:
    """The fault hosts plus what the crawler is expected to make of each URL."""

    server: SiteServer
    hosts: dict[str, Site]
    # canonical URL -> expected outcome: "published", "skipped:<reason>", "dead:<reason>", "parked"
    expected: dict[str, str]
    never: list[tuple[str, str]]  # (host, path) that must never be requested
    disallow: dict[str, str]  # host -> robots.txt body whose rules must be obeyed
    rates: dict[str, float]  # host -> effective requests/second (source rate, lowered by Crawl-delay)
    sources: str  # sources.yaml
    bump_pages: Callable[[float], None]  # move the lastmod of news' /pages-sitemap.xml entries
    page_paths: list[str]  # the paths that sitemap lists
    challenges_served: Callable[[], int]


def build_network(server: SiteServer, *, rate: float = 10.0, interval: str = "3s",
                  real_pages: int = 10, now: float | None = None) -> Network:
    """Seven hosts (127.0.0.21-27), one source each. See the module docstring for the faults."""
    now = time.time() if now is None else now
    expected: dict[str, str] = {}
    never: list[tuple[str, str]] = []
    seed = iter(range(1000, 10_000))

    def articles(host: Site, prefix: str, n: int, outcome: str = "published") -> list[str]:
        paths = []
        for i in range(n):
            path = f"{prefix}{i:02d}.html"
            host.routes[path] = static(article_page(next(seed), host.name))
            expected[host.base + path] = outcome
            paths.append(path)
        return paths

    # news: robots.txt with Disallow, Crawl-delay and a Sitemap line; a sitemap index with a
    # Google News sitemap, a lastmod sitemap and an old monthly sitemap; source lists the site root.
    news = server.add("news", "127.0.0.21")
    robots_news = "User-agent: *\nDisallow: /private/\nCrawl-delay: 0.1\n" + f"Sitemap: {news.base}/sitemap_index.xml\n"
    news.routes["/robots.txt"] = static(robots_news, TEXT)
    fresh = articles(news, "/2024/news-", 24)
    pages = articles(news, "/2024/page-", 6)
    old_news = ["/2019/old-news-1.html", "/2019/old-news-2.html"]
    old_page = "/2019/old-page.html"
    for p in [*old_news, old_page, "/private/embargoed.html", "/2019/01/archived.html"]:
        news.routes[p] = static(article_page(next(seed), "news"))
    expected[news.base + "/private/embargoed.html"] = "skipped:robots_denied"
    never += [("news", p) for p in [*old_news, old_page, "/private/embargoed.html", "/2019/01/archived.html",
                                    "/sitemap-2019-01.xml"]]
    news.routes["/sitemap_index.xml"] = static(sitemap_index(news.base, [
        ("/news-sitemap.xml", now - 60), ("/pages-sitemap.xml", now - 60), ("/sitemap-2019-01.xml", now - 1900 * DAY)]),
        XML)
    news.routes["/news-sitemap.xml"] = static(news_sitemap(news.base, [
        *((p, now - 300) for p in fresh), *((p, now - 10 * DAY) for p in old_news),
        ("/private/embargoed.html", now - 60)]), XML)
    news.routes["/sitemap-2019-01.xml"] = static(url_sitemap(news.base, [("/2019/01/archived.html", now - 1900 * DAY)]),
                                                 XML)

    def pages_sitemap(bump: float) -> None:
        news.routes["/pages-sitemap.xml"] = static(url_sitemap(news.base, [
            *((p, now - 600 + bump) for p in pages), (old_page, now - 30 * DAY)]), XML, modified=now + bump)

    pages_sitemap(0)

    # home: a home page that advertises its RSS feed; one story fails with 500 twice, then recovers.
    home = server.add("home", "127.0.0.22")
    home.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", TEXT)
    home_paths = articles(home, "/story-", 10)
    flaky_page = static(article_page(next(seed), "home"))
    home.routes["/flaky.html"] = lambda count, req: (
        Resp(500, HTML, "<html>Internal Server Error</html>") if count <= 2 else flaky_page(count, req))
    expected[home.base + "/flaky.html"] = "published"
    home.routes["/rss.xml"] = static(rss(home.base, [*home_paths, "/flaky.html"]), RSS)
    home.routes["/"] = static("""<!DOCTYPE html><html><head><title>Home News</title>
<link rel="alternate" type="application/rss+xml" title="Home News" href="/rss.xml">
</head><body><h1>Home News</h1><p>Front page.</p></body></html>""")

    # busy: one story answers 429 with Retry-After the first time; the host cools down that long.
    busy = server.add("busy", "127.0.0.23")
    busy.routes["/robots.txt"] = fixed(404, TEXT, "no robots")
    busy_paths = articles(busy, "/a/", 12)
    first = busy.routes[busy_paths[3]]
    busy.routes[busy_paths[3]] = lambda count, req: (
        Resp(429, {**HTML, "Retry-After": "3"}, "slow down") if count == 1 else first(count, req))
    busy.routes["/feed.xml"] = static(rss(busy.base, busy_paths), RSS)

    # shy: robots.txt answers 503 (Retry-After: 2) to its first two requests: the host is paused meanwhile.
    shy = server.add("shy", "127.0.0.24")
    robots_shy = "User-agent: *\nDisallow: /drafts/\n"
    shy.routes["/robots.txt"] = lambda count, req: (
        Resp(503, {**TEXT, "Retry-After": "2"}, "busy") if count <= 2 else static(robots_shy, TEXT)(count, req))
    shy_paths = articles(shy, "/s/", 6)
    shy.routes["/drafts/next.html"] = static(article_page(next(seed), "shy"))
    expected[shy.base + "/drafts/next.html"] = "skipped:robots_denied"
    never.append(("shy", "/drafts/next.html"))
    shy.routes["/feed.xml"] = static(rss(shy.base, [*shy_paths, "/drafts/next.html"]), RSS)

    # hostile: a slow drip, a redirect loop, a 30 MB page, a gzip bomb and a PDF among real stories.
    hostile = server.add("hostile", "127.0.0.25")
    hostile.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", TEXT)
    hostile_paths = articles(hostile, "/h/", 3)
    hostile.routes["/slow.html"] = lambda count, req: Resp(200, HTML, drip(), length=100_000)
    hostile.routes["/loop-a.html"] = fixed(302, {"Location": "/loop-b.html"})
    hostile.routes["/loop-b.html"] = fixed(302, {"Location": "/loop-a.html"})
    hostile.routes["/huge.html"] = lambda count, req: Resp(200, HTML, huge(), length=None)
    hostile.routes["/bomb.html"] = lambda count, req: Resp(200, {**HTML, "Content-Encoding": "gzip"}, gzip_bomb())
    hostile.routes["/report.pdf"] = static(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n" * 50,
                                           {"Content-Type": "application/pdf"})
    for path, outcome in [("/slow.html", "dead:timeout"), ("/loop-a.html", "skipped:redirect_loop"),
                          ("/huge.html", "skipped:too_large"), ("/bomb.html", "skipped:too_large"),
                          ("/report.pdf", "skipped:not_html")]:
        expected[hostile.base + path] = outcome
    hostile.routes["/feed.xml"] = static(rss(hostile.base, [*hostile_paths, "/slow.html", "/loop-a.html",
                                                            "/huge.html", "/bomb.html", "/report.pdf"]), RSS)

    # walled: serves its first `real_pages` article requests, then puts up a bot wall: a challenge (200) for
    # every request after. The breaker pauses the host for WIRE_BOT_WALL_PAUSE (600 s, longer than a run):
    # the pages it has not served by then stay parked.
    walled = server.add("walled", "127.0.0.26")
    walled.routes["/robots.txt"] = fixed(404, TEXT, "")
    served = {"real": 0, "challenges": 0}
    lock = threading.Lock()
    walled_paths = []
    for i in range(100):  # ten seconds of pages at 10/s: the breaker trips long before the host served them all
        path = f"/w/{i:02d}.html"
        real = static(article_page(next(seed), "walled"))

        def route(count: int, req: dict[str, str], real: Route = real) -> Resp:
            with lock:
                if served["real"] >= real_pages:
                    served["challenges"] += 1
                    return Resp(200, HTML, CHALLENGE)  # no validators, like a real challenge page
                served["real"] += 1
            return real(count, req)

        walled.routes[path] = route
        walled_paths.append(path)
        expected[walled.base + path] = "published|skipped:bot_wall|parked"
    links = "".join(f'<li><a class="story" href="{p}">Story {p}</a></li>' for p in walled_paths)
    walled.routes["/latest/"] = static(f"<html><body><h1>Latest</h1><ul>{links}</ul></body></html>")

    # down: its feed answers 500 three times before it works: discovery fails, then recovers.
    down = server.add("down", "127.0.0.27")
    down.routes["/robots.txt"] = fixed(404, TEXT, "")
    down_paths = articles(down, "/d/", 2)
    down_feed = static(rss(down.base, down_paths), RSS)
    down.routes["/feed.xml"] = lambda count, req: (
        Resp(500, HTML, "<html>oops</html>") if count <= 3 else down_feed(count, req))

    sources = f"""
defaults:
  interval: {interval}
  rate: {rate}
sources:
  - name: news
    sitemaps: ["{news.base}/"]
    rate: {rate * 2}
  - name: home
    feeds: ["{home.base}/"]
  - name: busy
    feeds: ["{busy.base}/feed.xml"]
  - name: shy
    feeds: ["{shy.base}/feed.xml"]
  - name: hostile
    feeds: ["{hostile.base}/feed.xml"]
  - name: walled
    listings: [{{url: "{walled.base}/latest/", links: "a.story"}}]
  - name: down
    feeds: ["{down.base}/feed.xml"]
"""
    net = Network(
        server=server,
        hosts={h.name: h for h in (news, home, busy, shy, hostile, walled, down)},
        expected=expected,
        never=never,
        disallow={"news": robots_news, "shy": robots_shy},
        rates={"news": min(rate * 2, 1 / 0.1), **{n: rate for n in ("home", "busy", "shy", "hostile", "walled",
                                                                     "down")}},
        sources=sources,
        bump_pages=pages_sitemap,
        page_paths=pages,
        challenges_served=lambda: served["challenges"],
    )
    return net
