"""Old layouts and site furniture: each page's body is exactly its story, as cleanly as a WordPress page's.

The pages (tests/fixtures/extract/*.html, written for these tests) carry the furniture small local sites
wrap wire copy in: nested layout tables, <FONT> markup, paragraphs split by <BR><BR>, a row of
"|"-separated section links, a "Most Popular Stories" rail, "Printer-friendly version | E-mail this story",
"Back to top", upper-case bylines with a "Posted:" line, a "Subscribe to ... for unlimited access." line,
zero-width spaces and mis-decoded characters. The expected bodies below are the stories as written.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support import paths
from worker.extract import extract
from worker.extract.wire_patterns import dateline

FIXTURES = paths.FIXTURES / "extract"
FETCHED = datetime(2026, 12, 5, 3, 0, tzinfo=UTC).timestamp()

ROME_STORY = [
    "ROME (AP) — Pope Francis on Friday urged Romans to stay calm and help their neighbors as the Tiber rose to "
    "its highest level in more than a decade, with forecasters warning of more rain through the weekend.",
    "Civil protection officials closed several bridges in the historic center and moved hundreds of residents "
    "from low-lying neighborhoods near the river, where water had already reached the ground floors of some buildings.",
    "\"Nobody should be left alone in these hours,\" the pope said during a brief appearance at his window "
    "overlooking St. Peter's Square, asking parishes to open their halls to families forced from their homes.",
    "Mayor Livia Carbonetti said the city had opened six emergency shelters and that schools in three districts "
    "would remain closed on Monday. She said crews were working through the night to clear storm drains blocked "
    "by fallen leaves.",
    "The national weather service said another 80 millimeters of rain could fall on the capital by Sunday "
    "evening. Farmers north of the city reported flooded fields and livestock moved to higher ground.",
    "Rome last saw comparable flooding in 2012, when the river overflowed its banks in the northern suburbs and "
    "forced the closure of a main ring road for two days.",
    "Associated Press writer Tomasz Kowalczyk in Rome contributed to this report.",
]
KABUL_STORY = [
    "KABUL, Afghanistan (AP) -- Taliban fighters seized a district headquarters about 40 kilometers (25 miles) "
    "south of Kabul on Friday, officials said, the closest the insurgents have come to the capital in months.",
    "The district governor, Abdul Qayum Naziri, said government forces withdrew overnight after a six-hour "
    "battle, taking their wounded with them. He said at least nine police officers were killed.",
    "“We asked for reinforcements three times and nobody came,” Naziri told The Associated Press by telephone "
    "from the provincial capital, where he had fled with his family.",
    "A spokesman for the Defense Ministry said troops were regrouping and would retake the district “in the "
    "coming days.” He declined to give casualty figures for the army.",
    "The fighting came as negotiators from both sides met in Doha for a third round of talks that have made "
    "little progress since September. Diplomats said the sides could not yet agree on an agenda.",
    "Residents reached by phone said the insurgents had set up checkpoints on the main highway and were "
    "searching cars for government employees.",
    "Associated Press writers Rahim Faiez in Islamabad and Kathy Gannon in Kabul contributed to this report.",
]
OIL_STORY = [
    "LONDON, Dec 4 (Reuters) – Oil prices rose more than 2% on Friday as traders bet that OPEC+ would agree to "
    "deepen output cuts at its meeting next week, while a weaker dollar made crude cheaper for holders of other "
    "currencies.",
    "Brent crude futures were up $1.74, or 2.3%, at $77.90 a barrel by 1530 GMT. U.S. West Texas Intermediate "
    "crude gained $1.62, or 2.3%, to $72.41.",
    "Both contracts were on track for a weekly gain after three straight weeks of losses, as producers signalled "
    "concern about slowing demand in Europe and China.",
    "“The market is pricing in a cut of at least 500,000 barrels per day,” said Ingrid Solvang, an analyst at a "
    "Norwegian bank.",
    "(Reporting by Marisol Etxeberria; Editing by Jan Harvey)",
]
SENATE_STORY = [
    "WASHINGTON, Dec 4 (Reuters) - The U.S. Senate on Friday passed a stopgap spending bill that keeps the "
    "federal government funded through late January, sending the measure to the House hours before a midnight "
    "deadline.",
    "The bill passed 71-27, with a majority of Republicans joining Democrats in support after leaders agreed to "
    "hold votes next week on several amendments sought by conservatives.",
    "\"This is not how we should be funding the government, but a shutdown before the holidays would hurt "
    "millions of families,\" the Senate majority leader said on the floor before the vote.",
    "The House was expected to take up the measure late on Friday. Its speaker said he had the votes to pass "
    "it, though several members of his party said they would oppose any bill that did not cut spending.",
    "The stopgap measure extends funding at current levels and includes money for disaster relief in states hit "
    "by wildfires and hurricanes this year.",
    "(Reporting by Dana Okafor and Lukas Brenner; Editing by Mireille Duchamp)",
]

CASES = {
    "oldstyle_ap_table": dict(
        story=ROME_STORY, title="Pope urges calm as Rome braces for winter floods",
        authors=("Farid Bellweather", "Nikhil Whitcombe"), agency="AP", dateline="ROME",
        published_at="2026-12-04T21:10:00Z",
    ),
    "oldstyle_font_paragraphs": dict(
        story=KABUL_STORY, title="Taliban seize district near Kabul",
        authors=("Samira Quinlan-Hayes",), agency="AP", dateline="KABUL, Afghanistan",
        published_at="2026-12-04T21:10:00-05:00",
    ),
    "oldstyle_br_mojibake_reuters": dict(
        story=OIL_STORY, title="Oil prices climb as OPEC+ weighs deeper cuts",
        authors=("Marisol Etxeberria",), agency="Reuters", dateline="LONDON",
        published_at="2026-12-04T18:45:00Z",
    ),
    "modern_subscribe_reuters": dict(
        story=SENATE_STORY, title="Senate passes stopgap bill to avert shutdown",
        authors=("Dana Okafor", "Lukas Brenner"), agency="Reuters", dateline="WASHINGTON",
        published_at="2026-12-04T21:10:00-05:00",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_body_is_the_story_and_nothing_else(name: str) -> None:
    """The body equals the story's paragraphs: no navigation row, rail, byline, date line, print/e-mail links,
    subscribe line, back-to-top link or footer."""
    article = extract((FIXTURES / f"{name}.html").read_bytes(), fetched_at=FETCHED)
    assert article.body == "\n\n".join(CASES[name]["story"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_metadata_of_old_and_modern_layouts(name: str) -> None:
    """Title, person names, agency, dateline and publication time come out of each layout."""
    article = extract((FIXTURES / f"{name}.html").read_bytes(), fetched_at=FETCHED)
    want = CASES[name]
    got = (article.title, article.authors, article.agency, article.dateline, article.published_at)
    assert got == (want["title"], want["authors"], want["agency"], want["dateline"], want["published_at"])


HARBOR_LEDE = (
    "OSLO, Norway (AP) — Ferry crews went back to work on Tuesday after a two-week strike that had cut the "
    "islands off the mainland, the union said, ending the longest stoppage on the fjord routes in decades."
)
HARBOR_REST = (
    "The agreement raises wages by four percent this year and guarantees rest days between night shifts, a "
    "demand the crews had pressed since the summer, when several sailings were cancelled for lack of staff.\n\n"
    "Islanders had relied on fishing boats and a single helicopter for medicine and mail while the ferries sat "
    "idle, and the county said it would ask the state to cover the cost of the emergency service."
)


def _rail_page(title: str, headline: str, lede: str = HARBOR_LEDE) -> bytes:
    """A small-town page laid out in a table: a rail of short headlines left of the story cell, the story's
    headline in <FONT>, an upper-case byline and a "Posted:" line, paragraphs split by <BR><BR>."""
    rail = "".join(f'<A HREF="/n/{i}.html">{h}</A><BR><BR>\n' for i, h in enumerate(
        ["Library board delays vote", "Marina fees go up in spring", "Lighthouse tours resume", "Fishing derby winners",
         "Ice rink opens early", "Town clerk retires"]))
    return f"""<HTML><HEAD><TITLE>{title}</TITLE></HEAD><BODY>
<TABLE WIDTH="700" BORDER="0"><TR>
<TD WIDTH="150" VALIGN="TOP"><FONT SIZE="1"><B>Top Stories</B><BR><BR>{rail}</FONT></TD>
<TD WIDTH="550" VALIGN="TOP">
<FONT SIZE="5"><B>{headline}</B></FONT><BR><BR>
<FONT SIZE="2"><B>BY INGA SOLBERG, THE ASSOCIATED PRESS</B></FONT><BR>
<FONT SIZE="1">Posted: 12/04/2026 10:15 AM</FONT><BR><BR>
<FONT SIZE="3">{lede}<BR><BR>
{HARBOR_REST.replace(chr(10) * 2, "<BR><BR>" + chr(10))}</FONT>
</TD></TR></TABLE>
<FONT SIZE="1">Copyright 2026 The Harbor Weekly Star. All rights reserved.<BR>
The Harbor Weekly Star, 2 Dock Road</FONT>
</BODY></HTML>""".encode("cp1252")


def test_short_lines_above_the_headline_are_not_the_story() -> None:
    """Headlines of a rail the layout put before the story, above the headline and its byline, are no story text."""
    page = _rail_page("The Harbor Weekly Star - Ferry strike ends", "Ferry strike ends")
    article = extract(page, fetched_at=FETCHED)
    assert article.body.startswith(f"{HARBOR_LEDE}\n\n{HARBOR_REST}")


def test_dateline_of_a_lede_below_short_lines() -> None:
    """The dateline and agency are read from the first paragraph of prose, however many short lines precede it
    (here the rail stays: the headline shown is not the page's title)."""
    page = _rail_page("The Harbor Weekly Star - Ferry strike ends", "Ferry crews back at work after two weeks")
    article = extract(page, fetched_at=FETCHED)
    assert (article.dateline, article.agency) == ("OSLO, Norway", "AP")


def test_dateline_with_a_mis_decoded_dash_whose_quote_was_straightened() -> None:
    """A long dash read as cp1252 ("â€”") and then straightened by a typewriter-quote CMS ("â€\"") still ends
    a dateline."""
    assert dateline('OSLO, Norway (AP) \u00e2\u20ac" Ferry crews went back to work.') == ("OSLO, Norway", "AP")
    assert dateline("OSLO, Norway (AP) \u00e2\u20ac\u201d Ferry crews went back to work.") == ("OSLO, Norway", "AP")


def test_a_mis_decoded_dash_whose_quote_was_straightened_is_a_dash_in_the_body() -> None:
    """The body shows the dash the page meant, not "â€\"": ftfy cannot undo the straightened quote, and the
    residue would also make the lede a different paragraph from another site's clean copy."""
    from worker.extract.text import clean_inline

    assert clean_inline('OSLO, Norway (AP) \u00e2\u20ac" Ferry crews went back to work.') == (
        "OSLO, Norway (AP) \u2014 Ferry crews went back to work.")


def test_headline_with_a_colon_in_the_title_element() -> None:
    """With no <h1> or og:title, the title is the run of <title> segments the page shows, colon and all,
    not the site's name (shown again in its footer) nor the half after the colon."""
    headline = "Ferry strike: crews back at work"
    article = extract(_rail_page(f"The Harbor Weekly Star - {headline}", headline), fetched_at=FETCHED)
    assert article.title == headline


def test_headline_shown_whole_keeps_its_dash_part() -> None:
    """A <title> part the page shows as a block of its own is the headline whole, its " – " part included."""
    headline = "Ferry strike ends \u2013 \u2018Back to normal\u2019"
    article = extract(_rail_page(f"The Harbor Weekly Star - {headline}", headline), fetched_at=FETCHED)
    assert article.title == headline
