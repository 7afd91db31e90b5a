"""Admin sign-in under attack: malformed Authorization headers, guessing, and the address failures count against."""

from __future__ import annotations

import asyncio
from ipaddress import ip_network

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from crmcore.settings import Settings
from gateway.app import create_app
from gateway.authlimit import MAX_FAILURES, FailedAuthLimiter
from tests.conftest import make_settings
from tests.support.signing import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG = {"Authorization": "Bearer wrong-token-0123456789"}


async def _raw(client: TestClient, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request written byte for byte (an HTTP client would refuse to send these headers)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body
    finally:
        writer.close()


@pytest.mark.parametrize("path", ["/admin/status", "/admin/no-such-route", "/admin/jobs"])
@pytest.mark.parametrize(
    "authorization",
    [b"Bearer \xff\xfe\xfa-not-utf8-token", b"Bearer \xc3\x28", b"\xff\xff \xff", b"Bearer  \t "],
    ids=["latin1-bytes", "bad-utf8-pair", "bad-scheme", "blank-token"],
)
async def test_a_malformed_authorization_header_is_a_401_problem(
    gateway: TestClient, caplog: pytest.LogCaptureFixture, path: str, authorization: bytes
) -> None:
    request = b"GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nConnection: close\r\n\r\n" % (
        path.encode(),
        authorization,
    )
    status, headers, body = await _raw(gateway, request)
    assert status == 401
    assert headers["content-type"] == "application/problem+json"
    assert orjson.loads(body)["status"] == 401
    assert "Traceback" not in caplog.text and "unhandled_error" not in caplog.text


async def test_guessing_is_blocked_after_twenty_failures_a_minute(gateway: TestClient) -> None:
    for _ in range(MAX_FAILURES):
        assert (await gateway.get("/admin/status", headers=WRONG)).status == 401
    blocked = await gateway.get("/admin/status", headers=WRONG)
    assert blocked.status == 429
    assert blocked.content_type == "application/problem+json"
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    # While blocked, the right token is refused too: the answer must not tell a guesser it found one.
    assert (await gateway.get("/admin/status", headers=AUTH)).status == 429
    assert (await gateway.get("/admin/unknown", headers=AUTH)).status == 429
    # Everything outside /admin/ is not behind a sign-in and stays open.
    assert (await gateway.get("/healthz")).status == 200


async def test_signed_in_requests_do_not_count(gateway: TestClient) -> None:
    for _ in range(MAX_FAILURES - 1):
        assert (await gateway.get("/admin/status", headers=WRONG)).status == 401
    for _ in range(30):
        assert (await gateway.get("/admin/status", headers=AUTH)).status == 200


async def _gateway(settings: Settings, redis: Redis) -> TestClient:
    client = TestClient(TestServer(create_app(settings, redis=redis)))
    await client.start_server()
    return client


async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(redis_url: str, redis: Redis) -> None:
    client = await _gateway(make_settings(redis_url), redis)
    try:
        for n in range(MAX_FAILURES):
            spoofed = {**WRONG, "X-Forwarded-For": f"203.0.113.{n}"}
            assert (await client.get("/admin/status", headers=spoofed)).status == 401
        fresh = {**AUTH, "X-Forwarded-For": "198.51.100.7"}
        assert (await client.get("/admin/status", headers=fresh)).status == 429
    finally:
        await client.close()


async def test_behind_a_trusted_proxy_each_client_address_counts_alone(redis_url: str, redis: Redis) -> None:
    client = await _gateway(make_settings(redis_url, trusted_proxies=["127.0.0.0/8", "::1"]), redis)
    try:
        guesser = {**WRONG, "X-Forwarded-For": "198.51.100.9, 203.0.113.66"}
        for _ in range(MAX_FAILURES):
            assert (await client.get("/admin/status", headers=guesser)).status == 401
        assert (await client.get("/admin/status", headers=guesser)).status == 429
        # What the guesser writes to the left of the address the proxy appended changes nothing.
        forged = {**WRONG, "X-Forwarded-For": "192.0.2.1, 203.0.113.66"}
        assert (await client.get("/admin/status", headers=forged)).status == 429
        admin = {**AUTH, "X-Forwarded-For": "203.0.113.70"}
        assert (await client.get("/admin/status", headers=admin)).status == 200
    finally:
        await client.close()


def test_a_block_lasts_its_time_and_memory_is_bounded() -> None:
    now = [1000.0]
    limiter = FailedAuthLimiter(
        max_failures=3, window_seconds=60, block_seconds=30, max_addresses=50, clock=lambda: now[0]
    )
    limiter.failed("a")
    now[0] += 61  # the first failure leaves the window
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.retry_after("a") is None
    limiter.failed("a")
    assert limiter.retry_after("a") == 30
    now[0] += 29.5
    assert limiter.retry_after("a") == 1
    now[0] += 1
    assert limiter.retry_after("a") is None

    for n in range(10_000):
        limiter.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter._failures) <= 50


def test_trusted_proxy_networks_of_both_families_parse() -> None:
    settings = make_settings("redis://127.0.0.1:6379/0", trusted_proxies=["10.0.0.0/8", "2001:db8::/32", "::1"])
    assert [ip_network(p, strict=False) for p in settings.trusted_proxies][1].version == 6
