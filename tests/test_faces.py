"""Tests and benchmarks import only public faces, and actors' subpackages reach each other only
through theirs (docs/architecture.md §3): a private module (``_name``) is imported only from
inside its own package."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("runtime", "actors", "channels", "intercom")


def _private_imports(relative: Path, source: str) -> list[str]:
    """Every import in ``source`` (the file at ``relative``, from the repository's root) that
    names a private module outside the importer's package."""
    tree = ast.parse(source, str(relative))
    here = list(relative.with_suffix("").parts)
    package = here[:-1]  # a module's package, and a face's own
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        modules: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                if relative.parts[0] not in PACKAGES:
                    continue  # the test package's own helpers
                base = package[: len(package) - (node.level - 1)]
                modules.append(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                modules.append(node.module)
        else:
            modules.extend(alias.name for alias in node.names)
        for module in modules:
            parts = module.split(".")
            if parts[0] not in PACKAGES:
                continue
            for i, part in enumerate(parts):
                if part.startswith("_") and part != "__main__":
                    owner = parts[:i]
                    if package[: len(owner)] != owner:
                        found.append(f"{relative}:{node.lineno}: {module}")
                    break
    return found


def test_only_public_faces_are_imported_across_packages() -> None:
    roots = [ROOT / name for name in (*PACKAGES, "tests", "bench")]
    offenders = [
        line
        for root in roots
        for path in sorted(root.rglob("*.py"))
        for line in _private_imports(path.relative_to(ROOT), path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_check_sees_private_imports() -> None:
    """The scan finds what it looks for (it would pass vacuously otherwise), and lets a
    package use its own private modules."""
    source = "from actors.bridge._jobs import encode_job\nfrom ..delivery._steps import Steps\n"
    assert _private_imports(Path("tests/probe.py"), source) == [
        "tests/probe.py:1: actors.bridge._jobs"
    ]
    assert _private_imports(Path("actors/edge/_ingress.py"), source) == [
        "actors/edge/_ingress.py:1: actors.bridge._jobs",
        "actors/edge/_ingress.py:2: actors.delivery._steps",
    ]
    inside = "from ._jobs import encode_job\nfrom ..delivery import Steps\n"
    assert _private_imports(Path("actors/bridge/_reply.py"), inside) == []
