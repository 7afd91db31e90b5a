"""The repository's layout rules. Dependencies point one way (docs/design.md, Shape of the system): `crmcore`
(the contract both sides share) imports neither side; `gateway` never imports `workers` (it enqueues jobs by
name); `workers` never imports `gateway` (the HTTP edge); and product code never imports `sandbox`. And the
repository stands alone: no file points outside it or names an issue of our tracker."""

from __future__ import annotations

import ast
import re
import subprocess
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
    ("package", "forbidden"),
    [
        ("crmcore", {"gateway", "workers", "sandbox", "crmagento"}),
        ("gateway", {"workers", "sandbox", "crmagento"}),
        ("workers", {"gateway", "sandbox", "crmagento"}),
    ],
)
def test_dependencies_point_one_way(package: str, forbidden: set[str]) -> None:
    offenders = {
        path: sorted(names & forbidden) for path, names in imported_packages(package).items() if names & forbidden
    }
    assert offenders == {}


# The repository stands alone: a file may point at other projects (`magento/magento2#24625`) but not at files
# outside this repository, nor at the issues of our own tracker. The words are split so this file passes too.
OUTSIDE = re.compile(r"\.\./shared|" + "DESIGN" + r"\.md|" + "GOTCHA" + "S")
OUR_ISSUE = re.compile(r"\b(issue|issues) #?\d+|\(#\d+|#\d+-#\d+", re.IGNORECASE)
UPSTREAM_ISSUE = re.compile(r"[\w.-]+/[\w.-]+#\d+")  # owner/repo#123: another project's issue, welcome
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".toml"}
TEXT_FILES = {"Makefile", "Dockerfile", ".ci/run"}


def text_files() -> list[str]:
    """The repository's text files: tracked ones, and new ones not ignored (so a file is checked before it is
    added). The JSON test data is Adobe's, not ours."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    return sorted(
        name
        for name in set(listed)
        if (Path(name).suffix in TEXT_SUFFIXES or name in TEXT_FILES or Path(name).name in TEXT_FILES)
        and not (name.startswith("tests/data/") and name.endswith(".json"))
        and (ROOT / name).is_file()
    )


def test_the_repository_stands_alone() -> None:
    offenders = []
    for name in text_files():
        for number, line in enumerate((ROOT / name).read_text().splitlines(), 1):
            if OUTSIDE.search(line) or OUR_ISSUE.search(UPSTREAM_ISSUE.sub("", line)):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == []


def python_files() -> list[Path]:
    return [ROOT / f for f in text_files() if f.endswith(".py")]


def test_every_redis_key_is_spelled_in_one_place() -> None:
    """crmcore/keys.py builds every key; the prefix spelled anywhere else would be a second owner."""
    prefix = "crm" + ":"
    offenders = [
        str(path.relative_to(ROOT))
        for path in python_files()
        if path.relative_to(ROOT).as_posix() != "crmcore/keys.py" and prefix in path.read_text()
    ]
    assert offenders == []
