"""Text from files, servers and Prometheus made safe to show on a terminal, in a log or a table.

Names and label values come from places vpnwatch does not control: a configuration someone sent,
a file name, a Prometheus that stores what any scraped exporter said. Written raw, a newline
forges a log line, an escape sequence rewrites the terminal, a bidirectional override reorders
what the reader sees. :func:`printable` writes every character Python does not call printable
(controls, format characters, line and paragraph separators, unassigned code points) as a
backslash escape, and leaves every letter, digit, mark, symbol and punctuation of any script as
it is, so that names in Urdu or Russian read as written.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with each non-printable character as ``\\n``, ``\\x1b``, ``\\u202e``, ...

    A backslash is doubled when anything was escaped, so that an escape in the output cannot be
    confused with text that looked like one.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text.replace("\\", "\\\\"))


def _escape(ch: str) -> str:
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def is_printable_name(text: str) -> bool:
    """Whether ``text`` is in the character set of names: printable, not blank at either end."""
    return text.isprintable() and text == text.strip()
