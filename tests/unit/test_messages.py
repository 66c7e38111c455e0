"""The message catalogues: a translation is a file with the English keys and placeholders."""

from __future__ import annotations

import string
from typing import Any

import pytest

from vpnwatch import cli
from vpnwatch.messages import DEFAULT_LANGUAGE, languages, load, read_catalogue


def _placeholders(template: Any) -> set[str]:
    texts = template.values() if isinstance(template, dict) else [template]
    return {name for text in texts for _, name, _, _ in string.Formatter().parse(text) if name}


def test_english_and_urdu_are_there() -> None:
    assert {"en", "ur"} <= set(languages())


@pytest.mark.parametrize("language", [lang for lang in languages() if lang != DEFAULT_LANGUAGE])
def test_a_translation_has_only_english_keys_with_the_same_placeholders(language: str) -> None:
    english, translated = read_catalogue(DEFAULT_LANGUAGE), read_catalogue(language)
    assert set(translated) <= set(english), "keys English does not have"
    for key, template in translated.items():
        assert _placeholders(template) == _placeholders(english[key]), key
        if isinstance(english[key], dict):
            assert set(template) == {"one", "other"}, key


def test_urdu_translates_every_key() -> None:
    assert set(read_catalogue("ur")) == set(read_catalogue(DEFAULT_LANGUAGE))


def test_plural_forms_follow_the_count() -> None:
    english = load("en")
    assert english("status.days_ago", count=1) == "1 day ago"
    assert english("status.days_ago", count=90) == "90 days ago"


def test_urdu_is_written_right_to_left() -> None:
    assert (load("ur").direction, load("en").direction) == ("rtl", "ltr")


def test_an_unknown_language_names_the_ones_there_are() -> None:
    with pytest.raises(ValueError, match=r"'xx' has no message catalogue \(available: en, ur\)"):
        load("xx")


def test_the_cli_refuses_an_unknown_language(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["status", "--prometheus", "http://127.0.0.1:1", "--lang", "xx"])
    assert exit_info.value.code == 2
    assert (
        "argument --lang: invalid choice: 'xx' (choose from 'en', 'ur')" in capsys.readouterr().err
    )
