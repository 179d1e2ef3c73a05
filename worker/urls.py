"""URL canonicalisation (pure: no network, no clock).

Three identities, from strictest to loosest:

- ``canonicalize(url)``: the URL we fetch and publish as ``canonical_url``.
  It never changes the origin (scheme, host, port), so fetching it reaches
  the same server; it only removes what cannot change the response
  (fragments, default ports, tracking parameters, encoding noise).
- ``url_key(url)``: a looser identity for seen/dedup keys. It also folds
  ``www.``, http/https, AMP variants and trailing slashes, which usually
  but not always name the same page, so it is never fetched.
- ``choose_canonical(fetched, rel)``: after fetching, the page's own
  ``rel=canonical`` wins when it points at the same site.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import idna  # IDNA 2008 + UTS 46; installed with requests (a core dependency)

from worker.errors import BadURL

MAX_URL_LENGTH = 2048

# Query parameters that only identify a campaign, a click or a share, never
# the content. Matched case-insensitively on the decoded key. Keep the list
# documented here: removing a parameter a site needs would fetch a wrong page.
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        "fbclid",  # Facebook click id
        "gclid",  # Google Ads click id
        "gclsrc",
        "dclid",  # Google Display click id
        "gbraid",  # Google Ads (iOS) click ids
        "wbraid",
        "msclkid",  # Microsoft Ads click id
        "yclid",  # Yandex click id
        "twclid",  # X/Twitter click id
        "ttclid",  # TikTok click id
        "li_fat_id",  # LinkedIn
        "mc_cid",  # Mailchimp campaign / member
        "mc_eid",
        "_ga",  # Google Analytics cross-domain linker
        "_gl",
        "igshid",  # Instagram share id
        "ref_src",  # Twitter embeds
        "ref_url",
        "cmpid",  # campaign ids used by many publishers
        "ocid",  # MSN
        "smid",  # New York Times share ids
        "smtyp",
        "sr_share",  # Sailthru / news share buttons
        "__twitter_impression",
        "_hsenc",  # HubSpot
        "_hsmi",
        "mkt_tok",  # Marketo
        "vero_id",  # Vero
        "oly_anon_id",  # Omeda
        "oly_enc_id",
        "rb_clickid",
        "s_cid",  # Adobe
        "wt.mc_id",  # Webtrends
        "ns_campaign",  # comScore
        "ns_mchannel",
        "ns_source",
        "ns_linkname",
        "ns_fee",
        "at_medium",  # BBC
        "at_campaign",
        "at_custom1",
        "at_custom2",
        "at_custom3",
        "at_custom4",
    }
)
# Every parameter starting with one of these is tracking (utm_source, ...).
TRACKING_PREFIXES: tuple[str, ...] = ("utm_",)

# Two-label public suffixes under which registrations happen at the third
# label (news.bbc.co.uk and www.bbc.co.uk share bbc.co.uk). A short
# hard-coded list instead of downloading the Public Suffix List: it only has
# to keep choose_canonical from treating two different sites under co.uk
# (or two blogs under blogspot.com) as one.
MULTI_LABEL_SUFFIXES: frozenset[str] = frozenset(
    {
        # country-code second levels
        "co.uk", "org.uk", "ac.uk", "gov.uk", "ltd.uk", "plc.uk", "me.uk", "net.uk",
        "com.au", "net.au", "org.au", "edu.au", "gov.au",
        "co.nz", "org.nz", "net.nz", "govt.nz",
        "co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp",
        "co.kr", "or.kr",
        "co.in", "net.in", "org.in", "gov.in",
        "co.za", "org.za", "gov.za",
        "co.il", "org.il",
        "com.br", "net.br", "org.br", "gov.br",
        "com.mx", "org.mx", "gob.mx",
        "com.ar", "com.co", "com.pe", "com.ve", "com.uy",
        "com.cn", "net.cn", "org.cn", "gov.cn",
        "com.hk", "org.hk", "com.tw", "org.tw", "com.sg", "org.sg",
        "com.my", "com.ph", "com.pk", "com.bd", "com.np", "co.id", "co.th", "com.vn",
        "com.tr", "org.tr", "com.eg", "com.sa", "com.ng", "co.ke", "com.gh",
        "com.ua", "org.ua", "com.pl", "com.ru",
        # hosting platforms where each subdomain is a different publisher
        "blogspot.com", "wordpress.com", "github.io", "substack.com",
        "medium.com", "tumblr.com", "netlify.app", "vercel.app", "pages.dev",
        "herokuapp.com", "appspot.com", "cloudfront.net", "azurewebsites.net",
    }
)  # fmt: skip

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SUB_DELIMS = "!$&'()*+,;="
_PATH_SAFE = frozenset(_UNRESERVED | set(_SUB_DELIMS) | set(":@/"))
_QUERY_SAFE = frozenset(_PATH_SAFE | set("?"))
_HEX = frozenset("0123456789abcdefABCDEF")
_HOST_RE = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$")
# WHATWG URL parsing drops these anywhere in the input; feeds often wrap links.
_STRIP_CHARS = str.maketrans("", "", "\t\r\n")
# Words that make a query key secret, wherever they stand in it (api_key, X-Amz-Signature,
# accessToken, client_secret, Password): redact() masks the values of such keys.
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "pass",
        "token",
        "auth",
        "authorization",
        "apikey",
        "key",
        "secret",
        "sig",
        "signature",
        "credential",
        "credentials",
        "session",
        "sessionid",
        "jwt",
        "bearer",
        "otp",
    }
)
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
# A URL inside free text (an error message); trailing punctuation belongs to the sentence.
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]+")
_TRAILING = ").,;:!?]}'\""
# A `key=value` inside free text without its URL ("Max retries exceeded with url: /rss?api_key=...",
# "(sig=...)"): starting a query, a parameter, a word or a parenthesis.
_PARAM_IN_TEXT = re.compile(r"(?<![^\s?&;#(\[{,])([^=&\s'\"<>#?(\[{,]+)=([^&\s'\"<>#]*)")


def canonicalize(url: str, base: str | None = None) -> str:
    """Return the canonical form of `url` (resolved against `base`); raise BadURL."""
    if not isinstance(url, str):
        raise BadURL(f"not a string: {type(url).__name__}")
    url = url.strip().translate(_STRIP_CHARS)
    if len(url) > MAX_URL_LENGTH:
        raise BadURL(f"URL longer than {MAX_URL_LENGTH} characters")
    if not url:
        raise BadURL("empty URL")
    try:
        if base:
            url = urljoin(base.strip().translate(_STRIP_CHARS), url)
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # invalid port, unbalanced IPv6 brackets
        raise BadURL(f"unparseable URL: {redact(url)}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise BadURL(f"scheme not allowed: {scheme or '(none)'}")
    host = _canonical_host(parts.hostname or "")
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _remove_dot_segments(_requote(parts.path, _PATH_SAFE)) or "/"
    query = _canonical_query(parts.query)
    out = urlunsplit((scheme, netloc, path, query, ""))
    if len(out) > MAX_URL_LENGTH:
        raise BadURL(f"URL longer than {MAX_URL_LENGTH} characters")
    return out


def url_key(url: str) -> str:
    """A loose identity for seen/dedup keys: no www., scheme, AMP variant or trailing slash."""
    parts = urlsplit(canonicalize(url))
    host = parts.netloc.removeprefix("www.")
    path = _strip_amp_path(parts.path)
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    pieces = [p for p in parts.query.split("&") if p and not _is_amp_param(p)]
    query = "&".join(pieces)
    # The key has no scheme on purpose: http and https copies are one page.
    return f"//{host}{path}" + (f"?{query}" if query else "")


def secret_param(key: str) -> bool:
    """A query key whose value is a secret: one of its words is (api_key, X-Amz-Signature, accessToken)."""
    words = _CAMEL.sub(r"\1_\2", unquote(key)).lower()
    return words in _SECRET_WORDS or any(w in _SECRET_WORDS for w in _WORD_SPLIT.split(words))


def _redact_params(text: str) -> str:
    pieces = []
    for piece in text.split("&"):
        key, eq, _value = piece.partition("=")
        pieces.append(f"{key}=***" if eq and secret_param(key) else piece)
    return "&".join(pieces)


def redact(url: str) -> str:
    """Mask userinfo and secret-looking query (and fragment) values so a URL is safe to show; never raises."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***:***@" + netloc.rpartition("@")[2]
    query = _redact_params(parts.query) if parts.query else ""
    fragment = _redact_params(parts.fragment) if "=" in parts.fragment else parts.fragment  # #access_token=
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact_text(text: str) -> str:
    """`redact` every URL in free text (an error message, a log value), and any secret-looking query
    parameter left without its URL; never raises. The one redaction for logs, storage and pages."""
    def one_url(m: re.Match[str]) -> str:
        url = m.group(0)
        tail = len(url) - len(url.rstrip(_TRAILING))
        return redact(url[:len(url) - tail]) + url[len(url) - tail:] if tail else redact(url)

    def one_param(m: re.Match[str]) -> str:
        if not secret_param(m.group(1)):
            return m.group(0)
        value = m.group(2)
        return f"{m.group(1)}=***{value[len(value.rstrip(_TRAILING)):]}"

    text = str(text)
    if "://" in text:
        text = _URL_IN_TEXT.sub(one_url, text)
    return _PARAM_IN_TEXT.sub(one_param, text) if "=" in text else text


def registrable_domain(host: str) -> str:
    """The site a host belongs to (bbc.co.uk for news.bbc.co.uk), from a short suffix list."""
    host = host.lower().rstrip(".").removeprefix("www.")
    if host.startswith("["):
        return host
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    labels = host.split(".")
    if len(labels) >= 3 and ".".join(labels[-2:]) in MULTI_LABEL_SUFFIXES:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def same_site(a: str, b: str) -> bool:
    """True when two canonical URLs are on the same registrable domain."""
    return registrable_domain(urlsplit(a).hostname or "") == registrable_domain(urlsplit(b).hostname or "")


def choose_canonical(fetched_url: str, rel_canonical: str | None) -> str:
    """The canonical URL of a fetched page: rel=canonical when trustworthy, else the fetched URL."""
    fetched = canonicalize(fetched_url)
    if not rel_canonical or not rel_canonical.strip():
        return fetched
    try:
        rel = canonicalize(rel_canonical, base=fetched)
    except BadURL:
        return fetched
    # A canonical on another site is either syndication or an attack; we keep
    # our own URL so one publisher cannot claim another's pages.
    if not same_site(fetched, rel):
        return fetched
    # CMS templates that put the homepage in every page's rel=canonical would
    # otherwise collapse every article into one story.
    rel_parts, fetched_parts = urlsplit(rel), urlsplit(fetched)
    if rel_parts.path == "/" and not rel_parts.query and fetched_parts.path != "/":
        return fetched
    return rel


def _canonical_host(host: str) -> str:
    host = host.rstrip(".")
    if not host:
        raise BadURL("URL has no host")
    if ":" in host:  # IPv6 literal; urlsplit already removed the brackets
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError as exc:
            raise BadURL(f"bad IPv6 host: {host}") from exc
    if not host.isascii():
        host = _to_punycode(host)
    host = host.lower()
    if not _HOST_RE.match(host) or ".." in host:
        raise BadURL(f"bad host: {host}")
    return host


def _to_punycode(host: str) -> str:
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        # IDNA 2008 refuses some names browsers still open (emoji, symbols);
        # the stdlib IDNA 2003 codec accepts most of them.
        try:
            return host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise BadURL(f"bad international host: {host!r}") from exc


def _requote(text: str, safe: frozenset[str]) -> str:
    """Normalise percent-encoding: upper-case hex, decode unreserved, encode unsafe."""
    if "%" not in text and safe.issuperset(text):  # the common case, checked in C
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "%":
            if i + 2 < n and text[i + 1] in _HEX and text[i + 2] in _HEX:
                decoded = chr(int(text[i + 1 : i + 3], 16))
                out.append(decoded if decoded in _UNRESERVED else "%" + text[i + 1 : i + 3].upper())
                i += 3
                continue
            out.append("%25")  # a lone % cannot be sent as is
        elif ch in safe:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, on an already absolute path."""
    if "." not in path:
        return path
    output: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                output.append("")
        elif seg == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(seg)
    result = "/".join(output)
    return result if result.startswith("/") else "/" + result


def _query_key(piece: str) -> str:
    key = piece.partition("=")[0]
    return _requote(key, _QUERY_SAFE).lower()


def _is_tracking(piece: str) -> bool:
    key = _query_key(piece)
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def _canonical_query(query: str) -> str:
    pieces = [_requote(p, _QUERY_SAFE) for p in query.split("&") if p]
    kept = [p for p in pieces if not _is_tracking(p)]
    # Sort by key only: a stable sort keeps repeated keys (a=2&a=1) in their
    # original order, which some servers depend on.
    kept.sort(key=lambda p: p.partition("=")[0])
    return "&".join(kept)


_AMP_VALUES = frozenset({"", "1", "true", "yes"})


def _is_amp_param(piece: str) -> bool:
    key, _eq, value = piece.partition("=")
    key, value = key.lower(), value.lower()
    return (key == "amp" and value in _AMP_VALUES) or (key == "outputtype" and value == "amp")


def _strip_amp_path(path: str) -> str:
    if path.endswith(".amp.html"):
        path = path[: -len(".amp.html")] + ".html"
    segments = path.split("/")
    # '/amp' as a suffix (WordPress AMP plugin) or as a segment (/amp/2024/...).
    kept = [s for s in segments if s.lower() != "amp"]
    if len(kept) == len(segments):
        return path
    out = "/".join(kept)
    return out if out.startswith("/") else "/" + out
