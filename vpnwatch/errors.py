"""The one error users see for bad input, and how pydantic's errors become it.

Every message names where the problem is (file, target, field) and what is wrong, on one line.
It never repeats the offending value: the value may be a private key or a password. File names
and target names in it are shown with control characters escaped (see :mod:`vpnwatch.printable`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vpnwatch.printable import printable

if TYPE_CHECKING:  # pydantic costs 50 ms to import: the command line needs this module without it
    from pydantic import ValidationError


class ConfigError(Exception):
    """Bad input from a file or the command line: printed as one line, exit status 2."""

    def __init__(
        self, message: str, *, source: str | Path | None = None, where: str | None = None
    ) -> None:
        self.source = str(source) if source is not None else None
        self.where = where
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [part for part in (self.source, self.where) if part]
        return printable(": ".join([*parts, self.message]))


def describe_validation_error(exc: ValidationError) -> str:
    """Every problem pydantic found, as ``field.path: message; other.field: message``.

    All of them, so that a file with two mistakes is fixed in one round; never the input value.
    """
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if location else message)
    return "; ".join(problems)
