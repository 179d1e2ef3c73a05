"""Wire stories in four site templates, for the tests of furniture and updates.

Each template carries what its kind of site carries around and inside a
story: `oldstyle` is a small local paper of the 1990s (table layout,
`<FONT>`, paragraphs separated by `<BR><BR>`, a navigation row, a "Most
Popular Stories" sidebar, "Printer-friendly version | E-mail this story",
"Back to top"), `wordpress` a blog theme, `modern` a news site with
JSON-LD, a newsletter box inside the story and a "Subscribe to ... for
unlimited access." line, `trending` a portal with an ad label and a
"Trending now" list inside the story. Sidebars and lists take `seed`: a
different seed is a different list, as on a site where they change on
every fetch.
"""

from __future__ import annotations

import html
import json
import random
from email.utils import formatdate
from typing import Any

from tests.support.paths import FIXTURES

NEWSROOM: dict[str, dict[str, Any]] = {s["slug"]: s for s in json.loads((FIXTURES / "newsroom.json").read_text())}

HEADLINES = [
    "Council approves budget for library expansion after long debate",
    "High school robotics team heads to state finals",
    "Road work on Route 9 to close two lanes through spring",
    "Police seek witnesses after overnight break-in at hardware store",
    "Longtime diner owner retires after 41 years behind the counter",
    "Hospital opens new wing for cancer care",
    "Water main break floods downtown intersection",
    "Farmers market moves indoors for the winter season",
    "School board names interim superintendent",
    "Volunteer firefighters raise record sum at pancake breakfast",
    "Zoning board rejects plan for riverside apartments",
    "Museum unveils restored 19th-century mural",
]


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def paragraphs(story: dict[str, Any], *, updated: bool = False) -> list[str]:
    """The story's paragraphs; `updated`: with its update's paragraphs after the fourth."""
    paras = list(story["paragraphs"])
    if updated:
        paras[4:4] = story["update"]
    return paras


def _headlines(seed: int, n: int = 5) -> list[str]:
    return random.Random(seed).sample(HEADLINES, n)


def oldstyle(story: dict[str, Any], *, seed: int = 0, updated: bool = False) -> bytes:
    most = "".join(f'{i}. <A HREF="/news/{i}.html">{_esc(t)}</A><BR><BR>\n' for i, t in enumerate(_headlines(seed), 1))
    body = "<BR><BR>\n".join(_esc(p) for p in paragraphs(story, updated=updated))
    agency = "THE ASSOCIATED PRESS" if story["agency"] == "AP" else story["agency"].upper()
    page = f"""<HTML><HEAD><TITLE>The Millbrook Courier - {_esc(story['title'])}</TITLE>
<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=windows-1252"></HEAD>
<BODY BGCOLOR="#FFFFFF"><A NAME="top"></A>
<TABLE WIDTH="760" BORDER="0"><TR><TD COLSPAN="2"><IMG SRC="/masthead.gif" ALT="The Millbrook Courier"></TD></TR>
<TR><TD COLSPAN="2" BGCOLOR="#000066"><FONT FACE="Arial" SIZE="2"><B>
<A HREF="/">Home</A> | <A HREF="/news/">News</A> | <A HREF="/sports/">Sports</A> | <A HREF="/business/">Business</A> |
<A HREF="/opinion/">Opinion</A> | <A HREF="/classifieds/">Classifieds</A> | <A HREF="/obits/">Obituaries</A> |
<A HREF="/subscribe/">Subscribe to the print edition</A>
</B></FONT></TD></TR>
<TR><TD WIDTH="160" VALIGN="TOP" BGCOLOR="#EEEEEE"><TABLE WIDTH="100%" CELLPADDING="6"><TR><TD>
<FONT FACE="Arial" SIZE="2"><B>Most Popular Stories</B></FONT><BR><BR>
<FONT FACE="Arial" SIZE="1">
{most}</FONT>
<FONT FACE="Arial" SIZE="2"><B>Local Weather</B></FONT><BR><FONT SIZE="1">Today: Partly cloudy, high 41.</FONT>
</TD></TR></TABLE></TD>
<TD WIDTH="600" VALIGN="TOP"><TABLE WIDTH="100%" CELLPADDING="10"><TR><TD>
<FONT FACE="Arial" SIZE="1"><A HREF="/news/">News</A> &gt; Nation/World</FONT><BR>
<FONT FACE="Times" SIZE="5"><B>{_esc(story['title'])}</B></FONT><BR><BR>
<FONT FACE="Arial" SIZE="2"><B>BY STAFF AND WIRE REPORTS, {agency}</B></FONT><BR>
<FONT FACE="Arial" SIZE="1">Posted: 07/06/2021 09:10 PM</FONT><BR><BR>
<FONT FACE="Times" SIZE="3">
{body}
</FONT><BR><BR>
<FONT FACE="Arial" SIZE="2"><A HREF="/print.cgi?id=1">Printer-friendly version</A> |
<A HREF="/mail.cgi?id=1">E-mail this story</A></FONT>
<BR><BR><HR SIZE="1">
<FONT SIZE="1">Copyright &copy; 2021 The Millbrook Courier. All rights reserved.</FONT>
</TD></TR></TABLE></TD></TR>
<TR><TD COLSPAN="2" ALIGN="CENTER"><FONT SIZE="1"><A HREF="#top">Back to top</A><BR>
<A HREF="/contact.html">Contact Us</A> | <A HREF="/advertise.html">Advertise</A> | <A HREF="/privacy.html">Privacy Policy</A><BR>
The Millbrook Courier &middot; 114 Main Street &middot; Millbrook, Ohio</FONT></TD></TR></TABLE></BODY></HTML>"""
    return page.encode("cp1252", "xmlcharrefreplace")


def wordpress(story: dict[str, Any], *, seed: int = 0, updated: bool = False) -> bytes:
    body = "\n".join(f"<p>{_esc(p)}</p>" for p in paragraphs(story, updated=updated))
    recent = "".join(f'<li><a href="/r/{i}/">{_esc(t)}</a></li>' for i, t in enumerate(_headlines(seed + 1000)))
    return f"""<!DOCTYPE html><html lang="en-US"><head><meta charset="UTF-8">
<title>{_esc(story['title'])} &#8211; Harbor Gazette</title>
<meta property="og:title" content="{html.escape(story['title'])}">
<meta property="article:published_time" content="2021-07-06T09:15:00+00:00">
</head><body class="single single-post">
<header id="masthead"><p class="site-title"><a href="/">Harbor Gazette</a></p>
<nav class="main-navigation"><ul><li><a href="/">Home</a></li><li><a href="/local/">Local</a></li>
<li><a href="/world/">World</a></li><li><a href="/sport/">Sport</a></li></ul></nav></header>
<main id="main"><article class="post type-post">
<header class="entry-header"><h1 class="entry-title">{_esc(story['title'])}</h1>
<div class="entry-meta">Posted on July 6, 2021 by Wire Desk</div></header>
<div class="entry-content">
{body}
<div class="sharedaddy"><h3 class="sd-title">Share this:</h3><ul><li><a href="?share=twitter">Twitter</a></li>
<li><a href="?share=facebook">Facebook</a></li></ul></div>
</div>
<div class="author-box"><h4>About Wire Desk</h4><p>The Harbor Gazette's wire desk brings you the day's news.</p></div>
</article>
<div id="respond"><h3>Leave a Reply</h3><form><p class="comment-notes">Your email address will not be published.</p>
<textarea name="comment"></textarea></form></div></main>
<aside id="secondary"><h2 class="widget-title">Recent Posts</h2><ul>{recent}</ul></aside>
<footer><p>Copyright 2021 Harbor Gazette. All rights reserved.</p></footer></body></html>""".encode()


def modern(story: dict[str, Any], *, seed: int = 0, updated: bool = False) -> bytes:
    ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": story["title"],
          "datePublished": "2021-07-06T06:00:00Z",
          "author": {"@type": "Organization", "name": story["agency"]}}
    paras = [f"<p>{_esc(p)}</p>" for p in paragraphs(story, updated=updated)]
    paras.insert(3, '<div class="newsletter-inline"><p>Get the morning briefing in your inbox.</p>'
                    '<form><input type="email"><button>Sign up</button></form></div>')
    more = "".join(f'<li><a href="/more/{i}">{_esc(t)}</a></li>' for i, t in enumerate(_headlines(seed + 2000, 3)))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{_esc(story['title'])} | The Daily Ledger</title>
<script type="application/ld+json">{json.dumps(ld)}</script></head><body>
<div class="top"><a href="/subscribe">Subscribe</a> <a href="/login">Sign in</a></div>
<nav><a href="/">The Daily Ledger</a> | <a href="/world">World</a> | <a href="/business">Business</a></nav>
<article><h1>{_esc(story['title'])}</h1>
<div class="byline">By {_esc(story['agency'])} | <time datetime="2021-07-06T06:00:00Z">July 6, 2021</time></div>
<div class="article-body">
{chr(10).join(paras)}
<p class="paywall-note">Subscribe to The Daily Ledger for unlimited access.</p>
</div></article>
<section class="more-from"><h3>More from The Daily Ledger</h3><ul>{more}</ul></section>
<footer>&copy; The Daily Ledger. <a href="/privacy">Privacy</a> <a href="/terms">Terms</a></footer>
</body></html>""".encode()


def trending(story: dict[str, Any], *, seed: int = 0, updated: bool = False) -> bytes:
    trend = "".join(f'<li><a href="/t/{i}">{_esc(t)}</a></li>' for i, t in enumerate(_headlines(seed + 3000)))
    paras = [f"<p>{_esc(p)}</p>" for p in paragraphs(story, updated=updated)]
    paras.insert(2, '<div class="ad-slot"><span class="ad-label">Advertisement</span></div>')
    paras.insert(5, f'<aside class="trending-inline"><h4>Trending now</h4><ol>{trend}</ol></aside>')
    comments = random.Random(seed).randint(3, 240)
    return f"""<!DOCTYPE html><html lang="en-IN"><head><meta charset="utf-8">
<title>{_esc(story['title'])} - Metro Portal</title>
<meta property="og:title" content="{html.escape(story['title'])}"></head>
<body><div class="topbar"><a href="/epaper">E-Paper</a> <a href="/login">Login</a></div>
<ul class="nav"><li><a href="/india">India</a></li><li><a href="/world">World</a></li></ul>
<div class="main-col"><h1 class="story-title">{_esc(story['title'])}</h1>
<div class="story-meta">By {_esc(story['agency'])}</div>
<div class="story-body">
{chr(10).join(paras)}
</div>
<div class="story-footer"><a href="#comments">View comments ({comments})</a></div></div>
<footer><p>Copyright &copy; 2021 Metro Portal. All rights reserved.</p></footer></body></html>""".encode()


TEMPLATES = {"oldstyle": oldstyle, "wordpress": wordpress, "modern": modern, "trending": trending}
CONTENT_TYPE = {"oldstyle": "text/html; charset=windows-1252"}


def html_headers(template: str) -> dict[str, str]:
    return {"Content-Type": CONTENT_TYPE.get(template, "text/html; charset=utf-8")}


def rss(base: str, items: list[tuple[str, str]]) -> str:
    """An RSS feed whose items carry no date that moves (a pubDate fixed in the past)."""
    entries = "".join(f"<item><title>{html.escape(t)}</title><link>{base}{p}</link>"
                      f"<pubDate>{formatdate(1_625_562_000, usegmt=True)}</pubDate></item>" for t, p in items)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Feed</title>'
            f"<link>{base}/</link>{entries}</channel></rss>")


def sitemap(base: str, entries: list[tuple[str, str]]) -> str:
    """A sitemap of (path, lastmod) entries."""
    urls = "".join(f"<url><loc>{base}{p}</loc><lastmod>{m}</lastmod></url>" for p, m in entries)
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
