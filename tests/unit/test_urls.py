"""The URL canonicalisation rules, pinned by tables."""

from __future__ import annotations

import pytest

from worker.errors import WorkerError
from worker.urls import (
    MAX_URL_LENGTH,
    BadURL,
    canonicalize,
    choose_canonical,
    redact,
    registrable_domain,
    url_key,
)

CANONICAL = [
    # case and defaults
    ("HTTP://Example.COM/Path", "http://example.com/Path"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com?b=1", "https://example.com/?b=1"),
    ("http://example.com:80/a", "http://example.com/a"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("http://example.com:443/a", "http://example.com:443/a"),
    ("https://example.com:8443/a", "https://example.com:8443/a"),
    ("https://example.com:/a", "https://example.com/a"),
    ("https://example.com./a", "https://example.com/a"),
    # fragments
    ("https://example.com/a#comments", "https://example.com/a"),
    ("https://example.com/a#!/hash/bang", "https://example.com/a"),
    ("https://example.com/a?x=1#top", "https://example.com/a?x=1"),
    # tracking parameters
    ("https://example.com/a?utm_source=tw&utm_medium=social&utm_campaign=x", "https://example.com/a"),
    ("https://example.com/a?UTM_Source=tw&id=3", "https://example.com/a?id=3"),
    ("https://example.com/a?fbclid=IwAR0abc", "https://example.com/a"),
    ("https://example.com/a?gclid=1&dclid=2&msclkid=3", "https://example.com/a"),
    ("https://example.com/a?mc_cid=1&mc_eid=2&page=2", "https://example.com/a?page=2"),
    ("https://example.com/a?_ga=2.1&igshid=x&ref_src=twsrc", "https://example.com/a"),
    ("https://example.com/a?cmpid=rss&ocid=msn&smid=tw-share&sr_share=twitter", "https://example.com/a"),
    ("https://example.com/a?__twitter_impression=true", "https://example.com/a"),
    ("https://example.com/a?utm%5Fsource=x&q=1", "https://example.com/a?q=1"),
    ("https://example.com/a?ref=home", "https://example.com/a?ref=home"),
    # query order and shape
    ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
    ("https://example.com/a?b=1&a=2&b=0", "https://example.com/a?a=2&b=1&b=0"),
    ("https://example.com/a?a=1&&b=2&", "https://example.com/a?a=1&b=2"),
    ("https://example.com/a?", "https://example.com/a"),
    ("https://example.com/search?q=a+b", "https://example.com/search?q=a+b"),
    ("https://example.com/a?flag", "https://example.com/a?flag"),
    # percent-encoding
    ("https://example.com/a%2fb", "https://example.com/a%2Fb"),
    ("https://example.com/%7Euser/", "https://example.com/~user/"),
    ("https://example.com/%41%42c", "https://example.com/ABc"),
    ("https://example.com/a b", "https://example.com/a%20b"),
    ("https://example.com/caf\u00e9", "https://example.com/caf%C3%A9"),
    ("https://example.com/100%", "https://example.com/100%25"),
    ("https://example.com/a?q=%e2%82%ac", "https://example.com/a?q=%E2%82%AC"),
    # dot segments and slashes
    ("https://example.com/a/./b/../c", "https://example.com/a/c"),
    ("https://example.com/../../a", "https://example.com/a"),
    ("https://example.com/a/b/..", "https://example.com/a/"),
    ("https://example.com/a/", "https://example.com/a/"),
    ("https://example.com/a.b/c", "https://example.com/a.b/c"),
    # hosts
    ("https://www.example.com/a", "https://www.example.com/a"),
    ("https://B\u00dcCHER.example/a", "https://xn--bcher-kva.example/a"),
    ("https://\u4f8b\u3048.jp/", "https://xn--r8jz45g.jp/"),
    ("http://[2001:DB8::0001]:80/a", "http://[2001:db8::1]/a"),
    ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"),
    # credentials never survive
    ("https://user:secret@example.com/a", "https://example.com/a"),
    ("https://user@example.com:443/a", "https://example.com/a"),
    # whitespace from feeds
    ("  https://example.com/a\n", "https://example.com/a"),
    ("https://exam\nple.com/a\t", "https://example.com/a"),
]


@pytest.mark.parametrize(("raw", "expected"), CANONICAL)
def test_canonicalize_table(raw: str, expected: str) -> None:
    """Each canonicalisation rule maps a raw URL to exactly one canonical form."""
    assert canonicalize(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), CANONICAL)
def test_canonicalize_is_idempotent(raw: str, expected: str) -> None:
    """Canonicalising a canonical URL changes nothing."""
    assert canonicalize(canonicalize(raw)) == canonicalize(raw)


RELATIVE = [
    ("/b/c?utm_source=x", "https://example.com/a/", "https://example.com/b/c"),
    ("c", "https://example.com/a/b", "https://example.com/a/c"),
    ("../c", "https://example.com/a/b/", "https://example.com/a/c"),
    ("//cdn.example.com/x", "https://example.com/", "https://cdn.example.com/x"),
    ("?page=2", "https://example.com/list?page=1", "https://example.com/list?page=2"),
    ("#frag", "https://example.com/a", "https://example.com/a"),
    ("https://other.org/x", "https://example.com/", "https://other.org/x"),
]


@pytest.mark.parametrize(("raw", "base", "expected"), RELATIVE)
def test_canonicalize_resolves_relative(raw: str, base: str, expected: str) -> None:
    """Relative references resolve against the base before normalising."""
    assert canonicalize(raw, base=base) == expected


REJECTED = [
    "file:///etc/passwd",
    "gopher://example.com/1",
    "javascript:alert(1)",
    "mailto:news@example.com",
    "data:text/html,<b>x</b>",
    "ftp://example.com/file",
    "//example.com/no-scheme",
    "example.com/no-scheme",
    "",
    "   ",
    "https:///no-host",
    "http://exa mple.com/",
    "http://example.com:99999/",
    "http://[::1/",
    "https://example.com/" + "a" * MAX_URL_LENGTH,
]


@pytest.mark.parametrize("raw", REJECTED)
def test_canonicalize_rejects(raw: str) -> None:
    """Non-http(s), host-less, malformed and over-long URLs raise BadURL."""
    with pytest.raises(BadURL):
        canonicalize(raw)


def test_badurl_is_in_the_error_tree() -> None:
    """BadURL is both a WorkerError and a ValueError, so either catch works."""
    assert issubclass(BadURL, WorkerError)
    assert issubclass(BadURL, ValueError)


def test_relative_javascript_link_rejected_even_with_base() -> None:
    """A javascript: href on an http page is still refused."""
    with pytest.raises(BadURL):
        canonicalize("javascript:void(0)", base="https://example.com/")


def test_error_message_never_contains_password() -> None:
    """A BadURL message about a URL with credentials does not leak them."""
    with pytest.raises(BadURL) as info:
        canonicalize("https://user:hunter2@example.com:99999/")
    assert "hunter2" not in str(info.value)


KEYS = [
    ("https://www.example.com/a", "//example.com/a"),
    ("http://example.com/a", "//example.com/a"),
    ("https://example.com/a/", "//example.com/a"),
    ("https://example.com/", "//example.com/"),
    ("https://example.com/story/amp", "//example.com/story"),
    ("https://example.com/story/amp/", "//example.com/story"),
    ("https://example.com/amp/2024/05/story", "//example.com/2024/05/story"),
    ("https://example.com/story?amp=1", "//example.com/story"),
    ("https://example.com/story?amp", "//example.com/story"),
    ("https://example.com/story?outputType=amp&id=3", "//example.com/story?id=3"),
    ("https://example.com/story.amp.html", "//example.com/story.html"),
    ("https://example.com/a?utm_source=x#f", "//example.com/a"),
    ("https://example.com/ampere/", "//example.com/ampere"),
    ("https://example.com/a?amp=0", "//example.com/a?amp=0"),
    ("https://www2.example.com/a", "//www2.example.com/a"),
]


@pytest.mark.parametrize(("raw", "expected"), KEYS)
def test_url_key_table(raw: str, expected: str) -> None:
    """url_key folds www., scheme, AMP variants and trailing slashes."""
    assert url_key(raw) == expected


def test_url_key_variants_collide() -> None:
    """Every variant of one article yields one key."""
    variants = [
        "https://www.example.com/news/story-1/",
        "http://example.com/news/story-1",
        "https://example.com/news/story-1/amp/?utm_source=tw",
        "https://example.com:443/news/story-1?amp=1#x",
        "https://EXAMPLE.com/news/./story-1",
    ]
    assert len({url_key(v) for v in variants}) == 1


def test_url_key_keeps_the_canonical_origin_unchanged() -> None:
    """canonicalize keeps www. (it changes the origin); only url_key drops it."""
    assert canonicalize("https://www.example.com/a/") == "https://www.example.com/a/"


REDACT = [
    ("https://user:pw@example.com/a", "https://***:***@example.com/a"),
    ("https://token@example.com/a", "https://***:***@example.com/a"),
    ("https://example.com/a?api_key=abc&id=1", "https://example.com/a?api_key=***&id=1"),
    ("https://example.com/a?Token=abc", "https://example.com/a?Token=***"),
    ("https://example.com/a?id=1", "https://example.com/a?id=1"),
    ("http://[::1", "<unparseable url>"),
]


@pytest.mark.parametrize(("raw", "expected"), REDACT)
def test_redact(raw: str, expected: str) -> None:
    """redact masks userinfo and secret query values and never raises."""
    assert redact(raw) == expected


DOMAINS = [
    ("www.bbc.co.uk", "bbc.co.uk"),
    ("news.bbc.co.uk", "bbc.co.uk"),
    ("edition.cnn.com", "cnn.com"),
    ("alice.blogspot.com", "alice.blogspot.com"),
    ("example.com", "example.com"),
    ("127.0.0.1", "127.0.0.1"),
]


@pytest.mark.parametrize(("host", "expected"), DOMAINS)
def test_registrable_domain(host: str, expected: str) -> None:
    """The hard-coded suffix list groups hosts by registrable domain."""
    assert registrable_domain(host) == expected


CHOOSE = [
    # same site: rel=canonical wins
    (
        "https://example.com/a?utm_source=x",
        "https://example.com/a-canonical",
        "https://example.com/a-canonical",
    ),
    ("https://m.example.com/a", "https://www.example.com/a", "https://www.example.com/a"),
    ("https://example.com/amp/a", "/a", "https://example.com/a"),
    ("https://news.bbc.co.uk/1", "https://www.bbc.co.uk/news/1", "https://www.bbc.co.uk/news/1"),
    ("http://example.com/a", "https://example.com/a", "https://example.com/a"),
    # missing or empty: the fetched URL, canonicalised
    ("https://example.com/a?fbclid=1", None, "https://example.com/a"),
    ("https://example.com/a", "   ", "https://example.com/a"),
    # other site: ignored
    ("https://example.com/a", "https://other.com/a", "https://example.com/a"),
    (
        "https://bbc.co.uk/a",
        "https://evil.co.uk/a",
        "https://bbc.co.uk/a",
    ),
    ("https://alice.blogspot.com/p", "https://bob.blogspot.com/p", "https://alice.blogspot.com/p"),
    # not http(s) or unparseable: ignored
    ("https://example.com/a", "javascript:void(0)", "https://example.com/a"),
    ("https://example.com/a", "ftp://example.com/a", "https://example.com/a"),
    ("https://example.com/a", "http://[::1", "https://example.com/a"),
    # homepage as canonical of an article: ignored
    ("https://example.com/news/story", "https://example.com/", "https://example.com/news/story"),
    ("https://example.com/news/story", "https://www.example.com", "https://example.com/news/story"),
    # homepage canonical for the homepage itself: fine
    ("https://example.com/?utm_source=x", "https://www.example.com/", "https://www.example.com/"),
]


@pytest.mark.parametrize(("fetched", "rel", "expected"), CHOOSE)
def test_choose_canonical(fetched: str, rel: str | None, expected: str) -> None:
    """rel=canonical wins only on the same site, http(s), and not the root for an article."""
    assert choose_canonical(fetched, rel) == expected


def test_choose_canonical_rejects_bad_fetched_url() -> None:
    """The fetched URL itself must be valid: a bad one raises BadURL."""
    with pytest.raises(BadURL):
        choose_canonical("file:///etc/passwd", "https://example.com/")
