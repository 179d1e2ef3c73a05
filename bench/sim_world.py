"""The truth of the syndication simulation: stories, their versions, and what each site serves, wave by wave.

Pure and seeded: `build_world(corpus, seed, quick, anchor)` returns the same
world for the same arguments. The bodies are real article texts (the
extraction corpus's gold `articleBody`), dressed as wire copy: a dateline
lede (`ROME (AP) — ...`, `WASHINGTON, Dec 4 (Reuters) - ...`), bylines, a
Reuters reporting line, an AP "contributed to this report" line on some
sites. Each page's truth is what a perfect extractor returns for it: the
story paragraphs as the page shows them, without the byline, the headline or
the furniture, and with the injected corruption (zero-width spaces,
mis-decoded characters) undone.

Time is compressed: a phase's stories carry publication times of the last
day and a half before `anchor` (the pipeline skips sitemap entries older
than three days, and date extractors refuse future dates), while the run
itself lasts minutes.
"""

from __future__ import annotations

import gzip
import html
import json
import random
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from lxml import html as lxml_html

HOUR = 3600.0


@dataclass(frozen=True)
class SiteSpec:
    """One simulated news site: its template, clock and discovery documents."""

    key: str  # also the template's name in the score table
    name: str  # the masthead
    utc_offset_min: int  # the zone its pages state (the old-style site states none: its wall clock)
    feed_has_updated: bool  # its feed carries a modification date per entry
    news_sitemap: bool


SITES: tuple[SiteSpec, ...] = (
    SiteSpec("wordpress", "The Harbor Gazette", 60, False, False),
    SiteSpec("amp", "Pulse Mobile News", 0, True, True),
    SiteSpec("oldstyle", "The Millbrook Courier", -300, False, False),
    SiteSpec("modern", "The Metro Ledger", -300, True, True),
    SiteSpec("trending", "The Daily Current", 330, True, False),
    SiteSpec("portal", "Southern Cross Regional", 660, False, True),
)
SITE = {s.key: s for s in SITES}

FIRST = ["Farid", "Nikhil", "Maria", "Joanna", "Tomasz", "Aiyana", "Kwame", "Lucia", "Haruto", "Ingrid",
         "Mateo", "Priya", "Olusegun", "Dana", "Sebastian", "Mei", "Rafael", "Annika", "Yusuf", "Claire",
         "Desmond", "Svetlana", "Emeka", "Beatriz", "Kofi", "Elena", "Arturo", "Naledi", "Gareth", "Hana"]
LAST = ["Bellweather", "Whitcombe", "Okonkwo", "Lindqvist", "Castellanos", "Nakamura", "Fairbairn", "Delacroix",
        "Abernathy", "Santangelo", "Kowalczyk", "Ramaswamy", "Oyelaran", "Thorsby", "Vasquez-Ortiz", "Haldane",
        "McAllister", "Petrakis", "Brennan", "Achterberg", "Quintero", "Sandoval", "Iwasaki", "Fitzgerald",
        "Mbeki", "Carrington", "Lindgren", "Ferreira", "Osei", "Halvorsen"]

DATELINES = {
    "AP": ["ROME", "KABUL, Afghanistan", "NEW YORK", "WASHINGTON", "NAIROBI, Kenya", "MEXICO CITY", "SYDNEY",
           "LONDON", "TOKYO", "DES MOINES, Iowa", "JOHANNESBURG", "SEOUL, South Korea", "LIMA, Peru", "MIAMI",
           "ATLANTA", "BANGKOK"],
    "Reuters": ["WASHINGTON", "LONDON", "FRANKFURT", "BEIJING", "NEW DELHI", "SINGAPORE", "BRUSSELS",
                "SAO PAULO", "GENEVA", "OTTAWA"],
    "AFP": ["Paris", "Hong Kong", "Dakar", "Buenos Aires", "Jakarta"],
    "dpa": ["Berlin", "Hamburg", "Vienna", "Munich"],
}
CITIES = ["Milan", "Chicago", "Cairo", "Lagos", "Madrid", "Denver", "Manila", "Toronto", "Warsaw", "Phoenix"]
MONTHS = ["Jan", "Feb", "March", "April", "May", "June", "July", "Aug", "Sept", "Oct", "Nov", "Dec"]


@dataclass(frozen=True)
class Version:
    n: int
    paragraphs: tuple[str, ...]  # the story's clean text, lede with its dateline, tail lines included
    time: float  # when the agency moved this version (epoch)


@dataclass(frozen=True)
class Story:
    """A truth cluster: every copy and version of one story."""

    sid: str
    kind: str  # AP, Reuters, AFP, dpa or staff
    agency: str | None
    dateline: str | None
    authors: tuple[str, ...]
    title: str
    versions: tuple[Version, ...]
    home: str | None = None  # the site of a staff story
    lede_prefix: str = ""  # "ROME (AP) — " without its dash variant
    tail: int = 0  # how many of the last paragraphs are credit lines (not trimmed by a site)
    negative_of: str | None = None  # the earlier story this one shares paragraphs with (a hard negative)


@dataclass(frozen=True)
class Page:
    """What one URL serves from one wave on: the truth, and how to dress it."""

    site: str
    path: str
    story: str
    version: int
    title: str  # the headline as the page shows it
    body: str  # the truth: clean text, paragraphs separated by a blank line
    shown: tuple[str, ...]  # the paragraphs as the page shows them (noise injected)
    published: datetime  # in the page's own zone
    modified: datetime
    published_truth: str  # ISO-8601 as the contract wants it (Z when the page states no zone)
    authors: tuple[str, ...]
    agency: str | None
    dateline: str | None
    agency_label: str | None  # how the page credits the agency ("The Associated Press", "Reuters"...)
    feed_moves: bool  # this version moved the entry's date in the site's feed too (not only the sitemap's)
    uid: int  # a stable number for furniture choices and ids in URLs


@dataclass(frozen=True)
class Wave:
    phase: int
    index: int
    pages: tuple[Page, ...]


@dataclass
class World:
    seed: int
    anchor: float
    stories: dict[str, Story]
    waves: list[Wave]


# ----------------------------------------------------------------------------- the corpus


def _clean_title(raw: str | None) -> str | None:
    if not raw:
        return None
    t = " ".join(html.unescape(raw).split())
    for sep in (" | ", " - ", " — ", " :: "):
        if sep in t:
            t = max(t.split(sep), key=len).strip()
    t = re.sub(r"^(BREAKING|Opinion|WATCH|VIDEO|LIVE)\s*[:|]\s*", "", t, flags=re.I)
    words = t.split()
    return t if 4 <= len(words) <= 16 and "\ufffd" not in t else None


_OWN_DATELINE = re.compile(r"^[A-Z][A-Z.'\u2019 -]{2,}(?:, [A-Z][A-Za-z. ]+)?(?: \([A-Za-z ]+\))? ?[\u2014\u2013-]{1,2} ")


def load_corpus(folder: Path) -> list[tuple[str, list[str]]]:
    """(headline, paragraphs) of the corpus articles usable as wire copy, in a fixed order."""
    truth = json.loads((folder / "truth.json").read_text())
    out: list[tuple[str, list[str]]] = []
    for key in sorted(truth):
        item = truth[key]
        paras = [" ".join(p.split()) for p in item["body"].split("\n") if p.strip()]
        if paras:  # the article's own dateline goes: the simulation writes its own
            paras[0] = _OWN_DATELINE.sub("", paras[0], count=1)
        words = sum(len(p.split()) for p in paras)
        if not (7 <= len(paras) <= 40 and 200 <= words <= 2000):
            continue
        if any(len(p.split()) > 200 or len(p.split()) < 3 for p in paras) or item["body"].count(" the ") < 5:
            continue
        title = None
        page = folder / item["file"]
        if page.exists():
            raw = page.read_bytes()
            raw = gzip.decompress(raw) if page.suffix == ".gz" else raw
            try:
                tree = lxml_html.fromstring(raw.decode("utf-8", "replace"))
                og = tree.xpath("//meta[@property='og:title']/@content")
                title = _clean_title(og[0] if og else (tree.findtext(".//title") or None))
            except (ValueError, TypeError):
                title = None
        if title is None:
            first = paras[0].split()
            title = " ".join(first[:10]).rstrip(",.;:")
        out.append((title, paras))
    return out


# ----------------------------------------------------------------------------- text helpers


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:70].rstrip("-") or "story"


_MONTH_BEFORE = re.compile(r"(?:Jan|Feb|March|April|May|June|July|Aug|Sept?|Oct|Nov|Dec)\.? $")


def _bump_number(text: str, rng: random.Random) -> str | None:
    """`text` with its first count raised (a death toll, a sum), or None when it has none (dates and
    years are left alone)."""
    for m in re.finditer(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?![\w]|[.,]\d)", text):
        value = int(m.group(1).replace(",", ""))
        if 1900 <= value <= 2100 or _MONTH_BEFORE.search(text[max(0, m.start() - 7):m.start()]):
            continue
        new = value + rng.randint(2, max(3, value // 3 + 2))
        shown = f"{new:,}" if "," in m.group(1) else str(new)
        return text[:m.start(1)] + shown + text[m.end(1):]
    return None


def _title_variant(title: str, style: str) -> str:
    if style == "short":
        if ":" in title:
            head, _, rest = title.partition(":")
            return (rest if len(rest.split()) >= 3 else head).strip()
        words = title.split()
        return " ".join(words[:max(4, int(len(words) * 0.7))]).rstrip(",;:") if len(words) > 6 else title
    if style == "caps":  # headline case: every word capitalised, the rest kept
        return " ".join(w[:1].upper() + w[1:] for w in title.split())
    return title


ZWSP = "\u200b"
NBSP = "\u00a0"
MOJIBAKE = {"\u2019": "\u00e2\u20ac\u2122", "\u201c": "\u00e2\u20ac\u0153", "\u2014": "\u00e2\u20ac\u201d",
            "\u00e9": "\u00c3\u00a9", "\u2018": "\u00e2\u20ac\u02dc"}


def _noisy(paragraphs: list[str], rng: random.Random) -> list[str]:
    """The paragraphs as a sloppy CMS shows them: now and then a zero-width space or a mis-decoded
    character inside a word, non-breaking spaces."""
    out = list(paragraphs)
    if rng.random() < 0.35:
        i = rng.randrange(len(out))
        words = out[i].split(" ")
        long = [j for j, w in enumerate(words) if len(w) >= 7 and w.isalpha()]
        if long:
            j = rng.choice(long)
            cut = rng.randint(2, len(words[j]) - 2)
            words[j] = words[j][:cut] + ZWSP + words[j][cut:]
            out[i] = " ".join(words)
    if rng.random() < 0.3:
        spots = [(i, m.start()) for i, p in enumerate(out) for m in re.finditer("[\u2019\u201c\u00e9\u2018]", p)]
        if spots:
            i, at = rng.choice(spots)
            out[i] = out[i][:at] + MOJIBAKE[out[i][at]] + out[i][at + 1:]
    if rng.random() < 0.3:
        i = rng.randrange(len(out))
        spaces = [m.start() for m in re.finditer(" ", out[i])]
        for at in rng.sample(spaces, min(3, len(spaces))):
            out[i] = out[i][:at] + NBSP + out[i][at + 1:]
    return out


def _dateline_shown(prefix: str, kind: str, rng: random.Random) -> tuple[str, str]:
    """(clean, shown) lede prefix: the dash variant a site uses, and now and then a NBSP, a zero-width
    space or a mis-decoded dash."""
    dashes = ["\u2014", "\u2014", "\u2014", "\u2013", "-", "--"] if kind == "AP" else ["-", "-", "\u2013", "\u2014"]
    dash = rng.choice(dashes)
    clean = f"{prefix} {dash} "
    shown = clean
    r = rng.random()
    if r < 0.2:
        shown = shown.replace(" (", NBSP + "(", 1)
    elif r < 0.3:
        shown = shown.replace(" (", ZWSP + " (", 1)
    elif r < 0.4 and dash == "\u2014":
        shown = shown.replace("\u2014", MOJIBAKE["\u2014"])
    return clean, shown


# ----------------------------------------------------------------------------- stories


@dataclass
class _Plan:
    n_p1: int
    n_staff: int
    n_p2: int
    n_p2_updates: int
    n_p3: int
    n_p3_updates: int
    max_copies: int


FULL = _Plan(n_p1=22, n_staff=6, n_p2=8, n_p2_updates=11, n_p3=5, n_p3_updates=9, max_copies=6)
QUICK = _Plan(n_p1=8, n_staff=2, n_p2=2, n_p2_updates=4, n_p3=1, n_p3_updates=3, max_copies=4)
AGENCY_LABELS = {"AP": ["The Associated Press", "Associated Press", "AP"], "Reuters": ["Reuters"],
                 "AFP": ["AFP", "Agence France-Presse"], "dpa": ["dpa"]}


def _story(sid: str, kind: str, title: str, paras: list[str], t0: float, rng: random.Random,
           home: str | None = None) -> Story:
    agency = None if kind == "staff" else kind
    if kind == "staff":
        authors: tuple[str, ...] = (_name(rng),)
        dateline, prefix = None, ""
    else:
        n_auth = {"AP": rng.choice([1, 1, 2, 2, 3]), "Reuters": rng.choice([1, 1, 2]),
                  "AFP": rng.choice([0, 1]), "dpa": 0}[kind]
        authors = tuple(dict.fromkeys(_name(rng) for _ in range(n_auth)))
        dateline = rng.choice(DATELINES[kind])
        day = datetime.fromtimestamp(t0, UTC)
        prefix = {"AP": f"{dateline} (AP)",
                  "Reuters": f"{dateline}, {MONTHS[day.month - 1]} {day.day} (Reuters)",
                  "AFP": f"{dateline} (AFP)", "dpa": f"{dateline} (dpa)"}[kind]
    tail: list[str] = []
    if kind == "Reuters":
        editors = "; ".join([f"Editing by {_name(rng)}"] + ([f"Additional reporting by {_name(rng)}"]
                                                            if rng.random() < 0.4 else []))
        by = " and ".join(authors) if authors else _name(rng)
        tail = [f"(Reporting by {by}; {editors})"]
    body = paras + tail
    return Story(sid=sid, kind=kind, agency=agency, dateline=dateline, authors=authors, title=title,
                 versions=(Version(1, tuple(body), t0),), home=home, lede_prefix=prefix, tail=len(tail))


def _with_updates(story: Story, full: list[str], held: list[list[int]], times: list[float],
                  rng: random.Random) -> Story:
    """`story` with versions 2.. : the held-back paragraphs of `full` restored in place, lede numbers moved."""
    tail = list(story.versions[0].paragraphs[len(story.versions[0].paragraphs) - story.tail:]) if story.tail else []
    hidden = {i for group in held for i in group}
    versions = [Version(1, tuple([p for i, p in enumerate(full) if i not in hidden] + tail), story.versions[0].time)]
    lede = full[0]
    for n, (group, t) in enumerate(zip(held, times, strict=True), start=2):
        hidden -= set(group)
        paras = [p for i, p in enumerate(full) if i not in hidden]
        bumped = _bump_number(lede, rng)
        if bumped is not None:
            lede = bumped
        paras[0] = lede
        versions.append(Version(n, tuple(paras + tail), t))
    return replace(story, versions=tuple(versions))


def _pick_sites(rng: random.Random, k: int, prefer: str | None = None) -> list[str]:
    keys = [s.key for s in SITES]
    chosen = rng.sample(keys, k)
    if prefer and prefer not in chosen:
        chosen[-1] = prefer
    rng.shuffle(chosen)
    return chosen


# ----------------------------------------------------------------------------- building the world


@dataclass
class _Builder:
    world: World
    rng: random.Random
    paths: dict[tuple[str, str], str] = field(default_factory=dict)  # (site, story) -> path
    current: dict[tuple[str, str], Page] = field(default_factory=dict)  # (site, story) -> page served now
    looks: dict[tuple[str, str], dict[str, object]] = field(default_factory=dict)  # per (site, story) style
    uid: int = 1000

    def look(self, site: str, story: Story) -> dict[str, object]:
        key = (site, story.sid)
        if key not in self.looks:
            r = self.rng
            self.looks[key] = {
                "title": r.choice(["same", "same", "same", "short", "caps"]),
                "trim": r.randint(1, 2) if r.random() < 0.2 and len(story.versions[0].paragraphs) > 9 else 0,
                "contrib": (f"Associated Press writer {_name(r)} in {r.choice(CITIES)} contributed to this report."
                            if story.kind == "AP" and r.random() < 0.35 else None),
                "label": r.choice(AGENCY_LABELS[story.kind]) if story.agency else None,
                "delay": r.uniform(4, 50) * 60,
            }
        return self.looks[key]

    def page(self, site: str, story: Story, version: int, when: float, feed_moves: bool) -> Page:
        spec = SITE[site]
        look = self.look(site, story)
        v = story.versions[version - 1]
        paras = list(v.paragraphs)
        body_paras, tail = (paras[:len(paras) - story.tail], paras[len(paras) - story.tail:]) if story.tail \
            else (paras, [])
        trim = int(look["trim"])  # type: ignore[call-overload]
        if trim:
            body_paras = body_paras[:-trim]
        extra = [str(look["contrib"])] if look["contrib"] else []
        clean = body_paras + tail + extra
        rng = random.Random(f"{self.world.seed}:{site}:{story.sid}:{version}")
        shown = _noisy(clean, rng)
        if story.lede_prefix:
            lede_clean, lede_shown = _dateline_shown(story.lede_prefix, story.kind, rng)
            clean = [lede_clean + clean[0]] + clean[1:]
            shown = [lede_shown + shown[0]] + shown[1:]
        if site == "oldstyle":  # a 1990s CMS: typewriter quotes
            table = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})
            clean = [p.translate(table) for p in clean]
            shown = [p.translate(table) for p in shown]
        key = (site, story.sid)
        first = self.current.get(key)
        zone = timezone(timedelta(minutes=spec.utc_offset_min))
        if first is None:
            self.uid += 1
            published = datetime.fromtimestamp(when, zone).replace(second=0, microsecond=0)
        else:
            published = first.published
        modified = max(published, datetime.fromtimestamp(when, zone).replace(second=0, microsecond=0))
        if site == "oldstyle":  # shows its wall clock without a zone: the contract reads that as UTC
            truth = published.replace(tzinfo=None).isoformat() + "Z"
        else:
            truth = published.isoformat().replace("+00:00", "Z")
        uid = first.uid if first else self.uid
        title = _title_variant(story.title, str(look["title"]))
        path = self.paths.get(key) or self._path(site, title, published, uid)
        self.paths[key] = path
        page = Page(site=site, path=path, story=story.sid, version=version, title=title,
                    body="\n\n".join(clean), shown=tuple(shown), published=published, modified=modified,
                    published_truth=truth, authors=story.authors, agency=story.agency, dateline=story.dateline,
                    agency_label=look["label"], feed_moves=feed_moves, uid=uid)  # type: ignore[arg-type]
        self.current[key] = page
        return page

    @staticmethod
    def _path(site: str, title: str, published: datetime, uid: int) -> str:
        slug = _slug(title)
        return {
            "wordpress": f"/{published:%Y/%m/%d}/{slug}/",
            "amp": f"/amp/world/{slug}.amp.html",
            "oldstyle": f"/news/story.php?id={uid}",
            "modern": f"/world/{slug}-{uid:x}",
            "trending": f"/news/{uid}/{slug}.html",
            "portal": f"/news/world/{slug}/{uid}",
        }[site]


def _waves(phase: int, appearances: list[list[tuple[str, Story, int, bool]]], builder: _Builder,
           first_index: int) -> list[Wave]:
    """One wave per copy rank: a story's k-th copy of this phase goes live in wave k, so the order in
    which wire meets the copies of a story is fixed by the seed, not by the machine's timing."""
    depth = max((len(a) for a in appearances), default=0)
    waves: list[Wave] = []
    for k in range(depth):
        pages = []
        for copies in appearances:
            if k < len(copies):
                site, story, version, feed_moves = copies[k]
                look = builder.look(site, story)
                when = story.versions[version - 1].time + float(look["delay"]) * (k + 1) / 2  # type: ignore[arg-type]
                pages.append(builder.page(site, story, version, when, feed_moves))
        waves.append(Wave(phase=phase, index=first_index + k, pages=tuple(pages)))
    return waves


def build_world(corpus: list[tuple[str, list[str]]], seed: int, quick: bool, anchor: float) -> World:
    """The stories and the waves of pages of one simulation run."""
    plan = QUICK if quick else FULL
    rng = random.Random(seed)
    pool = list(corpus)
    rng.shuffle(pool)
    long_pool = [c for c in pool if len(c[1]) >= 11]
    short_pool = [c for c in pool if len(c[1]) < 11]
    world = World(seed=seed, anchor=anchor, stories={}, waves=[])
    b = _Builder(world=world, rng=rng)
    a = anchor
    phase_time = {1: (a - 36 * HOUR, 8 * HOUR), 2: (a - 20 * HOUR, 6 * HOUR), 3: (a - 8 * HOUR, 6 * HOUR)}
    n = 0

    def take(long: bool) -> tuple[str, list[str]]:
        src = long_pool if long or not short_pool else short_pool
        src = src or long_pool or short_pool
        if not src:
            raise ValueError("the corpus has too few usable articles for this simulation")
        return src.pop()

    def kind_for(i: int) -> str:
        return ["AP", "Reuters", "AP", "AFP", "AP", "Reuters", "dpa", "AP", "Reuters", "AP"][i % 10]

    def new_story(kind: str, t0: float, long: bool = False, home: str | None = None) -> tuple[Story, list[str]]:
        nonlocal n
        title, paras = take(long)
        n += 1
        story = _story(f"s{n:02d}", kind, title, paras, t0, rng, home=home)
        world.stories[story.sid] = story
        return story, paras

    def when(phase: int) -> float:
        start, span = phase_time[phase]
        return start + rng.uniform(0, span)

    def with_updates(story: Story, paras: list[str], phases: tuple[int, ...]) -> Story:
        """Hold paragraphs back from version 1; each update phase restores 2-4 of them."""
        idx = list(range(2, len(paras) - 2))  # never the lede, never the tail a site may trim
        groups = []
        for _ in phases:
            group = sorted(rng.sample(idx, min(rng.randint(2, 4), len(idx))))
            idx = [i for i in idx if i not in group]
            groups.append(group)
        updated = _with_updates(story, paras, groups, [when(p) for p in phases], rng)
        world.stories[story.sid] = updated
        return updated

    def copies(story: Story, version: int, sites: list[str]) -> list[tuple[str, Story, int, bool]]:
        return [(s, story, version, False) for s in sites]

    # Which stories get updated, and in which phases, is decided before version 1 exists (it holds
    # the later paragraphs back): some get v2 in phase 2 and v3 in phase 3, some only v2 in phase 2,
    # some v2 only in phase 3 (these were all carried by the old-style site in phase 1).
    n_v3 = min(plan.n_p3_updates // 2, plan.n_p2_updates)
    both: tuple[int, ...] = (2, 3)
    second: tuple[int, ...] = (2,)
    third: tuple[int, ...] = (3,)
    schedule = [both] * n_v3 + [second] * (plan.n_p2_updates - n_v3) + [third] * (plan.n_p3_updates - n_v3)
    carriers: dict[str, list[str]] = {}
    updates: dict[str, tuple[int, ...]] = {}

    # ---- phase 1: syndicated stories on 2..max sites, one staff story per site
    apps: list[list[tuple[str, Story, int, bool]]] = []
    p1: list[Story] = []
    for i in range(plan.n_p1):
        phases = schedule[i] if i < len(schedule) else ()
        story, paras = new_story(kind_for(i), when(1), long=bool(phases))
        if phases:
            story = with_updates(story, paras, phases)
            updates[story.sid] = phases
        p1.append(story)
        sites = _pick_sites(rng, rng.randint(2, plan.max_copies), prefer="oldstyle" if phases == (3,) else None)
        carriers[story.sid] = sites
        apps.append(copies(story, 1, sites))
    for i in range(plan.n_staff):
        home = SITES[i % len(SITES)].key
        story, paras = new_story("staff", when(1), long=i == 0, home=home)
        if i == 0:
            story = with_updates(story, paras, (2,))
            updates[story.sid] = (2,)
        carriers[story.sid] = [home]
        apps.append(copies(story, 1, [home]))
    world.waves.extend(_waves(1, apps, b, 0))

    # ---- phase 2: new stories, two hard negatives, v2 of some
    apps = []
    for i in range(plan.n_p2):
        story, _ = new_story(kind_for(i + 3), when(2) - 4 * HOUR)
        sites = _pick_sites(rng, rng.randint(2, plan.max_copies))
        carriers[story.sid] = sites
        apps.append(copies(story, 1, sites))
    plain = [s for s in p1 if s.sid not in updates]
    for src, how in ((plain[-1], "opening"), (plain[-2], "background")):
        story, _ = new_story(src.kind, when(2) - 2 * HOUR)
        own = list(story.versions[0].paragraphs)
        body, tail = own[:len(own) - story.tail], own[len(own) - story.tail:]
        base = src.versions[0].paragraphs
        if how == "opening":  # the same lede under the same dateline, then a different story
            body = [base[0]] + body[1:]
            story = replace(story, dateline=src.dateline, lede_prefix=src.lede_prefix)
        else:  # four background paragraphs of the earlier story, after this one's own opening
            body = body[:2] + list(base[2:6]) + body[2:]
        story = replace(story, negative_of=src.sid,
                        versions=(Version(1, tuple(body + tail), story.versions[0].time),))
        world.stories[story.sid] = story
        sites = _pick_sites(rng, rng.randint(2, plan.max_copies), prefer=carriers[src.sid][0])
        carriers[story.sid] = sites
        apps.append(copies(story, 1, sites))
    for sid, phases in updates.items():
        if 2 in phases:
            apps.append(_update_copies(world.stories[sid], 2, carriers, rng, plan))
    world.waves.extend(_waves(2, apps, b, len(world.waves)))

    # ---- phase 3: new stories, v3 of some, v2 of the others (their first updated copy not on the
    # old-style site, which carried version 1)
    apps = []
    for i in range(plan.n_p3):
        story, _ = new_story(kind_for(i + 7), when(3) - 3 * HOUR)
        sites = _pick_sites(rng, rng.randint(2, plan.max_copies))
        carriers[story.sid] = sites
        apps.append(copies(story, 1, sites))
    for sid, phases in updates.items():
        if 3 in phases:
            version = phases.index(3) + 2
            apps.append(_update_copies(world.stories[sid], version, carriers, rng, plan,
                                       avoid_first="oldstyle" if version == 2 else None))
    world.waves.extend(_waves(3, apps, b, len(world.waves)))
    return world


def _update_copies(story: Story, version: int, carriers: dict[str, list[str]], rng: random.Random, plan: _Plan,
                   avoid_first: str | None = None) -> list[tuple[str, Story, int, bool]]:
    """The sites that carry `version` of `story`: some of its carriers (not all sites update), maybe one
    site picking the story up late; the first of them is not `avoid_first` when another can be."""
    sites = list(carriers[story.sid])
    rng.shuffle(sites)
    n = rng.randint(1, min(3, len(sites)))
    chosen = sites[:n]
    first = next((s for s in sites if s != avoid_first), None)
    if avoid_first and chosen[0] == avoid_first and first is not None:
        chosen = [first] + [s for s in chosen if s != first][: n - 1]
    others = [s.key for s in SITES if s.key not in carriers[story.sid]]
    if others and rng.random() < 0.3 and len(chosen) < plan.max_copies:
        pick = rng.choice(others)
        chosen.append(pick)
        carriers[story.sid].append(pick)
    return [(s, story, version, SITE[s].feed_has_updated and rng.random() < 0.5) for s in chosen]
