"""The words of the report and the status page, one catalogue file per language.

A translation is a file: ``<language>.toml`` beside this module, with the keys of ``en.toml``
(English, the default and the fallback for any key a translation lacks). Values are
``str.format`` templates; a value that depends on a count is a table with ``one`` and
``other`` forms, chosen by the ``count`` placeholder, which is the plural rule of English and
Urdu. ``[meta]`` holds the language's own name and its writing direction (``ltr``/``rtl``).

Nothing here formats dates or numbers: pages show times as digits (``2024-03-10 19:00 PKT``)
in the reader's zone (``--tz``), which every reader of these languages reads as is.
"""

from __future__ import annotations

import html
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

DEFAULT_LANGUAGE = "en"
Direction = Literal["ltr", "rtl"]


def languages() -> list[str]:
    """The languages that have a catalogue file, e.g. ``["en", "ur"]``."""
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(".toml")
    )


def read_catalogue(language: str) -> dict[str, Any]:
    """One language's file as ``{"status.title": ...}``, without falling back to English."""
    if language not in languages():
        raise ValueError(
            f"{language!r} has no message catalogue (available: {', '.join(languages())})"
        )
    text = resources.files(__name__).joinpath(f"{language}.toml").read_text(encoding="utf-8")
    return _flatten(tomllib.loads(text))


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"status": {"title": ...}}`` as ``{"status.title": ...}``; plural tables stay whole."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not {"one", "other"} >= value.keys():
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


@dataclass(frozen=True, slots=True)
class Catalogue:
    """``messages("status.title")``, ``messages("status.incidents", count=3)``."""

    language: str
    direction: Direction
    texts: Mapping[str, Any]
    fallback: Mapping[str, Any]

    def __call__(self, key: str, /, **values: Any) -> str:
        return self._template(key, values).format(**values)

    def ltr(self, text: str) -> str:
        """``text`` kept left-to-right inside a right-to-left sentence: times like
        ``2024-03-10 19:00 PKT`` and names like ``karachi-1`` would otherwise be reordered by
        the bidi algorithm. Wrapped in Unicode's LRI … PDI isolates; unchanged in ltr."""
        return f"\u2066{text}\u2069" if self.direction == "rtl" else text

    def markup(self, key: str, /, **fragments: str) -> str:
        """The message as HTML: its own text escaped, ``fragments`` put in as the markup given
        (escape any text in them first)."""
        return html.escape(self._template(key, fragments), quote=False).format(**fragments)

    def _template(self, key: str, values: Mapping[str, Any]) -> str:
        template = self.texts.get(key, self.fallback.get(key))
        if template is None:
            raise KeyError(f"no message {key!r} in the {DEFAULT_LANGUAGE} catalogue")
        if isinstance(template, dict):
            template = template["one" if values.get("count") == 1 else "other"]
        return str(template)


def load(language: str = DEFAULT_LANGUAGE) -> Catalogue:
    """The catalogue of ``language``; ValueError naming the available ones if it has none."""
    fallback = read_catalogue(DEFAULT_LANGUAGE)
    texts = fallback if language == DEFAULT_LANGUAGE else read_catalogue(language)
    direction = texts.get("meta.direction", "ltr")
    if direction not in ("ltr", "rtl"):
        raise ValueError(f"{language}.toml: meta.direction must be ltr or rtl")
    return Catalogue(language, direction, texts, fallback)
