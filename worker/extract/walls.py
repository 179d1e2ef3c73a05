"""Pages that are not articles: challenges, walls, section fronts, non-HTML.

Each check is cheap and conservative: a wall phrase only counts when the page
has no substantial article text of its own, because real stories quote
"Just a moment" or explain cookie laws.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from lxml.html import HtmlElement

_PDF_AND_BINARY_MAGIC = (
    (b"%PDF", "not_html"),
    (b"\x89PNG", "not_html"),
    (b"GIF8", "not_html"),
    (b"\xff\xd8\xff", "not_html"),
    (b"PK\x03\x04", "not_html"),
    (b"\x1f\x8b", "not_html"),
    (b"RIFF", "not_html"),
    (b"OggS", "not_html"),
    (b"ID3", "not_html"),
    (b"\x00\x00\x00", "not_html"),
)

_BOT_WALL = re.compile(
    r"checking (?:if the site connection is secure|your browser)|just a moment\.\.\.|enable javascript and cookies to continue|"
    r"attention required! \| cloudflare|verify (?:you are|you're) (?:a )?human|are you a robot|"
    r"please (?:complete|solve) the (?:security check|captcha)|access to this page has been denied|"
    r"ddos protection by|cf-browser-verification|cf-challenge|challenge-platform|px-captcha|"
    r"unusual traffic from your computer|why have i been blocked|request unsuccessful\. incapsula|"
    r"pardon our interruption|press (?:&|and) hold to confirm",
    re.I,
)
_LOGIN_WALL = re.compile(
    r"(?:sign|log) ?in to (?:continue|read|keep reading|view)|subscribe (?:now )?to (?:continue|keep) reading|"
    r"(?:this (?:article|content|story) is (?:only )?(?:available|reserved) (?:to|for) (?:subscribers|members))|"
    r"create a free account to (?:continue|read)|already a subscriber\?|you have reached your (?:free )?article limit",
    re.I,
)
_COOKIE_WALL = re.compile(
    r"before you continue to|we (?:and our partners )?use cookies|(?:accept|agree to) (?:all )?cookies|"
    r"your (?:privacy|consent) choices|manage (?:cookie )?(?:preferences|consent)|cookie (?:settings|consent)|"
    r"we value your privacy|consent to (?:the use of )?cookies",
    re.I,
)
_CONTROL_BYTES = bytes([*range(9), *range(14, 32)])
# Body length below which a page showing a wall phrase is taken as a wall.
WALL_MAX_BODY_CHARS = 600
COOKIE_WALL_MAX_BODY_CHARS = 250


def sniff_not_html(data: bytes) -> str | None:
    """``not_html`` for PDFs, images, archives and other binary content."""
    head = data[:1024].lstrip()
    for magic, reason in _PDF_AND_BINARY_MAGIC:
        if head.startswith(magic):
            return reason
    sample = data[:4096]
    # Text never holds NUL bytes unless it is UTF-16 (handled by its BOM).
    if sample.count(b"\x00") > 8 and not sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "not_html"
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    if sample and controls / len(sample) > 0.1:
        return "not_html"
    return None


def wall_reason(tree: HtmlElement, title: str | None, body: str, hints: str = "") -> str | None:
    """``bot_wall`` / ``login_wall`` / ``cookie_wall`` when the page is only a wall. `hints`: the
    attributes of scripts already removed from the tree (`script_hints`)."""
    if len(body) >= WALL_MAX_BODY_CHARS:
        return None
    page_text = " ".join((title or "", _visible_text(tree)[:5000]))
    if _BOT_WALL.search(page_text) or _BOT_WALL.search(hints) or _BOT_WALL.search(_script_hints(tree)):
        return "bot_wall"
    if _LOGIN_WALL.search(page_text):
        return "login_wall"
    # Cookie banners sit on real (even short) stories: only a page with next to
    # no text of its own is a consent wall.
    if len(body) < COOKIE_WALL_MAX_BODY_CHARS and _COOKIE_WALL.search(page_text):
        return "cookie_wall"
    return None


def _visible_text(tree: HtmlElement) -> str:
    body = tree.find("body")
    root = body if body is not None else tree
    text = " ".join(t.strip() for t in root.itertext("p", "div", "span", "h1", "h2", "title", "a", "button", "noscript", "main", "section", "form", "label", "li") if t.strip())
    # without the link markers the main-text step leaves in the tree
    return text.replace("\ue000", "").replace("\ue001", "")


def script_hints(elements: Iterable[HtmlElement]) -> str:
    """The attributes challenge markers live in, of the given elements."""
    hints = []
    for el in elements:
        for attr in ("id", "action", "src", "class"):
            value = el.get(attr)
            if value:
                hints.append(value)
    return " ".join(hints)[:20_000]


def _script_hints(tree: HtmlElement) -> str:
    """Challenge markers live in ids, form actions and script sources."""
    hints = []
    for el in tree.iter("form", "script", "div", "iframe"):
        for attr in ("id", "action", "src", "class"):
            value = el.get(attr)
            if value:
                hints.append(value)
    return " ".join(hints)[:20_000]


_SENTENCE_END = re.compile(r"[.!?。»”\"](?:\s|$)")


def _tells_a_story(body: str) -> bool:
    """A paragraph of several sentences: what a short story has and a listing's headlines do not."""
    return any(len(p) >= 300 and len(_SENTENCE_END.findall(p)) >= 2 for p in body.split("\n\n"))


def is_section_front(tree: HtmlElement, body: str, article_typed: bool) -> bool:
    """Many links, little prose outside them, no article markup: a listing page.

    A short story on a page crowded with links (a local site's menus and
    rails) is still a story when its text holds a paragraph of sentences.
    """
    if article_typed or len(body) > 1500 or _tells_a_story(body):
        return False
    links = 0
    link_chars = 0
    for a in tree.iter("a"):
        if a.get("href"):
            links += 1
            link_chars += len((a.text_content() or "").strip())
    if links < 40:
        return False
    page_body = tree.find("body")
    total = len(" ".join((page_body if page_body is not None else tree).text_content().split()))
    return total > 0 and link_chars / total > 0.45


def is_listing_body(paragraphs: list[str], article_typed: bool) -> bool:
    """What came out is a list of headlines: many short lines, almost no sentences."""
    if article_typed or len(paragraphs) < 15:
        return False
    short = sum(1 for p in paragraphs if len(p) < 90 and not p.rstrip().endswith((".", "!", "?", "。", "»", "”", '"')))
    prose_chars = sum(len(p) for p in paragraphs if len(p) >= 150)
    return short / len(paragraphs) > 0.8 and prose_chars < 600
