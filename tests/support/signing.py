"""Test secrets and a signed-delivery helper. Signatures come from the standardwebhooks reference library,
so the gateway's verifier is checked against an independent implementation on every request."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook

from gateway.signatures import sign

CR_SECRET = "whsec_" + base64.b64encode(b"cloud-retailer-test-secret-0001").decode()
CR_SECRET_NEXT = "whsec_" + base64.b64encode(b"cloud-retailer-test-secret-0002").decode()
MAGENTO_SECRET = "whsec_" + base64.b64encode(b"magento-callback-test-secret-01").decode()
ADMIN_TOKEN = "admin-token-for-tests-0123456789"

SECRETS = {"cloudretailer": CR_SECRET, "magento": MAGENTO_SECRET}


def envelope(event_type: str, data: dict[str, Any], **extra: Any) -> bytes:
    return orjson.dumps({"type": event_type, "timestamp": datetime.now(UTC).isoformat(), "data": data, **extra})


def sign_headers(secret: str, msg_id: str, body: bytes, timestamp: float | None = None) -> dict[str, str]:
    ts = datetime.fromtimestamp(time.time() if timestamp is None else timestamp, tz=UTC)
    try:
        signature = Webhook(secret).sign(msg_id, ts, body.decode())
    except UnicodeDecodeError:  # the reference signer takes text only; bytes that are not UTF-8 use ours
        signature = sign(secret, msg_id, int(ts.timestamp()), body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(ts.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def new_id() -> str:
    return f"msg_{uuid.uuid4().hex}"
