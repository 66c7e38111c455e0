"""``--match``: PromQL label matchers, parsed so the report can reuse them safely.

The report needs the matchers, not just the text: it puts them inside its own metric selectors,
and it keeps only the vantage-point matchers (``site``, ``instance``, ``job``) when it fetches a
site's control probes, so that ``--match '{protocol="wireguard"}'`` still sees the controls that
tell a blocked protocol from a site whose network is down.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

#: Labels naming where the probes ran; they also select that site's control probes.
VANTAGE_LABELS = frozenset({"site", "instance", "job"})

_LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
_STRING = r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
_MATCHER = re.compile(rf"\s*({_LABEL})\s*(=~|!~|!=|=)\s*({_STRING})\s*(,|$)")


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: str
    value: str

    def render(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value, ensure_ascii=False)}"


@dataclass(frozen=True, slots=True)
class Selector:
    """A conjunction of label matchers; empty selects everything."""

    matchers: tuple[Matcher, ...] = ()

    def render(self, metric: str, *extra: Matcher) -> str:
        """``metric{...}`` with these matchers and any extra ones, as PromQL text."""
        matchers = [*self.matchers, *extra]
        inside = ",".join(matcher.render() for matcher in matchers)
        return f"{metric}{{{inside}}}" if inside else metric

    def vantage_only(self) -> Selector:
        """The matchers that name where probes ran: they select that site's controls too."""
        return Selector(tuple(m for m in self.matchers if m.name in VANTAGE_LABELS))

    def __str__(self) -> str:
        return "{" + ",".join(matcher.render() for matcher in self.matchers) + "}"


def parse_selector(text: str) -> Selector:
    """``{site="karachi-1", protocol=~"wire.*"}``, braces optional; ValueError says what's wrong."""
    body = text.strip()
    if body.startswith("{") != body.endswith("}"):
        raise ValueError(f"{text!r} has unbalanced braces")
    body = body.removeprefix("{").removesuffix("}").strip()
    matchers: list[Matcher] = []
    position = 0
    while position < len(body):
        found = _MATCHER.match(body, position)
        if found is None:
            raise ValueError(
                f'{text!r} is not a list of label matchers like {{site="karachi-1"}}'
                f" (stopped at character {position + 1})"
            )
        name, op, quoted, _comma = found.groups()
        if name.startswith("__"):
            raise ValueError(
                f"{text!r}: {name} is not a label the report can match on (it chooses the"
                " metrics itself; labels starting with __ are Prometheus's own)"
            )
        matchers.append(Matcher(name, op, _unquote(quoted)))
        position = found.end()
    if matchers and all(_matches_empty(m) for m in matchers):
        raise ValueError(f"{text!r} would match every series: add a matcher on a non-empty value")
    return Selector(tuple(matchers))


def _unquote(quoted: str) -> str:
    inner = quoted[1:-1]
    if quoted[0] == "'":
        inner = inner.replace("\\'", "'").replace('"', '\\"')
    try:
        value: str = json.loads(f'"{inner}"')
    except json.JSONDecodeError:
        raise ValueError(f"{quoted} has an escape sequence PromQL would not accept") from None
    return value


def _matches_empty(matcher: Matcher) -> bool:
    """Prometheus rejects selectors whose every matcher accepts the empty string; so do we."""
    if matcher.op == "=":
        return matcher.value == ""
    if matcher.op == "!=":
        return matcher.value != ""
    try:
        accepts = re.fullmatch(matcher.value, "") is not None
    except re.error:
        raise ValueError(f"{matcher.name}{matcher.op}: not a valid regular expression") from None
    return accepts if matcher.op == "=~" else not accepts
