"""Unit tests for the extractor's pure parts: decoding, wire patterns, metadata, walls, rules."""

from __future__ import annotations

import re

import pytest

from worker.extract import extract
from worker.extract.bylines import split_authors
from worker.extract.dates import normalise
from worker.extract.decode import decode_html
from worker.extract.metadata import clean_title
from worker.extract.wire_patterns import agency_name, credit_agency, dateline
from worker.models import Rules

STORY = "".join(
    f"<p>Paragraph {i} of an ordinary news story, long enough to count as prose for the extractor to keep.</p>"
    for i in range(6)
)


def page(body: str, head: str = "<title>A headline</title>") -> bytes:
    return f"<!doctype html><html><head>{head}</head><body><article>{body}</article></body></html>".encode()


# --- decoding ---------------------------------------------------------------


def test_bom_wins_over_http_charset() -> None:
    """A UTF-8 byte-order mark beats a contradicting HTTP charset."""
    text, codec = decode_html(b"\xef\xbb\xbf<p>caf\xc3\xa9</p>", "iso-8859-1")
    assert codec == "utf-8" and "café" in text and not text.startswith("\ufeff")


def test_http_charset_beats_meta() -> None:
    """The HTTP charset is used before the page's own meta charset."""
    data = '<meta charset="utf-8"><p>Привет</p>'.encode("koi8-r")
    text, codec = decode_html(data, "koi8-r")
    assert "Привет" in text and codec == "koi8-r"


def test_meta_charset_used_without_http() -> None:
    """A meta charset is used when the server said nothing."""
    data = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251"><p>Новости</p>'.encode("cp1251")
    assert "Новости" in decode_html(data)[0]


def test_declared_latin1_but_utf8_bytes_is_fixed() -> None:
    """A page declaring latin-1 whose bytes are valid UTF-8 is decoded as UTF-8 (no mojibake)."""
    data = '<meta charset="iso-8859-1"><p>Zürich – “quoted”</p>'.encode()
    text, codec = decode_html(data)
    assert "Zürich – “quoted”" in text and codec == "utf-8" and "Ã" not in text


def test_declared_utf8_but_cp1252_bytes_falls_back() -> None:
    """A page declaring UTF-8 whose bytes do not decode falls back to cp1252."""
    data = '<meta charset="utf-8"><p>Caf\u00e9 \u201cquoted\u201d</p>'.encode("cp1252")
    text, _ = decode_html(data)
    assert "Café “quoted”" in text


def test_latin1_label_means_cp1252() -> None:
    """iso-8859-1 is decoded as windows-1252, as browsers do (curly quotes, not C1 controls)."""
    text, _ = decode_html(b"<p>\x93quoted\x94 caf\xe9</p>", "ISO-8859-1")
    assert "“quoted” café" in text


def test_sniffing_without_any_declaration() -> None:
    """Undeclared UTF-8 is recognised; undeclared cp1252 is recognised."""
    assert "naïve" in decode_html("<p>naïve</p>".encode())[0]
    assert "naïve" in decode_html("<p>naïve</p>".encode("cp1252"))[0]


def test_control_characters_removed() -> None:
    """C0/C1 control characters are removed from the text; tabs and newlines stay."""
    text, _ = decode_html(b"<p>a\x00b\x07c\td\ne\x1b</p>")
    assert text == "<p>abc\td\ne</p>"


def test_utf16_with_bom() -> None:
    """UTF-16 pages with a BOM decode."""
    assert "Grüße" in decode_html("<p>Grüße</p>".encode("utf-16"))[0]


# --- wire patterns ------------------------------------------------------------


@pytest.mark.parametrize(
    ("opening", "place", "agency"),
    [
        ("KABUL, Afghanistan (AP) — A surge of Taliban wins", "KABUL, Afghanistan", "AP"),
        ("LONDON (Reuters) - Oil prices rose", "LONDON", "Reuters"),
        ("LONDON, Oct 5 (Reuters) - Oil prices rose", "LONDON", "Reuters"),
        ("PARIS (AFP) - Le gouvernement", "PARIS", "AFP"),
        ("Berlin (dpa) - Der Warnstreik", "Berlin", "dpa"),
        ("WASHINGTON (UPI) -- The Senate", "WASHINGTON", "UPI"),
        ("NEW YORK (AP) — Stocks", "NEW YORK", "AP"),
        ("PORTLAND, Maine — A winter storm", "PORTLAND, Maine", None),
        ("(AP) — Officials said", None, "AP"),
    ],
)
def test_dateline_patterns(opening: str, place: str | None, agency: str | None) -> None:
    """Wire datelines yield the place and the agency; staff datelines yield the place only."""
    assert dateline(opening) == (place, agency)


@pytest.mark.parametrize(
    "opening",
    ["The president said on Monday (AP) — nothing", "UPDATE — more to come", "Paris — la ville", "I — we went"],
)
def test_not_a_dateline(opening: str) -> None:
    """Ordinary sentences and all-caps labels are not datelines."""
    assert dateline(opening)[0] is None


def test_credit_lines_name_the_agency() -> None:
    """Contributor and reporting credit lines identify AP and Reuters."""
    assert credit_agency(["Text.", "Associated Press writers Jim Heintz in Moscow contributed to this report."]) == "AP"
    assert credit_agency(["Text.", "(Reporting by Noah Browning; Editing by Jason Neely)"]) == "Reuters"
    assert credit_agency(["Text.", "An ordinary last paragraph."]) is None


def test_agency_names() -> None:
    """Agency spellings map to the short canonical name; short codes need upper case."""
    assert agency_name("The Associated Press") == "AP"
    assert agency_name("Agence France-Presse") == "AFP"
    assert agency_name("Thomson Reuters") == "Reuters"
    assert agency_name("ap") is None


def test_agency_from_json_ld_source_organization() -> None:
    """JSON-LD sourceOrganization names the agency when the text does not."""
    head = (
        '<script type="application/ld+json">{"@type":"NewsArticle","headline":"H",'
        '"sourceOrganization":{"@type":"Organization","name":"Associated Press"}}</script>'
    )
    assert extract(page(STORY, head)).agency == "AP"


# --- metadata ---------------------------------------------------------------


def test_title_site_suffix_and_section_prefix_removed() -> None:
    """Site-name suffixes and section prefixes are dropped from titles."""
    assert clean_title("Tram line approved | The Daily Ledger", ["The Daily Ledger"], None) == "Tram line approved"
    assert clean_title("News - Tram line approved for the city - Ledger", [], None) == "Tram line approved for the city"
    assert clean_title("Tram line approved - example.com", [], None) == "Tram line approved"
    assert clean_title("Brexit: what happens next for the border", [], None) == "Brexit: what happens next for the border"


def test_title_keeps_the_headline_the_page_shows() -> None:
    """A title the page's <h1> shows whole is the headline, separators and all."""
    title = "Tariff talks: what the deal means | ANALYSIS"
    assert clean_title(title, [], title) == title
    assert clean_title("Tariff talks: what the deal means | Ledger", [], "Tariff talks: what the deal means") == (
        "Tariff talks: what the deal means"
    )


def test_title_segment_opening_in_lower_case_continues_the_headline() -> None:
    """A segment of a few words opening in lower case is the headline's own, not a site name or section."""
    title = "How we designed the task queue - an async task framework"
    assert clean_title(title, [], None) == title
    assert clean_title("Tram line approved for the city - udn", [], None) == "Tram line approved for the city"


STORY_P = "<p>" + "The council met on Monday and voted to keep the library open on Sundays. " * 6 + "</p>"


def _titled(title: str, h1s: list[str], extra: str = "") -> str | None:
    heads = "".join(f"<h1>{h}</h1>" for h in h1s)
    return extract(f"<html><head><title>{title}</title></head><body>{heads}{STORY_P}{extra}</body></html>".encode()).title


def test_title_is_the_h1_the_title_element_repeats() -> None:
    """A logo or site name in an earlier <h1> is not the headline: the <h1> the <title> repeats is."""
    assert _titled("Library stays open on Sundays · Ledger", ["Ledger", "Library stays open on Sundays"]) == (
        "Library stays open on Sundays")


def test_title_element_beats_an_h1_that_shares_no_word_with_it() -> None:
    """A section name in the only <h1> ("Allergies Health Center") loses to a <title> of a headline's length
    that shares none of its words; a <title> of labels, or one the page repeats as its name, does not win."""
    assert _titled("Babies Who Eat Peanuts Early May Avoid Allergy", ["Allergies Health Center"]) == (
        "Babies Who Eat Peanuts Early May Avoid Allergy")
    assert _titled("Google - Site Reliability Engineering", ["Monitoring Distributed Systems"]) == (
        "Monitoring Distributed Systems")
    footer = "<p>The Millbrook Evening Courier Online</p><p>The Millbrook Evening Courier Online</p>"
    assert _titled("The Millbrook Evening Courier Online", ["Library stays open on Sundays"], footer) == (
        "Library stays open on Sundays")


def test_title_cut_from_the_lede_is_the_headline_block_not_the_site_name() -> None:
    """"Courier - Time is not on": the headline, cut from the lede's opening words, is shown twice, and so is
    the site's name (copyright and address lines); the headline is the one that is a block of its own."""
    html = ("<html><head><title>The Millbrook Courier - Time is not on</title></head><body>"
            "<font size=5><b>Time is not on</b></font><br><br>"
            "<font>Time is not on the side of the committee, its chairman said on Friday, as the inquiry entered "
            "its third month with no end in sight and witnesses refusing to appear.</font><br><br>"
            f"<font>{'The hearing room was half empty when the session opened at nine. ' * 4}</font><br>"
            "<font size=1>Copyright 2026 The Millbrook Courier. All rights reserved.</font><br>"
            "<font size=1>The Millbrook Courier &middot; 114 Main Street &middot; Millbrook, Ohio</font>"
            "</body></html>").encode()
    assert extract(html).title == "Time is not on"


def test_authors_are_people_only() -> None:
    """Bylines keep person names and drop agencies, desks and 'Staff'."""
    assert split_authors("By Jane Doe and John Smith, Associated Press") == ["Jane Doe", "John Smith"]
    assert split_authors("Reuters Staff") == []
    assert split_authors("Associated Press") == []
    assert split_authors("By Dana Whitfield, Staff Writer") == ["Dana Whitfield"]


def test_dates_keep_the_page_offset() -> None:
    """Dates keep the offset the page states; UTC and zone-less dates end in Z; RFC 2822 is read."""
    assert normalise("2021-07-06T14:02:11+04:30") == "2021-07-06T14:02:11+04:30"
    assert normalise("2021-07-06T22:10:00-0500") == "2021-07-06T22:10:00-05:00"
    assert normalise("2021-07-06T10:00:00Z") == "2021-07-06T10:00:00Z"
    assert normalise("2021-07-06T10:00:00+00:00") == "2021-07-06T10:00:00Z"
    assert normalise("2021-07-06") == "2021-07-06T00:00:00Z"
    assert normalise("Tue, 06 Jul 2021 10:00:00 GMT") == "2021-07-06T10:00:00Z"
    assert normalise("Tue, 06 Jul 2021 10:00:00 -0400") == "2021-07-06T10:00:00-04:00"
    assert normalise("yesterday") is None


def test_metadata_from_meta_tags() -> None:
    """Language, canonical URL (resolved), dates and author come from meta tags."""
    head = (
        '<title>H</title><meta property="og:locale" content="pt_BR">'
        '<link rel="canonical" href="/noticia/1"><meta property="article:published_time" content="2020-01-02T03:04:05-03:00">'
        '<meta name="author" content="Maria Silva">'
    )
    art = extract(page(STORY, head), "https://site.example/a/b?x=1")
    assert art.language == "pt"
    assert art.canonical_url == "https://site.example/noticia/1"
    assert art.published_at == "2020-01-02T03:04:05-03:00"
    assert art.authors == ("Maria Silva",)


def test_og_url_when_no_canonical() -> None:
    """og:url is the canonical URL when there is no rel=canonical."""
    head = '<title>H</title><meta property="og:url" content="https://site.example/story">'
    assert extract(page(STORY, head)).canonical_url == "https://site.example/story"


# --- not-an-article pages -----------------------------------------------------


def test_bot_challenge_page() -> None:
    """A Cloudflare-style challenge page is a bot_wall."""
    html = (
        b"<html><head><title>Just a moment...</title></head><body><h1>Checking your browser before accessing "
        b"example.com.</h1><p>Please enable JavaScript and cookies to continue</p></body></html>"
    )
    assert extract(html).not_article == "bot_wall"


def test_bot_challenge_known_only_by_its_script() -> None:
    """A challenge whose only mark is its script's address is a bot_wall, though scripts leave the tree
    before the main text is chosen."""
    html = (b"<html><head><title>example.com</title></head><body><div id='wrap'><p>One moment please.</p></div>"
            b"<script src='/cdn-cgi/challenge-platform/h/b/orchestrate/jsch/v1'></script></body></html>")
    assert extract(html).not_article == "bot_wall"


def test_login_wall_page() -> None:
    """A page that only asks the reader to sign in is a login_wall."""
    html = page("<h2>Subscribe to continue reading</h2><p>Already a subscriber? Log in.</p>")
    assert extract(html).not_article == "login_wall"


def test_cookie_wall_page() -> None:
    """A consent interstitial is a cookie_wall."""
    html = page("<h2>Before you continue to Example</h2><p>We use cookies and data to deliver our services.</p><button>Accept all</button>")
    assert extract(html).not_article == "cookie_wall"


def test_section_front_page() -> None:
    """A listing page of many short links and no story is a section_front."""
    links = "".join(f'<li><a href="/story/{i}">Headline number {i} about the news</a></li>' for i in range(80))
    html = f"<html><head><title>World news</title></head><body><nav><a href='/'>Home</a></nav><ul>{links}</ul></body></html>"
    assert extract(html.encode()).not_article == "section_front"


def test_short_story_on_a_page_crowded_with_links_is_an_article() -> None:
    """A local site's short story among 80 menu and rail links is a story, not a section_front: its text
    holds a paragraph of sentences, which a listing's headlines do not."""
    links = "".join(f'<li><a href="/story/{i}">Headline number {i} about the news</a></li>' for i in range(80))
    story = ("The county health service reported this morning that two of its five vans were broken into "
             "overnight at the Amizade depot. The vans had their batteries removed and their windows smashed. "
             "Police visited the depot and a report was filed; patients booked for the morning are being "
             "rescheduled, and the service expects to be back to normal by the afternoon.")
    html = (f"<html><head><title>Vans broken into at depot</title></head><body><nav><ul>{links}</ul></nav>"
            f"<h1>Vans broken into at depot</h1><p>{story}</p></body></html>")
    art = extract(html.encode())
    assert art.not_article is None and "rescheduled" in art.body


def test_pdf_and_binary_are_not_html() -> None:
    """PDF bytes and binary data are not_html."""
    assert extract(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj").not_article == "not_html"
    assert extract(bytes(range(256)) * 20).not_article == "not_html"
    assert extract(b"\x89PNG\r\n\x1a\n....").not_article == "not_html"


def test_article_mentioning_wall_phrases_is_still_an_article() -> None:
    """A real story that quotes 'Just a moment' or cookies stays an article."""
    body = "<p>“Just a moment,” he said, as we use cookies was printed on the sign.</p>" + STORY
    art = extract(page(body))
    assert art.not_article is None and "Paragraph 5" in art.body


# --- rules ------------------------------------------------------------------


def test_rules_body_selector() -> None:
    """A source's body selector decides the body when it matches."""
    html = page('<div class="story"><p>Chosen text one.</p><p>Chosen text two.</p></div><div class="other">' + STORY + "</div>")
    art = extract(html, rules=Rules(body="div.story"))
    assert art.body == "Chosen text one.\n\nChosen text two."


def test_rules_strip_and_strip_text() -> None:
    """strip selectors remove elements before extraction; strip_text drops matching paragraphs."""
    html = page('<div class="promo"><p>Buy our fantastic premium subscription today, it is really worth it.</p></div>' + STORY)
    rules = Rules(strip=("div.promo",), strip_text=(re.compile(r"^Paragraph 0\b"),))
    art = extract(html, rules=rules)
    assert "premium" not in art.body and "Paragraph 0" not in art.body and "Paragraph 1" in art.body


def test_rules_body_selector_no_match_falls_back() -> None:
    """A body selector that matches nothing falls back to generic extraction."""
    art = extract(page(STORY), rules=Rules(body="div.missing"))
    assert "Paragraph 3" in art.body
