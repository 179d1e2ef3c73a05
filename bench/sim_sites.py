"""What the six simulated sites serve: article pages in six templates, feeds, sitemaps, robots.txt.

Pure: every function turns a `Page` (or a site's current pages) into bytes.
The furniture is the point of the simulation, so each template carries what
its kind of site really carries, inside and around the story:

- wordpress: menu, featured image with a photo credit, a share bar and
  "Related" posts inside the entry content, tags, an author box, post
  navigation, the "Leave a Reply" comment form, a widget sidebar;
- amp: an AMP page, its sidebar menu, an ad slot, JSON-LD, a caption with
  credit, social share buttons, a "Read more" list;
- oldstyle: a 1990s local paper in windows-1252: table layout, `<FONT>`,
  paragraphs separated by `<BR><BR>`, a `|`-separated navigation row, a
  "Most Popular Stories" sidebar that changes on every fetch, an uppercase
  byline with the agency, a `Posted:` line with no zone,
  "Printer-friendly version | E-mail this story", "Back to top";
- modern: JSON-LD (`datePublished`, `author`), `<time datetime>`, a
  newsletter box inside the story, a "Subscribe to ... for unlimited
  access." line, "More from" links;
- trending: ad labels and a "Trending now" list (changes on every fetch)
  inside the story, an AP copyright line, comment counts, "You may also like";
- portal: a regional portal with breadcrumbs, two heavy rails (latest news,
  markets, weather, most read, death notices), "Read more:" links inside the
  story, a text byline `Name, Reuters`, a footer of link lists.

The per-fetch furniture draws from `random.Random(seed, path, fetch count)`,
so the same run asks the same pages the same number of times and gets the
same bytes.
"""

from __future__ import annotations

import hashlib
import html
import json
import random
from datetime import datetime
from email.utils import format_datetime

from sim_world import SITE, Page

MONTHS_LONG = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December"]
MONTHS_AP = ["Jan.", "Feb.", "March", "April", "May", "June", "July", "Aug.", "Sept.", "Oct.", "Nov.", "Dec."]

LOCAL = [
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
    "Local teen wins national spelling bee title",
    "Snow plows ready as first winter storm approaches",
    "Museum unveils restored 19th-century mural",
    "Bridge inspection finds cracks, weight limit lowered",
    "Youth soccer league expands to three new fields",
    "City hires new parks director from out of state",
    "Holiday lights parade draws thousands downtown",
    "Animal shelter waives adoption fees this weekend",
    "Community college announces nursing scholarship",
    "Power restored after storm knocks out service to 3,000 homes",
    "Historic theater reopens with sold-out show",
]


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _attr(text: str) -> str:
    return html.escape(text, quote=True)


def _and(names: tuple[str, ...] | list[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _credit(page: Page, rng: random.Random) -> str:
    photographer = rng.choice(["Jae C. Hong", "Ariel Schalit", "Emilio Morenatti", "Rebecca Blackwell",
                               "Manuel Balce Ceneta", "Leah Millis", "Kim Kyung-Hoon", "Yves Herman"])
    return {"AP": f"(AP Photo/{photographer})", "Reuters": f"REUTERS/{photographer}",
            "AFP": f"{photographer.upper()}/AFP via Getty Images", "dpa": f"Foto: {photographer}/dpa"}.get(
        page.agency or "", f"Staff photo by {photographer}")


def _caption(page: Page) -> str:
    words = page.title.split()
    return f"A scene related to {' '.join(words[:6]).rstrip(',:;')} is seen in this file photo."


def others(page: Page, pages: list[Page], n: int, salt: str = "") -> list[Page]:
    """`n` other pages of the site, the same ones every time for this page and salt."""
    pool = sorted((p for p in pages if p.path != page.path), key=lambda p: p.path)
    rng = random.Random(f"{page.uid}:{salt}")
    return rng.sample(pool, min(n, len(pool)))


def latest(pages: list[Page], n: int) -> list[Page]:
    return sorted(pages, key=lambda p: (p.published.timestamp(), p.path), reverse=True)[:n]


def popular(page: Page, pages: list[Page], rng: random.Random, n: int) -> list[tuple[str, str]]:
    """A list of headlines that changes on every fetch: (title, path)."""
    pool = [(p.title, p.path) for p in pages if p.path != page.path]
    pool += [(h, f"/news/local-{i}.html") for i, h in enumerate(LOCAL)]
    return rng.sample(pool, min(n, len(pool)))


# ----------------------------------------------------------------------------- the six templates


def wordpress(page: Page, pages: list[Page], base: str, rng: random.Random) -> str:
    spec = SITE[page.site]
    pub, mod = page.published.isoformat(), page.modified.isoformat()
    day = f"{MONTHS_LONG[page.published.month - 1]} {page.published.day}, {page.published.year}"
    if page.agency:
        who = f"{_and(page.authors)}, {page.agency_label}" if page.authors else str(page.agency_label)
    else:
        who = page.authors[0]
    related = "".join(
        f'<div class="jp-relatedposts-post"><h4 class="jp-relatedposts-post-title"><a class="jp-relatedposts-post-a" '
        f'href="{p.path}" title="{_attr(p.title)}">{_esc(p.title)}</a></h4><p class="jp-relatedposts-post-date">'
        f'{MONTHS_LONG[p.published.month - 1]} {p.published.day}, {p.published.year}</p>'
        f'<p class="jp-relatedposts-post-context">In &quot;World&quot;</p></div>'
        for p in others(page, pages, 3, "related"))
    recent = "".join(f'<li><a href="{p.path}">{_esc(p.title)}</a></li>' for p in latest(pages, 5))
    nav = others(page, pages, 2, "nav")
    prev_next = "".join(f'<div class="nav-{k}"><a href="{p.path}" rel="{r}"><span class="meta-nav">{label}</span> '
                        f'<span class="post-title">{_esc(p.title)}</span></a></div>'
                        for (k, r, label), p in zip((("previous", "prev", "Previous Post"),
                                                     ("next", "next", "Next Post")), nav, strict=False))
    body = "\n".join(f"<p>{_esc(p)}</p>" for p in page.shown)
    return f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(page.title)} &#8211; {spec.name}</title>
<meta name="robots" content="index, follow, max-image-preview:large">
<link rel="canonical" href="{base}{page.path}">
<meta property="og:locale" content="en_GB">
<meta property="og:type" content="article">
<meta property="og:title" content="{_attr(page.title)}">
<meta property="og:url" content="{base}{page.path}">
<meta property="og:site_name" content="{spec.name}">
<meta property="article:published_time" content="{pub}">
<meta property="article:modified_time" content="{mod}">
<meta name="author" content="Wire Desk">
<link rel="stylesheet" id="wp-block-library-css" href="/wp-includes/css/dist/block-library/style.min.css?ver=6.4.2" media="all">
<link rel="alternate" type="application/rss+xml" title="{spec.name} &raquo; Feed" href="{base}/feed/">
<script type="application/ld+json">{{"@context":"https://schema.org","@graph":[{{"@type":"WebSite","@id":"{base}/#website","url":"{base}/","name":"{spec.name}"}},{{"@type":"WebPage","@id":"{base}{page.path}","url":"{base}{page.path}","isPartOf":{{"@id":"{base}/#website"}}}}]}}</script>
</head>
<body class="post-template-default single single-post postid-{page.uid} single-format-standard wp-embed-responsive">
<div id="page" class="site">
<a class="skip-link screen-reader-text" href="#content">Skip to content</a>
<header id="masthead" class="site-header">
<div class="site-branding"><p class="site-title"><a href="/" rel="home">{spec.name}</a></p>
<p class="site-description">News from the waterfront and the world</p></div>
<nav id="site-navigation" class="main-navigation"><button class="menu-toggle" aria-controls="primary-menu" aria-expanded="false">Menu</button>
<ul id="primary-menu" class="menu"><li><a href="/">Home</a></li><li><a href="/category/local/">Local</a></li><li><a href="/category/world/">World</a></li><li><a href="/category/business/">Business</a></li><li><a href="/category/sport/">Sport</a></li><li><a href="/category/opinion/">Opinion</a></li><li><a href="/contact/">Contact</a></li></ul>
</nav>
</header>
<div id="content" class="site-content">
<div id="primary" class="content-area"><main id="main" class="site-main">
<article id="post-{page.uid}" class="post-{page.uid} post type-post status-publish format-standard has-post-thumbnail hentry category-world">
<header class="entry-header">
<h1 class="entry-title">{_esc(page.title)}</h1>
<div class="entry-meta"><span class="posted-on">Posted on <a href="{page.path}" rel="bookmark"><time class="entry-date published" datetime="{pub}">{day}</time><time class="updated" datetime="{mod}">{MONTHS_LONG[page.modified.month - 1]} {page.modified.day}, {page.modified.year}</time></a></span><span class="byline"> by <span class="author vcard"><a class="url fn n" href="/author/wire-desk/">{_esc(who)}</a></span></span></div>
</header>
<div class="post-thumbnail"><img width="1200" height="800" src="/wp-content/uploads/{page.published:%Y/%m}/photo-{page.uid}.jpg" class="attachment-post-thumbnail size-post-thumbnail wp-post-image" alt="" decoding="async">
<figcaption class="wp-caption-text">{_esc(_caption(page))} {_esc(_credit(page, random.Random(page.uid)))}</figcaption></div>
<div class="entry-content">
{body}
<div class="sharedaddy sd-sharing-enabled"><div class="robots-nocontent sd-block sd-social sd-social-icon-text sd-sharing"><h3 class="sd-title">Share this:</h3><div class="sd-content"><ul>
<li class="share-twitter"><a rel="nofollow noopener noreferrer" class="share-twitter sd-button share-icon" href="{page.path}?share=twitter" target="_blank" title="Click to share on Twitter"><span>Twitter</span></a></li>
<li class="share-facebook"><a rel="nofollow noopener noreferrer" class="share-facebook sd-button share-icon" href="{page.path}?share=facebook" target="_blank" title="Click to share on Facebook"><span>Facebook</span></a></li>
<li class="share-email"><a rel="nofollow noopener noreferrer" class="share-email sd-button share-icon" href="mailto:?subject=Shared%20post" title="Click to email a link to a friend"><span>Email</span></a></li>
<li class="share-print"><a rel="nofollow noopener noreferrer" class="share-print sd-button share-icon" href="{page.path}#print" title="Click to print"><span>Print</span></a></li>
<li class="share-end"></li></ul></div></div></div>
<div id="jp-relatedposts" class="jp-relatedposts"><h3 class="jp-relatedposts-headline"><em>Related</em></h3>
<div class="jp-relatedposts-items jp-relatedposts-items-visual">{related}</div></div>
</div>
<footer class="entry-footer"><span class="cat-links">Posted in <a href="/category/world/" rel="category tag">World</a></span><span class="tags-links">Tagged <a href="/tag/{(page.agency or 'local').lower()}/" rel="tag">{_esc(page.agency or 'Local')}</a>, <a href="/tag/news/" rel="tag">news</a></span></footer>
<div class="author-box"><div class="author-avatar"><img alt="" src="/wp-content/uploads/avatar-wire.png" class="avatar avatar-96 photo" height="96" width="96"></div>
<div class="author-bio"><h4 class="author-title">About Wire Desk</h4>
<p class="author-description">The Harbor Gazette's wire desk brings you the day's national and international news from our partner agencies.</p>
<a class="author-link" href="/author/wire-desk/" rel="author">View all posts by Wire Desk</a></div></div>
</article>
<nav class="navigation post-navigation" aria-label="Posts"><h2 class="screen-reader-text">Post navigation</h2><div class="nav-links">{prev_next}</div></nav>
<div id="comments" class="comments-area">
<div id="respond" class="comment-respond">
<h3 id="reply-title" class="comment-reply-title">Leave a Reply <small><a rel="nofollow" id="cancel-comment-reply-link" href="#respond" style="display:none;">Cancel reply</a></small></h3>
<form action="/wp-comments-post.php" method="post" id="commentform" class="comment-form" novalidate>
<p class="comment-notes"><span id="email-notes">Your email address will not be published.</span> <span class="required-field-message">Required fields are marked <span class="required">*</span></span></p>
<p class="comment-form-comment"><label for="comment">Comment <span class="required">*</span></label> <textarea id="comment" name="comment" cols="45" rows="8" maxlength="65525" required></textarea></p>
<p class="comment-form-author"><label for="author">Name <span class="required">*</span></label> <input id="author" name="author" type="text" value="" size="30" maxlength="245" autocomplete="name" required></p>
<p class="comment-form-email"><label for="email">Email <span class="required">*</span></label> <input id="email" name="email" type="email" value="" size="30" maxlength="100" autocomplete="email" required></p>
<p class="comment-form-url"><label for="url">Website</label> <input id="url" name="url" type="url" value="" size="30" maxlength="200" autocomplete="url"></p>
<p class="comment-form-cookies-consent"><input id="wp-comment-cookies-consent" name="wp-comment-cookies-consent" type="checkbox" value="yes"> <label for="wp-comment-cookies-consent">Save my name, email, and website in this browser for the next time I comment.</label></p>
<p class="form-submit"><input name="submit" type="submit" id="submit" class="submit" value="Post Comment"> <input type="hidden" name="comment_post_ID" value="{page.uid}" id="comment_post_ID"></p>
</form></div></div>
</main></div>
<aside id="secondary" class="widget-area">
<section id="search-2" class="widget widget_search"><form role="search" method="get" class="search-form" action="/"><label><span class="screen-reader-text">Search for:</span><input type="search" class="search-field" placeholder="Search &hellip;" value="" name="s"></label><input type="submit" class="search-submit" value="Search"></form></section>
<section id="recent-posts-2" class="widget widget_recent_entries"><h2 class="widget-title">Recent Posts</h2><ul>{recent}</ul></section>
<section id="archives-2" class="widget widget_archive"><h2 class="widget-title">Archives</h2><ul><li><a href="/{page.published:%Y/%m}/">{MONTHS_LONG[page.published.month - 1]} {page.published.year}</a></li><li><a href="/2026/11/">November 2026</a></li><li><a href="/2026/10/">October 2026</a></li></ul></section>
<section id="categories-2" class="widget widget_categories"><h2 class="widget-title">Categories</h2><ul><li><a href="/category/business/">Business</a></li><li><a href="/category/local/">Local</a></li><li><a href="/category/world/">World</a></li></ul></section>
</aside>
</div>
<footer id="colophon" class="site-footer"><div class="site-info"><a href="https://wordpress.org/">Proudly powered by WordPress</a><span class="sep"> | </span>Theme: Newsup by Themeansar.</div></footer>
</div>
</body>
</html>
"""


def amp(page: Page, pages: list[Page], base: str, rng: random.Random) -> str:
    spec = SITE[page.site]
    if page.authors:
        author: object = [{"@type": "Person", "name": n} for n in page.authors]
    elif page.agency:
        author = {"@type": "Organization", "name": page.agency_label}
    else:
        author = []
    ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": page.title,
          "datePublished": page.published.isoformat().replace("+00:00", "Z"),
          "dateModified": page.modified.isoformat().replace("+00:00", "Z"), "author": author,
          "publisher": {"@type": "Organization", "name": spec.name,
                        "logo": {"@type": "ImageObject", "url": f"{base}/img/logo.png", "width": 600, "height": 60}},
          "image": [f"{base}/img/{page.uid}.jpg"], "mainEntityOfPage": f"{base}{page.path}"}
    byline = ""
    if page.authors:
        org = f', <span class="org">{_esc(str(page.agency_label))}</span>' if page.agency else ""
        byline = f'<div class="byline">By <span class="author">{_esc(_and(page.authors))}</span>{org}</div>'
    elif page.agency:
        byline = f'<div class="byline"><span class="org">{_esc(str(page.agency_label))}</span></div>'
    stamp = f"{page.published.day} {MONTHS_LONG[page.published.month - 1][:3]} {page.published.year}, {page.published:%H:%M} UTC"
    more = "".join(f'<li><a href="{p.path}">{_esc(p.title)}</a></li>' for p in others(page, pages, 4, "more"))
    body = "\n".join(f"<p>{_esc(p)}</p>" for p in page.shown)
    return f"""<!doctype html>
<html \u26a1 lang="en">
<head>
<meta charset="utf-8">
<title>{_esc(page.title)} | {spec.name}</title>
<link rel="canonical" href="{base}{page.path}">
<meta name="viewport" content="width=device-width,minimum-scale=1,initial-scale=1">
<script async src="https://cdn.ampproject.org/v0.js"></script>
<script async custom-element="amp-social-share" src="https://cdn.ampproject.org/v0/amp-social-share-0.1.js"></script>
<script async custom-element="amp-ad" src="https://cdn.ampproject.org/v0/amp-ad-0.1.js"></script>
<script async custom-element="amp-sidebar" src="https://cdn.ampproject.org/v0/amp-sidebar-0.1.js"></script>
<style amp-boilerplate>body{{-webkit-animation:-amp-start 8s steps(1,end) 0s 1 normal both;animation:-amp-start 8s steps(1,end) 0s 1 normal both}}@keyframes -amp-start{{from{{visibility:hidden}}to{{visibility:visible}}}}</style><noscript><style amp-boilerplate>body{{-webkit-animation:none;animation:none}}</style></noscript>
<style amp-custom>body{{font-family:Georgia,serif;margin:0}}.byline,.timestamp{{color:#555;font-size:14px}}.top-bar{{background:#c00;color:#fff}}</style>
<script type="application/ld+json">{json.dumps(ld, ensure_ascii=False)}</script>
</head>
<body>
<amp-sidebar id="menu" layout="nodisplay" side="left">
<nav><ul><li><a href="/amp/">Top Stories</a></li><li><a href="/amp/world/">World</a></li><li><a href="/amp/politics/">Politics</a></li><li><a href="/amp/tech/">Tech</a></li><li><a href="/amp/health/">Health</a></li><li><a href="/amp/sports/">Sports</a></li></ul></nav>
</amp-sidebar>
<header class="top-bar"><button on="tap:menu.toggle" aria-label="Open menu">&#9776;</button> <a href="/amp/" class="logo">Pulse</a></header>
<amp-ad width="320" height="50" type="doubleclick" data-slot="/1234/pulse/world/top"><div placeholder>Advertisement</div></amp-ad>
<article class="story">
<h1 class="headline">{_esc(page.title)}</h1>
{byline}
<div class="timestamp"><time datetime="{ld['datePublished']}">{stamp}</time></div>
<figure class="lead"><amp-img src="/img/{page.uid}.jpg" width="1280" height="720" layout="responsive" alt="{_attr(_caption(page))}"></amp-img>
<figcaption>{_esc(_caption(page))} <span class="credit">{_esc(_credit(page, random.Random(page.uid)))}</span></figcaption></figure>
<div class="story-body">
{body}
</div>
<div class="share"><amp-social-share type="twitter" width="40" height="40"></amp-social-share><amp-social-share type="facebook" width="40" height="40" data-param-app_id="254325784911610"></amp-social-share><amp-social-share type="whatsapp" width="40" height="40"></amp-social-share><amp-social-share type="email" width="40" height="40"></amp-social-share></div>
<section class="read-more"><h2>Read more</h2><ul>{more}</ul></section>
</article>
<amp-ad width="300" height="250" type="doubleclick" data-slot="/1234/pulse/world/bottom"><div placeholder>Advertisement</div></amp-ad>
<footer class="footer"><p>&copy; {page.published.year} {spec.name}</p><p><a href="/privacy">Privacy</a> &middot; <a href="/terms">Terms</a> &middot; <a href="/contact">Contact</a></p></footer>
</body>
</html>
"""


def _clock12(d: datetime) -> str:
    return f"{d:%m/%d/%Y} {d.hour % 12 or 12:02d}:{d:%M} {'AM' if d.hour < 12 else 'PM'}"


def oldstyle(page: Page, pages: list[Page], base: str, rng: random.Random) -> str:
    spec = SITE[page.site]
    if page.agency:
        label = str(page.agency_label).upper()
        if page.agency == "AP" and not label.startswith("THE"):
            label = "THE " + label if "PRESS" in label else label
        byline = f"BY {' AND '.join(n.upper() for n in page.authors)}, {label}" if page.authors else f"BY {label}"
    else:
        byline = f"BY {page.authors[0].upper()}, COURIER STAFF WRITER"
    posted = f"Posted: {_clock12(page.published)}"
    if page.modified > page.published and page.version > 1:
        posted += f'</FONT><BR>\n<FONT FACE="Arial" SIZE="1">Updated: {_clock12(page.modified)}'
    most = "".join(f'{i}. <A HREF="{path}">{_esc(title)}</A><BR><BR>\n'
                   for i, (title, path) in enumerate(popular(page, pages, rng, 5), 1))
    body = "<BR><BR>\n".join(_esc(p).replace("\u00a0", "&nbsp;") for p in page.shown)
    weather = rng.choice(["Partly cloudy, high 41. Tonight: low 28.", "Rain likely, high 46. Tonight: low 35.",
                          "Sunny, high 38. Tonight: clear, low 22.", "Flurries, high 33. Tonight: low 19."])
    return f"""<HTML>
<HEAD>
<TITLE>{spec.name} - {_esc(page.title)}</TITLE>
<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=windows-1252">
<META NAME="keywords" CONTENT="Millbrook, news, courier, Ohio, local news">
</HEAD>
<BODY BGCOLOR="#FFFFFF" TEXT="#000000" LINK="#000099" VLINK="#663399" TOPMARGIN="0" LEFTMARGIN="0" MARGINWIDTH="0" MARGINHEIGHT="0">
<A NAME="top"></A>
<TABLE WIDTH="760" BORDER="0" CELLPADDING="0" CELLSPACING="0" ALIGN="CENTER">
<TR><TD COLSPAN="2"><A HREF="/"><IMG SRC="/images/masthead.gif" WIDTH="760" HEIGHT="90" BORDER="0" ALT="{spec.name}"></A></TD></TR>
<TR><TD COLSPAN="2" BGCOLOR="#000066" ALIGN="CENTER" HEIGHT="22"><FONT FACE="Arial, Helvetica" SIZE="2" COLOR="#FFFFFF"><B>
<A HREF="/"><FONT COLOR="#FFFFFF">Home</FONT></A> | <A HREF="/news/"><FONT COLOR="#FFFFFF">News</FONT></A> | <A HREF="/sports/"><FONT COLOR="#FFFFFF">Sports</FONT></A> | <A HREF="/business/"><FONT COLOR="#FFFFFF">Business</FONT></A> | <A HREF="/opinion/"><FONT COLOR="#FFFFFF">Opinion</FONT></A> | <A HREF="/lifestyle/"><FONT COLOR="#FFFFFF">Lifestyle</FONT></A> | <A HREF="/weather/"><FONT COLOR="#FFFFFF">Weather</FONT></A> | <A HREF="/classifieds/"><FONT COLOR="#FFFFFF">Classifieds</FONT></A> | <A HREF="/obits/"><FONT COLOR="#FFFFFF">Obituaries</FONT></A> | <A HREF="/subscribe/"><FONT COLOR="#FFFFFF">Subscribe to the print edition</FONT></A>
</B></FONT></TD></TR>
<TR>
<TD WIDTH="160" VALIGN="TOP" BGCOLOR="#EEEEEE">
<TABLE WIDTH="100%" CELLPADDING="6"><TR><TD>
<FONT FACE="Arial, Helvetica" SIZE="2"><B>Most Popular Stories</B></FONT><BR><BR>
<FONT FACE="Arial, Helvetica" SIZE="1">
{most}</FONT>
<FONT FACE="Arial, Helvetica" SIZE="2"><B>Local Weather</B></FONT><BR>
<FONT FACE="Arial, Helvetica" SIZE="1">Today: {weather}</FONT><BR><BR>
<A HREF="/classifieds/place.html"><IMG SRC="/images/classified_ad.gif" WIDTH="150" HEIGHT="120" BORDER="0" ALT="Place a classified ad"></A>
</TD></TR></TABLE>
</TD>
<TD WIDTH="600" VALIGN="TOP">
<TABLE WIDTH="100%" CELLPADDING="10"><TR><TD>
<FONT FACE="Arial, Helvetica" SIZE="1" COLOR="#666666"><A HREF="/news/">News</A> &gt; Nation/World</FONT><BR>
<FONT FACE="Times New Roman, Times" SIZE="5"><B>{_esc(page.title)}</B></FONT><BR><BR>
<FONT FACE="Arial, Helvetica" SIZE="2"><B>{_esc(byline)}</B></FONT><BR>
<FONT FACE="Arial" SIZE="1">{posted}</FONT><BR>
<BR>
<FONT FACE="Times New Roman, Times" SIZE="3">
{body}
</FONT>
<BR><BR>
<FONT FACE="Arial, Helvetica" SIZE="2"><A HREF="/cgi-bin/print.cgi?id={page.uid}">Printer-friendly version</A> | <A HREF="/cgi-bin/mail.cgi?id={page.uid}">E-mail this story</A></FONT>
<BR><BR>
<HR SIZE="1" NOSHADE>
<FONT FACE="Arial, Helvetica" SIZE="1">Copyright &copy; {page.published.year} {spec.name}. All rights reserved.</FONT>
</TD></TR></TABLE>
</TD>
</TR>
<TR><TD COLSPAN="2" ALIGN="CENTER" BGCOLOR="#EEEEEE"><FONT FACE="Arial, Helvetica" SIZE="1">
<A HREF="#top">Back to top</A><BR>
<A HREF="/contact.html">Contact Us</A> | <A HREF="/advertise.html">Advertise</A> | <A HREF="/privacy.html">Privacy Policy</A> | <A HREF="/archives/">Archives</A><BR>
{spec.name} &middot; 114 Main Street &middot; Millbrook, Ohio 45000 &middot; (555) 555-0134
</FONT></TD></TR>
</TABLE>
</BODY>
</HTML>
"""


def _ap_stamp(d: datetime, zone: str) -> str:
    hour = d.hour % 12 or 12
    return f"{MONTHS_AP[d.month - 1]} {d.day}, {d.year} at {hour}:{d:%M} {'a.m.' if d.hour < 12 else 'p.m.'} {zone}"


def modern(page: Page, pages: list[Page], base: str, rng: random.Random) -> str:
    spec = SITE[page.site]
    authors = [{"@type": "Person", "name": n, "url": f"{base}/by/{n.lower().replace(' ', '-')}"}
               for n in page.authors]
    ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": page.title,
          "datePublished": page.published.isoformat(), "dateModified": page.modified.isoformat(),
          "author": authors or [{"@type": "Organization", "name": page.agency_label or spec.name}],
          "publisher": {"@type": "NewsMediaOrganization", "name": spec.name, "url": f"{base}/"},
          "isAccessibleForFree": False, "articleSection": "World",
          "mainEntityOfPage": {"@type": "WebPage", "@id": f"{base}{page.path}"}}
    names = " and ".join(f'<a href="/by/{n.lower().replace(" ", "-")}" rel="author">{_esc(n)}</a>'
                         for n in page.authors)
    org = f' <span class="byline-org">{_esc(str(page.agency_label))}</span>' if page.agency else ""
    byline = f'<div class="article-byline">By {names}{org}</div>' if page.authors else \
        f'<div class="article-byline">{org.strip()}</div>'
    updated = ""
    if page.modified > page.published:
        updated = f' <span class="updated">Updated <time datetime="{page.modified.isoformat()}">{_ap_stamp(page.modified, "EST")}</time></span>'
    paras = [f'<p class="paragraph">{_esc(p)}</p>' for p in page.shown]
    promo = ('<aside class="newsletter-promo" aria-label="Newsletter sign-up"><h3>The Morning Ledger</h3>'
             "<p>Get the day's top stories delivered to your inbox every weekday morning.</p>"
             '<form action="/newsletters/signup" method="post"><input type="email" name="email" '
             'placeholder="Email address"><button type="submit">Sign up</button></form>'
             '<p class="fine-print">By signing up, you agree to our Terms of Use and Privacy Policy.</p></aside>')
    paras.insert(min(3, len(paras)), promo)
    more = "".join(f'<li><a href="{p.path}">{_esc(p.title)}</a></li>' for p in others(page, pages, 4, "more"))
    return f"""<!DOCTYPE html>
<html lang="en-US">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(page.title)} | {spec.name}</title>
<link rel="canonical" href="{base}{page.path}">
<meta name="description" content="{_attr(page.shown[0][:150])}">
<meta property="og:title" content="{_attr(page.title)}">
<meta property="og:type" content="article">
<meta name="twitter:card" content="summary_large_image">
<script type="application/ld+json">{json.dumps(ld, ensure_ascii=False)}</script>
<link rel="preload" href="/_next/static/css/app.css" as="style">
</head>
<body>
<div id="__next">
<a class="skip" href="#main-content">Skip to main content</a>
<header class="site-header"><a class="logo" href="/">{spec.name}</a>
<nav aria-label="Sections"><a href="/news">News</a><a href="/politics">Politics</a><a href="/world">World</a><a href="/business">Business</a><a href="/opinion">Opinion</a><a href="/sports">Sports</a><a href="/arts">Arts</a></nav>
<a class="btn-subscribe" href="/subscribe">Subscribe</a> <a href="/login">Sign in</a></header>
<main id="main-content">
<article class="article">
<div class="article-kicker"><a href="/world">World</a></div>
<h1 class="article-headline" data-testid="headline">{_esc(page.title)}</h1>
{byline}
<div class="article-timestamp">Published <time datetime="{page.published.isoformat()}">{_ap_stamp(page.published, "EST")}</time>{updated}</div>
<figure class="lead-art"><img src="/images/{page.uid}.jpg" alt="{_attr(_caption(page))}" width="1600" height="900">
<figcaption>{_esc(_caption(page))} <span class="credit">{_esc(_credit(page, random.Random(page.uid)))}</span></figcaption></figure>
<div class="article-body" data-testid="article-body">
{chr(10).join(paras)}
<p class="subscribe-promo">Subscribe to {spec.name} for unlimited access.</p>
</div>
<div class="article-tools"><button type="button">Share</button><button type="button">Save</button><button type="button">Gift this article</button></div>
<section class="more-from"><h2>More from World</h2><ul>{more}</ul></section>
</article>
<aside class="newsletter-box"><h2>Breaking news alerts</h2><p>Be the first to know when big news breaks.</p><a href="/newsletters">Sign up for alerts</a></aside>
</main>
<footer class="site-footer"><nav><a href="/about">About Us</a><a href="/contact">Contact</a><a href="/careers">Careers</a><a href="/terms">Terms of Use</a><a href="/privacy">Privacy Policy</a><a href="/do-not-sell">Do Not Sell or Share My Personal Information</a></nav>
<p>&copy; {page.published.year} {spec.name}. All rights reserved.</p></footer>
</div>
</body>
</html>
"""


def trending(page: Page, pages: list[Page], base: str, rng: random.Random) -> str:
    spec = SITE[page.site]
    who = _and(page.authors) if page.authors else ""
    if page.agency:
        who = f"{who} | {page.agency_label}" if who else str(page.agency_label)
    shown = f"{MONTHS_LONG[page.modified.month - 1][:3]} {page.modified.day:02d}, {page.modified.year}, {page.modified:%H:%M} IST"
    trend = "".join(f'<li><a href="{path}">{_esc(title)}</a></li>' for title, path in popular(page, pages, rng, 5))
    paras = [f"<p>{_esc(p)}</p>" for p in page.shown]
    paras.insert(min(2, len(paras)), '<div class="ad-slot ad-inline"><span class="ad-label">Advertisement</span></div>')
    paras.insert(min(4, len(paras)), f'<aside class="trending-inline"><h4>Trending now</h4><ol>{trend}</ol></aside>')
    if page.agency == "AP":
        paras.append(f'<p class="copyright">Copyright {page.published.year} The Associated Press. All rights reserved. '
                     "This material may not be published, broadcast, rewritten or redistributed without permission.</p>")
    also = "".join(f'<li><a href="{p.path}">{_esc(p.title)}</a></li>' for p in others(page, pages, 3, "also"))
    most = "".join(f'<li><a href="{p.path}">{_esc(p.title)}</a></li>' for p in latest(pages, 5))
    comments = random.Random(page.uid).randint(3, 240)
    return f"""<!DOCTYPE html>
<html lang="en-IN">
<head>
<meta charset="utf-8">
<title>{_esc(page.title)} - {spec.name}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta property="og:title" content="{_attr(page.title)}">
<meta property="og:type" content="article">
<meta property="article:published_time" content="{page.published.isoformat()}">
<meta property="article:modified_time" content="{page.modified.isoformat()}">
<meta name="author" content="{_attr(', '.join(page.authors) or str(page.agency_label))}">
<link rel="canonical" href="{base}{page.path}">
</head>
<body class="article-page">
<div class="topbar"><span class="edition">India Edition</span> <a href="/epaper">E-Paper</a> <a href="/apps">Apps</a> <a href="/login">Login</a></div>
<header><div class="logo"><a href="/">{spec.name}</a></div>
<ul class="nav"><li><a href="/india">India</a></li><li><a href="/world">World</a></li><li><a href="/business">Business</a></li><li><a href="/tech">Tech</a></li><li><a href="/cricket">Cricket</a></li><li><a href="/entertainment">Entertainment</a></li><li><a href="/videos">Videos</a></li></ul></header>
<div class="container"><div class="main-col">
<ul class="breadcrumb"><li><a href="/">Home</a></li><li><a href="/news/">News</a></li><li><a href="/world">World</a></li></ul>
<h1 class="story-title">{_esc(page.title)}</h1>
<div class="story-meta"><span class="author-name">By {_esc(who)}</span> <span class="pub-time">Updated: {shown}</span></div>
<div class="story-body">
{chr(10).join(paras)}
</div>
<div class="story-footer"><span class="comments-count"><a href="#comments">View comments ({comments})</a></span>
<div class="share-icons"><a href="#">WhatsApp</a> <a href="#">Facebook</a> <a href="#">X</a> <a href="#">Copy link</a></div></div>
<section class="also-read"><h3>You may also like</h3><ul>{also}</ul></section>
</div>
<div class="side-col"><div class="widget"><h3>Top Videos</h3><ul><li>Watch: Monsoon session opens amid protests</li><li>Watch: Cricket highlights from the second Test</li></ul></div>
<div class="widget most-read"><h3>Most Read</h3><ol>{most}</ol></div></div>
</div>
<footer><ul><li><a href="/about">About Us</a></li><li><a href="/contact">Contact Us</a></li><li><a href="/advertise">Advertise with us</a></li><li><a href="/privacy">Privacy Policy</a></li><li><a href="/terms">Terms &amp; Conditions</a></li></ul>
<p>Copyright &copy; {page.published.year} {spec.name}. All rights reserved.</p></footer>
</body>
</html>
"""


def portal(page: Page, pages: list[Page], base: str, rng: random.Random) -> str:
    spec = SITE[page.site]
    if page.agency:
        who = f"{_and(page.authors)}, {page.agency_label}" if page.authors else str(page.agency_label)
    else:
        who = page.authors[0]
    d = page.published
    stamp = f"{d.day} {MONTHS_LONG[d.month - 1]} {d.year} - {d.hour % 12 or 12}:{d:%M}{'am' if d.hour < 12 else 'pm'}"
    read_more = others(page, pages, 1, "readmore")
    paras = [f"<p>{_esc(p)}</p>" for p in page.shown]
    if read_more:
        paras.insert(min(2, len(paras)), f'<p class="read-more"><strong>Read more:</strong> '
                                         f'<a href="{read_more[0].path}">{_esc(read_more[0].title)}</a></p>')
    latest_list = "".join(f'<li><a href="{p.path}">{_esc(p.title)}</a> <span class="time">'
                          f'{p.published:%H:%M}</span></li>' for p in latest(pages, 8))
    most = "".join(f'<li><a href="{p.path}">{_esc(p.title)}</a></li>' for p in others(page, pages, 5, "most"))
    return f"""<!DOCTYPE html>
<html lang="en-AU">
<head>
<meta charset="utf-8">
<title>{spec.name} | {_esc(page.title)}</title>
<meta name="description" content="{_attr(page.shown[0][:160])}">
<meta property="og:title" content="{_attr(page.title)}">
<meta property="og:site_name" content="{spec.name}">
<meta property="article:published_time" content="{page.published.isoformat()}">
<meta name="byl" content="By {_attr(', '.join(page.authors) or str(page.agency_label))}">
<link rel="canonical" href="{base}{page.path}">
</head>
<body class="story-page">
<div id="page">
<div class="util-bar"><a href="/login">Log in</a> <a href="/register">Register</a> <span class="weather-mini">Wagga Wagga 24&deg;C Sunny</span> <a href="/subscribe">Subscribe</a></div>
<header class="masthead"><a class="brand" href="/">{spec.name}</a>
<nav class="primary"><a href="/news/">News</a> <a href="/sport/">Sport</a> <a href="/rural/">Rural</a> <a href="/business/">Business</a> <a href="/community/">Community</a> <a href="/whats-on/">What's On</a> <a href="/classifieds/">Classifieds</a> <a href="/obituaries/">Obituaries</a> <a href="/jobs/">Jobs</a></nav></header>
<ol class="breadcrumbs"><li><a href="/">Home</a></li><li><a href="/news/">News</a></li><li><a href="/news/world/">World</a></li><li>{_esc(page.title)}</li></ol>
<div class="layout">
<aside class="left-rail">
<div class="module latest"><h3>Latest News</h3><ul>{latest_list}</ul></div>
<div class="module markets"><h3>Markets</h3><table><tr><td>ASX 200</td><td>7,812.3</td><td>+0.4%</td></tr><tr><td>AUD/USD</td><td>0.6612</td><td>-0.1%</td></tr><tr><td>Gold</td><td>US$2,041</td><td>+0.2%</td></tr><tr><td>Wheat</td><td>A$352/t</td><td>-1.3%</td></tr></table><p class="delay">Prices delayed by 20 minutes</p></div>
</aside>
<main class="content">
<article class="story">
<h1 class="story-headline">{_esc(page.title)}</h1>
<p class="byline">{_esc(who)}</p>
<p class="story-date"><time datetime="{page.published.isoformat()}">{stamp}</time></p>
<div class="story-content">
{chr(10).join(paras)}
</div>
<div class="tags"><span>Topics:</span> <a href="/topic/world/">World</a> <a href="/topic/{(page.agency or 'local').lower()}/">{_esc(page.agency or 'Local')}</a></div>
<div class="share-bar"><a href="#">Share on Facebook</a> <a href="#">Share on X</a> <a href="#">Email</a></div>
</article>
<section class="comments-closed"><p>Comments are closed for this story.</p></section>
</main>
<aside class="right-rail">
<div class="module most-read"><h3>Most Read</h3><ol>{most}</ol></div>
<div class="module weather"><h3>Weather</h3><p>Today: Sunny, 18&deg;&ndash;31&deg;. Tomorrow: Hot, 20&deg;&ndash;35&deg;.</p></div>
<div class="module ad"><span>Advertisement</span></div>
<div class="module notices"><h3>Death Notices</h3><ul><li>SMITH, Joan Mary</li><li>NGUYEN, Thanh Van</li><li>O'BRIEN, Patrick James</li></ul><a href="/notices/">View all notices</a></div>
</aside>
</div>
<footer><div class="cols"><ul><li><a href="/about/">About us</a></li><li><a href="/contact/">Contact us</a></li><li><a href="/advertise/">Advertise</a></li><li><a href="/subscribe/">Subscribe</a></li></ul>
<ul><li><a href="/terms/">Terms of use</a></li><li><a href="/privacy/">Privacy policy</a></li><li><a href="/code-of-conduct/">Code of conduct</a></li><li><a href="/corrections/">Corrections</a></li></ul></div>
<p>{spec.name} acknowledges the Traditional Owners of the lands on which we work.</p>
<p>&copy; {page.published.year} {spec.name}</p></footer>
</div>
</body>
</html>
"""


TEMPLATES = {"wordpress": wordpress, "amp": amp, "oldstyle": oldstyle, "modern": modern, "trending": trending,
             "portal": portal}
DYNAMIC = {"oldstyle", "trending"}  # no validators: the page changes on every fetch


def render(page: Page, pages: list[Page], base: str, seed: int, fetch: int) -> tuple[bytes, str]:
    """The article page's bytes and content type, for the `fetch`-th request of its URL."""
    rng = random.Random(f"{seed}:{page.site}:{page.path}:{fetch}")
    text = TEMPLATES[page.site](page, pages, base, rng)
    if page.site == "oldstyle":
        return text.encode("cp1252", errors="xmlcharrefreplace"), "text/html"
    return text.encode("utf-8"), "text/html; charset=UTF-8"


def etag(data: bytes) -> str:
    return '"' + hashlib.sha1(data).hexdigest()[:16] + '"'


# ----------------------------------------------------------------------------- discovery documents


def _iso(d: datetime) -> str:
    return d.isoformat().replace("+00:00", "Z")


def rss(site: str, pages: list[Page], base: str, feed_dates: dict[str, datetime]) -> bytes:
    """RSS 2.0 (wordpress, portal: pubDate only; modern: atom:updated too); RSS 0.91 without dates (oldstyle)."""
    spec = SITE[site]
    items = []
    for p in latest(pages, 50):
        url = f"{base}{p.path}"
        if site == "oldstyle":
            items.append(f"<item><title>{_esc(p.title)}</title><link>{_esc(url)}</link>"
                         f"<description>{_esc(p.shown[0][:200])}</description></item>")
            continue
        extra = f"<atom:updated>{_iso(feed_dates[p.path])}</atom:updated>" if spec.feed_has_updated else ""
        creator = f"<dc:creator><![CDATA[{', '.join(p.authors) or p.agency_label or 'Staff'}]]></dc:creator>" \
            if site == "wordpress" else ""
        items.append(f"<item><title>{_esc(p.title)}</title><link>{_esc(url)}</link>"
                     f'<guid isPermaLink="false">{base}/?p={p.uid}</guid><pubDate>{format_datetime(p.published)}</pubDate>'
                     f"{creator}{extra}<category><![CDATA[World]]></category>"
                     f"<description><![CDATA[{p.shown[0][:200]}]]></description></item>")
    version = "0.91" if site == "oldstyle" else "2.0"
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="{version}" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">'
            f"<channel><title>{spec.name}</title><link>{base}/</link><description>Latest news</description>"
            + "".join(items) + "</channel></rss>").encode()


def atom(site: str, pages: list[Page], base: str, feed_dates: dict[str, datetime]) -> bytes:
    spec = SITE[site]
    entries = "".join(
        f'<entry><title>{_esc(p.title)}</title><link rel="alternate" href="{base}{p.path}"/><id>{base}{p.path}</id>'
        f"<published>{_iso(p.published)}</published><updated>{_iso(feed_dates[p.path])}</updated>"
        f"<summary>{_esc(p.shown[0][:200])}</summary></entry>" for p in latest(pages, 50))
    newest = max((feed_dates[p.path] for p in pages), default=None)
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>{spec.name}</title><id>{base}/</id><updated>{_iso(newest) if newest else ''}</updated>"
            f'<link rel="self" href="{base}/feeds/atom.xml"/>{entries}</feed>').encode()


def json_feed(site: str, pages: list[Page], base: str, feed_dates: dict[str, datetime]) -> bytes:
    spec = SITE[site]
    items = [{"id": f"{base}{p.path}", "url": f"{base}{p.path}", "title": p.title,
              "date_published": _iso(p.published), "date_modified": _iso(feed_dates[p.path]),
              "summary": p.shown[0][:200]} for p in latest(pages, 50)]
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": spec.name,
                       "home_page_url": f"{base}/", "feed_url": f"{base}/feed.json", "items": items}).encode()


def sitemap(pages: list[Page], base: str) -> bytes:
    urls = "".join(f"<url><loc>{_esc(base + p.path)}</loc><lastmod>{_iso(p.modified)}</lastmod></url>"
                   for p in latest(pages, 1000))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            + urls + "</urlset>").encode()


def sitemap_index(children: list[tuple[str, datetime | None]]) -> bytes:
    kids = "".join(f"<sitemap><loc>{_esc(url)}</loc>" + (f"<lastmod>{_iso(d)}</lastmod>" if d else "") + "</sitemap>"
                   for url, d in children)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            + kids + "</sitemapindex>").encode()


def news_sitemap(site: str, pages: list[Page], base: str) -> bytes:
    spec = SITE[site]
    urls = "".join(
        f"<url><loc>{_esc(base + p.path)}</loc><news:news><news:publication><news:name>{spec.name}</news:name>"
        f"<news:language>en</news:language></news:publication><news:publication_date>{_iso(p.published)}"
        f"</news:publication_date><news:title>{_esc(p.title)}</news:title></news:news></url>"
        for p in latest(pages, 1000))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">' + urls + "</urlset>").encode()


def document_etag(site: str, path: str, data: bytes, pages: list[Page]) -> str | None:
    """The ETag a site's server sends with a discovery document, or None when it sends none.

    Servers differ, and what wire re-reads depends on it: WordPress derives
    its feed's validators from the last modified post, so any post's update
    changes them; the portal's CMS renders its feed on every request without
    validators; everything else is a file whose ETag follows its bytes.
    """
    feeds, _ = DISCOVERY[site]
    if path in feeds and site == "wordpress":
        newest = max((p.modified for p in pages), default=None)
        return '"' + hashlib.sha1(f"{newest}:{len(pages)}".encode()).hexdigest()[:16] + '"'
    if path in feeds and site == "portal":
        return None
    return etag(data)


# Where each site's discovery documents live: (feeds, sitemaps) as configured in sources.yaml. wire reads a
# source's feeds, then its sitemaps in this order: a discovery round starts with the first feed and ends
# with the last sitemap (the simulation publishes a wave only between rounds).
DISCOVERY = {
    "wordpress": (["/feed/"], ["/post-sitemap.xml"]),
    "amp": (["/feeds/atom.xml"], ["/sitemap.xml", "/news-sitemap.xml"]),
    "oldstyle": (["/rss/news.xml"], ["/sitemap.xml"]),
    "modern": (["/rss/world.xml"], ["/sitemap.xml", "/sitemaps/news.xml"]),
    "trending": (["/feed.json"], ["/sitemap.xml"]),
    "portal": (["/rss/world.xml"], ["/news-sitemap.xml", "/sitemap.xml"]),
}


def discovery_document(site: str, path: str, pages: list[Page], base: str,
                       feed_dates: dict[str, datetime]) -> tuple[bytes, str] | None:
    """A feed, sitemap or robots.txt of `site` at `path`, or None."""
    feeds, sitemaps = DISCOVERY[site]
    if path == "/robots.txt":
        lines = "".join(f"Sitemap: {base}{s}\n" for s in sitemaps)
        return f"User-agent: *\nDisallow: /cgi-bin/\nDisallow: /wp-admin/\n\n{lines}".encode(), "text/plain"
    if path in feeds:
        if site == "amp":
            return atom(site, pages, base, feed_dates), "application/atom+xml; charset=utf-8"
        if site == "trending":
            return json_feed(site, pages, base, feed_dates), "application/feed+json"
        return rss(site, pages, base, feed_dates), "application/rss+xml; charset=utf-8"
    if site == "modern" and path == "/sitemap.xml":
        newest = max((p.modified for p in pages), default=None)
        month = f"/sitemaps/articles-{newest:%Y-%m}.xml" if newest else "/sitemaps/articles.xml"
        return sitemap_index([(base + month, newest)]), "application/xml"
    if site == "modern" and path.startswith("/sitemaps/articles-"):
        return sitemap(pages, base), "application/xml"
    if path in sitemaps:
        if "news" in path:
            return news_sitemap(site, pages, base), "application/xml"
        return sitemap(pages, base), "application/xml"
    return None
