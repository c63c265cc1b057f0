"""Hypothesis strategies for hostile webhook input, by hazard family.

Structure-aware: a real-format payload (a recorded fixture, a builder's output, the Intercom
sandbox's notification) has a few of its fields replaced, deleted or added, with values from the
family's strategy; the result is serialized as the provider would send it (JSON with non-ASCII
escaped, so a lone surrogate travels as a ``\\ud800`` escape; or a form body) and then signed by
the test, so it gets past the signature check into parsing, validation and the journal.

Families (each a separate test, so a known open failure stays visible in its own test id):

    fields     ordinary hostile values: odd text, phone-like and id-like strings, ints and
               floats at the edges, timestamps, wrong types, containers
    surrogate  text carrying a lone surrogate (U+D800..U+DFFF)
    nul        text carrying NUL (U+0000)
    deep       nesting thousands to 100,000 levels deep (raw JSON bytes)
    huge       strings up to (and past) the body cap
    html       HTML edge cases in text (``<![CDATA[``, ``<!``, unterminated tags, ``"<a"`` * N)
    mixed      all of the above together
"""

from __future__ import annotations

import copy
import functools
import json
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "FAMILIES",
    "Raw",
    "encode_form",
    "encode_json",
    "hostile_text",
    "json_bodies",
    "mutated_form",
    "mutated_json",
    "values",
]

FAMILIES = ("fields", "surrogate", "nul", "deep", "huge", "html", "mixed")


@dataclass(frozen=True)
class Raw:
    """Bytes spliced verbatim into the serialized JSON (nesting too deep to build as objects)."""

    data: bytes


def deep_nesting(levels: int, kind: str) -> Raw:
    if kind == "list":
        return Raw(b"[" * levels + b"]" * levels)
    if kind == "object":
        return Raw(b'{"a":' * levels + b"1" + b"}" * levels)
    return Raw(b'[{"a":' * (levels // 2) + b"0" + b"}]" * (levels // 2))


LEVELS = st.one_of(
    st.sampled_from([1_000, 5_000, 20_000, 100_000]), st.integers(min_value=900, max_value=100_000)
)
deep = st.builds(deep_nesting, LEVELS, st.sampled_from(["list", "object", "mixed"]))

# Text without the hazards that have their own families.
plain_chars = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
plain_text = st.text(plain_chars, max_size=40)
surrogate_chars = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
HTML_PIECES = [
    "<![CDATA[", "]]>", "<![foo[bar]]>", "<!", "<!--", "-->", "<!DOCTYPE html>", "<?xml ?>",
    "<a", "<a href='", '<a href="x">', "</a>", "<p>", "</p>", "<br>", "<br/>", "<img src=x",
    "<script>", "</script>", "<style>", "<", ">", "&", "&amp;", "&lt;", "&#0;", "&#xD800;",
    "&#x110000;", "&#99999999999;", "&nbsp", "</", "<>", "< a>", "<p", "x",
]  # fmt: skip


def _splice(draw: st.DrawFn, base: str, hazard: str) -> str:
    at = draw(st.integers(0, len(base)))
    return base[:at] + hazard + base[at:]


@st.composite
def surrogate_text(draw: st.DrawFn) -> str:
    hazards = draw(st.lists(surrogate_chars, min_size=1, max_size=3))
    text = draw(plain_text)
    for hazard in hazards:
        text = _splice(draw, text, hazard)
    return text


@st.composite
def nul_text(draw: st.DrawFn) -> str:
    return _splice(draw, draw(plain_text), "\x00" * draw(st.integers(1, 3)))


@functools.cache
def huge_text(cap: int) -> st.SearchStrategy[str]:
    sizes = st.one_of(
        st.integers(min_value=cap // 4, max_value=cap + 100),
        st.sampled_from([cap - 300, cap - 100, cap, cap + 1]),
    )
    unit = st.sampled_from(["x", "é", "😀", "ab ", "<a", "\\"])
    return st.builds(lambda n, u: u * max(1, n // len(u.encode())), sizes, unit)


@functools.cache
def html_text(cap: int) -> st.SearchStrategy[str]:
    pieces = st.lists(st.sampled_from(HTML_PIECES), min_size=1, max_size=12).map("".join)
    repeated = st.builds(
        lambda piece, n: piece * n,
        st.sampled_from(["<a", "<!", "<![", "<p", "</", "&#", "<![CDATA["]),
        st.integers(min_value=1, max_value=max(1, cap // 3)),
    )
    return st.one_of(pieces, repeated)


@functools.cache
def hostile_text(family: str, cap: int) -> st.SearchStrategy[str]:
    """Text of one family (``fields`` draws plain hostile text)."""
    odd = st.sampled_from(
        ["", " ", "+", "+0", "00", "whatsapp:", "whatsapp:+", "\u202e", "\ufeff", "\U0010ffff",
         "\uff11\uff12\uff13", "0" * 64, "-1", "1e309", "NaN", "null", "%00", "\r\n", "\t",
         "../../etc"]  # deliberate-escape: path traversal as hostile input
    )  # fmt: skip
    phone = st.from_regex(r"\A\+?[0-9]{0,20}\Z")
    by_family: dict[str, st.SearchStrategy[str]] = {
        "fields": st.one_of(plain_text, odd, phone),
        "surrogate": surrogate_text(),
        "nul": nul_text(),
        "huge": huge_text(cap),
        "html": html_text(cap),
    }
    if family == "mixed":
        return st.one_of(*by_family.values())
    return by_family.get(family, by_family["fields"])


@functools.cache
def values(family: str, cap: int) -> st.SearchStrategy[Any]:
    """A JSON value to put in a field: mostly the family's text, sometimes other types."""
    text = hostile_text(family, cap)
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**63, 2**64, 9_999_999_999, 10**20]),
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(min_value=-(10**12), max_value=10**12).map(str),  # timestamps, ids as str
    )
    containers = st.one_of(
        st.lists(text, max_size=3), st.dictionaries(plain_text, text, max_size=3)
    )
    options: list[st.SearchStrategy[Any]] = [text, text, text, scalars, containers]
    if family in ("deep", "mixed"):
        options = [deep, deep, deep, *options]
    return st.one_of(*options)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:  # noqa: ANN401
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


@st.composite
def mutated_json(
    draw: st.DrawFn, templates: list[dict[str, Any]], family: str, cap: int
) -> dict[str, Any]:
    """A template with one to three fields replaced, deleted, or added (family values)."""
    doc: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(templates)))
    field_values = values(family, cap)
    keys = st.one_of(plain_text, hostile_text(family, 64)) if family != "huge" else plain_text
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        if not paths:
            break
        path = paths[draw(st.integers(0, len(paths) - 1))]
        parent: Any = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(field_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(keys)] = draw(field_values)
        elif isinstance(parent[path[-1]], list):
            parent[path[-1]].append(draw(field_values))
        else:
            parent[path[-1]] = draw(field_values)
    return doc


def encode_json(doc: Any) -> bytes:  # noqa: ANN401
    """Compact JSON with non-ASCII escaped (``\\ud800`` for a lone surrogate), with every
    :class:`Raw` spliced in verbatim."""
    raws: list[bytes] = []

    def default(value: object) -> object:
        if isinstance(value, Raw):
            raws.append(value.data)
            return f"__raw_{len(raws) - 1}__"
        raise TypeError(type(value).__name__)

    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=True, default=default).encode()
    for index, raw in enumerate(raws):
        body = body.replace(f'"__raw_{index}__"'.encode(), raw, 1)
    return body


@functools.cache
def json_bodies(family: str, cap: int) -> st.SearchStrategy[bytes]:
    """Whole JSON documents of the family (not payload-shaped), and deep nesting as the body."""
    value = values(family, cap)
    docs = st.recursive(
        value,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(plain_text, inner, max_size=3),
        max_leaves=8,
    )
    whole = docs.map(encode_json)
    if family in ("deep", "mixed"):
        return st.one_of(whole, deep.map(lambda raw: raw.data))
    return whole


class _Quoted(dict[int, str]):
    """``str.translate`` table of ``urllib.parse.quote(..., safe="")``, filled on first use; a
    lone surrogate goes out as its (invalid) UTF-8 bytes, as a broken client would send it."""

    SAFE = frozenset(string.ascii_letters + string.digits + "_.-~")

    def __missing__(self, code: int) -> str:
        char = chr(code)
        quoted = char if char in self.SAFE else char.encode("utf-8", "surrogatepass").hex("%")
        self[code] = quoted = quoted if char in self.SAFE else "%" + quoted.upper()
        return quoted


_QUOTED = _Quoted()


def _form_quote(text: str) -> str:
    """Percent-encoded as ``urllib.parse.quote(text, safe="")`` but fast: the huge and html
    families quote hundreds of kilobytes per case, mostly one short unit repeated."""
    if len(text) > 1024:
        for width in range(1, 10):
            times, rest = divmod(len(text), width)
            if not rest and text[:width] * times == text:
                return text[:width].translate(_QUOTED) * times
    return text.translate(_QUOTED)


def encode_form(pairs: list[tuple[str, str]]) -> bytes:
    """``application/x-www-form-urlencoded``; a lone surrogate goes out as its (invalid) UTF-8
    bytes, as a broken client would send it."""
    return "&".join(f"{_form_quote(k)}={_form_quote(v)}" for k, v in pairs).encode()


@st.composite
def mutated_form(
    draw: st.DrawFn, templates: list[list[tuple[str, str]]], family: str, cap: int
) -> list[tuple[str, str]]:
    """Form pairs with one to three values replaced, pairs deleted, or pairs added."""
    pairs = list(draw(st.sampled_from(templates)))
    text = hostile_text(family, cap)
    as_text: Callable[[Any], str] = str
    texts = st.one_of(text, values("fields", cap).map(as_text)) if family == "fields" else text
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
        if action == "add" or not pairs:
            name = draw(st.one_of(st.sampled_from([k for k, _ in pairs] or ["Body"]), plain_text))
            pairs.insert(draw(st.integers(0, len(pairs))), (name, draw(texts)))
            continue
        at = draw(st.integers(0, len(pairs) - 1))
        if action == "delete":
            del pairs[at]
        else:
            pairs[at] = (pairs[at][0], draw(texts))
    return pairs
