"""The repository stands on its own: no tracked file refers to a path outside it.

A fresh clone has nothing beside it, so a test, benchmark, script or document that reads
``<repo>/../something`` works only on the machine it was written on. This walks every tracked
text file and fails on:

- a relative path (``../x``) that leaves the repository: resolved from the document's folder in
  Markdown (links), from the repository root elsewhere (where ``make``, CI, pytest and the
  README's commands run);
- ``Path(__file__)`` walked up (``.parents[n]``, ``.parent.parent``) past the repository root;
- the names of the old out-of-tree settings.

A line that holds such a path on purpose (hostile input in a test) says so with the marker
``deliberate-escape:`` and its reason.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOW = "deliberate-escape:"
# Spelled in pieces so that this file does not match itself.
FORBIDDEN_NAMES = ("THREADLINE_" + "SHARED_DIR", ".." + "/shared")
RELATIVE = re.compile(r"(?<![\w.])((?:\.\./)+)([\w.-]*)")
PARENTS = re.compile(r"__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]((?:\.parent)*)")
PARENT_CHAIN = re.compile(r"__file__\)(?:\.resolve\(\))?((?:\.parent)+)")


def tracked_files() -> list[Path]:
    """Files git tracks (a clone's content); the working tree when git is unavailable."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"],  # noqa: S607 - git from PATH, as a developer runs it
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        return [ROOT / name for name in out.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}
        return [
            p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)
        ]


def _inside(path: Path) -> bool:
    return path.resolve().is_relative_to(ROOT)


def offences(path: Path, text: str) -> list[str]:
    """Where ``text`` (the content of tracked file ``path``) refers to a path outside."""
    found: list[str] = []
    depth = len(path.relative_to(ROOT).parts)  # Path(__file__).parents[depth - 1] is ROOT
    base = path.parent if path.suffix == ".md" else ROOT
    for number, line in enumerate(text.splitlines(), 1):
        if ALLOW in line:
            continue
        where = f"{path.relative_to(ROOT)}:{number}"
        found += [f"{where}: names {name}" for name in FORBIDDEN_NAMES if name in line]
        for match in RELATIVE.finditer(line):
            relative = match.group(1) + match.group(2)
            if not _inside(base / relative):
                found.append(f"{where}: {relative!r} leaves the repository")
        for match in PARENTS.finditer(line):
            up = int(match.group(1)) + match.group(2).count(".parent")
            if up >= depth:
                found.append(f"{where}: Path(__file__) walked {up + 1} levels up")
        for match in PARENT_CHAIN.finditer(line):
            if match.group(1).count(".parent") > depth:
                found.append(f"{where}: Path(__file__) walked above the repository")
    return found


def test_no_tracked_file_refers_to_a_path_outside_the_repository() -> None:
    found: list[str] = []
    for path in tracked_files():
        if not path.is_file() or path == Path(__file__).resolve():
            continue  # deleted in the working tree; or this file, whose examples are escapes
        raw = path.read_bytes()
        if b"\0" in raw[:8192]:
            continue  # binary
        found += offences(path, raw.decode("utf-8", errors="replace"))
    assert found == []


@pytest.mark.parametrize(
    ("relative", "line"),
    [
        ("tests/intercom/spec.py", 'shared = Path(__file__).resolve().parents[2].parent / "x"'),
        ("tests/conftest.py", "ROOT = Path(__file__).parent.parent.parent"),
        ("bench/run.py", "SPEC = Path(__file__).resolve().parents[2]"),
        ("README.md", "Fixtures are read from ../fixtures beside the clone."),
        ("Makefile", "\tcp ../../elsewhere/file ."),
        ("tests/x.py", "os.environ['THREADLINE_" + "SHARED_DIR']"),
    ],
    ids=["parents", "parent-chain", "bench", "markdown", "makefile", "setting"],
)
def test_the_check_catches_each_kind_of_escape(relative: str, line: str) -> None:
    assert offences(ROOT / relative, line) != []


@pytest.mark.parametrize(
    ("relative", "line"),
    [
        ("tests/intercom/spec.py", "SPEC = Path(__file__).resolve().parents[1] / 'specs'"),
        ("tests/channels/conftest.py", "ROOT = Path(__file__).parent.parent.parent"),
        ("docs/operations.md", "See [the README](../README.md)."),
        ("tests/channels/test_media.py", 'image("../../etc/passwd")  # ' + ALLOW + " hostile"),
    ],
    ids=["parents", "parent-chain", "markdown-link", "marked"],
)
def test_the_check_lets_paths_inside_the_repository_pass(relative: str, line: str) -> None:
    assert offences(ROOT / relative, line) == []
