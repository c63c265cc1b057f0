"""The recorded payloads for the next channels (issue 21: Messenger, Instagram, LINE, Viber).

The bridge does not parse these channels yet. Until it does, this checks what can be checked
without product code: every file is valid JSON and has exactly one provenance line in
``tests/fixtures/channels/SOURCES.md``, and every signature vector is right under the
channel's documented algorithm, computed here with the standard library only. When a channel
is implemented, its files get parse expectations in ``tests/channels/test_fixtures.py`` and
its folder leaves ``PENDING`` there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "channels"
CHANNELS = ("messenger", "instagram", "line", "viber")


def _hmac_sha256(key: str, body: bytes) -> bytes:
    return hmac.new(key.encode(), body, hashlib.sha256).digest()


def meta_header(vector: dict[str, Any]) -> str:
    """X-Hub-Signature-256: ``sha256=`` + hex HMAC-SHA256 of the body with the app secret."""
    return "sha256=" + _hmac_sha256(vector["app_secret"], vector["raw_body"].encode()).hex()


def line_header(vector: dict[str, Any]) -> str:
    """x-line-signature: base64 HMAC-SHA256 of the body with the channel secret."""
    digest = _hmac_sha256(vector["channel_secret"], vector["raw_body"].encode())
    return base64.b64encode(digest).decode()


def viber_header(vector: dict[str, Any]) -> str:
    """X-Viber-Content-Signature: hex HMAC-SHA256 of the body with the auth token."""
    return _hmac_sha256(vector["auth_token"], vector["raw_body"].encode()).hex()


SIGNERS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "messenger": ("x-hub-signature-256", meta_header),
    "instagram": ("x-hub-signature-256", meta_header),
    "line": ("x-line-signature", line_header),
    "viber": ("x-viber-content-signature", viber_header),
}


def fixture_files() -> list[str]:
    paths = (path for channel in CHANNELS for path in (FIXTURES / channel).iterdir())
    return sorted(str(path.relative_to(FIXTURES)) for path in paths)


def source_rows() -> list[str]:
    """The first cell of every table row in SOURCES.md."""
    rows = []
    for line in (FIXTURES / "SOURCES.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if line.startswith("|") and len(cells) > 2:
            rows.append(cells[1])
    return rows


def load(name: str) -> object:
    loaded: object = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return loaded


def vectors(channel: str) -> list[dict[str, Any]]:
    data = load(f"{channel}/signature_vectors.json")
    assert isinstance(data, dict)
    found: list[dict[str, Any]] = [*data.get("published_vectors", []), *data["vectors"]]
    return found


def test_every_channel_has_fixtures_and_vectors() -> None:
    for channel in CHANNELS:
        names = {Path(name).name for name in fixture_files() if name.startswith(f"{channel}/")}
        assert "signature_vectors.json" in names, channel
        assert len(names) >= 10, f"{channel}: only {sorted(names)}"


@pytest.mark.parametrize("name", fixture_files())
def test_fixture_is_json_with_one_sources_line(name: str) -> None:
    assert name.endswith(".json"), f"{name}: only JSON fixtures here"
    assert isinstance(load(name), dict)
    assert source_rows().count(name) == 1, f"{name}: needs exactly one line in SOURCES.md"


def test_every_sources_line_names_a_file() -> None:
    pending = [row for row in source_rows() if row.split("/")[0] in CHANNELS]
    assert sorted(pending) == fixture_files()


@pytest.mark.parametrize("channel", CHANNELS)
def test_signature_vectors(channel: str) -> None:
    header, sign = SIGNERS[channel]
    outcomes = set()
    for vector in vectors(channel):
        assert vector["header_name"].lower() == header, vector["name"]
        valid = hmac.compare_digest(sign(vector), vector["header_value"])
        assert valid is vector.get("expected_valid", True), vector["name"]
        outcomes.add(valid)
        if "fixture" in vector:  # the signed body is that fixture's payload, compactly encoded
            assert json.loads(vector["raw_body"]) == load(vector["fixture"]), vector["name"]
    assert outcomes == {True, False}, "vectors that verify and vectors that must not, per channel"


@pytest.mark.parametrize("channel", ["messenger", "instagram"])
def test_meta_handshake(channel: str) -> None:
    handshake = load(f"{channel}/verify_handshake_get.json")
    assert isinstance(handshake, dict)
    query = handshake["query"]
    assert query["hub.mode"] == "subscribe"
    assert query["hub.verify_token"] == handshake["configured_verify_token"]
    assert handshake["expected_response"]["body"] == query["hub.challenge"]


def test_reference_names_every_channel() -> None:
    reference = (FIXTURES / "NEXT_CHANNELS.md").read_text()
    for title in ("Messenger", "Instagram", "LINE", "Viber"):
        assert f"## {title}" in reference, title
