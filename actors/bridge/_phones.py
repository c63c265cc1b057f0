"""The forms in which a customer's phone number may be stored in Intercom.

The channels give E.164 (``+14155550123``), and the bridge stores that, but a contact created
by a teammate, an import or Intercom's Messenger may hold the number as typed: national
(``(415) 555-0123``, ``07911 123456``), spaced international (``+1 415-555-0123``) or bare
digits. Intercom's contact search compares the stored text exactly, so the bridge searches
every form at once (one ``OR`` query). The forms come from ``phonenumbers``, a maintained port
of Google's libphonenumber: its national formats (trunk prefixes, grouping) per country are
data, kept up to date upstream, which no hand-written rule here would match.
"""

from __future__ import annotations

import phonenumbers

__all__ = ["MAX_PHONE_FORMS", "phone_forms"]

MAX_PHONE_FORMS = 8
"""At most this many forms are searched (Intercom takes up to 15 filters in one OR)."""


def phone_forms(e164: str) -> list[str]:
    """``e164`` first, then the other forms of the number, without repeats. A number
    ``phonenumbers`` cannot parse has only its own form."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return [e164]
    fmt = phonenumbers.PhoneNumberFormat
    national = phonenumbers.format_number(number, fmt.NATIONAL)
    spaced = phonenumbers.format_number(number, fmt.INTERNATIONAL)
    forms = [
        e164,
        phonenumbers.format_number(number, fmt.E164),
        spaced,  # +1 415-555-0123
        spaced.replace("-", " "),  # +1 415 555 0123
        national,  # (415) 555-0123, 07911 123456
        "".join(c for c in national if c.isdigit()),  # 4155550123, 07911123456
        phonenumbers.national_significant_number(number),  # 4155550123, 7911123456
        e164.lstrip("+"),  # 14155550123
    ]
    return list(dict.fromkeys(f for f in forms if f))[:MAX_PHONE_FORMS]
