"""Subscription URLs: lists of proxy links fetched over HTTP(S) and refreshed on a schedule.

A provider's subscription is a URL serving a list of links (see :mod:`vpnwatch.importers.links`).
The monitor fetches it when its configuration loads and again whenever the list's ``refresh``
interval has passed (the monitor reloads its configuration on that schedule). A fetch can fail —
the provider's web server is down, a censor blocks it, a captive portal answers HTML — and that
is a failure of the subscription, not of the proxies in it: it is recorded here (and exported as
``vpnwatch_subscription_*``), and the last list that was fetched and read keeps being probed.
Only a subscription never fetched successfully is a configuration error.

A subscription URL usually carries the user's token, so it is never shown: the subscription is
known by its entry's ``name``, or by the URL's host.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from vpnwatch.errors import ConfigError
from vpnwatch.importers.imported import Imported

#: The largest subscription read: thousands of links fit in far less.
MAX_BYTES = 4 << 20
#: How long one fetch may take.
FETCH_TIMEOUT = 20.0
USER_AGENT = "vpnwatch (subscription refresh)"

Fetch = Callable[[str, float], bytes]


def fetch_url(url: str, timeout: float) -> bytes:
    """GET ``url``; OSError (urllib's errors are OSErrors) for anything but a 2xx answer."""
    import urllib.request  # noqa: PLC0415 - http.client and email cost every start-up 10 ms

    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - http(s) only
        body: bytes = answer.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise OSError(f"the answer is larger than {MAX_BYTES} bytes")
    return body


def is_subscription_url(text: str) -> bool:
    return text.startswith(("https://", "http://"))


def subscription_name(url: str, name: str | None) -> str:
    """What a subscription is called in metrics and messages: never its URL, which holds a token."""
    return name or urlsplit(url).hostname or "subscription"


@dataclass
class SubscriptionState:
    """What is known of one subscription URL, kept across reloads."""

    name: str
    imported: Imported | None = None
    #: Wall-clock times of the last attempt and the last success.
    last_attempt: float | None = None
    last_success: float | None = None
    error: str | None = None
    failures: int = 0
    refresh: float = field(default=3600.0)

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        targets = len(self.imported.targets) if self.imported is not None else 0
        if self.ok:
            return f"subscription {self.name}: fetched, {targets} targets"
        kept = f"; probing the last good list ({targets} targets)" if self.imported else ""
        return f"subscription {self.name}: fetch failed: {self.error}{kept}"


class Subscriptions:
    """Every subscription URL's state; the process keeps one, so reloads see the last good lists."""

    def __init__(self, fetch: Fetch = fetch_url, clock: Callable[[], float] = time.time) -> None:
        self._fetch = fetch
        self._clock = clock
        self._states: dict[str, SubscriptionState] = {}
        self._lock = threading.Lock()  # reloads run in a worker thread

    def load(self, url: str, name: str | None, refresh: float, where: str) -> SubscriptionState:
        """The subscription's state after fetching it if it is due; ConfigError if never read."""
        with self._lock:
            label = subscription_name(url, name)
            state = self._states.setdefault(url, SubscriptionState(label))
            state.name, state.refresh = label, refresh
            now = self._clock()
            if (
                state.imported is None
                or state.last_attempt is None
                or (now - state.last_attempt >= refresh)
            ):
                self._refresh(url, state, now)
            if state.imported is None:
                raise ConfigError(f"subscription {label}: {state.error}", where=where)
            return state

    def _refresh(self, url: str, state: SubscriptionState, now: float) -> None:
        from vpnwatch.importers.links import parse_link_list  # noqa: PLC0415 - loaded when fetched

        state.last_attempt = now
        try:
            body = self._fetch(url, FETCH_TIMEOUT)
            text = body.decode("utf-8")
            imported = parse_link_list(text, f"subscription {state.name}", state.name)
        except UnicodeDecodeError:
            self._failed(state, "the answer is not UTF-8 text")
        except ConfigError as exc:
            self._failed(state, f"the answer is not a list of links ({exc.message})")
        except (OSError, ValueError) as exc:
            self._failed(state, _reason(exc))
        else:
            state.imported, state.error, state.last_success = imported, None, now

    @staticmethod
    def _failed(state: SubscriptionState, reason: str) -> None:
        state.error = reason
        state.failures += 1


def _reason(exc: Exception) -> str:
    """One line for a failed fetch that never repeats the URL (urllib's messages may)."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return f"HTTP {code}"
    reason = getattr(exc, "reason", None)
    text = str(reason if reason is not None else exc) or type(exc).__name__
    return text.splitlines()[0][:200]


#: The monitor's subscriptions, shared by every load of its configuration.
SUBSCRIPTIONS = Subscriptions()
