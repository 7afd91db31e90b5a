"""`crmagento demo --keep-running` as a subprocess: started with its output in a file, waited on until it says
everything is up, and always stopped by the handle the test holds (never by name)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

READY = "Ctrl-C stops it"


@contextlib.contextmanager
def demo_running(
    command: list[str], *, env: dict[str, str], cwd: Path, out_file: Path, budget_s: float
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Yield the process and its output once it printed READY; kill it on the way out if still running."""
    with out_file.open("wb") as stdout:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + budget_s
        while READY not in (out := out_file.read_text(errors="replace")):
            assert process.poll() is None, out
            assert time.monotonic() < deadline, out
            time.sleep(0.1)
        yield process, out
    finally:
        if process.poll() is None:  # only the process this test started, by its own handle
            process.kill()
            process.wait(10)


def without_crmagento_env(**extra: str) -> dict[str, str]:
    """The test's environment minus any CRMAGENTO_* of the developer's shell, plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("CRMAGENTO_")}, **extra}
