"""`config/sources.yaml` -> `SourcesConfig`: the sources to ingest, their rules, and the routes to streams.

Read once, at an entrypoint. Validation collects every error before raising
(`SourcesInvalid`), each naming the file, the source and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, SourcesInvalid
from ..models import Listing, Route, Rules, Source
from .env import parse_duration

_SOURCE_FIELDS = {"name", "feeds", "sitemaps", "listings", "interval", "allow", "deny", "rules", "rate", "agency"}
_DEFAULT_FIELDS = _SOURCE_FIELDS - {"name", "feeds", "sitemaps", "listings"}
_RULE_FIELDS = {"body", "strip", "strip_text"}
_ROUTE_FIELDS = {"stream", "source", "agency", "language"}
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class SourcesConfig:
    path: str
    sources: tuple[Source, ...]
    routes: tuple[Route, ...] = ()
    by_name: Mapping[str, Source] = field(default_factory=dict)

    def get(self, name: str) -> Source | None:
        return self.by_name.get(name)


class _Checker:
    """Validates one parsed document, collecting every error with its location."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[ConfigError] = []

    def fail(self, where: str, message: str) -> None:
        self.errors.append(ConfigError(self.path, where, message))

    def listed(self, where: str, value: Any, expected: str) -> list[Any]:
        """`value` as a list: nothing for None, one item for a lone string, else it must be a list."""
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            self.fail(where, expected)
            return []
        return value

    def url_list(self, where: str, value: Any) -> tuple[str, ...]:
        out = []
        for i, url in enumerate(self.listed(where, value, f"expected a list of URLs, got {type(value).__name__}")):
            if not isinstance(url, str) or not re.match(r"https?://[^/\s]+", url):
                self.fail(f"{where}[{i}]", f"expected an http(s) URL, got {url!r}")
            else:
                out.append(url)
        return tuple(out)

    def patterns(self, where: str, value: Any) -> tuple[re.Pattern[str], ...]:
        out = []
        expected = f"expected a list of regular expressions, got {type(value).__name__}"
        for i, pattern in enumerate(self.listed(where, value, expected)):
            if not isinstance(pattern, str):
                self.fail(f"{where}[{i}]", f"expected a string, got {pattern!r}")
                continue
            try:
                out.append(re.compile(pattern))
            except re.error as exc:
                self.fail(f"{where}[{i}]", f"invalid regular expression {pattern!r}: {exc}")
        return tuple(out)

    def selector(self, where: str, value: Any) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.fail(where, f"expected a CSS selector, got {value!r}")
            return None
        import soupsieve  # a dependency of beautifulsoup4; validates without a document

        try:
            soupsieve.compile(value)
        except Exception as exc:  # soupsieve raises SelectorSyntaxError and friends
            self.fail(where, f"invalid CSS selector {value!r}: {str(exc).splitlines()[0]}")
            return None
        return value

    def rules(self, where: str, value: Any) -> Rules:
        if value is None:
            return Rules()
        if not isinstance(value, dict):
            self.fail(where, "expected a mapping with body/strip/strip_text")
            return Rules()
        for unknown in sorted(set(value) - _RULE_FIELDS):
            self.fail(f"{where}.{unknown}", f"unknown field (known: {', '.join(sorted(_RULE_FIELDS))})")
        body = self.selector(f"{where}.body", value["body"]) if value.get("body") is not None else None
        strip: list[str] = []
        for i, sel in enumerate(self.listed(f"{where}.strip", value.get("strip") or None,
                                            "expected a list of CSS selectors")):
            checked = self.selector(f"{where}.strip[{i}]", sel)
            if checked:
                strip.append(checked)
        return Rules(body=body, strip=tuple(strip),
                     strip_text=self.patterns(f"{where}.strip_text", value.get("strip_text")))

    def source(self, index: int, raw: Any, defaults: dict[str, Any], seen: set[str]) -> Source | None:
        if not isinstance(raw, dict):
            self.fail(f"sources[{index}]", f"expected a mapping, got {type(raw).__name__}")
            return None
        name = raw.get("name")
        label = f"source {name!r}" if isinstance(name, str) else f"sources[{index}]"
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            self.fail(f"{label}.name", "expected a lowercase name of letters, digits, '.', '_' or '-' (max 64)")
            return None
        if name in seen:
            self.fail(f"{label}.name", "duplicate source name")
        seen.add(name)
        for unknown in sorted(set(raw) - _SOURCE_FIELDS):
            self.fail(f"{label}.{unknown}", f"unknown field (known: {', '.join(sorted(_SOURCE_FIELDS))})")
        merged = {**defaults, **raw}
        feeds = self.url_list(f"{label}.feeds", raw.get("feeds"))
        sitemaps = self.url_list(f"{label}.sitemaps", raw.get("sitemaps"))
        listings: list[Listing] = []
        raw_listings = raw.get("listings") or []
        if not isinstance(raw_listings, list):
            self.fail(f"{label}.listings", "expected a list of {url, links} mappings")
            raw_listings = []
        for i, item in enumerate(raw_listings):
            where = f"{label}.listings[{i}]"
            if not isinstance(item, dict):
                self.fail(where, "expected a mapping with url and links")
                continue
            urls = self.url_list(f"{where}.url", item.get("url"))
            selector = self.selector(f"{where}.links", item.get("links"))
            if len(urls) != 1:
                if "url" not in item:
                    self.fail(f"{where}.url", "missing")
                continue
            if selector:
                listings.append(Listing(url=urls[0], links=selector))
        if not (feeds or sitemaps or listings or raw.get("feeds") or raw.get("sitemaps") or raw.get("listings")):
            self.fail(label, "needs at least one of feeds, sitemaps or listings")
        interval = 300.0
        if "interval" in merged:
            try:
                interval = parse_duration(merged["interval"])
                if interval < 1:
                    raise ValueError("must be at least 1s")
            except ValueError as exc:
                self.fail(f"{label}.interval", str(exc))
        rate = merged.get("rate")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0):
            self.fail(f"{label}.rate", f"expected a positive number of requests per second, got {rate!r}")
            rate = None
        agency = merged.get("agency")
        if agency is not None and not isinstance(agency, str):
            self.fail(f"{label}.agency", f"expected a string, got {agency!r}")
            agency = None
        return Source(
            name=name,
            feeds=feeds,
            sitemaps=sitemaps,
            listings=tuple(listings),
            interval=interval,
            allow=self.patterns(f"{label}.allow", merged.get("allow")),
            deny=self.patterns(f"{label}.deny", merged.get("deny")),
            rules=self.rules(f"{label}.rules", merged.get("rules")),
            rate=float(rate) if rate is not None else None,
            agency=agency,
        )

    def route(self, index: int, raw: Any, names: set[str]) -> Route | None:
        where = f"routes[{index}]"
        if not isinstance(raw, dict):
            self.fail(where, "expected a mapping with stream and source/agency/language")
            return None
        for unknown in sorted(set(raw) - _ROUTE_FIELDS):
            self.fail(f"{where}.{unknown}", f"unknown field (known: {', '.join(sorted(_ROUTE_FIELDS))})")
        stream = raw.get("stream")
        if not isinstance(stream, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", stream):
            self.fail(f"{where}.stream", f"expected a stream name, got {stream!r}")
            return None
        if not any(raw.get(k) for k in ("source", "agency", "language")):
            self.fail(where, "needs at least one of source, agency, language to match on")
            return None
        if raw.get("source") is not None and raw["source"] not in names:
            self.fail(f"{where}.source", f"unknown source {raw['source']!r}")
        language = raw.get("language")
        if language is not None and not (isinstance(language, str) and re.fullmatch(r"[a-z]{2}", language)):
            self.fail(f"{where}.language", f"expected an ISO 639-1 code like 'en', got {language!r}")
        return Route(stream=stream, source=raw.get("source"), agency=raw.get("agency"), language=language)


def parse_sources(text: str, path: str) -> SourcesConfig:
    """Parse and validate a sources document; raise the first error, with every error listed."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(path, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    checker = _Checker(path)
    if not isinstance(doc, dict):
        raise ConfigError(path, "", "expected a mapping with a 'sources' list")
    for unknown in sorted(set(doc) - {"sources", "defaults", "routes"}):
        checker.fail(unknown, "unknown top-level field (known: defaults, routes, sources)")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        checker.fail("defaults", "expected a mapping")
        defaults = {}
    for unknown in sorted(set(defaults) - _DEFAULT_FIELDS):
        checker.fail(f"defaults.{unknown}", f"not allowed in defaults (allowed: {', '.join(sorted(_DEFAULT_FIELDS))})")
    defaults = {k: v for k, v in defaults.items() if k in _DEFAULT_FIELDS}
    raw_sources = doc.get("sources")
    if not isinstance(raw_sources, list) or not raw_sources:
        checker.fail("sources", "expected a non-empty list of sources")
        raw_sources = []
    seen: set[str] = set()
    sources = [s for i, raw in enumerate(raw_sources) if (s := checker.source(i, raw, defaults, seen))]
    raw_routes = doc.get("routes") or []
    if not isinstance(raw_routes, list):
        checker.fail("routes", "expected a list")
        raw_routes = []
    routes = [rt for i, raw in enumerate(raw_routes) if (rt := checker.route(i, raw, seen))]
    if checker.errors:
        raise SourcesInvalid(checker.errors)
    return SourcesConfig(path=path, sources=tuple(sources), routes=tuple(routes),
                         by_name={s.name: s for s in sources})


def load_sources(path: str | Path) -> SourcesConfig:
    """Read and validate `sources.yaml`; raises ConfigError naming file, source and field."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "", "not UTF-8 text") from None
    return parse_sources(text, path)
