"""Standard Webhooks signature verification (https://www.standardwebhooks.com/).

Our own verifier rather than the `standardwebhooks` package on the hot path: it keeps the decoded keys
of several secrets (rotation), returns *why* a delivery was refused, and avoids parsing the body twice.
`tests/test_signatures.py` checks it against the reference library's signer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from crmcore.settings import decode_webhook_secret

MAX_ID_LENGTH = 256
# More signatures than this in one header is not a rotation, it is someone guessing.
MAX_SIGNATURES = 10
# Seconds since the epoch: 10 digits until the year 2286.
MAX_TIMESTAMP_DIGITS = 12


class SignatureError(Exception):
    """The delivery is not authentic. The message is safe to show to the sender (no secret in it)."""


class SignedHeaders(NamedTuple):
    msg_id: str
    timestamp: int


class PendingSignature(NamedTuple):
    """What the headers say, checked; the body has yet to match one of the candidates."""

    msg_id: str
    timestamp: int
    candidates: tuple[bytes, ...]


@dataclass(frozen=True, repr=False)
class Verifier:
    keys: tuple[bytes, ...]
    tolerance_seconds: int = 300
    # One HMAC per key with the key already absorbed; each delivery copies it (hmac's documented way to sign
    # many messages with one key) instead of setting the key up again: about half the cost of hmac.digest.
    _keyed: tuple[hmac.HMAC, ...] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keyed", tuple(hmac.new(key, digestmod=hashlib.sha256) for key in self.keys))

    @classmethod
    def from_secrets(cls, secrets: Sequence[str], tolerance_seconds: int = 300) -> Verifier:
        return cls(tuple(decode_webhook_secret(s) for s in secrets), tolerance_seconds)

    def __repr__(self) -> str:
        return f"Verifier(keys=<{len(self.keys)} hidden>, tolerance_seconds={self.tolerance_seconds})"

    def verify(self, headers: Mapping[str, str], body: bytes, now: float | None = None) -> SignedHeaders:
        return self.check_body(self.check_headers(headers, now), body)

    def check_headers(self, headers: Mapping[str, str], now: float | None = None) -> PendingSignature:
        """Everything that does not need the body: presence, format and the timestamp window. A delivery that
        fails here is refused before its body is read."""
        # An empty secret list refuses everything: a missing config must never mean "accept all".
        if not self.keys:
            raise SignatureError("no secret is configured for this source; every delivery is refused")
        msg_id = headers.get("webhook-id")
        ts_raw = headers.get("webhook-timestamp")
        sig_header = headers.get("webhook-signature")
        if not msg_id or not ts_raw or not sig_header:
            raise SignatureError("webhook-id, webhook-timestamp and webhook-signature headers are required")
        if len(msg_id) > MAX_ID_LENGTH or not msg_id.isprintable():
            raise SignatureError(f"webhook-id must be 1 to {MAX_ID_LENGTH} printable characters")
        timestamp = _timestamp(ts_raw, time.time() if now is None else now, self.tolerance_seconds)
        return PendingSignature(msg_id, timestamp, _candidates(sig_header))

    def check_body(self, pending: PendingSignature, body: bytes) -> SignedHeaders:
        signed = b"%s.%d.%s" % (pending.msg_id.encode(), pending.timestamp, body)
        for keyed in self._keyed:
            mac = keyed.copy()
            mac.update(signed)
            expected = mac.digest()
            # Compare against every candidate so the time taken does not reveal which one matched.
            matched = False
            for candidate in pending.candidates:
                matched |= hmac.compare_digest(expected, candidate)
            if matched:
                return SignedHeaders(msg_id=pending.msg_id, timestamp=pending.timestamp)
        raise SignatureError("no signature matches any configured secret")


def _timestamp(raw: str, now: float, tolerance_seconds: int) -> int:
    # ASCII digits only, bounded: int() would also take "1_700_000_000", "+1", non-ASCII digits, and a 400-digit
    # value that overflows the float comparison below (an unhandled error instead of a 401).
    if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_TIMESTAMP_DIGITS:
        raise SignatureError("webhook-timestamp must be an integer of seconds since the epoch")
    timestamp = int(raw)
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureError(f"webhook-timestamp is more than {tolerance_seconds} s away from the gateway's clock")
    return timestamp


def _candidates(header: str) -> tuple[bytes, ...]:
    """The decoded v1 signatures of a `webhook-signature` header (others are ignored, as the spec says)."""
    candidates = []
    malformed = False
    for part in header.split(" ")[:MAX_SIGNATURES]:
        version, _, value = part.partition(",")
        if version == "v1" and value:
            try:
                # base64.b64decode(value, validate=True) without its Python wrapper.
                candidates.append(binascii.a2b_base64(value, strict_mode=True))
            except ValueError:
                malformed = True
    if not candidates:
        if malformed:
            raise SignatureError("webhook-signature v1 value is not valid base64")
        raise SignatureError("webhook-signature holds no v1 signature")
    return tuple(candidates)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Produce a `webhook-signature` value; used by the sandboxes, the demo and the benchmarks."""
    key = decode_webhook_secret(secret)
    digest = hmac.digest(key, b"%s.%d.%s" % (msg_id.encode(), timestamp, body), "sha256")
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
        "content-type": "application/json",
    }
