"""Logging set-up: readable lines for people, JSON lines for machines (``--log-format json``)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Literal

from vpnwatch.printable import printable

LogFormat = Literal["text", "json"]

#: Attributes every LogRecord has; anything else was passed in ``extra=`` and belongs in JSON.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the ``extra=`` fields as keys of their own."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL message``, one line per message: control characters in it are escaped.

    A name or a server's words with a newline or an escape sequence in it must not forge a
    line or rewrite the terminal; a traceback, added after the message, keeps its lines.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


def setup_logging(fmt: LogFormat = "text", level: str = "info") -> None:
    """Log to stderr in ``fmt`` from ``level`` (a name of the command line's ``--log-level``)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
