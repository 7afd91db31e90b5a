"""crmcore.logs: every line on stderr is one JSON object, and no secret, token or signature reaches it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.signing import (
    ADMIN_TOKEN,
    CR_SECRET,
    CR_SECRET_NEXT,
    MAGENTO_SECRET,
    envelope,
    new_id,
    sign_headers,
)
from tests.test_cli import CLI, Running, clean_env, free_port, http, web_env

WRONG_TOKEN = "wrong-admin-token-0123456789abcdef"
PRODUCT = {"product_id": "P-log", "sku": "SKU-log"}


def _json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON log line: {line!r}") from None
        assert isinstance(value, dict) and "event" in value and "level" in value and "timestamp" in value, line
        parsed.append(value)
    return parsed


def _assert_no_leak(text: str, forbidden: list[str]) -> None:
    for value in forbidden:
        assert value not in text, f"{value[:12]}... reached the logs"


@pytest.fixture
def gateway_process(tmp_path: Path, redis_url: str) -> Iterator[Running]:
    port = free_port()
    stderr_path = tmp_path / "serve.stderr"
    env = web_env(
        CRMAGENTO_REDIS_URL=redis_url,
        CRMAGENTO_CR_WEBHOOK_SECRETS=f"{CR_SECRET}, {CR_SECRET_NEXT}",
        CRMAGENTO_LOG_LEVEL="DEBUG",  # the most output there can be
    )
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    running = Running(process, stderr_path, f"http://127.0.0.1:{port}")
    yield running
    if process.poll() is None:
        process.kill()
        process.wait(10)


@pytest.mark.slow
def test_gateway_logs_are_json_and_leak_nothing(gateway_process: Running) -> None:
    gateway = gateway_process
    gateway.wait_healthy()
    sent_signatures: list[str] = []

    # 1. A webhook signed with the wrong secret (Magento's secret on the Cloud Retailer endpoint).
    body = envelope("product.updated", PRODUCT)
    bad = sign_headers(MAGENTO_SECRET, new_id(), body)
    sent_signatures.append(bad["webhook-signature"])
    assert http("POST", f"{gateway.base}/webhooks/cloudretailer", body, bad)[0] == 401

    # 2. A header carrying a good and a bogus signature, plus a stale one: refused for other reasons.
    stale = sign_headers(CR_SECRET, new_id(), body, timestamp=1_000_000_000)
    sent_signatures.append(stale["webhook-signature"])
    assert http("POST", f"{gateway.base}/webhooks/cloudretailer", body, stale)[0] == 401

    # 3. A good one.
    msg_id = new_id()
    good = sign_headers(CR_SECRET_NEXT, msg_id, body)
    sent_signatures.append(good["webhook-signature"])
    status, raw = http("POST", f"{gateway.base}/webhooks/cloudretailer", body, good)
    assert (status, json.loads(raw)["status"]) == (202, "queued")

    # 4. The admin API with a wrong token, and with the right one.
    assert http("GET", f"{gateway.base}/admin/status", None, {"Authorization": f"Bearer {WRONG_TOKEN}"})[0] == 401
    assert http("GET", f"{gateway.base}/admin/status", None, {"Authorization": f"Bearer {ADMIN_TOKEN}"})[0] == 200

    # 5. Broken HTTP requests whose bad header is the signature or the admin token: aiohttp's own error log
    #    would quote the offending raw header line; the gateway logs one line naming the error only.
    port = int(gateway.base.rsplit(":", 1)[1])
    for header in (f"webhook-signature: {good['webhook-signature']}", f"Authorization: Bearer {ADMIN_TOKEN}"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            raw_request = (
                f"POST /webhooks/cloudretailer HTTP/1.1\r\nHost: x\r\n{header}\x01\r\nContent-Length: 2\r\n\r\n{{}}"
            )
            sock.sendall(raw_request.encode())
            assert sock.recv(4096).startswith(b"HTTP/1.0 400")

    assert gateway.terminate(within=10) == 0
    output = gateway.stderr()
    events = _json_lines(output)
    names = [e["event"] for e in events]
    assert "gateway_listening" in names and "gateway_stopped" in names
    refused = [e for e in events if e["event"] == "webhook_refused"]
    assert len(refused) == 2 and all(e["source"] == "cloudretailer" and e["reason"] for e in refused)
    broken = [e for e in events if e["event"] == "request_unparsable"]
    assert len(broken) == 2 and all(e["error"] == "BadHttpMessage" and "exception" not in e for e in broken), output
    assert not [e for e in events if e["logger"] == "aiohttp.server"], output

    forbidden = [CR_SECRET, CR_SECRET_NEXT, MAGENTO_SECRET, ADMIN_TOKEN, WRONG_TOKEN]
    forbidden += [s.removeprefix("whsec_") for s in (CR_SECRET, CR_SECRET_NEXT, MAGENTO_SECRET)]
    forbidden += sent_signatures + [s.removeprefix("v1,") for s in sent_signatures]
    _assert_no_leak(output, forbidden)


# The logging set-up in a fresh interpreter, so the test session's own logging is left alone.
_SCRIPT = textwrap.dedent(
    """
    import logging, sys
    import structlog
    from crmcore.logs import configure_logging

    configure_logging("DEBUG", "json")
    log = structlog.get_logger("probe")
    secret, token, signature, password = sys.argv[1:5]
    log.info(
        "probe_keys",
        secret=secret,
        cr_webhook_secrets=[secret],
        admin_token=token,
        Authorization="Bearer " + token,
        redis_url="redis://:" + password + "@h:6379/0",
        password=password,
        cr_api_key=token,
        **{"webhook-signature": signature, "Webhook_Signature": signature},
        headers={"webhook-signature": signature, "Authorization": "Bearer " + token, "webhook-id": "msg_1"},
        kept="visible-value",
    )
    structlog.contextvars.bind_contextvars(event_id="msg_ctx", token=token)
    log.warning("probe_context")
    structlog.contextvars.clear_contextvars()
    logging.getLogger("aiohttp.server").error("stdlib line with %s", "an argument")
    try:
        detail = "Invalid header: b'webhook-signature: " + signature + "'\\nAuthorization: Bearer " + token
        raise RuntimeError("boom\\n" + detail)
    except RuntimeError:
        log.exception("probe_exception")
    """
)


def test_redaction_and_one_json_object_per_line(tmp_path: Path) -> None:
    signature = sign_headers(CR_SECRET, new_id(), b"{}")["webhook-signature"]
    password = "redis-pw-in-log-probe"
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, CR_SECRET, ADMIN_TOKEN, signature, password],
        env=clean_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    events = {e["event"]: e for e in _json_lines(result.stderr)}
    assert set(events) == {"probe_keys", "probe_context", "stdlib line with an argument", "probe_exception"}

    keys = events["probe_keys"]
    for key in (
        "secret",
        "cr_webhook_secrets",
        "admin_token",
        "Authorization",
        "redis_url",
        "password",
        "cr_api_key",
        "webhook-signature",
        "Webhook_Signature",
    ):
        assert keys[key] == "[redacted]", key
    assert keys["headers"] == {
        "webhook-signature": "[redacted]",
        "Authorization": "[redacted]",
        "webhook-id": "msg_1",
    }
    assert keys["kept"] == "visible-value" and keys["logger"] == "probe" and keys["level"] == "info"
    assert events["probe_context"]["event_id"] == "msg_ctx" and events["probe_context"]["token"] == "[redacted]"
    assert events["stdlib line with an argument"]["logger"] == "aiohttp.server"
    exception = events["probe_exception"]["exception"]
    assert "RuntimeError: boom" in exception
    assert "b'webhook-signature: [redacted]" in exception and "Authorization: [redacted]" in exception

    _assert_no_leak(
        result.stderr,
        [CR_SECRET, CR_SECRET.removeprefix("whsec_"), ADMIN_TOKEN, signature, signature[3:], password],
    )
