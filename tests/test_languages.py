"""Language names for ISO 639-3 codes, and matching what users type to a model's labels."""

from __future__ import annotations

import pytest
from modelfactory import TEST_LABELS

from streamlid.errors import ConfigError
from streamlid.languages import UNKNOWN_NAME, language_name, match_languages


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("fra", "French"),
        ("eng", "English"),
        ("deu", "German"),
        ("spa", "Spanish"),
        ("haw", "Hawaiian"),
        ("yue", "Cantonese"),
    ],
)
def test_names_for_codes(code, name):
    assert language_name(code) == name


def test_codes_without_a_two_letter_form_still_get_names():
    assert "Kurdish" in language_name("ckb")
    assert "Chinese" in language_name("cmn")


@pytest.mark.parametrize("code", ["qqq", "zzz", "x1", "", "not a code"])
def test_unknown_code_falls_back_to_the_code(code):
    assert language_name(code) == code


def test_no_code_means_unknown():
    assert language_name(None) == UNKNOWN_NAME


def test_matching_keeps_the_requested_order_and_drops_repeats():
    assert match_languages(["fra", "eng", "fr"], TEST_LABELS) == [1, 0]


def test_two_letter_codes_match_three_letter_labels():
    assert match_languages(["en", "de", "es"], TEST_LABELS) == [0, 2, 3]


def test_bibliographic_codes_match_too():
    assert match_languages(["ger", "fre"], TEST_LABELS) == [2, 1]


def test_unknown_code_error_names_it_and_suggests_labels():
    with pytest.raises(ConfigError) as caught:
        match_languages(["eng", "frq"], TEST_LABELS)
    message = str(caught.value)
    assert "'frq'" in message
    suggestions = message.split("close matches:")[1]
    assert "fra" in suggestions


def test_unknown_code_without_close_match_points_at_the_labels():
    with pytest.raises(ConfigError, match="see the model's labels"):
        match_languages(["eng", "qqq"], TEST_LABELS)
