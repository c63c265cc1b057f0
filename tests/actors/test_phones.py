"""The forms of a phone number searched in Intercom: E.164 first, then the national, spaced
and bare-digit forms a teammate or an import may have stored."""

from __future__ import annotations

from actors.bridge import phone_forms


def test_a_us_number_in_every_form() -> None:
    forms = phone_forms("+14155550123")
    assert forms[0] == "+14155550123"
    for stored in ("(415) 555-0123", "+1 415-555-0123", "+1 415 555 0123", "4155550123",
                   "14155550123"):  # fmt: skip
        assert stored in forms
    assert len(forms) == len(set(forms)) <= 8


def test_a_uk_number_keeps_its_trunk_prefix_in_the_national_form() -> None:
    forms = phone_forms("+447911123456")
    assert {"07911 123456", "07911123456", "+44 7911 123456"} <= set(forms)


def test_what_cannot_be_parsed_is_searched_as_it_is() -> None:
    assert phone_forms("+999") == ["+999"]
