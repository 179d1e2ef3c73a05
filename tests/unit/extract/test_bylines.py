"""Bylines, agencies and datelines: person names only, every agency spelling, hostile characters."""

from __future__ import annotations

import pytest

from worker.extract import extract
from worker.extract.bylines import is_byline_line, is_person_name, parse_byline, proper_case
from worker.extract.text import clean_inline
from worker.extract.wire_patterns import agency_name, dateline

STORY = "".join(
    f"<p>Paragraph {i} of an ordinary news story, long enough to count as prose for the extractor to keep.</p>"
    for i in range(6)
)
DASHES = ["\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212", "--", "-", "\u00e2\u20ac\u201d"]


@pytest.mark.parametrize(
    ("byline", "names", "agency"),
    [
        ("BY FARID BELLWEATHER AND NIKHIL WHITCOMBE, THE ASSOCIATED PRESS",
         ["Farid Bellweather", "Nikhil Whitcombe"], "AP"),
        ("By Jane Doe and John Smith, Associated Press", ["Jane Doe", "John Smith"], "AP"),
        ("Jane Doe, Reuters", ["Jane Doe"], "Reuters"),
        ("Jane Doe | AP", ["Jane Doe"], "AP"),
        ("By JANE DOE Associated Press Writer", ["Jane Doe"], "AP"),
        ("BY SEAN O'BRIEN AND LUDWIG VAN BEETHOVEN, ASSOCIATED PRESS WRITERS", ["Sean O'Brien", "Ludwig van Beethoven"], "AP"),
        ("By Dana Whitfield, Staff Writer", ["Dana Whitfield"], None),
        ("Kevin Johnson and Kevin McCoy USA TODAY", ["Kevin Johnson", "Kevin McCoy"], None),
        ("By Jeff Foust Monday, November 18, 2019", ["Jeff Foust"], None),
        ("By GILLIAN MOHNEY March 11, 2015 3:46 PM", ["Gillian Mohney"], None),
        ("Par Sébastien Farcis, AFP", ["Sébastien Farcis"], "AFP"),
        ("By Mary Clare Jalonick and Lisa Mascaro | Associated Press", ["Mary Clare Jalonick", "Lisa Mascaro"], "AP"),
        ("Robert E Lee", ["Robert E Lee"], None),
        ("By The Associated Press", [], "AP"),
        ("Reuters Staff", [], "Reuters"),
        ("Associated Press", [], "AP"),
        ("By Staff", [], None),
        ("Posted: 12/04/2026 09:10 PM", [], None),
        ("jane.doe@example.com", [], None),
        ("https://example.com/authors/jane-doe", [], None),
        ("Follow Author", [], None),
    ],
)
def test_bylines(byline: str, names: list[str], agency: str | None) -> None:
    """Person names only, in their usual case; an agency named in the byline is returned apart."""
    assert parse_byline(byline) == (names, agency)


@pytest.mark.parametrize("junk", ["\u200b", "\u200c", "\u200d", "\ufeff", "\u00ad"])
def test_byline_with_zero_width_characters(junk: str) -> None:
    """Zero-width characters inside names and the agency change nothing."""
    byline = f"BY FA{junk}RID BELLWEATHER AND NIKHIL WHIT{junk}COMBE, THE ASSOCI{junk}ATED PRESS"
    assert parse_byline(byline) == (["Farid Bellweather", "Nikhil Whitcombe"], "AP")


def test_byline_with_nbsp_and_mojibake() -> None:
    """Non-breaking spaces and UTF-8 read as cp1252 ("SÃ©bastien") are repaired."""
    assert parse_byline("By\u00a0S\u00c3\u00a9bastien\u00a0Farcis\u00a0|\u00a0AFP") == (["Sébastien Farcis"], "AFP")


def test_person_names() -> None:
    """What is and is not a person's name."""
    for name in ("Jane Doe", "John C. Welch", "Gina Roberts-Grey", "Ludwig van Beethoven", "Jean DUPONT", "肖春芳",
                 "Иван Петров", "محمد علي", "אבי כהן"):
        assert is_person_name(name), name
    for name in ("Staff", "Associated Press", "Reuters Staff", "Editorial Board", "March 25, 2015", "jane@example.com",
                 "www.example.com", "Sports Desk", "Last Updated", "Kevin McCoy USA TODAY", "the news team",
                 "Polizei Steinfurt", "Developed By Heba Musa", "經濟日報", "خبرگزاری باشگاه خبرنگاران"):
        assert not is_person_name(name), name


def test_proper_case() -> None:
    """Capitals become the usual case; mixed-case names stay as written."""
    assert proper_case("NIKHIL WHITCOMBE") == "Nikhil Whitcombe"
    assert proper_case("JEAN-PAUL MCDONALD III") == "Jean-Paul McDonald III"
    assert proper_case("J.R. SMITH") == "J.R. Smith"
    assert proper_case("DeShawn McKinney") == "DeShawn McKinney"


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ("AP", "AP"), ("The Associated Press", "AP"), ("Associated Press", "AP"), ("(AP)", "AP"),
        ("Reuters", "Reuters"), ("Thomson Reuters", "Reuters"), ("REUTERS", "Reuters"),
        ("AFP", "AFP"), ("Agence France-Presse", "AFP"), ("Agence France Presse", "AFP"),
        ("dpa", "dpa"), ("Deutsche Presse-Agentur", "dpa"), ("EFE", "EFE"), ("Agencia EFE", "EFE"),
        ("ANSA", "ANSA"), ("Xinhua", "Xinhua"), ("Xinhua News Agency", "Xinhua"), ("Kyodo News", "Kyodo"),
        ("Yonhap", "Yonhap"), ("Yonhap News Agency", "Yonhap"), ("PTI", "PTI"), ("Press Trust of India", "PTI"),
        ("Bloomberg", "Bloomberg"), ("Bloomberg News", "Bloomberg"), ("UPI", "UPI"),
        ("United Press International", "UPI"), ("The Assoc\u200biated Press", "AP"),
    ],
)
def test_agency_spellings(written: str, name: str) -> None:
    """Each agency's usual spellings map to its short name."""
    assert agency_name(written) == name


@pytest.mark.parametrize(
    ("opening", "place", "agency"),
    [
        ("ROME (AP) — Pope Francis", "ROME", "AP"),
        ("KABUL, Afghanistan (AP) -- The Taliban", "KABUL, Afghanistan", "AP"),
        ("WASHINGTON, Dec 4 (Reuters) - The Senate", "WASHINGTON", "Reuters"),
        ("PARIS (AFP) - Le gouvernement", "PARIS", "AFP"),
        ("BEIJING, Dec. 4 (Xinhua) -- China", "BEIJING", "Xinhua"),
        ("SEOUL, Dec. 4 (Yonhap) -- North Korea", "SEOUL", "Yonhap"),
        ("TOKYO (Kyodo) -- Japan", "TOKYO", "Kyodo"),
        ("New Delhi, Dec 4 (PTI) The government", "New Delhi", "PTI"),
        ("Madrid, 4 dic (EFE).- El Gobierno", "Madrid", "EFE"),
        ("(ANSA) - ROME, DEC 4 - Italy's", "ROME", "ANSA"),
        ("NEW YORK (Bloomberg) -- Stocks", "NEW YORK", "Bloomberg"),
        ("WASHINGTON (UPI) -- The Senate", "WASHINGTON", "UPI"),
        ("ST. JOSEPH, Mich. (AP) — A man", "ST. JOSEPH, Mich.", "AP"),
    ],
)
def test_datelines(opening: str, place: str, agency: str) -> None:
    """Wire datelines of each agency's style give the place and the agency."""
    assert dateline(opening) == (place, agency)


@pytest.mark.parametrize("dash", DASHES)
def test_dateline_with_every_dash(dash: str) -> None:
    """Every dash variant, '--', and the mis-decoded em dash 'â€”' end a dateline."""
    assert dateline(f"KABUL, Afghanistan (AP) {dash} The Taliban") == ("KABUL, Afghanistan", "AP")


@pytest.mark.parametrize("junk", ["\u200b", "\u200c", "\u200d", "\ufeff"])
def test_dateline_with_zero_width_characters(junk: str) -> None:
    """A zero-width character inside the city or the agency does not hide the dateline."""
    assert dateline(f"RO{junk}ME (A{junk}P){junk} — Pope Francis") == ("ROME", "AP")


def test_dateline_with_nbsp_and_mojibake() -> None:
    """Non-breaking spaces and a mis-decoded city ("SÃƒO PAULO") still read."""
    assert dateline("ROME\u00a0(AP)\u00a0\u2014\u00a0Pope Francis") == ("ROME", "AP")
    assert dateline("S\u00c3\u0192O PAULO (Reuters) - Brazil's") == ("SÃO PAULO", "Reuters")


@pytest.mark.parametrize(
    "opening", ["COVID-19 cases rose again", "DEAR ABBY: My husband", "UPDATE — more to come", "FILE PHOTO: Protesters"]
)
def test_not_datelines(opening: str) -> None:
    """Hyphenated capitals, advice-column salutations and labels are not datelines."""
    assert dateline(opening)[0] is None


def test_clean_inline_keeps_joiners_in_scripts_that_need_them() -> None:
    """Zero-width joiners go next to Latin letters, but stay inside Persian words and emoji sequences."""
    assert clean_inline("Wa\u200dshing\u200cton") == "Washington"
    assert clean_inline("می\u200cخواهم") == "می\u200cخواهم"
    assert clean_inline("\U0001f468\u200d\U0001f469") == "\U0001f468\u200d\U0001f469"


def test_old_layout_byline_and_agency_in_the_page() -> None:
    """An upper-case byline line on a page without markup gives the names and the agency."""
    body = ("<table><tr><td><font face=Arial size=2><b>BY FARID BELLWEATHER AND NIKHIL WHITCOMBE, THE ASSOCIATED "
            "PRESS</b><br>Posted: 12/04/2026 09:10 PM</font><p>ROME \u2014 Pope Francis spoke.</p>" + STORY
            + "</td></tr></table>")
    art = extract(f"<html><head><title>T</title></head><body>{body}</body></html>".encode())
    assert art.authors == ("Farid Bellweather", "Nikhil Whitcombe")
    assert art.agency == "AP"


def test_json_ld_agency_author_is_not_a_person() -> None:
    """JSON-LD naming the agency as author gives the agency, and the visible byline the people."""
    head = ('<title>T</title><script type="application/ld+json">{"@type":"NewsArticle","headline":"T",'
            '"author":[{"@type":"Organization","name":"The Associated Press"}]}</script>')
    body = '<article><div class="byline">By <a href="/a/jd">Jane Doe</a> and <a href="/a/js">John Smith</a></div>' + STORY
    art = extract(f"<html><head>{head}</head><body>{body}</article></body></html>".encode())
    assert art.agency == "AP" and art.authors == ("Jane Doe", "John Smith")


def test_body_loses_zero_width_characters_and_mojibake() -> None:
    """The body reads as the story: no zero-width space inside a word, no 'â€”' for a dash; soft hyphens stay."""
    story = ("<p>ROME (AP) \u00e2\u20ac\u201d Pope Francis met the mayor of Ro\u200bme on Sunday, in a caf\u00c3\u00a9 "
             "near the Vatican, officials said.</p><p>The meeting was about the Jubi\u00adlee year.</p>" + STORY)
    art = extract(f"<html><head><title>T</title></head><body><article>{story}</article></body></html>".encode())
    assert art.body.startswith("ROME (AP) — Pope Francis met the mayor of Rome on Sunday, in a café near")
    assert "Jubi\u00adlee" in art.body
    assert (art.dateline, art.agency) == ("ROME", "AP")


def test_byline_lines_and_datelines_are_told_apart() -> None:
    """A short lede with a dateline is story text, not a byline line to drop; a name with its agency is."""
    assert not is_byline_line("LOS ANGELES (AP) — To LeBron James, triple-doubles are not a goal.")
    assert not is_byline_line("Jane Doe said on Monday she would run, Reuters reported.")
    assert is_byline_line("Marisol Etxeberria, Reuters")
    assert is_byline_line("BY FARID BELLWEATHER AND NIKHIL WHITCOMBE, THE ASSOCIATED PRESS")
    assert is_byline_line("Associated Press Writer")


@pytest.mark.parametrize(
    ("byline", "names"),
    [
        ("Piše: P. Marković prije 26 minuta", ["P. Marković"]),
        ("Recueilli par Claire DUVAL.", ["Claire DUVAL"]),
        ("Propos recueillis par Claire Duval", ["Claire Duval"]),
        ("Текст: Анна Петрова", ["Анна Петрова"]),
        ("Редактор: Иван Соколов", ["Иван Соколов"]),
        ("von Autor: Jonas Berger 09.08.13, 06:00", ["Jonas Berger"]),
        ("Analysis by Dana Whitfield, Editor-at-large", ["Dana Whitfield"]),
        ("한빛일보=김민준 기자", ["김민준"]),
        ("이서연 특파원", ["이서연"]),
        ("By Dana Whitfield for The Example Gazette", ["Dana Whitfield"]),
        ("Dana Whitfield For Examplenews", ["Dana Whitfield"]),
        ("By Jane Doe, Lisa Roe and KENNETH P. VOGEL The Example Times", ["Jane Doe", "Lisa Roe", "Kenneth P. Vogel"]),
        ("Jonas Berger vor 3 Stunden", ["Jonas Berger"]),
        ("अमित कुमार चक्रवर्ती", ["अमित कुमार चक्रवर्ती"]),
        ("Por Marta Lima, G1 XX — Porto Alegre", ["Marta Lima"]),
        ("Jane Doe — John Roe", ["Jane Doe"]),
        ("José Volta e Pinto", ["José Volta e Pinto"]),
        ("Maria Silva e Ana Costa", ["Maria Silva", "Ana Costa"]),
        ("Joan Puig i Ferreter", ["Joan Puig i Ferreter"]),
        ("Dana Whitfield Publicado: 12/03/2020 · 10:07", ["Dana Whitfield"]),
        ("Auswärtige Autoren (AA)", []),
        ("Agência Exemplo", []),
        ("Jornal O Exemplo", []),
        ("Frankfurter Beispiel Zeitung", []),
        ("Example Sport", []),
        ("Coordenadoria de Comunicação", []),
        ("EXAMPLE TODAY", []),
    ],
)
def test_bylines_in_other_languages_and_forms(byline: str, names: list[str]) -> None:
    """Bylines in other languages and forms give the writers' names and nothing that is not one."""
    assert parse_byline(byline)[0] == names


def _page(head: str, body: str = "", url: str = "https://news.example.com/2026/12/story") -> tuple[str, ...]:
    html = f"<html><head><title>T</title>{head}</head><body><article>{body}{STORY}</article></body></html>"
    return extract(html.encode(), url).authors


def test_json_ld_author_given_by_reference() -> None:
    """A JSON-LD author given as an @id reference is the Person of that @id elsewhere in the graph."""
    ld = ('{"@context":"https://schema.org","@graph":[{"@type":"NewsArticle","headline":"T",'
          '"author":{"@id":"https://news.example.com/#/schema/person/1"}},'
          '{"@type":"Person","@id":"https://news.example.com/#/schema/person/1","name":"Dana Whitfield"}]}')
    assert _page(f'<script type="application/ld+json">{ld}</script>') == ("Dana Whitfield",)


def test_json_ld_author_with_escaped_characters() -> None:
    """HTML character references inside a JSON-LD name are read as the characters."""
    ld = '{"@type":"NewsArticle","headline":"T","author":{"@type":"Person","name":"H&#233;ctor J. Ruiz"}}'
    head = f'<meta name="author" content="Example Diario"><script type="application/ld+json">{ld}</script>'
    assert _page(head) == ("Héctor J. Ruiz",)


def test_byline_naming_the_site_is_no_writer() -> None:
    """An author named like the site is the site: the next source of names is read instead."""
    head = ('<meta property="og:site_name" content="Example Chronicle"><meta name="author" content="Example Chronicle">'
            '<meta property="og:article:author" content="Dana Whitfield">')
    assert _page(head) == ("Dana Whitfield",)
    head = '<meta property="og:site_name" content="Example Chronicle"><meta name="author" content="Example Chronicle">'
    assert _page(head) == ()


def test_writer_named_like_their_own_site() -> None:
    """A blog at the writer's own name keeps the writer, though the site has the same name."""
    head = '<meta property="og:site_name" content="Dana Whitfield"><meta name="author" content="Dana Whitfield">'
    assert _page(head, url="https://danawhitfield.example/post") == ("Dana Whitfield",)
    head = '<meta property="og:site_name" content="Le Exemple"><meta name="author" content="Le Exemple">'
    assert _page(head, url="https://leexemple.example/post") == ()
