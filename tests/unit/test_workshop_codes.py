"""The workshop's secrets (playground/workshops/codes.py): join codes people can read off a
projector, PINs stored hashed, and a learner's session key sealed with the site's secret key."""

from __future__ import annotations

import secrets

import pytest

from playground.workshops import codes

KEY = "the site's secret key"


def test_the_join_code_alphabet_has_no_character_people_confuse() -> None:
    assert not set("0O1IL") & set(codes.CODE_ALPHABET)
    assert len(set(codes.CODE_ALPHABET)) == len(codes.CODE_ALPHABET) == 31


def test_a_new_code_is_six_characters_of_the_alphabet_and_codes_differ() -> None:
    made = {codes.new_code() for _ in range(200)}
    assert all(len(code) == 6 and set(code) <= set(codes.CODE_ALPHABET) for code in made)
    assert len(made) > 190  # 31**6 codes: repeats among 200 are all but impossible


def test_a_code_is_read_whatever_its_case_spaces_and_dashes() -> None:
    assert codes.normalise_code(" ab3-d ef ") == "AB3DEF"
    assert codes.is_code(codes.normalise_code("ab3-def"))


def test_a_code_with_an_ambiguous_character_or_the_wrong_length_is_no_code() -> None:
    assert not codes.is_code("AB0DEF")
    assert not codes.is_code("ABIDEF")
    assert not codes.is_code("ABCDE")
    assert not codes.is_code("ABCDEFG")


def test_a_pin_is_four_digits_and_stored_only_as_a_hash() -> None:
    pins = {codes.new_pin() for _ in range(100)}
    assert all(len(pin) == 4 and pin.isdigit() for pin in pins)
    stored = codes.hash_pin("0427", KEY)
    assert "0427" not in stored
    assert codes.hash_pin("0427", KEY) != stored  # salted


def test_a_pin_hash_is_useless_without_the_sites_secret_key() -> None:
    assert not codes.pin_matches("0427", codes.hash_pin("0427", KEY), "another secret key")


def test_a_pin_stored_by_djangos_password_hasher_before_still_matches() -> None:
    from django.contrib.auth.hashers import make_password

    stored = make_password("0427")  # PBKDF2, as joins stored PINs before
    assert codes.pin_matches("0427", stored, KEY) and not codes.pin_matches("0428", stored, KEY)


@pytest.mark.parametrize(
    ("typed", "matches"),
    [("0427", True), (" 0427 ", True), ("0428", False), ("427", False), ("04270", False), ("", False), ("04a7", False)],
)
def test_only_the_right_pin_matches_its_hash(typed: str, matches: bool) -> None:
    assert codes.pin_matches(typed, codes.hash_pin("0427", KEY), KEY) is matches


def test_a_sealed_session_key_opens_only_with_the_same_secret_key_and_session() -> None:
    key = secrets.token_urlsafe(32)
    sealed = codes.seal_key(key, "site-secret", "a" * 32)
    assert key not in sealed
    assert codes.open_key(sealed, "site-secret", "a" * 32) == key
    assert codes.open_key(sealed, "other-secret", "a" * 32) != key
    assert codes.open_key(sealed, "site-secret", "b" * 32) != key
