"""Publication and modification dates: the page's own offset, labelled lines, library fallback, plausibility."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from worker.extract import extract
from worker.extract.dates import normalise, parse_date, to_iso
from worker.extract.page_dates import is_date_line, localise, url_day

STORY = "".join(
    f"<p>Paragraph {i} of an ordinary news story, long enough to count as prose for the extractor to keep.</p>"
    for i in range(6)
)
FETCHED = datetime(2026, 12, 5, 3, 0, tzinfo=UTC).timestamp()


def page(body: str, head: str = "<title>A headline</title>", lang: str = "en") -> bytes:
    return f"<!doctype html><html lang='{lang}'><head>{head}</head><body>{body}</body></html>".encode()


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("Posted: 12/04/2026 09:10 PM", "2026-12-04T21:10:00Z"),
        ("9:10 p.m. ET Dec. 4, 2026", "2026-12-04T21:10:00-05:00"),
        ("9:10 p.m. ET July 4, 2026", "2026-07-04T21:10:00-04:00"),
        ("Friday, December 4, 2026 at 21:10 CET", "2026-12-04T21:10:00+01:00"),
        ("4 July 2021 8am BST", "2021-07-04T08:00:00+01:00"),
        ("Dec. 6, 2024, 10:00 PM UTC", "2024-12-06T22:00:00Z"),
        ("04.12.2026 21:10", "2026-12-04T21:10:00Z"),
        ("2017-11-03 03:01:00.000000", "2017-11-03T03:01:00Z"),
        ("Thu Sep 16 2021 03:52:10 GMT+0000 (UTC)", "2021-09-16T03:52:10Z"),
    ],
)
def test_dates_as_pages_print_them(text: str, iso: str) -> None:
    """Dates written out on pages are read with their time and zone (US order for slashes by default)."""
    parsed = parse_date(text)
    assert parsed is not None and to_iso(parsed) == iso


def test_slashes_are_day_first_outside_us_english() -> None:
    """12/04/2026 is 12 April on a British or German page."""
    assert to_iso(parse_date("12/04/2026", month_first=False) or datetime.min) == "2026-04-12T00:00:00Z"


def test_implausible_dates_are_refused() -> None:
    """Dates before the web or after the day following the fetch are not publication dates."""
    assert normalise("1994-06-01T10:00:00Z") is None
    assert normalise("2026-12-07T10:00:00Z", latest=date(2026, 12, 5)) is None
    assert normalise("2026-12-05T10:00:00+09:00", latest=date(2026, 12, 5)) == "2026-12-05T10:00:00+09:00"


def test_json_ld_date_keeps_its_offset_and_the_local_day() -> None:
    """An evening story stays on its day: the page's offset is kept, not converted to UTC."""
    head = ('<title>H</title><script type="application/ld+json">{"@type":"NewsArticle","headline":"H",'
            '"datePublished":"2026-12-04T21:10:00-05:00","dateModified":"2026-12-04T23:00:00-05:00"}</script>')
    art = extract(page("<article>" + STORY + "</article>", head), fetched_at=FETCHED)
    assert art.published_at == "2026-12-04T21:10:00-05:00"
    assert art.modified_at == "2026-12-04T23:00:00-05:00"


def test_json_ld_inside_cdata_is_read() -> None:
    """XHTML-style pages wrap JSON-LD in CDATA sections: still read."""
    head = ('<title>H</title><script type="application/ld+json">//<![CDATA[\n{"@type":"NewsArticle",'
            '"headline":"H","datePublished":"2024-06-25"}\n//]]></script>')
    assert extract(page("<article>" + STORY + "</article>", head)).published_at == "2024-06-25T00:00:00Z"


def test_posted_line_is_read_on_a_page_without_markup() -> None:
    """A 'Posted: 12/04/2026 09:10 PM' line under an upper-case byline gives the date and time."""
    body = ("<table><tr><td><font size=2><b>BY JANE DOE, THE ASSOCIATED PRESS</b><br>Posted: 12/04/2026 09:10 PM"
            "</font></td></tr></table>" + STORY)
    assert extract(page(body), fetched_at=FETCHED).published_at == "2026-12-04T21:10:00Z"


def test_published_and_updated_labels() -> None:
    """'Published ... | Updated ...' gives both dates, each with its zone."""
    body = "<div class='meta'>Published 9:10 p.m. ET Dec. 3, 2026 | Updated 11:20 a.m. ET Dec. 4, 2026</div>" + STORY
    art = extract(page(body), fetched_at=FETCHED)
    assert art.published_at == "2026-12-03T21:10:00-05:00"
    assert art.modified_at == "2026-12-04T11:20:00-05:00"


def test_a_label_inside_prose_is_not_a_date_line() -> None:
    """'was posted on' in a sentence is not the page's date line; the library fallback decides instead."""
    body = ("<p>The video was posted on social media and shared on March 3, 2019 by thousands of people, "
            "officials said in a statement on Friday.</p>" + STORY)
    art = extract(page(body), "https://news.example/2026/12/04/story.html", fetched_at=FETCHED)
    assert art.published_at == "2026-12-04T00:00:00Z"


def test_a_future_posted_line_is_ignored() -> None:
    """A date after the fetch (a typo, an event date) is not the publication date."""
    body = "<p>Posted: 12/24/2027 09:10 PM</p>" + STORY
    assert extract(page(body), fetched_at=FETCHED).published_at is None


def test_utc_markup_takes_the_offset_of_its_twin() -> None:
    """UTC in datePublished and the same instant with an offset elsewhere in the page: the offset is the page's."""
    head = ('<title>H</title><meta property="article:published_time" content="2023-11-09T01:09:55+00:00">'
            "<script>var meta = {publish: '2023-11-08T18:09:55-07:00'};</script>")
    art = extract(page("<article>" + STORY + "</article>", head), fetched_at=FETCHED)
    assert art.published_at == "2023-11-08T18:09:55-07:00"


def test_utc_markup_on_the_day_the_url_gives() -> None:
    """UTC markup one day past the URL's date is moved to the URL's (local) day; the instant is kept."""
    stamp = localise("2023-11-01T23:01:00Z", "", "https://news.example/esteri/2023/11/02/diretta/story")
    assert stamp is not None and stamp.startswith("2023-11-02")
    assert datetime.fromisoformat(stamp) == datetime(2023, 11, 1, 23, 1, tzinfo=UTC)
    west = localise("2020-04-14T00:38:07Z", "", "https://news.example/news/20200413/story")
    assert west is not None and west.startswith("2020-04-13")
    # a shift no populated zone has (-11 h) means the URL's date is not this instant's day
    assert localise("2020-07-09T10:04:04Z", "", "https://news.example/2020/07/08/story/") == "2020-07-09T10:04:04Z"
    assert localise("2020-07-09T10:04:04Z", "", "https://news.example/story/") == "2020-07-09T10:04:04Z"


def test_utc_markup_on_the_day_the_page_data_states_alone() -> None:
    """UTC markup one day past a publication day the page's data states without a time moves to that day."""
    data = '<script>var page = {"Theme": "x", "DateCreation": "2020-08-24", "Url": "/n/1"};</script>'
    stamp = localise("2020-08-25T00:23:33Z", data, "https://news.example/nouvelle/1728875/story")
    assert stamp is not None and stamp.startswith("2020-08-24")
    assert datetime.fromisoformat(stamp) == datetime(2020, 8, 25, 0, 23, 33, tzinfo=UTC)
    # a day under another key, or two days off, says nothing about the local day
    other = '<script>var page = {"Expires": "2020-08-24", "pubDate": "2020-08-23"};</script>'
    assert localise("2020-08-25T00:23:33Z", other, None) == "2020-08-25T00:23:33Z"


def test_url_day() -> None:
    """Dates in URL paths in their usual spellings."""
    assert url_day("https://a.example/2023/11/08/story") == date(2023, 11, 8)
    assert url_day("https://a.example/news/20200413/story") == date(2020, 4, 13)
    assert url_day("https://a.example/2021-07-06-title") == date(2021, 7, 6)
    assert url_day("https://a.example/article/791661") is None


def test_library_fallback_without_markup() -> None:
    """No machine-readable date and no labelled line: htmldate's search over the page finds the day."""
    body = "<div class='date'>Mercredi 2 décembre 2026</div>" + STORY
    assert extract(page(body, lang="fr"), fetched_at=FETCHED).published_at == "2026-12-02T00:00:00Z"


def test_utc_markup_takes_the_offset_shown_to_readers() -> None:
    """UTC in markup and the same minute shown in local time on the page: the offset is the shown one."""
    head = '<title>H</title><meta property="article:published_time" content="2019-11-20T01:53:14.418">'
    body = "<article><div class='published'>November 19, 2019<div class='time'>5:53 PM</div></div>" + STORY + "</article>"
    art = extract(page(body, head), "https://news.example/business/story/2019-11-19/gannett", fetched_at=FETCHED)
    assert art.published_at == "2019-11-19T17:53:14-08:00"


def test_date_lines() -> None:
    """Lines that only date the story, and short sentences with a date that are story text."""
    for line in ("Posted: 12/04/2026 09:10 PM", "Updated Dec. 4, 2026 9:10 p.m. ET", "December 4, 2026",
                 "Friday, Dec. 4, 2026 at 9:10 PM EST", "5:45 AM PST 11/19/2019 by Patrick Shanley"):
        assert is_date_line(line), line
    for line in ("On Dec. 4, 2026, the council met.", "Voters go to the polls on May 3, 2027."):
        assert not is_date_line(line), line
