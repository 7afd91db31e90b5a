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
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".json", ".toml"}
TEXT_FILES = {"Makefile", "Dockerfile", ".ci/run", "scripts/ensure-test-tools"}


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


# Only workers/clients speaks to Magento and Cloud Retailer: everywhere else in the workers a remote is reached
# through a named, typed method of its client, never by a verb and a path. (crmcore and gateway cannot import the
# clients at all, see above; crmagento's own HTTP goes to the gateway and the sandboxes.)
CLIENT_PLUMBING = {"call", "_call", "request", "iter_search", "iter_pages"}
HTTP_PACKAGES = {"aiohttp", "yarl", "urllib"}
# Files another change is rewriting; each line names what they still do. Empty it once they use the clients'
# typed methods.


def _is_pattern(node: ast.expr) -> bool:
    """`re.search(...)` or `PATTERN.search(...)`: a regular expression's search, not a REST search."""
    return isinstance(node, ast.Name) and (node.id == "re" or node.id.isupper())


def raw_remote_calls(path: Path) -> list[str]:
    """Calls of the clients' plumbing (`.call(`, `.request(`, `.search(`...) and imports of HTTP packages."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if name in CLIENT_PLUMBING or (name == "search" and not _is_pattern(node.func.value)):
                found.append(f"{node.lineno}: .{name}(")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{node.lineno}: import {m}" for m in modules if m.split(".")[0] in HTTP_PACKAGES]
    return found


def test_only_the_clients_build_requests_to_the_remotes() -> None:
    offenders = {}
    for path in (ROOT / "workers").rglob("*.py"):
        name = path.relative_to(ROOT).as_posix()
        if name.startswith("workers/clients/"):
            continue
        if found := raw_remote_calls(path):
            offenders[name] = found
    assert offenders == {}


def test_the_rule_sees_raw_calls(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from urllib.parse import quote\n"
        "async def f(ctx, sku, path):\n"
        "    await ctx.magento.call('GET', f'products/{sku}')\n"
        "    await ctx.magento.http.request('GET', url)\n"
        "    await ctx.magento.search(path, criteria)\n"
        "    await ctx.cr.iter_pages('inventory')\n"
        "    PATTERN.search(text) or re.search('x', text)\n"
        "    await ctx.magento.list_orders(criteria)\n"
    )
    assert raw_remote_calls(sample) == [
        "1: import urllib.parse",
        "3: .call(",
        "4: .request(",
        "5: .search(",
        "6: .iter_pages(",
    ]


# A sync domain (workers/sync/<domain>/) depends on the clients, the core and the other domains' packages, never on
# their modules: what one domain offers the others is its package's names, so it can recut its modules freely.
SYNC = ROOT / "workers" / "sync"


def _domain_modules(domain: str) -> set[str]:
    return {p.stem for p in (SYNC / domain).iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}


def _absolute(node: ast.ImportFrom, package: list[str]) -> str:
    """The module an import-from names, a relative one resolved against the importing module's package."""
    if node.level == 0:
        return node.module or ""
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def other_domains_internals(source: str, package: str) -> list[str]:
    """Imports in `source`, a module of `package` (workers.sync.<domain>...), that reach below another domain's
    package."""
    parts = package.split(".")
    domain = parts[2]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            reached = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            reached = [f"{_absolute(node, parts)}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in reached:
            at = name.split(".")
            if at[:2] != ["workers", "sync"] or len(at) < 4 or at[2] == domain:
                continue
            # `from workers.sync.b import x` is fine when x is one of b's names, not one of its modules.
            if len(at) > 4 or at[3] in _domain_modules(at[2]):
                found.append(f"{node.lineno}: {name}")
    return found


def test_sync_domains_use_only_each_others_packages() -> None:
    found = {
        path.relative_to(ROOT).as_posix(): other_domains_internals(
            path.read_text(), ".".join(path.relative_to(ROOT).parent.parts)
        )
        for path in SYNC.glob("*/**/*.py")
    }
    assert {name: imports for name, imports in found.items() if imports} == {}


REACHING_IN = """
import workers.sync.catalog.products
from workers.sync import catalog, customers
from workers.sync.catalog import applied_versions, products
from workers.sync.customers.importer import KIND
from workers.sync.catchup.clock import Clock
from ..orders import search
from . import streams
from workers.clients.magento_time import parse_time
"""


def test_the_domain_rule_sees_a_reach_into_another_domain() -> None:
    assert other_domains_internals(REACHING_IN, "workers.sync.catchup") == [
        "2: workers.sync.catalog.products",
        "4: workers.sync.catalog.products",
        "5: workers.sync.customers.importer.KIND",
        "7: workers.sync.orders.search",
    ]
