"""Alert settings as plain data: the ``[alerts]`` table, its checks, URLs with secrets masked.

An ``[alerts]`` table (in a device profile or the workspace's ``.devtrack/config.toml``) says
where to send notifications (Apprise URLs) and on which decisions. It is policy: it never
enters a profile's snapshot or hash, so adding a Slack URL never makes runs incomparable,
and a URL (which often carries a token) is never stored with a run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devtrack.errors import UsageError

REGRESSION = "regression"  # a regression limit failed (latency slower, accuracy dropped)
BUDGET = "budget"  # an absolute budget failed (p90, memory, size, accuracy)
FAILED_RUN = "failed-run"  # a measurement failed (crash, timeout, memory cap, ...)
DEPLOY = "deploy"
ROLLBACK = "rollback"
ALL = "all"  # every decision, also a passing check or a clean bench
EVENTS = (REGRESSION, BUDGET, FAILED_RUN, DEPLOY, ROLLBACK)
ON_VALUES = (*EVENTS, ALL)
DEFAULT_ON = EVENTS  # everything significant; a passing check stays quiet
DEFAULT_TIMEOUT_S = 5.0  # per delivery attempt, whatever the target does
MAX_TIMEOUT_S = 60.0
_KEYS = ("urls", "on", "timeout_s")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
# Query parameters of Apprise URLs that are settings, not secrets.
_PLAIN_QUERY_KEYS = frozenset({
    "format", "overflow", "method", "cto", "rto", "verify", "retry", "wait", "image",
    "footer", "mode", "priority", "tags", "emojis", "optional", "lang", "tz",
})
_SHORT_SEGMENT = 4  # a path segment this short ("hook", "api", "v1") is kept as it is
_HOSTNAME = re.compile(r"^(localhost|\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]"
                       r"|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$")
MASK = "****"


@dataclass(frozen=True)
class AlertSettings:
    """Where to send notifications and on which decisions."""

    urls: tuple[str, ...] = ()
    on: tuple[str, ...] = DEFAULT_ON  # values of ON_VALUES
    timeout_s: float = DEFAULT_TIMEOUT_S

    def wants(self, events: Iterable[str]) -> bool:
        """Whether a decision that found ``events`` (empty: nothing significant) is sent."""
        return ALL in self.on or any(e in self.on for e in events)

    def to_dict(self) -> dict[str, Any]:
        """For printing: every URL masked."""
        return {"urls": [mask_url(u) for u in self.urls], "on": list(self.on),
                "timeout_s": self.timeout_s}


def validate_alerts(data: Any, source: str, prefix: str = "alerts") -> AlertSettings:
    """Check an ``[alerts]`` table; one-line ``SOURCE: alerts.KEY: problem`` on the first error."""

    def fail(key: str, problem: str) -> UsageError:
        return UsageError(f"{source}: {prefix}.{key}: {problem}" if key
                          else f"{source}: {prefix}: {problem}")

    if not isinstance(data, Mapping):
        raise fail("", "expected a table ([alerts]) with urls = [...] and on = [...]")
    for key in data:
        if key not in _KEYS:
            raise fail(str(key), f"unknown key; valid keys: {', '.join(_KEYS)}")
    urls = data.get("urls", [])
    if not isinstance(urls, list):
        raise fail("urls", 'expected an array of Apprise URLs, e.g. urls = ["json://host/hook"]')
    for i, url in enumerate(urls):
        problem = url_problem(url)
        if problem:
            raise fail(f"urls[{i}]", problem)
    on = data.get("on", list(DEFAULT_ON))
    if not isinstance(on, list) or not on:
        raise fail("on", f"expected a non-empty array of: {', '.join(ON_VALUES)}")
    for i, value in enumerate(on):
        if value not in ON_VALUES:
            raise fail(f"on[{i}]", f"unknown value {_short(value)}; allowed: "
                                   f"{', '.join(ON_VALUES)}")
    timeout = data.get("timeout_s", DEFAULT_TIMEOUT_S)
    if (isinstance(timeout, bool) or not isinstance(timeout, int | float)
            or not math.isfinite(timeout) or not 0 < timeout <= MAX_TIMEOUT_S):
        raise fail("timeout_s", f"expected seconds, more than 0 and at most {MAX_TIMEOUT_S:g}, "
                                f"got {_short(timeout)}")
    return AlertSettings(tuple(dict.fromkeys(urls)), tuple(dict.fromkeys(on)), float(timeout))


def url_problem(url: Any) -> str | None:
    """Why ``url`` is not an Apprise URL devtrack can use (None when it looks like one).

    Only the shape is checked here (``scheme://target``); whether Apprise knows the scheme
    is learnt when a message is sent, so checking costs no import of Apprise.
    """
    if not isinstance(url, str):
        return f"expected a URL string, got {_short(url)}"
    if not url or any(c.isspace() or ord(c) < 32 for c in url):
        return "not a URL: empty, or contains spaces or control characters"
    scheme, sep, rest = url.partition("://")
    if not sep or not _SCHEME.match(scheme):
        return (f"not an Apprise URL {mask_url(url)!r}: expected SCHEME://..., e.g. "
                "json://host/path, slack://..., mailto://...")
    if not rest.strip("/"):
        return f"{scheme}:// names no target"
    return None


def check_url(url: str, what: str) -> str:
    """``url`` unchanged, or UsageError naming ``what`` (e.g. ``--notify``)."""
    problem = url_problem(url)
    if problem:
        raise UsageError(f"{what}: {problem}")
    return url


def mask_url(url: str) -> str:
    """``url`` with anything that may be a secret replaced by ``****``.

    Kept: the scheme, a host that reads as a host name or address, the port, path segments
    of up to four characters, and the values of known setting parameters. Masked: user
    names, passwords, other hosts (``slack://TOKEN/…``, ``ntfy://topic``), longer path
    segments (webhook tokens, ntfy topics) down to their first two characters when long,
    other query values; a fragment is dropped. What stays tells targets apart.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return MASK
    try:
        parts = urlsplit(f"x://{rest}")
        port = parts.port
    except ValueError:
        return f"{scheme}://{MASK}"
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    host = hostport.rsplit(":", 1)[0] if port is not None else hostport
    out = f"{scheme}://"
    if at:
        out += MASK + ("" if ":" not in userinfo else f":{MASK}") + "@"
    out += host if _HOSTNAME.match(host) else _token(host)
    if port is not None:
        out += f":{port}"
    segments = parts.path.split("/")
    out += "/".join(s if len(s) <= _SHORT_SEGMENT else _token(s) for s in segments)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        out += "?" + "&".join(f"{k}={v if k.lower() in _PLAIN_QUERY_KEYS else MASK}"
                              for k, v in pairs)
    return out


def mask_secrets(text: str, urls: Iterable[str]) -> str:
    """``text`` with every secret-looking part of each of ``urls`` masked (an error message
    that quotes a URL or its token)."""
    for url in urls:
        text = text.replace(url, mask_url(url))
        for secret in _secret_parts(url):
            text = text.replace(secret, MASK)
    return text


def _secret_parts(url: str) -> list[str]:
    """The pieces of ``url`` that :func:`mask_url` hides, longest first."""
    _, _, rest = url.partition("://")
    try:
        parts = urlsplit(f"x://{rest}")
    except ValueError:
        return [rest] if rest else []
    found = []
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at:
        found += [p for p in userinfo.split(":") if p]
    host = hostport.rsplit(":", 1)[0] if ":" in hostport and "]" not in hostport else hostport
    if host and not _HOSTNAME.match(host):
        found.append(host)
    found += [s for s in parts.path.split("/") if len(s) > _SHORT_SEGMENT]
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True)
              if v and k.lower() not in _PLAIN_QUERY_KEYS]
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


def _token(text: str) -> str:
    return (text[:2] + MASK) if len(text) > 8 else MASK


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
