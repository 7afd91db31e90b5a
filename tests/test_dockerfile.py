"""The image runs what `make demo` runs. No Docker engine runs here, so the Dockerfile's steps are replayed outside
Docker: a build context holding only what its COPY lines copy, the wheel its `pip install .` builds, and that
wheel (not the source tree) running `crmagento demo` under the image's ENV, from a directory where the checkout
is not importable. Then the image's HEALTHCHECK command is run against the live gateway. hadolint lints the file
itself in `make lint`."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.demo_process import demo_running, without_crmagento_env

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
BUDGET_S = 120


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in DOCKERFILE.splitlines() if not line.startswith("#")))
    return [(m[1].upper(), m[2].strip()) for m in re.finditer(r"^\s*(\w+)\s+(.*)$", text, flags=re.MULTILINE)]


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for name, args in instructions():
        if name == "FROM":
            out.append([])
        out[-1].append((name, args))
    return out


def runtime_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for name, args in stages()[-1]:
        if name == "ENV":
            env.update(dict(part.split("=", 1) for part in shlex.split(args)))
    return env


def test_the_image_is_multi_stage_non_root_and_runs_the_product() -> None:
    builder, runtime = stages()
    assert any(n == "COPY" and a.startswith("--from=builder") for n, a in runtime)
    assert ("USER", "10001:10001") in runtime
    assert ("CMD", '["crmagento", "run"]') in runtime
    assert any(n == "HEALTHCHECK" and "/healthz" in a for n, a in runtime)
    assert any(n == "RUN" and "pip install --no-cache-dir ." in a for n, a in builder)


@pytest.fixture(scope="module")
def image_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The builder stage outside Docker: its COPY lines into a fresh context, then the wheel `pip install .`
    builds from it, installed on its own (its dependencies are the test venv's, the same pins)."""
    work = tmp_path_factory.mktemp("image")
    context = work / "src"
    context.mkdir()
    copies = [a.split() for n, a in stages()[0] if n == "COPY"]
    assert copies, "the builder copies nothing"
    for *sources, _dest in copies:
        for source in sources:
            src = ROOT / source
            if src.is_dir():
                shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, context / source)
    wheels = work / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(context)], check=True, timeout=300)
    site = work / "site"
    (wheel,) = wheels.glob("cr_magento_gateway-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=120)
    return site


def test_the_installed_image_runs_the_demo_and_passes_its_healthcheck(image_install: Path, tmp_path: Path) -> None:
    env = without_crmagento_env(**runtime_env())
    env.update(
        # Loopback and a free port instead of the image's 0.0.0.0:8080; the data dir a volume would be.
        CRMAGENTO_HOST="127.0.0.1",
        CRMAGENTO_PORT="0",
        CRMAGENTO_DATA_DIR=str(tmp_path / "data"),
        PYTHONPATH=str(image_install),
        COLUMNS="220",
    )
    app_dir = tmp_path / "app"  # the image's WORKDIR: no source tree, no .env
    app_dir.mkdir()
    which = subprocess.run(
        [sys.executable, "-c", "import crmagento, gateway, sandbox, workers; print(crmagento.__file__)"],
        env=env,
        cwd=app_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    assert which.stdout.startswith(str(image_install)), which.stdout  # the wheel's copy, not the checkout

    out_file = tmp_path / "demo.out"
    command = [
        sys.executable,
        "-c",
        "from crmagento.cli import main; main()",
        "demo",
        "--keep-running",
        "--products",
        "60",
    ]
    with demo_running(command, env=env, cwd=app_dir, out_file=out_file, budget_s=BUDGET_S) as (process, out):
        assert re.search(r"(\d+)/\1 steps ok", out), out
        gateway = re.search(r"health\s+│ http://127\.0\.0\.1:(\d+)/healthz", out)
        assert gateway, out

        healthcheck = next(a for n, a in stages()[-1] if n == "HEALTHCHECK")
        command = json.loads(healthcheck.split("CMD", 1)[1])
        assert command[0] == "python"
        probe = subprocess.run(
            [sys.executable, *command[1:]], env={**env, "CRMAGENTO_PORT": gateway[1]}, timeout=10, check=False
        )
        assert probe.returncode == 0
        # ...and the same command fails when nothing serves (it must be able to mark the container unhealthy).
        dead = subprocess.run([sys.executable, *command[1:]], env={**env, "CRMAGENTO_PORT": "1"}, capture_output=True)
        assert dead.returncode != 0

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, out_file.read_text(errors="replace")
