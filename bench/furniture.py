"""Learned site furniture on the extraction corpora: what it drops, from which page it helps, what it costs.

    python bench/furniture.py [--data DIR] [--bench scrapinghub,readability] [--pages 6] [--limit N]

Runs the real path of the process stage page by page against a private
redis-server: read the host's furniture table, `extract` with it, decide
the page with the real `Dedup` (its story id tells stories apart), count the
page's lines with `FurnitureStore.record`.

- **Natural hosts**: the corpus pages grouped by host (scrapinghub's URLs;
  readability gives none, so each of its pages is a host of its own), in
  corpus order.
- **Simulated hosts**: each page P becomes a host serving `--pages` other
  stories in P's own template (every block whose text belongs to P's gold
  text gets the words of another page's gold text instead, word for word,
  so the markup, the furniture and the layout stay P's), then P itself.
  A page whose gold text the swap cannot reach (it also lives in JSON-LD
  `articleBody` or a meta description, which extraction reads) is left out
  and counted: every simulated page would repeat that text, as no real
  host's pages do.

Reports, for P after its host has been learned: the lines dropped as
furniture, how many of them are gold text (a dropped line whose words are a
whole gold paragraph, or at least 4 words found inside the gold text), and
P's body F1 (the corpus scorer's 4-gram shingles) with and without the
template; for the simulated pages: mean body F1 (against the words put
into the template) by page number, generic extraction against learned,
which is the cold-start curve; and bytes per host (MEMORY USAGE).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

import redis
from lxml import etree
from lxml.html import HtmlElement, document_fromstring, tostring

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# ../shared beside the checkout, or beside the worktrees' folder
SHARED = next((p / "shared" for p in ROOT.parents if (p / "shared" / "tools").is_dir()), ROOT.parent / "shared")
sys.path.insert(0, str(SHARED / "tools"))

from extract_eval import _page_precision, _page_recall, shingle_tp_fp_fn  # noqa: E402

from worker.dedup import Dedup, Doc  # noqa: E402
from worker.extract import extract  # noqa: E402
from worker.extract.decode import decode_html  # noqa: E402
from worker.extract.furniture import Template, sightings  # noqa: E402
from worker.keys import Keys  # noqa: E402
from worker.ops.redis_server import start_redis  # noqa: E402
from worker.pipeline.furniture import FurnitureStore, parse  # noqa: E402

DEFAULT_DATA = SHARED / "corpus" / "extraction"
BLOCKS = {"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "dd", "dt", "blockquote", "figcaption",
          "pre", "div", "section", "article", "span", "font", "center", "table", "tr", "ul", "ol", "body"}
_WORD = re.compile(r"\w+")


def norm(text: str) -> str:
    return " ".join(_WORD.findall(unescape(text).casefold()))


def f1(gold: str, body: str) -> float:
    tp, fp, fn = shingle_tp_fp_fn(gold, body)
    p, r = _page_precision(tp, fp, fn), _page_recall(tp, fp, fn)
    return 2 * p * r / (p + r) if p + r else 0.0


def load(data: Path, bench: str, limit: int | None) -> list[dict]:
    truth = json.loads((data / bench / "truth.json").read_text())
    out = []
    for name, t in sorted(truth.items()):
        if not t.get("body"):
            continue
        path = data / bench / t["file"] if t.get("file") else data / bench / "pages" / f"{name}.html.gz"
        html = path.read_bytes()
        if path.suffix == ".gz":
            html = gzip.decompress(html)
        url = t.get("url")
        host = urlsplit(url).hostname if url else f"{bench}-{name}.test"
        out.append({"name": name, "html": html, "url": url or f"https://{host}/{name}", "host": host,
                    "gold": t["body"]})
    return out[:limit] if limit else out


def swap_story(html: bytes, gold: str, donor: str) -> tuple[bytes, str] | None:
    """P's page with the words of its gold blocks replaced by `donor`'s, and the text put in."""
    try:
        tree = document_fromstring(decode_html(html, None)[0])
    except (etree.ParserError, ValueError):
        return None
    gold_text = f" {norm(gold)} "
    words = donor.split()
    if not words:
        return None
    cursor = [0]
    placed: list[str] = []

    def take(n: int) -> str:
        out = [words[(cursor[0] + i) % len(words)] for i in range(n)]
        cursor[0] += n
        return " ".join(out)

    def replace_all(el: HtmlElement) -> None:
        texts: list[str] = []
        for node in el.iter():
            if not isinstance(node.tag, str) or node.tag in ("script", "style"):
                continue
            if node.text and node.text.split():
                node.text = take(len(node.text.split())) + " "
                texts.append(node.text)
            if node is not el and node.tail and node.tail.split():
                node.tail = " " + take(len(node.tail.split())) + " "
                texts.append(node.tail)
        placed.append(" ".join(" ".join(texts).split()))

    def visit(el: HtmlElement) -> None:
        if not isinstance(el.tag, str) or el.tag in ("script", "style", "head", "title"):
            return
        # words split across elements ("<span>T</span>he", "Game D</strong><strong>ay") or joined by
        # them ("states<br>It is"): either way of joining the element's text may be the gold's
        spaced, joined = norm(" ".join(el.itertext())), norm("".join(el.itertext()))
        if el.tag in BLOCKS and spaced and (f" {spaced} " in gold_text or f" {joined} " in gold_text):
            replace_all(el)
            return
        if el.text and el.text.split() and f" {norm(el.text)} " in gold_text:
            el.text = take(len(el.text.split())) + " "
            placed.append(el.text.strip())
        for child in el:
            visit(child)
        if el.tail and el.tail.split() and f" {norm(el.tail)} " in gold_text:
            el.tail = " " + take(len(el.tail.split())) + " "
            placed.append(el.tail.strip())

    body = tree.find("body")
    if body is None:
        return None
    visit(body)
    if not placed:
        return None
    return tostring(tree, encoding="utf-8"), "\n\n".join(placed)


class Host:
    """The process stage's furniture path for one page at a time, against a real Redis."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.r = client
        self.store = FurnitureStore(client, keys)
        self.dedup = Dedup(client, keys.dedup_ns())
        self.now = time.time()

    def template(self, host: str) -> Template:
        pipe = self.r.pipeline(transaction=False)
        self.store.read(pipe, host)
        (raw,) = pipe.execute()
        return parse(host, raw)

    def process(self, html: bytes, url: str, host: str, *, learn: bool = True) -> tuple[str, tuple[str, ...]]:
        """The body and the lines dropped as furniture; the page's lines counted when `learn`."""
        art = extract(html, url, furniture=self.template(host))
        if art.not_article or not learn:
            return art.body, art.furniture
        self.now += 60
        d = self.dedup.submit(Doc(url, art.title, art.body, furniture=art.furniture), now=self.now)
        pipe = self.r.pipeline(transaction=False)
        self.store.record(pipe, host, d.story_id, sightings(art.body.split("\n\n"), art.furniture), self.now)
        self.store.execute(pipe)
        return art.body, art.furniture


def gold_lines(dropped: tuple[str, ...], gold: str) -> list[str]:
    paras = {norm(p) for p in gold.split("\n") if norm(p)}
    text = f" {norm(gold)} "
    out = []
    for line in dropped:
        n = norm(line)
        if n in paras or (len(n.split()) >= 4 and f" {n} " in text):
            out.append(line)
    return out


def run(pages: list[dict], bench: str, n_sim: int, client: redis.Redis) -> dict:
    keys = Keys.for_prefix(f"bench{hashlib.md5(bench.encode()).hexdigest()[:6]}")
    host = Host(client, keys)
    report: dict = {"bench": bench, "pages": len(pages)}

    # natural hosts, in corpus order
    by_host: dict[str, list[dict]] = defaultdict(list)
    for p in pages:
        by_host[p["host"]].append(p)
    dropped_nat = gold_nat = 0
    for h, ps in by_host.items():
        for p in ps:
            _, dropped = host.process(p["html"], p["url"], "nat-" + h)
            dropped_nat += len(dropped)
            gold_nat += len(gold_lines(dropped, p["gold"]))
    report["natural"] = {"hosts": len(by_host), "multi_page_hosts": sum(len(v) > 1 for v in by_host.values()),
                         "lines_dropped": dropped_nat, "gold_dropped": gold_nat}

    # simulated hosts: P's template with other stories, then P
    curve_generic: dict[int, list[float]] = defaultdict(list)
    curve_learned: dict[int, list[float]] = defaultdict(list)
    helped_at: list[int] = []
    f1_generic, f1_learned, dropped_lines, gold_dropped, examples = [], [], 0, 0, []
    sizes = []
    simulated = unswappable = 0
    for i, p in enumerate(pages):
        h = f"sim-{bench}-{i}"
        donors = [pages[(i + k) % len(pages)] for k in range(1, n_sim + 1)]
        made = [swap_story(p["html"], p["gold"], d["gold"]) for d in donors]
        if any(m is None for m in made):
            continue
        first = made[0]
        assert first is not None
        if gold_lines(tuple(extract(first[0], f"https://{h}/probe").body.split("\n\n")), p["gold"]):
            # some of P's text lives where the swap does not reach (JSON-LD articleBody, a meta
            # description): every simulated page would repeat it, as no real host does
            unswappable += 1
            continue
        simulated += 1
        first_help = 0
        for k, m in enumerate(made, 1):
            assert m is not None
            page, put = m
            url = f"https://{h}/story/{k}"
            generic = extract(page, url).body
            body, dropped = host.process(page, url, h)
            curve_generic[k].append(f1(put, generic))
            curve_learned[k].append(f1(put, body))
            if dropped and not first_help:
                first_help = k
        helped_at.append(first_help)
        generic = extract(p["html"], p["url"]).body
        body, dropped = host.process(p["html"], p["url"], h, learn=False)
        f1_generic.append(f1(p["gold"], generic))
        f1_learned.append(f1(p["gold"], body))
        dropped_lines += len(dropped)
        gold = gold_lines(dropped, p["gold"])
        gold_dropped += len(gold)
        if gold and len(examples) < 20:
            examples.append({"page": p["name"], "gold_dropped": gold})
        sizes.append(host.store.size(h))
    report["simulated"] = {
        "hosts": simulated,
        "pages_left_out": unswappable,
        "pages_per_host": n_sim,
        "lines_dropped_on_P": dropped_lines,
        "gold_dropped_on_P": gold_dropped,
        "hosts_where_P_lost_gold": len(examples),
        "P_f1_generic": round(statistics.fmean(f1_generic), 4) if f1_generic else None,
        "P_f1_learned": round(statistics.fmean(f1_learned), 4) if f1_learned else None,
        "P_changed": sum(a != b for a, b in zip(f1_generic, f1_learned, strict=True)),
        "curve": {k: {"generic": round(statistics.fmean(curve_generic[k]), 4),
                      "learned": round(statistics.fmean(curve_learned[k]), 4)} for k in sorted(curve_generic)},
        "first_page_dropping": dict(sorted((k, helped_at.count(k)) for k in set(helped_at))),
        "bytes_per_host": {"median": int(statistics.median(sizes)), "max": max(sizes)} if sizes else None,
        "examples": examples,
    }
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--bench", default="scrapinghub,readability")
    ap.add_argument("--pages", type=int, default=6, help="stories each simulated host serves before P")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wire-furniture-") as tmp:
        server = start_redis(Path(tmp), appendonly=False)
        client = redis.Redis.from_url(server.url)
        try:
            for bench in args.bench.split(","):
                print(json.dumps(run(load(args.data, bench, args.limit), bench, args.pages, client), indent=1,
                                 ensure_ascii=False))
        finally:
            client.close()
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
