"""DESIGN.md section 2: dependencies point one way. `gateway` never imports `workers` (it enqueues jobs by
name), and product code never imports `sandbox`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_packages(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"), [("gateway", {"workers", "sandbox", "crmagento"}), ("workers", {"sandbox", "crmagento"})]
)
def test_dependencies_point_one_way(package: str, forbidden: set[str]) -> None:
    offenders = {
        path: sorted(names & forbidden) for path, names in imported_packages(package).items() if names & forbidden
    }
    assert offenders == {}
