"""gateway.signatures against the Standard Webhooks reference library (`standardwebhooks`), both directions."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import orjson
import pytest
from multidict import CIMultiDict
from standardwebhooks.webhooks import Webhook

from crmcore.settings import decode_webhook_secret
from gateway.signatures import MAX_SIGNATURES, SignatureError, Verifier, sign, signed_headers
from tests.support.signing import CR_SECRET, CR_SECRET_NEXT, MAGENTO_SECRET, envelope, new_id, sign_headers

BODY = envelope("product.updated", {"product_id": "P-1", "sku": "SKU-1"})
NOW = 1_750_000_000


def _verifier(*secrets: str, tolerance: int = 300) -> Verifier:
    return Verifier.from_secrets(list(secrets or (CR_SECRET,)), tolerance)


def _refused(verifier: Verifier, headers: dict[str, str], body: bytes = BODY, now: float | None = None) -> str:
    with pytest.raises(SignatureError) as caught:
        verifier.verify(headers, body, now=now)
    message = str(caught.value)
    assert message, "a refusal must say why"
    for secret in (CR_SECRET, CR_SECRET_NEXT, MAGENTO_SECRET):
        assert secret not in message and secret.removeprefix("whsec_") not in message
    return message


@pytest.mark.parametrize(
    "body",
    [
        BODY,
        envelope("customer.updated", {"name": "Zoë Ünïcödé 北京", "note": "a.b.c"}),
        b"{}",
        orjson.dumps({"type": "x", "data": {"blob": "y" * 50_000}}),
    ],
    ids=["envelope", "unicode", "empty-object", "large"],
)
def test_accepts_what_the_reference_library_signs(body: bytes) -> None:
    msg_id = new_id()
    headers = sign_headers(CR_SECRET, msg_id, body)
    signed = _verifier().verify(headers, body)
    assert signed.msg_id == msg_id
    assert signed.timestamp == int(headers["webhook-timestamp"])


def test_reference_library_accepts_our_signatures() -> None:
    msg_id = new_id()
    ts = int(time.time())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(CR_SECRET, msg_id, ts, BODY),
    }
    assert Webhook(CR_SECRET).verify(BODY, headers) == orjson.loads(BODY)
    # signed_headers() (used by the sandboxes, demo and benchmarks) too.
    assert Webhook(MAGENTO_SECRET).verify(BODY, signed_headers(MAGENTO_SECRET, msg_id, BODY)) == orjson.loads(BODY)


def test_our_signature_is_byte_identical_to_the_reference() -> None:
    msg_id = new_id()
    ts = datetime.fromtimestamp(NOW, tz=UTC)
    assert sign(CR_SECRET, msg_id, NOW, BODY) == Webhook(CR_SECRET).sign(msg_id, ts, BODY.decode())


def test_reference_library_rejects_our_signature_with_another_secret() -> None:
    # Guards the check above: the reference verifier really does refuse a wrong key.
    msg_id = new_id()
    headers = signed_headers(MAGENTO_SECRET, msg_id, BODY)
    with pytest.raises(Exception, match="No matching signature found"):
        Webhook(CR_SECRET).verify(BODY, headers)


@pytest.mark.parametrize("signer", [CR_SECRET, CR_SECRET_NEXT])
def test_rotation_either_secret_signs(signer: str) -> None:
    verifier = _verifier(CR_SECRET, CR_SECRET_NEXT)
    msg_id = new_id()
    assert verifier.verify(sign_headers(signer, msg_id, BODY), BODY).msg_id == msg_id


def test_rotation_a_secret_outside_the_set_is_refused() -> None:
    verifier = _verifier(CR_SECRET, CR_SECRET_NEXT)
    message = _refused(verifier, sign_headers(MAGENTO_SECRET, new_id(), BODY))
    assert "no signature matches" in message


@pytest.mark.parametrize("valid_first", [True, False])
def test_several_signatures_in_one_header_one_valid_passes(valid_first: bool) -> None:
    msg_id = new_id()
    headers = sign_headers(CR_SECRET_NEXT, msg_id, BODY)
    wrong = sign(MAGENTO_SECRET, msg_id, int(headers["webhook-timestamp"]), BODY)
    other_version = "v1a," + base64.b64encode(b"x" * 64).decode()
    parts = [headers["webhook-signature"], wrong, other_version]
    headers["webhook-signature"] = " ".join(parts if valid_first else parts[::-1])
    # Only the old secret is configured here: the header carries a signature by the new one too, which must
    # not hurt. And the other way round.
    assert _verifier(CR_SECRET_NEXT).verify(headers, BODY).msg_id == msg_id
    assert "no signature matches" in _refused(_verifier(CR_SECRET), headers)


def test_valid_signature_after_max_minus_one_bogus_ones_still_passes() -> None:
    msg_id = new_id()
    headers = sign_headers(CR_SECRET, msg_id, BODY)
    bogus = ["v1," + base64.b64encode(bytes([i]) * 32).decode() for i in range(MAX_SIGNATURES - 1)]
    headers["webhook-signature"] = " ".join([*bogus, headers["webhook-signature"]])
    assert _verifier().verify(headers, BODY).msg_id == msg_id


def test_header_names_are_case_insensitive_with_a_cimultidict() -> None:
    msg_id = new_id()
    signed = sign_headers(CR_SECRET, msg_id, BODY)
    headers = CIMultiDict({k.title(): v for k, v in signed.items()})
    assert _verifier().verify(headers, BODY).msg_id == msg_id


def test_tampered_body_fails() -> None:
    headers = sign_headers(CR_SECRET, new_id(), BODY)
    tampered = BODY.replace(b"SKU-1", b"SKU-2")
    assert tampered != BODY
    assert "no signature matches" in _refused(_verifier(), headers, tampered)
    assert "no signature matches" in _refused(_verifier(), headers, BODY + b" ")


def test_tampered_id_fails() -> None:
    headers = sign_headers(CR_SECRET, new_id(), BODY)
    headers["webhook-id"] = headers["webhook-id"] + "x"
    assert "no signature matches" in _refused(_verifier(), headers)


def test_tampered_timestamp_fails() -> None:
    headers = sign_headers(CR_SECRET, new_id(), BODY, timestamp=NOW)
    headers["webhook-timestamp"] = str(NOW - 1)  # still well inside the tolerance: only the HMAC can catch it
    assert "no signature matches" in _refused(_verifier(), headers, now=NOW)


@pytest.mark.parametrize("direction", [-1, 1], ids=["past", "future"])
def test_timestamp_exactly_at_tolerance_passes_and_one_beyond_fails(direction: int) -> None:
    verifier = _verifier()
    headers = sign_headers(CR_SECRET, new_id(), BODY, timestamp=NOW)
    # direction -1: the delivery is 300 s old; +1: it claims to be from 300 s in the future.
    assert verifier.verify(headers, BODY, now=NOW - direction * 300).timestamp == NOW
    message = _refused(verifier, headers, now=NOW - direction * 301)
    assert "webhook-timestamp" in message and "300 s" in message
    # A fraction of a second past the limit is beyond it too.
    _refused(verifier, headers, now=NOW - direction * 300.5)


def test_tolerance_setting_is_honoured() -> None:
    verifier = _verifier(tolerance=5)
    headers = sign_headers(CR_SECRET, new_id(), BODY, timestamp=NOW)
    assert verifier.verify(headers, BODY, now=NOW + 5)
    assert "5 s" in _refused(verifier, headers, now=NOW + 6)


def test_default_clock_refuses_a_stale_reference_signature() -> None:
    headers = sign_headers(CR_SECRET, new_id(), BODY, timestamp=time.time() - 301)
    assert "webhook-timestamp" in _refused(_verifier(), headers)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
@pytest.mark.parametrize("how", ["absent", "empty"])
def test_missing_headers_are_refused(missing: str, how: str) -> None:
    headers = sign_headers(CR_SECRET, new_id(), BODY)
    if how == "absent":
        del headers[missing]
    else:
        headers[missing] = ""
    message = _refused(_verifier(), headers)
    assert "webhook-id, webhook-timestamp and webhook-signature headers are required" in message


@pytest.mark.parametrize(
    "timestamp",
    [
        "soon",
        "1750000000.5",
        "1.75e9",
        "-1750000000",
        "+1750000000",
        "1_750_000_000",
        "\u0661\u0667\u0665" + "\u0660" * 7,
        "9" * 400,
    ],
    ids=["word", "float", "exponent", "negative", "plus", "underscores", "arabic-digits", "huge"],
)
def test_non_integer_timestamp_is_refused(timestamp: str) -> None:
    headers = sign_headers(CR_SECRET, new_id(), BODY)
    headers["webhook-timestamp"] = timestamp
    message = _refused(_verifier(), headers)
    assert message == "webhook-timestamp must be an integer of seconds since the epoch"


@pytest.mark.parametrize(
    "value",
    ["v2,abcd", "v1,", "v1", "abcd", "v1a,AAAA", " ", "V1," + base64.b64encode(b"x" * 32).decode()],
    ids=["other-version", "v1-empty", "v1-no-comma", "no-version", "v1a", "blank", "uppercase"],
)
def test_no_v1_signature_is_refused(value: str) -> None:
    headers = sign_headers(CR_SECRET, new_id(), BODY)
    headers["webhook-signature"] = value
    assert _refused(_verifier(), headers) == "webhook-signature holds no v1 signature"


@pytest.mark.parametrize(
    "garbage", ["!!!not-base64!!!", "AAA", "ÿÿÿÿ", "a b"], ids=["symbols", "padding", "latin1", "space"]
)
def test_garbage_base64_is_refused_with_a_clear_message(garbage: str) -> None:
    headers = sign_headers(CR_SECRET, new_id(), BODY)
    headers["webhook-signature"] = "v1," + garbage
    assert _refused(_verifier(), headers) == "webhook-signature v1 value is not valid base64"


def test_well_formed_base64_of_the_wrong_length_is_just_a_mismatch() -> None:
    headers = sign_headers(CR_SECRET, new_id(), BODY)
    headers["webhook-signature"] = "v1,AAAA"
    assert "no signature matches" in _refused(_verifier(), headers)


@pytest.mark.parametrize("msg_id", ["x" * 257, "msg\nid", "msg\x00id"], ids=["too-long", "newline", "nul"])
def test_unprintable_or_oversized_id_is_refused(msg_id: str) -> None:
    headers = sign_headers(CR_SECRET, "placeholder", BODY)
    headers["webhook-id"] = msg_id
    assert "webhook-id must be" in _refused(_verifier(), headers)


def test_empty_secret_list_rejects_everything() -> None:
    verifier = Verifier.from_secrets([])
    for secret in (CR_SECRET, MAGENTO_SECRET):
        headers = sign_headers(secret, new_id(), BODY)
        assert "no secret is configured" in _refused(verifier, headers)
    # Even a request with no headers at all gets the same refusal, not a crash.
    assert "no secret is configured" in _refused(verifier, {})
    assert "no secret is configured" in _refused(Verifier(()), {})


def test_repr_shows_no_key_material() -> None:
    verifier = _verifier(CR_SECRET, CR_SECRET_NEXT)
    for text in (repr(verifier), str(verifier), f"{verifier!r} {verifier}"):
        assert "2 hidden" in text
        for secret in (CR_SECRET, CR_SECRET_NEXT):
            key = decode_webhook_secret(secret)
            for leak in (secret, secret.removeprefix("whsec_"), repr(key), key.decode(errors="ignore"), key.hex()):
                assert leak not in text, leak
