"""Intercom part bodies: HTML to a small neutral structure, and to plain text.

A teammate's comment arrives as HTML (``<p>``, ``<br>``, ``<b>``/``<strong>``, ``<i>``/``<em>``,
``<a href>``, ``<ul>``/``<ol>``/``<li>``, inline ``<img src>``). :func:`html_to_rich` turns it
into :class:`RichBlock` and :class:`RichImage` items in body order; :func:`html_to_text` is the
plain text of the same parse. Links become visible: ``<a href="U">here</a>`` reads
``here (U)``, and a link whose text is its URL reads the URL once.

Both are fed bodies from signed webhooks, so they are total (they accept any string) and
linear: each pattern below is a character class, a literal or bounded, it is matched or
searched forward from a position that only grows, and an unclosed construct runs to the end of
the body instead of being retried from the next "<". (The stdlib's HTMLParser is neither: it
raises on "<![foo[" and goes quadratic on unclosed tags in Python 3.11.)
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["RichBlock", "RichImage", "RichRun", "html_to_rich", "html_to_text"]

_TAG_START = re.compile(r"</?[A-Za-z]")
_MARKUP = re.compile(r"<[A-Za-z/!?]")
_LETTER = re.compile(r"[A-Za-z]")
_TAG_NAME = re.compile(r"[^\t\n\f\r />]*")
_NOT_GT_OR_EQ = re.compile(r"[^>=]*")
_SPACE = re.compile(r"[\t\n\f\r ]*")
_UNQUOTED = re.compile(r"[^\t\n\f\r >]*")
_WHITESPACE = re.compile(r"[\t\n\f\r ]+")
_CHARREF = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")  # html's
_BLOCK_TAGS = frozenset(
    {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "blockquote", "pre", "table"}
)
_BOLD_TAGS = frozenset({"b", "strong"})
_ITALIC_TAGS = frozenset({"i", "em"})


@dataclass(frozen=True, slots=True)
class RichRun:
    """Text in one style. ``text`` holds no newline but those of ``<br>`` (and of a plain body)."""

    text: str
    bold: bool = False
    italic: bool = False


@dataclass(frozen=True, slots=True)
class RichBlock:
    """A paragraph or a list item. A block without runs is an empty paragraph the teammate left
    (a blank line). ``list_kind`` is ``"ul"`` or ``"ol"`` for a list item, with its ``number``
    (ordered lists) and ``depth`` (0 for a top-level list)."""

    runs: tuple[RichRun, ...]
    list_kind: Literal["", "ul", "ol"] = ""
    number: int = 0
    depth: int = 0

    @property
    def text(self) -> str:
        return "".join(run.text for run in self.runs)


@dataclass(frozen=True, slots=True)
class RichImage:
    """An inline image (``<img src>`` in the body, not an attachment)."""

    src: str
    alt: str = ""


def _skip(pattern: re.Pattern[str], text: str, i: int) -> int:
    """The end of ``pattern``'s match at ``i`` (the patterns given always match)."""
    match = pattern.match(text, i)
    assert match is not None
    return match.end()


def _decode_charref(match: re.Match[str]) -> str:
    ref = match.group(1)
    if ref[0] != "#":
        return html.unescape(match.group(0))  # named: looked up, never re-scanned
    hexadecimal = ref[1] in "xX"
    digits = ref[2 if hexadecimal else 1 :].rstrip(";").lstrip("0") or "0"
    # More digits than any code point has: html.unescape would give U+FFFD, or raise
    # ValueError past Python's 4300-digit limit on int().
    if len(digits) > (6 if hexadecimal else 7):
        return "\ufffd"
    return html.unescape(f"&#{'x' if hexadecimal else ''}{digits};")


def _unescape(text: str) -> str:
    return _CHARREF.sub(_decode_charref, text)


def _tag_end(body: str, i: int) -> int:
    """Just past the ``>`` that closes a tag whose attributes start at ``i`` (a quoted value
    may hold ``>``), or -1 when the tag is never closed."""
    while True:
        i = _skip(_NOT_GT_OR_EQ, body, i)
        if i == len(body):
            return -1
        if body[i] == ">":
            return i + 1
        i = _skip(_SPACE, body, i + 1)  # past "="
        if body[i : i + 1] in ("'", '"'):
            i = body.find(body[i], i + 1)
            if i < 0:
                return -1
            i += 1


def _attributes(body: str, i: int, end: int) -> dict[str, str]:
    """The attributes of a tag whose attribute text is ``body[i:end]`` (``end`` at its ``>``),
    scanned the way :func:`_tag_end` found that end (so in one pass): each ``=`` takes the name
    just before it and the quoted or bare value after it."""
    found: dict[str, str] = {}
    while i < end:
        eq = _skip(_NOT_GT_OR_EQ, body, i)
        if eq >= end or body[eq] != "=":
            break
        words = body[i:eq].split()
        name = words[-1].strip("/\"'").lower() if words else ""
        j = _skip(_SPACE, body, eq + 1)
        if body[j : j + 1] in ("'", '"'):
            close = body.find(body[j], j + 1)
            close = end if close < 0 or close > end else close
            value, i = body[j + 1 : close], close + 1
        else:
            i = min(_skip(_UNQUOTED, body, j), end)
            value = body[j:i]
        if name and name not in found:
            found[name] = _unescape(value)
    return found


@dataclass(slots=True)
class _Tag:
    end: int
    name: str = ""
    closing: bool = False
    self_closing: bool = False
    attributes: dict[str, str] = field(default_factory=dict)


def _markup(body: str, start: int) -> _Tag:
    """The markup at ``start`` (a ``<`` that _MARKUP matched): where it ends (``len(body)`` if
    it is never closed) and, for a tag, its name and the attributes we read. Comments,
    ``<!…>`` (``<![CDATA[…]]>`` among them), ``<?…>`` and ``</…>`` not naming a tag are dropped
    up to their ``>``, as a browser drops them (they have no name)."""
    end = len(body)
    after = body[start + 1]
    if body.startswith("!--", start + 1):
        for abrupt in (">", "->"):  # "<!-->" and "<!--->" are empty comments
            if body.startswith(abrupt, start + 4):
                return _Tag(start + 4 + len(abrupt))
        close = body.find("-->", start + 4)
        return _Tag(end if close < 0 else close + 3)
    closing = after == "/"
    if after in "!?" or (closing and _LETTER.match(body, start + 2) is None):
        close = body.find(">", start + 2)
        return _Tag(end if close < 0 else close + 1)
    name_start = start + 2 if closing else start + 1
    name_end = _skip(_TAG_NAME, body, name_start)
    tag_end = _tag_end(body, name_end)
    if tag_end < 0:
        return _Tag(end)
    name = body[name_start:name_end].lower()
    tag = _Tag(tag_end, name, closing, body[tag_end - 2] == "/")
    if not closing and name in ("a", "img", "ol"):
        tag.attributes = _attributes(body, name_end, tag_end - 1)
    return tag


def _shown_once(text: str, href: str) -> bool:
    """Whether a link's text already shows its target (then the URL is not added)."""
    bare = href.removeprefix("mailto:").removeprefix("tel:")
    schemeless = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", href, count=1)
    return text in (href, bare, schemeless, schemeless.rstrip("/"))


class _Builder:
    """The blocks of a body, built as its tokens come (every step is O(its token))."""

    def __init__(self) -> None:
        self.items: list[RichBlock | RichImage] = []
        self._runs: list[tuple[list[str], bool, bool]] = []  # the current block's runs
        self._kind: Literal["", "ul", "ol"] = ""
        self._number = 0
        self._depth = 0
        self._opened = False  # the current block was opened by a tag (<p>, <li>, …)
        self._space = False  # a collapsed space is due before the next word
        self._space_style = (0, 0)
        self.bold = 0
        self.italic = 0
        self._lists: list[list[int]] = []  # per open list: [kind (0 ul, 1 ol), counter]
        self._href: str | None = None
        self._link_text: list[str] = []

    # --- text ----------------------------------------------------------------------------

    def _emit(self, text: str) -> None:
        if self._href is not None:
            self._link_text.append(text)
        bold, italic = self.bold > 0, self.italic > 0
        if self._runs and self._runs[-1][1:] == (bold, italic):
            self._runs[-1][0].append(text)
        else:
            self._runs.append(([text], bold, italic))

    def _at_line_start(self) -> bool:
        return not self._runs or self._runs[-1][0][-1].endswith("\n")

    def text(self, chunk: str) -> None:
        """HTML text (references decoded): whitespace runs collapse to one space, none at a
        line's edges."""
        self._words(_unescape(chunk))

    def _words(self, text: str) -> None:
        for index, word in enumerate(_WHITESPACE.split(text)):
            if index > 0 and not self._space:
                self._space = True  # in the style where it stands: "<b>a</b> b", "a <b>b</b>"
                self._space_style = (self.bold, self.italic)
            if not word:
                continue
            if self._space and not self._at_line_start():
                style, (self.bold, self.italic) = (self.bold, self.italic), self._space_style
                self._emit(" ")
                self.bold, self.italic = style
            self._space = False
            self._emit(word)

    def raw(self, text: str) -> None:
        """A plain body's text, kept as it is."""
        self._emit(text)

    def line_break(self) -> None:
        self._space = False
        self._emit("\n")

    # --- links ---------------------------------------------------------------------------

    def open_link(self, href: str) -> None:
        self.close_link()
        href = href.strip()
        if href:
            self._href, self._link_text = href, []

    def close_link(self) -> None:
        href, self._href = self._href, None
        if href is None:
            return
        shown = " ".join("".join(self._link_text).split())
        if not shown:
            self._words(href)
        elif not _shown_once(shown, href):
            bold, italic, self.bold, self.italic = self.bold, self.italic, 0, 0
            self._words(f" ({href})")
            self.bold, self.italic = bold, italic

    # --- blocks --------------------------------------------------------------------------

    def end_block(self, *, closing_tag: bool = False) -> None:
        """Finish the current block; an empty one is kept only when a tag opened and closed
        it with nothing inside (``<p></p>``, ``<p><br></p>``): a blank line."""
        self.close_link()
        runs = [RichRun("".join(parts), bold, italic) for parts, bold, italic in self._runs]
        lead = 0
        while lead < len(runs) and not runs[lead].text.strip("\n"):
            lead += 1
        del runs[:lead]  # once: popping from the front one by one would be quadratic
        while runs and not runs[-1].text.strip("\n"):
            runs.pop()
        if runs:
            first, last = runs[0], runs[-1]
            runs[0] = RichRun(first.text.lstrip("\n"), first.bold, first.italic)
            runs[-1] = RichRun(runs[-1].text.rstrip("\n"), last.bold, last.italic)
        if runs or (closing_tag and self._opened):
            self.items.append(RichBlock(tuple(runs), self._kind, self._number, self._depth))
        self._runs = []
        self._kind, self._number, self._depth = "", 0, 0
        self._opened = False
        self._space = False

    def open_block(self) -> None:
        if self._kind and not self._runs:
            return  # <li><p>…: the paragraph is the item's
        self.end_block()
        self._opened = True

    def open_list(self, ordered: bool, start: str | None) -> None:
        self.end_block()
        first = int(start) if start is not None and re.fullmatch(r"-?[0-9]{1,9}", start) else 1
        self._lists.append([1 if ordered else 0, first - 1])

    def close_list(self) -> None:
        self.end_block()
        if self._lists:
            self._lists.pop()

    def open_item(self) -> None:
        self.open_block()
        if not self._lists:
            self._lists.append([0, 0])  # an <li> outside any list: a bullet
        current = self._lists[-1]
        current[1] += 1
        self._kind = "ol" if current[0] else "ul"
        self._number = current[1]
        self._depth = len(self._lists) - 1

    def image(self, src: str, alt: str) -> None:
        kind, number, depth = self._kind, self._number, self._depth
        self.end_block()
        self.items.append(RichImage(src.strip(), " ".join(alt.split())))
        self._kind, self._number, self._depth = kind, number, depth

    def tag(self, tag: _Tag) -> None:
        name = tag.name
        if name == "br":
            self.line_break()
        elif name in _BOLD_TAGS:
            self.bold = self.bold - 1 if tag.closing else self.bold + (not tag.self_closing)
        elif name in _ITALIC_TAGS:
            self.italic = self.italic - 1 if tag.closing else self.italic + (not tag.self_closing)
        elif name == "a":
            if tag.closing:
                self.close_link()
            else:
                self.open_link(tag.attributes.get("href", ""))
        elif name == "img" and not tag.closing:
            self.image(tag.attributes.get("src", ""), tag.attributes.get("alt", ""))
        elif name in ("ul", "ol"):
            if tag.closing:
                self.close_list()
            elif tag.self_closing:
                self.end_block()
            else:
                self.open_list(name == "ol", tag.attributes.get("start"))
        elif name == "li":
            if tag.closing or tag.self_closing:
                self.end_block(closing_tag=True)
            else:
                self.open_item()
        elif name in _BLOCK_TAGS:
            if tag.closing or tag.self_closing:
                self.end_block(closing_tag=True)
            else:
                self.open_block()
        self.bold, self.italic = max(self.bold, 0), max(self.italic, 0)


def _is_html(body: str) -> bool:
    first_tag = _TAG_START.search(body)
    return first_tag is not None and body.rfind(">") >= first_tag.start()


def html_to_rich(body: str | None) -> tuple[RichBlock | RichImage, ...]:
    """The blocks and inline images of a part body, in body order. A plain body (webhooks
    since 2.15) is one block holding it unchanged.

    Total and linear in the body's length, whatever the body."""
    if not body:
        return ()
    builder = _Builder()
    if not _is_html(body):
        builder.raw(body)
        builder.end_block()
        return tuple(builder.items)
    i = 0
    while i < len(body):
        markup = _MARKUP.search(body, i)
        text_end = len(body) if markup is None else markup.start()
        builder.text(body[i:text_end])
        if markup is None:
            break
        tag = _markup(body, text_end)
        i = tag.end
        if tag.name:
            builder.tag(tag)
    builder.end_block()
    return tuple(builder.items)


def html_to_text(body: str | None) -> str:
    """Plain text of a part body: unchanged when it is already plain (webhooks since 2.15),
    tags stripped, links shown as ``text (URL)`` and entities decoded when it is HTML (the
    REST API's default); one line per paragraph, list item or ``<br>``, no blank lines.

    Total and linear in the body's length, whatever the body (see :func:`html_to_rich`)."""
    if not body:
        return ""
    if not _is_html(body):
        return body
    blocks = [item.text for item in html_to_rich(body) if isinstance(item, RichBlock)]
    lines = [line.strip() for line in "\n".join(blocks).split("\n")]
    return "\n".join(line for line in lines if line)
