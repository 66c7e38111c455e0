"""Reading a PDF back as a reader would: its pages as PNG images and its text (poppler-utils)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def pages_as_png(pdf: Path, directory: Path, *, dpi: int = 60) -> list[Path]:
    """Every page rendered by pdftoppm, in order."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-png", "-r", str(dpi), str(pdf), str(directory / "page")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return sorted(directory.glob("page*.png"))


def text(pdf: Path, page: int | None = None) -> str:
    """The PDF's text (one page's, if given) in reading order, by pdftotext."""
    pages = [] if page is None else ["-f", str(page), "-l", str(page)]
    done = subprocess.run(
        ["pdftotext", "-layout", *pages, str(pdf), "-"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return done.stdout.decode("utf-8")


def inked_share(pdf: Path, page: int, *, dpi: int = 30) -> float:
    """The share of a page's pixels that are not white: zero for a blank page."""
    done = subprocess.run(
        ["pdftoppm", "-gray", "-r", str(dpi), "-f", str(page), "-l", str(page), str(pdf)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    # binary PGM: "P5", width, height, maxval, one whitespace byte each, then the pixels
    magic, width, height, _maxval, pixels = done.stdout.split(maxsplit=4)
    assert magic == b"P5"
    size = int(width) * int(height)
    return sum(1 for value in pixels[:size] if value < 250) / size
