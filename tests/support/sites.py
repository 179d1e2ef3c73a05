"""Loopback news sites for the pipeline and end-to-end tests (served by `loopback.SiteServer`).

- `syndication_sites`: three news sites that syndicate the same stories
  with different furniture, each with robots.txt and a feed, sitemap or
  listing page;
- `news_site`: one site with N distinct stories behind a sitemap.
"""

from __future__ import annotations

import html
import json
import random
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

from tests.support.loopback import HTML, RSS, XML, Site, SiteServer
from tests.support.paths import FIXTURES


def load_stories() -> dict[str, dict[str, Any]]:
    stories = {s["slug"]: s for s in json.loads((FIXTURES / "stories.json").read_text())}
    seed = [p.strip() for p in (FIXTURES / "seed_ap_story.txt").read_text().split("\n\n") if p.strip()]
    stories["taliban-consulates"] = {
        "slug": "taliban-consulates",
        "title": "Taliban wins close consulates; Tajikistan reinforces border",
        "agency": "AP",
        "dateline": "KABUL, Afghanistan",
        "paragraphs": seed,
    }
    return stories


STORIES = load_stories()


def _paras(story: dict[str, Any]) -> str:
    return "\n".join(f"<p>{html.escape(p)}</p>" for p in story["paragraphs"])


def wordpress_page(story: dict[str, Any], base: str) -> str:
    """Shaped like the seed page: a WordPress theme republishing a wire story."""
    esc = html.escape
    return f"""<!DOCTYPE html>
<html lang="en-US"><head><meta charset="UTF-8">
<title>{esc(story['title'])} - Alpha Daily News</title>
<link rel="canonical" href="{base}/2021/07/06/{story['slug']}/">
<meta property="og:title" content="{esc(story['title'])}">
<meta property="article:published_time" content="2021-07-06T09:15:00+04:30">
</head><body class="post-template-default single single-post">
<header id="masthead"><nav class="main-navigation"><ul>
<li><a href="/">Home</a></li><li><a href="/category/asia/">Asia</a></li><li><a href="/category/world/">World</a></li>
<li><a href="/category/business/">Business</a></li><li><a href="/contact/">Contact</a></li></ul></nav></header>
<main id="main"><article class="post type-post">
<figure class="post-thumbnail"><img src="/wp-content/uploads/photo.jpg" alt="">
<figcaption class="wp-caption-text">Wakil Kohsar / Zakeria Hashimi</figcaption></figure>
<header class="entry-header"><h1 class="entry-title">{esc(story['title'])}</h1></header>
<div class="entry-content">
{_paras(story)}
</div>
<div class="author-box"><div class="author-avatar"><img src="/avatar.png" alt=""></div>
<div class="author-info"><a href="/author/admin/">+ posts</a></div></div>
</article>
<div id="comments" class="comments-area"><div id="respond" class="comment-respond">
<h3 id="reply-title" class="comment-reply-title">Leave a Reply</h3>
<form action="/wp-comments-post.php" method="post" id="commentform">
<p class="comment-notes">Your email address will not be published.</p>
<textarea name="comment"></textarea><input type="submit" value="Post Comment"></form></div></div>
<nav class="navigation post-navigation"><div class="nav-links">
<div class="nav-previous"><a href="/2021/07/05/hong-kong-plot/"><span>Previous Story</span>
<span>9 arrested over alleged plot to plant bombs around Hong Kong</span></a></div>
<div class="nav-next"><a href="/2021/07/07/russian-plane/"><span>Next Story</span>
<span>Parts of missing Russian plane found; 28 aboard feared dead</span></a></div></div></nav>
<section class="related-posts"><h2>Latest from Asia</h2><ul>
<li><a href="/2021/07/05/a/">Floods hit southern provinces as monsoon arrives early</a></li>
<li><a href="/2021/07/04/b/">Election commission sets date for regional vote</a></li></ul></section>
</main>
<footer id="colophon"><p>Copyright 2021 Alpha Daily News. All rights reserved.</p></footer>
</body></html>"""


def jsonld_page(story: dict[str, Any], base: str) -> str:
    """A news site with JSON-LD metadata, share bar, newsletter box and 'Read more' list."""
    esc = html.escape
    ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": story["title"],
          "datePublished": "2021-07-06T06:00:00Z", "dateModified": "2021-07-06T08:30:00Z",
          "author": {"@type": "Organization", "name": "Associated Press"} if story["agency"] == "AP"
          else {"@type": "Person", "name": "Maria Silva"}}
    return f"""<!doctype html><html lang="en"><head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<title>{esc(story['title'])} | Beta Herald</title>
<script type="application/ld+json">{json.dumps(ld)}</script>
<script>window.dataLayer = [];</script><style>.x{{color:red}}</style>
</head><body>
<div class="top-bar"><a href="/subscribe">Subscribe</a> <a href="/login">Sign in</a></div>
<nav><a href="/">Beta Herald</a> | <a href="/world">World</a> | <a href="/politics">Politics</a></nav>
<div class="share-bar"><a href="#">Share on Facebook</a> <a href="#">Share on X</a> <a href="#">Email</a></div>
<article><h1>{esc(story['title'])}</h1>
<div class="byline">By Beta Herald staff | July 6, 2021</div>
<div class="article-body">
{_paras(story)}
</div></article>
<aside class="newsletter"><h3>Get our morning briefing</h3><p>Sign up for the newsletter and never miss a story.</p>
<form><input type="email"><button>Sign up</button></form></aside>
<aside class="read-more"><h3>Read more</h3><ul><li><a href="/a">Markets slide as rates rise</a></li>
<li><a href="/b">Heatwave grips the south</a></li><li><a href="/c">Court rules on data case</a></li></ul></aside>
<footer>&copy; Beta Herald. <a href="/privacy">Privacy</a> <a href="/terms">Terms</a></footer>
</body></html>"""


def plain_page(story: dict[str, Any], base: str, title: str | None = None) -> str:
    """A minimal CMS with a section header and a 'most read' sidebar; may retitle the story."""
    esc = html.escape
    return f"""<html><head><meta charset="utf-8"><title>World | {esc(title or story['title'])}</title></head>
<body><div id="header"><h2 class="site-name">The Gamma Gazette</h2>
<ul class="menu"><li>News</li><li>Sport</li><li>Culture</li></ul></div>
<div id="content"><div class="section-label">World</div>
<h1 class="headline">{esc(title or story['title'])}</h1>
<div class="story">{_paras(story)}</div></div>
<div id="sidebar"><h3>Most read</h3><ol><li><a href="/x">Local team wins cup final</a></li>
<li><a href="/y">New museum opens downtown</a></li></ol></div>
<div id="footer">The Gamma Gazette, 12 High Street.</div></body></html>"""


def rss(base: str, items: list[tuple[str, str]]) -> str:
    entries = "".join(
        f"<item><title>{html.escape(t)}</title><link>{base}{p}?utm_source=rss&amp;utm_medium=feed</link>"
        f"<pubDate>{formatdate(time.time() - 3600, usegmt=True)}</pubDate></item>"
        for t, p in items)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Feed</title>'
            f"<link>{base}/</link>{entries}</channel></rss>")


def sitemap(base: str, paths: list[str]) -> str:
    urls = "".join(f"<url><loc>{base}{p}</loc><lastmod>{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
                   f"</lastmod></url>" for p in paths)
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'


def syndication_sites(server: SiteServer) -> dict[str, Site]:
    """Alpha (RSS feed), Beta (sitemap) and Gamma (listing page) carrying three stories:

    - the AP story on all three (Gamma retitles it),
    - the Reuters story on Alpha and Beta,
    - the frost story only on Gamma, whose page fails with 500 twice before it answers,
    plus a feed entry that 404s and one under a path robots.txt disallows.
    """
    ap, harbor, frost = STORIES["taliban-consulates"], STORIES["harbor-bridge-reopens"], STORIES["orchard-frost-harvest"]
    alpha = server.add("alpha", "127.0.0.2")
    beta = server.add("beta", "127.0.0.3")
    gamma = server.add("gamma", "127.0.0.4")
    a, b, g = alpha.base, beta.base, gamma.base

    alpha.routes.update({
        "/robots.txt": (200, {"Content-Type": "text/plain"}, "User-agent: *\nDisallow: /private/\n"),
        "/feed/": (200, RSS, rss(a, [(ap["title"], f"/2021/07/06/{ap['slug']}/"),
                                     (harbor["title"], f"/2021/07/06/{harbor['slug']}/"),
                                     ("Gone", "/2021/07/06/removed-story/"),
                                     ("Members only", "/private/secret-story/")])),
        f"/2021/07/06/{ap['slug']}/": (200, HTML, wordpress_page(ap, a)),
        f"/2021/07/06/{harbor['slug']}/": (200, HTML, wordpress_page(harbor, a)),
        "/private/secret-story/": (200, HTML, wordpress_page(frost, a)),
    })
    beta.routes.update({
        "/robots.txt": (404, {"Content-Type": "text/plain"}, "no robots here"),
        "/sitemap.xml": (200, XML,
                         sitemap(b, [f"/world/{ap['slug']}", f"/world/{harbor['slug']}"])),
        f"/world/{ap['slug']}": (200, HTML, jsonld_page(ap, b)),
        f"/world/{harbor['slug']}": (200, HTML, jsonld_page(harbor, b)),
    })

    def flaky(count: int, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
        if count <= 2:
            return 500, HTML, "<html><body>Internal Server Error</body></html>"
        return 200, HTML, plain_page(frost, g)

    listing = """<html><body><h1>World</h1><ul>
<li><a class="story-link" href="/news/afghan-consulates-close.html">Consulates shut as Taliban advance</a></li>
<li><a class="story-link" href="/news/frost-harvest.html#comments">Frost</a></li>
<li><a href="/about.html">About us</a></li></ul></body></html>"""
    gamma.routes.update({
        "/robots.txt": (200, {"Content-Type": "text/plain"}, "User-agent: *\nAllow: /\n"),
        "/news/": (200, HTML, listing),
        "/news/afghan-consulates-close.html": (200, HTML, plain_page(ap, g, "Consulates shut as Taliban advance")),
        "/news/frost-harvest.html": flaky,
    })
    return {"alpha": alpha, "beta": beta, "gamma": gamma}


def sources_yaml(sites: dict[str, Site], rate: float = 20.0) -> str:
    return f"""
defaults:
  interval: 2s
  rate: {rate}
sources:
  - name: alpha
    feeds: ["{sites['alpha'].base}/feed/"]
    agency: AP
  - name: beta
    sitemaps: ["{sites['beta'].base}/sitemap.xml"]
  - name: gamma
    listings:
      - url: "{sites['gamma'].base}/news/"
        links: "a.story-link"
routes:
  - stream: ROUTE_STREAM
    agency: AP
"""


WORDS = ["council", "budget", "river", "school", "market", "election", "harbor", "storm", "court", "police", "minister", "festival", "hospital", "farmers", "strike", "bridge", "museum", "league", "airport", "rail", "energy", "tax", "housing", "water", "university", "virus", "drought", "coast", "bank", "mayor", "union", "senate", "trial", "factory", "forest", "fire"]


def unique_story(i: int) -> dict:
    rnd = random.Random(i)
    paras = [" ".join(rnd.choice(WORDS) for _ in range(45)).capitalize() + "." for _ in range(5)]
    return {"slug": f"story-{i}", "title": f"Story number {i} about {rnd.choice(WORDS)}", "agency": None,
            "dateline": None, "paragraphs": paras}


def news_site(server: SiteServer, n: int, delay: float = 0.0, address: str = "127.0.0.8") -> Site:
    site = server.add(f"news{n}", address)
    paths = [f"/news/story-{i}.html" for i in range(n)]
    site.routes["/robots.txt"] = (404, {}, "")
    urls = "".join(f"<url><loc>{site.base}{p}</loc></url>" for p in paths)
    site.routes["/sitemap.xml"] = (200, XML,
                                   f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>')
    for i, p in enumerate(paths):
        body = jsonld_page(unique_story(i), site.base)
        if delay:
            def slow(count: int, headers: dict, body: str = body):
                time.sleep(delay)
                return 200, HTML, body
            site.routes[p] = slow
        else:
            site.routes[p] = (200, HTML, body)
    return site


def news_sources(site: Site, interval: str = "1h", rate: float = 50) -> str:
    """sources.yaml with one source, `news`, discovering `site` through its sitemap."""
    return (f"sources:\n- name: news\n  sitemaps: ['{site.base}/sitemap.xml']\n  interval: {interval}\n"
            f"  rate: {rate}\n")


def use_site(env: dict[str, str], site: Site, interval: str = "1h", rate: float = 50) -> None:
    Path(env["WIRE_SOURCES"]).write_text(news_sources(site, interval, rate))
