"""Deliver one message to Apprise URLs, each in its own thread, all bounded by one deadline.

Whatever a target does (refuses, answers an error, accepts the connection and never
answers), :func:`deliver` returns within about ``timeout_s`` with one :class:`Attempt` per
URL; it never raises for a delivery problem. Apprise is imported here, on the first
delivery, never when devtrack starts (it costs ~0.3 s to import and ~0.4 s more to load
its plugins).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from devtrack.core.alerts import mask_secrets, mask_url

_GRACE_S = 0.5  # on top of the socket timeouts, for Apprise's own work around them
_MAX_ERROR = 300


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt to one target (its URL masked)."""

    target: str
    delivered: bool
    error: str | None
    at: str  # UTC, ISO 8601
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "delivered": self.delivered, "error": self.error,
                "at": self.at, "seconds": round(self.seconds, 3)}


def _apprise() -> Any:
    """Import Apprise (its log lines stay inside it: a failure is reported once, by devtrack,
    as a warning, with the reason taken from the result)."""
    import apprise

    logging.getLogger("apprise").propagate = False
    return apprise


def with_timeouts(url: str, timeout_s: float) -> str:
    """``url`` with Apprise's connect and read timeouts (``cto``, ``rto``) set to
    ``timeout_s`` unless the URL sets its own."""
    query = url.partition("?")[2]
    keys = {pair.partition("=")[0].lower() for pair in query.split("&") if pair}
    extra = [f"{k}={timeout_s:g}" for k in ("cto", "rto") if k not in keys]
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)


def deliver(urls: Sequence[str], title: str, body: str, level: str,
            timeout_s: float) -> list[Attempt]:
    """Send ``title`` and ``body`` (Apprise type ``level``) to each of ``urls`` at once;
    wait at most ``timeout_s`` (plus a small grace) in all."""
    if not urls:
        return []
    try:
        apprise = _apprise()
    except ImportError as exc:
        at = _now()
        return [Attempt(mask_url(u), False, f"Apprise is not installed ({exc})", at, 0.0)
                for u in urls]
    results: dict[int, Attempt] = {}
    senders: dict[int, Any] = {}
    for index, url in enumerate(urls):  # parsing only, no network: before the clock starts
        sender = apprise.Apprise(asset=apprise.AppriseAsset(async_mode=False))
        try:
            added = sender.add(with_timeouts(url, timeout_s))
        except Exception as exc:  # a plugin that raises on a URL it should refuse
            added = False
            problem = mask_secrets(f"{type(exc).__name__}: {exc}", [url])[:_MAX_ERROR]
        else:
            problem = "Apprise cannot use this URL (unknown scheme, or parts missing)"
        if added:
            senders[index] = sender
        else:
            results[index] = Attempt(mask_url(url), False, problem, _now(), 0.0)
    threads = []
    started = time.monotonic()
    at = _now()
    for index, sender in senders.items():
        thread = threading.Thread(
            target=_send_one,
            args=(sender, index, urls[index], title, body, level, timeout_s, results),
            name=f"devtrack-notify-{index}", daemon=True)  # a hung target cannot hold exit
        thread.start()
        threads.append(thread)
    deadline = started + timeout_s + _GRACE_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    attempts = []
    for index, url in enumerate(urls):
        attempt = results.get(index)
        if attempt is None:
            attempt = Attempt(mask_url(url), False, _timed_out(timeout_s), at,
                              time.monotonic() - started)
        attempts.append(attempt)
    return attempts


def _send_one(sender: Any, index: int, url: str, title: str, body: str, level: str,
              timeout_s: float, results: dict[int, Attempt]) -> None:
    at, started = _now(), time.monotonic()
    delivered, error = False, None
    try:
        result = sender.notify(body=body, title=title, notify_type=level)
        delivered = bool(result)
        if not delivered and time.monotonic() - started >= timeout_s * 0.95:
            # Apprise reports its read timeout as a bare "connection error"
            error = _timed_out(timeout_s)
        elif not delivered:
            error = "; ".join(dict.fromkeys(_warnings(result))) or "not delivered"
    except Exception as exc:  # a plugin bug must not take the command down
        error = f"{type(exc).__name__}: {exc}"
    if error is not None:
        error = mask_secrets(error, [url])[:_MAX_ERROR]
    results[index] = Attempt(mask_url(url), delivered, error, at, time.monotonic() - started)


def _timed_out(timeout_s: float) -> str:
    return f"no answer within {timeout_s:g} s (timed out)"


def _warnings(result: Any) -> list[str]:
    """The warnings Apprise logged for a failed notify (Apprise 2 returns them with the
    result; older versions return a bare False)."""
    logs = getattr(result, "logs", None)
    if logs is None:
        return []
    return [str(e.message) for e in logs() if str(e.level) in ("WARNING", "ERROR", "CRITICAL")]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
