"""The webhook path validates a well-formed event in one pass (`TYPED_ENVELOPES`) and explains a refusal with
two steps (`Envelope`, then the type's data model). The two must accept exactly the same bodies and read them
the same way, or a body could be queued that the explanation calls invalid (or refused without a reason)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from crmcore.events import (
    CATALOGUE,
    EVENT_TYPES,
    TYPED_ENVELOPES,
    CloudRetailerEventType,
    Envelope,
    MagentoEventType,
    Source,
    data_model,
)

FIELDS = ["product_id", "sku", "store_id", "on_hand", "category_id", "customer_id", "order_id", "increment_id"]

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False),
    st.text(max_size=6),
    st.sampled_from(["P-1", " SKU-1 ", "", "   ", "7", "7.0", "0007", "x" * 129]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
types = st.one_of(
    st.sampled_from(sorted({t for by_type in CATALOGUE.values() for t in by_type})),
    st.sampled_from(["", "product.tagged", "x" * 101]),
    st.integers(),
    st.none(),
)
timestamps = st.one_of(
    st.sampled_from(["2026-11-29T12:00:00Z", "2026-11-29T12:00:00+02:00", "2026-11-29", "yesterday", "", "1764417600"]),
    st.integers(min_value=0, max_value=2**40),
    st.none(),
)
data = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=5),
    st.lists(st.integers(), max_size=2),
    st.text(max_size=3),
    st.none(),
)


def _two_steps(source: Source, body: bytes) -> tuple[str, datetime, dict[str, Any]] | None:
    try:
        envelope = Envelope.model_validate_json(body)
    except ValidationError:
        return None
    model = data_model(source, envelope.type)
    if model is None:
        return None
    try:
        parsed = model.model_validate(envelope.data)
    except ValidationError:
        return None
    return envelope.type, envelope.timestamp, parsed.model_dump()


def _one_pass(source: Source, body: bytes) -> tuple[str, datetime, dict[str, Any]] | None:
    try:
        typed = TYPED_ENVELOPES[source].validate_json(body)
    except ValidationError:
        return None
    return typed.type, typed.timestamp, typed.data.model_dump()


@settings(max_examples=1500, deadline=None)
@given(
    source=st.sampled_from(list(Source)),
    event_type=types,
    timestamp=timestamps,
    payload=data,
    drop=st.sets(st.sampled_from(["type", "timestamp", "data"]), max_size=1),
    extra=st.booleans(),
)
def test_one_pass_and_two_steps_agree(
    source: Source, event_type: object, timestamp: object, payload: object, drop: set[str], extra: bool
) -> None:
    doc: dict[str, object] = {"type": event_type, "timestamp": timestamp, "data": payload}
    for key in drop:
        del doc[key]
    if extra:
        doc["delivered_by"] = "test"
    body = json.dumps(doc).encode()  # not orjson: integers past 64 bits must reach the validators too
    assert _one_pass(source, body) == _two_steps(source, body)


SAMPLES = {
    "product": {"product_id": "P-1", "sku": "SKU-1"},
    "inventory": {"sku": "SKU-1", "store_id": "S1", "on_hand": 3},
    "category": {"category_id": 4},
    "customer": {"customer_id": 9},
    "order": {"order_id": 5, "increment_id": "0005"},
    "style": {"style_id": "ST-1", "code": "STY-000001"},
}


def _valid(source: Source, event_type: str) -> dict[str, object]:
    payload = dict(SAMPLES[CATALOGUE[source][event_type].KIND])
    if source is Source.CLOUDRETAILER:  # Cloud Retailer's ids are strings, Magento's integers
        payload = {k: str(v) if k.endswith("_id") else v for k, v in payload.items()}
    return {"type": event_type, "timestamp": "2026-11-29T12:00:00Z", "data": payload}


def test_every_catalogue_type_takes_the_one_pass() -> None:
    for source, by_type in CATALOGUE.items():
        for event_type in by_type:
            body = orjson.dumps(_valid(source, event_type))
            one = _one_pass(source, body)
            assert one is not None, (source, event_type)
            assert one == _two_steps(source, body)


def test_the_event_type_enums_are_the_catalogue() -> None:
    assert EVENT_TYPES == {Source.CLOUDRETAILER: CloudRetailerEventType, Source.MAGENTO: MagentoEventType}
    for source, types in EVENT_TYPES.items():
        assert list(CATALOGUE[source]) == list(types)
    # The one pass keeps `type` a plain string, as the two-step path reads it (metrics label, queue row).
    body = orjson.dumps(_valid(Source.MAGENTO, MagentoEventType.ORDER_COMPLETED))
    typed = TYPED_ENVELOPES[Source.MAGENTO].validate_json(body)
    assert type(typed.type) is str and typed.type == MagentoEventType.ORDER_COMPLETED


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[Source, bytes]:
    """A valid event with at most one thing changed: where the two paths could plausibly part."""
    source = draw(st.sampled_from(list(Source)))
    doc = _valid(source, draw(st.sampled_from(sorted(CATALOGUE[source]))))
    payload: dict[str, object] = doc["data"]  # type: ignore[assignment]
    change = draw(st.sampled_from(["none", "set", "drop", "add", "timestamp", "type"]))
    key = draw(st.sampled_from(sorted(payload)))
    if change == "set":
        payload[key] = draw(values)
    elif change == "drop":
        del payload[key]
    elif change == "add":
        payload[draw(st.sampled_from(FIELDS))] = draw(values)
    elif change == "timestamp":
        doc["timestamp"] = draw(timestamps)
    elif change == "type":
        doc["type"] = draw(types)
    return source, json.dumps(doc).encode()


@settings(max_examples=1500, deadline=None)
@given(event=near_valid())
def test_near_valid_events_agree(event: tuple[Source, bytes]) -> None:
    source, body = event
    assert _one_pass(source, body) == _two_steps(source, body)
