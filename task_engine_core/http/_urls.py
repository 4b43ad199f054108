"""URLs in messages: secrets masked (password, secret-looking query values), paths shortened for one-line reasons."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from .._secrets import MASK, SENSITIVE_WORDS

__all__ = ["SECRET_QUERY_MARKERS", "mask_query_strings", "mask_url", "short_url"]

#: Query parameters whose values never appear in messages (matched as substrings, case-insensitively):
#: the sensitive words of context keys, plus short markers usual in URLs that would over-match key
#: names ("key", "auth", "sig", ...).
SECRET_QUERY_MARKERS = (*SENSITIVE_WORDS, "pwd", "key", "signature", "sig", "auth", "session")

_QUERY = re.compile(r"\?[^\s'\")]*")


def mask_url(url: str) -> str:
    """`url` with the password and the values of secret-looking query parameters replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    query = "&".join(
        f"{quote(name, safe='')}={MASK if _is_secret(name) else quote(value, safe='')}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def mask_query_strings(text: str) -> str:
    """`text` (e.g. a urllib3 message quoting the request line) with each `?query` masked as mask_url does."""
    return _QUERY.sub(lambda m: "?" + mask_url("http://x/?" + m.group(0)[1:]).split("?", 1)[1], text)


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in SECRET_QUERY_MARKERS)


def short_url(url: str) -> str:
    """The end of `url`'s path for one-line reasons: `.../runs/get`."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    if len(segments) > 2:
        return ".../" + "/".join(segments[-2:])
    return "/" + "/".join(segments)
