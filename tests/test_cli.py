"""`crmagento` as an operator runs it: real subprocesses with a clean environment, real HTTP, real Redis."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.signing import ADMIN_TOKEN, CR_SECRET, MAGENTO_SECRET, envelope, new_id, sign_headers

_SCRIPT = Path(sys.executable).with_name("crmagento")
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "crmagento.cli"]

WEB_VARS = ("CRMAGENTO_CR_WEBHOOK_SECRETS", "CRMAGENTO_MAGENTO_WEBHOOK_SECRETS", "CRMAGENTO_ADMIN_TOKENS")
PRODUCT = {"product_id": "P-cli", "sku": "SKU-cli"}


def clean_env(**extra: str) -> dict[str, str]:
    """Only PATH and HOME from the outside world, plus what the test sets."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    env.update(extra)
    return env


def web_env(**extra: str) -> dict[str, str]:
    """A clean environment with valid webhook secrets and admin token; `extra` adds or overrides."""
    valid = {
        "CRMAGENTO_CR_WEBHOOK_SECRETS": CR_SECRET,
        "CRMAGENTO_MAGENTO_WEBHOOK_SECRETS": MAGENTO_SECRET,
        "CRMAGENTO_ADMIN_TOKENS": ADMIN_TOKEN,
    }
    return clean_env(**{**valid, **extra})


# Where the shipped sync rules would send calls: a closed loopback port (nothing is contacted in these tests).
SYNC_ENV = {
    "CRMAGENTO_MAGENTO_URL": "http://127.0.0.1:9",
    "CRMAGENTO_MAGENTO_TOKEN": "magento-token-for-tests",
    "CRMAGENTO_CR_URL": "http://127.0.0.1:9/api/v1",
    "CRMAGENTO_CR_API_KEY": "cr-key-for-tests",
    "CRMAGENTO_CR_STORE_ID": "W-1",
}


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)  # noqa: S310 (http://127.0.0.1 only)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@dataclass
class Running:
    """A `crmagento` process in the background; stderr goes to a file so a full pipe never blocks it."""

    process: subprocess.Popen[bytes]
    stderr_path: Path
    base: str

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def log_events(self) -> list[dict]:
        return [json.loads(line) for line in self.stderr().splitlines() if line.strip()]

    def wait_until(self, predicate: Callable[[], bool], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"crmagento exited ({self.process.returncode}) before {what}:\n{self.stderr()}")
            try:
                if predicate():
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(0.1)
        raise AssertionError(f"{what}: not within {within} s\n{self.stderr()}")

    def wait_healthy(self, within: float = 20) -> None:
        self.wait_until(lambda: http("GET", f"{self.base}/healthz")[0] == 200, within, "/healthz answered 200")

    def post_webhook(self, source: str = "cloudretailer", secret: str = CR_SECRET) -> tuple[int, dict, str]:
        msg_id = new_id()
        body = envelope("product.updated", PRODUCT)
        status, raw = http("POST", f"{self.base}/webhooks/{source}", body, sign_headers(secret, msg_id, body))
        return status, json.loads(raw), msg_id

    def terminate(self, within: float = 10) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(within)


@pytest.fixture
def start_cli(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(args: list[str], env: dict[str, str], port: int) -> Running:
        stderr_path = tmp_path / f"crmagento-{len(started)}.stderr"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [*CLI, *args, "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        running = Running(process, stderr_path, f"http://127.0.0.1:{port}")
        started.append(running)
        return running

    yield start
    for running in started:  # only the processes this test started, by their own handle
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(10)


def redis_servers_using(data_dir: Path) -> list[int]:
    """PIDs of redis-server processes whose command line names `data_dir`."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and b"redis-server" in cmdline[0] and str(data_dir).encode() in b" ".join(cmdline):
            pids.append(int(proc.name))
    return pids


# --- configuration errors: exit 2, say which variable, no traceback, no value --------------------------------


def test_serve_with_nothing_set_exits_2_naming_the_variables(tmp_path: Path) -> None:
    result = run_cli(["serve"], clean_env(), tmp_path)
    assert result.returncode == 2, result.stderr
    for variable in ("CRMAGENTO_REDIS_URL", *WEB_VARS):
        assert variable in result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


def test_serve_with_a_malformed_secret_names_it_and_does_not_echo_it(tmp_path: Path, redis_url: str) -> None:
    bad = "whsec_not*base64*cli-hunter2"
    result = run_cli(["serve"], web_env(CRMAGENTO_REDIS_URL=redis_url, CRMAGENTO_CR_WEBHOOK_SECRETS=bad), tmp_path)
    assert result.returncode == 2, result.stderr
    assert "CRMAGENTO_CR_WEBHOOK_SECRETS" in result.stderr
    assert "base64" in result.stderr
    for out in (result.stderr, result.stdout):
        assert bad not in out and "cli-hunter2" not in out and "Traceback" not in out


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CRMAGENTO_REDIS_URL", "http://:cli-hunter2@127.0.0.1:6379/0"),
        ("CRMAGENTO_ADMIN_TOKENS", "cli-hunter2"),
        ("CRMAGENTO_PORT", "cli-hunter2"),
    ],
)
def test_other_malformed_variables_exit_2_without_echo(tmp_path: Path, variable: str, value: str) -> None:
    env = web_env(CRMAGENTO_REDIS_URL="redis://127.0.0.1:6379/0")
    env[variable] = value
    result = run_cli(["serve"], env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert variable in result.stderr
    assert "cli-hunter2" not in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_malformed_value_in_dotenv_of_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CRMAGENTO_MAGENTO_WEBHOOK_SECRETS=whsec_dotenv-hunter2\n")
    result = run_cli(["serve"], clean_env(), tmp_path)
    assert result.returncode == 2, result.stderr
    assert "CRMAGENTO_MAGENTO_WEBHOOK_SECRETS" in result.stderr and "dotenv-hunter2" not in result.stderr


@pytest.mark.parametrize("command", ["run", "worker"])
def test_the_sync_rules_refuse_to_start_without_magento_and_cloud_retailer(command: str, tmp_path: Path) -> None:
    env = web_env(CRMAGENTO_REDIS_URL="redis://127.0.0.1:9/0", CRMAGENTO_MAGENTO_TOKEN="s3cret-token")
    result = run_cli([command], env, tmp_path)
    assert result.returncode == 2, result.stderr
    for variable in ("CRMAGENTO_MAGENTO_URL", "CRMAGENTO_CR_URL", "CRMAGENTO_CR_API_KEY", "CRMAGENTO_CR_STORE_ID"):
        assert variable in result.stderr
    assert "Traceback" not in result.stderr and "s3cret-token" not in result.stderr


def test_magento_needs_a_token_or_the_four_oauth_values(tmp_path: Path) -> None:
    env = web_env(CRMAGENTO_REDIS_URL="redis://127.0.0.1:9/0", **SYNC_ENV)
    del env["CRMAGENTO_MAGENTO_TOKEN"]
    env["CRMAGENTO_MAGENTO_CONSUMER_KEY"] = "only-one-of-four"
    result = run_cli(["worker"], env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "CRMAGENTO_MAGENTO_ACCESS_TOKEN_SECRET" in result.stderr and "CRMAGENTO_MAGENTO_TOKEN" in result.stderr
    assert "only-one-of-four" not in result.stderr


def test_worker_without_redis_url_exits_2(tmp_path: Path) -> None:
    result = run_cli(["worker"], clean_env(), tmp_path)
    assert result.returncode == 2, result.stderr
    assert "CRMAGENTO_REDIS_URL" in result.stderr and "Traceback" not in result.stderr
    # The worker does not need the web secrets: it must not ask for them.
    for variable in WEB_VARS:
        assert variable not in result.stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli(["--help"], clean_env(COLUMNS="120"), tmp_path)
    assert result.returncode == 0, result.stderr
    commands = {line.strip(" │").split()[0] for line in result.stdout.splitlines() if line.strip(" │")[:1].isalpha()}
    assert {"run", "serve", "worker", "demo"} <= commands, result.stdout


@pytest.mark.parametrize("command", ["serve", pytest.param("run", marks=pytest.mark.slow)])
def test_port_in_use_exits_1_with_one_line(tmp_path: Path, redis_url: str, command: str) -> None:
    data_dir = tmp_path / "data"
    env = web_env(CRMAGENTO_DATA_DIR=str(data_dir), **SYNC_ENV)
    if command == "serve":
        env["CRMAGENTO_REDIS_URL"] = redis_url
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli([command, "--host", "127.0.0.1", "--port", str(port)], env, tmp_path)
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "in use" in result.stderr
    assert "Traceback" not in result.stderr
    # `run` had started an embedded Redis first: it is stopped again, not orphaned.
    assert not redis_servers_using(data_dir.resolve())


# --- black box: the real thing on a real port ----------------------------------------------------------------


@pytest.mark.slow
def test_serve_accepts_a_signed_webhook_and_stops_on_sigterm(
    start_cli: Callable[..., Running], redis_url: str, tmp_path: Path
) -> None:
    gateway = start_cli(["serve"], web_env(CRMAGENTO_REDIS_URL=redis_url), free_port())
    gateway.wait_healthy()

    msg_id = new_id()
    body = envelope("product.updated", PRODUCT)
    url = f"{gateway.base}/webhooks/cloudretailer"
    status, raw = http("POST", url, body, sign_headers(CR_SECRET, msg_id, body))
    assert (status, json.loads(raw)) == (202, {"id": msg_id, "status": "queued"})
    # The same delivery again is recognised, so the first really reached Redis.
    status, raw = http("POST", url, body, sign_headers(CR_SECRET, msg_id, body))
    assert (status, json.loads(raw)) == (200, {"id": msg_id, "status": "duplicate"})
    # And a delivery signed with the wrong source's secret is refused.
    assert gateway.post_webhook(secret=MAGENTO_SECRET)[0] == 401

    started = time.monotonic()
    assert gateway.terminate(within=10) == 0, gateway.stderr()
    assert time.monotonic() - started < 10
    assert "Traceback" not in gateway.stderr()
    assert "gateway_stopped" in {e.get("event") for e in gateway.log_events()}


@pytest.mark.slow
def test_run_with_embedded_redis(start_cli: Callable[..., Running], tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = web_env(CRMAGENTO_DATA_DIR=str(data_dir), CRMAGENTO_WORKER_HEARTBEAT_SECONDS="0.5", **SYNC_ENV)
    assert "CRMAGENTO_REDIS_URL" not in env
    app = start_cli(["run"], env, free_port())
    app.wait_healthy(within=30)

    events = app.log_events()
    started = [e for e in events if e.get("event") == "redis_embedded_started"]
    assert started, app.stderr()
    assert started[0]["url"].startswith("unix://") and Path(started[0]["data_dir"]) == data_dir.resolve()
    redis_pids = redis_servers_using(data_dir.resolve())
    assert redis_pids, "the embedded redis-server should be running from the data dir"

    # Ready means Redis answers and the worker in the same process has sent a heartbeat.
    app.wait_until(lambda: http("GET", f"{app.base}/readyz")[0] == 200, 30, "/readyz answered 200")
    status, raw = http("GET", f"{app.base}/readyz")
    assert json.loads(raw)["status"] == "ready"

    status, body, msg_id = app.post_webhook()
    assert (status, body) == (202, {"id": msg_id, "status": "queued"})
    aof = [p for p in data_dir.rglob("appendonly*") if p.is_file() and p.stat().st_size > 0]
    assert aof, sorted(p.name for p in data_dir.iterdir())
    assert any(msg_id.encode() in p.read_bytes() for p in aof), "the accepted event is in the append-only file"

    assert app.terminate(within=15) == 0, app.stderr()
    assert "Traceback" not in app.stderr()
    names = [e.get("event") for e in app.log_events()]
    assert "redis_embedded_stopped" in names and "worker_stopped" in names
    deadline = time.monotonic() + 5
    while redis_servers_using(data_dir.resolve()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not redis_servers_using(data_dir.resolve()), "redis-server left running after SIGTERM"
    assert all(not Path(f"/proc/{pid}").exists() or _is_zombie(pid) for pid in redis_pids)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True
