"""The public faces of actors' subpackages: sorted, every name there, none private."""

from __future__ import annotations

import importlib

import pytest

FACES = ["actors.bridge", "actors.core", "actors.delivery", "actors.edge", "actors.service"]


@pytest.mark.parametrize("name", FACES)
def test_face_is_sorted_public_and_complete(name: str) -> None:
    face = importlib.import_module(name)
    exported: list[str] = face.__all__
    assert exported == sorted(exported)
    assert not [n for n in exported if n.startswith("_")]
    assert [n for n in exported if getattr(face, n, None) is None] == []
    defined = {n for n in vars(face) if not n.startswith("_")} - {
        m.rsplit(".", 1)[-1] for m in FACES
    }
    # every public name the face imports is exported (nothing half-public)
    modules = {n for n in defined if type(getattr(face, n)).__name__ == "module"}
    assert defined - modules - set(exported) == set()
