"""The webhook event catalogue: the event types of each source (`CloudRetailerEventType`, `MagentoEventType`),
the envelope, one data model per event type, and the entity each one is about.

Events are thin change signals: the worker fetches the entity's current state from its source system, so
a data model carries only what identifies the entity. Unknown extra fields are tolerated (senders add
fields over time) but are not stored.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, TypeAdapter, create_model
from pydantic_core import PydanticCustomError

from crmcore import keys

# C0 (NUL included), DEL and C1. An id names Redis keys, log lines and the dashboard's text: none of those
# has a use for a control character, and each would show it wrong or not at all.
_CONTROL = r"\x00-\x1f\x7f-\x9f"
_CONTROL_CHAR = re.compile(f"[{_CONTROL}]")
# The rule openapi.yaml states for CrId, Sku and increment_id, spelled once (tests/test_hostile_ids.py compares):
# no control character anywhere, and at least one character that is neither a control nor white space (what
# `strip_whitespace` and `min_length=1` leave to check).
ID_PATTERN = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"


def _printable(value: object) -> object:
    # Checked before stripping: a control character at either end is refused, not quietly stripped, so the rule
    # is the spec's pattern over the value as sent.
    if isinstance(value, str) and _CONTROL_CHAR.search(value) is not None:
        raise PydanticCustomError("printable", "must be printable: no control characters")
    return value


# Strings of 1 to max_length printable characters, surrounding white space stripped.
_PRINTABLE = BeforeValidator(_printable)
CrId = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True), _PRINTABLE]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True), _PRINTABLE]
IncrementId = Annotated[str, StringConstraints(min_length=1, max_length=50, strip_whitespace=True), _PRINTABLE]
MagentoId = Annotated[int, Field(gt=0, lt=2**63, strict=True)]


class Source(StrEnum):
    CLOUDRETAILER = "cloudretailer"
    MAGENTO = "magento"


class CloudRetailerEventType(StrEnum):
    """The `type` of a Cloud Retailer webhook this build handles (docs/cloudretailer-api.md)."""

    PRODUCT_CREATED = "product.created"
    PRODUCT_UPDATED = "product.updated"
    PRODUCT_DELETED = "product.deleted"
    PRODUCT_IMAGES_UPDATED = "product.images.updated"
    INVENTORY_UPDATED = "inventory.updated"
    CATEGORY_CREATED = "category.created"
    CATEGORY_UPDATED = "category.updated"
    CUSTOMER_CREATED = "customer.created"
    CUSTOMER_UPDATED = "customer.updated"
    STYLE_CREATED = "style.created"
    STYLE_UPDATED = "style.updated"
    STYLE_DELETED = "style.deleted"


class MagentoEventType(StrEnum):
    """The `type` of a Magento module callback (docs/magento-module.md). Two share their name with a Cloud
    Retailer type but not their data: a type means something only together with its source."""

    ORDER_COMPLETED = "order.completed"
    CUSTOMER_CREATED = "customer.created"
    CATEGORY_CREATED = "category.created"


EventType = CloudRetailerEventType | MagentoEventType
# A member equals its string, so it can be passed wherever a type is a `str` (handlers, the registry, records).
EVENT_TYPES: dict[Source, type[CloudRetailerEventType] | type[MagentoEventType]] = {
    Source.CLOUDRETAILER: CloudRetailerEventType,
    Source.MAGENTO: MagentoEventType,
}


class Envelope(BaseModel):
    """`{"type", "timestamp", "data"}`; `data` is validated against the type's model afterwards."""

    model_config = ConfigDict(extra="ignore")

    type: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    timestamp: datetime
    data: dict[str, Any]


class EventData(BaseModel):
    """Subclasses name the entity they are about: `{source}:{KIND}:{KEY fields, encoded, joined by ':'}`. All events
    about one entity share its queue (and so are coalesced and handled in order)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    KIND: ClassVar[str]
    KEY: ClassVar[tuple[str, ...]]

    def entity(self, source: Source) -> str:
        """Each key field percent-encoded (`keys.entity_name`), so an id can never name another entity's keys."""
        return keys.entity_name(source.value, self.KIND, [str(getattr(self, f)) for f in self.KEY])


class ProductEvent(EventData):
    KIND = "product"
    KEY = ("product_id",)
    product_id: CrId
    sku: Sku


class StyleEvent(EventData):
    """A style (the parent of variants) changed: created, its fields or its set of variants, or deleted."""

    KIND = "style"
    KEY = ("style_id",)
    style_id: CrId
    code: Sku | None = None


class InventoryEvent(EventData):
    KIND = "inventory"
    KEY = ("store_id", "sku")
    sku: Sku
    store_id: CrId
    on_hand: float | None = None


class CategoryEvent(EventData):
    KIND = "category"
    KEY = ("category_id",)
    category_id: CrId


class CustomerEvent(EventData):
    KIND = "customer"
    KEY = ("customer_id",)
    customer_id: CrId


class MagentoOrderEvent(EventData):
    KIND = "order"
    KEY = ("order_id",)
    order_id: MagentoId
    increment_id: IncrementId


class MagentoCustomerEvent(EventData):
    KIND = "customer"
    KEY = ("customer_id",)
    customer_id: MagentoId


class MagentoCategoryEvent(EventData):
    KIND = "category"
    KEY = ("category_id",)
    category_id: MagentoId


CATALOGUE: dict[Source, dict[str, type[EventData]]] = {
    Source.CLOUDRETAILER: {
        CloudRetailerEventType.PRODUCT_CREATED: ProductEvent,
        CloudRetailerEventType.PRODUCT_UPDATED: ProductEvent,
        CloudRetailerEventType.PRODUCT_DELETED: ProductEvent,
        CloudRetailerEventType.PRODUCT_IMAGES_UPDATED: ProductEvent,
        CloudRetailerEventType.INVENTORY_UPDATED: InventoryEvent,
        CloudRetailerEventType.CATEGORY_CREATED: CategoryEvent,
        CloudRetailerEventType.CATEGORY_UPDATED: CategoryEvent,
        CloudRetailerEventType.CUSTOMER_CREATED: CustomerEvent,
        CloudRetailerEventType.CUSTOMER_UPDATED: CustomerEvent,
        CloudRetailerEventType.STYLE_CREATED: StyleEvent,
        CloudRetailerEventType.STYLE_UPDATED: StyleEvent,
        CloudRetailerEventType.STYLE_DELETED: StyleEvent,
    },
    Source.MAGENTO: {
        MagentoEventType.ORDER_COMPLETED: MagentoOrderEvent,
        MagentoEventType.CUSTOMER_CREATED: MagentoCustomerEvent,
        MagentoEventType.CATEGORY_CREATED: MagentoCategoryEvent,
    },
}


def data_model(source: Source, event_type: str) -> type[EventData] | None:
    return CATALOGUE[source].get(event_type)


class TypedEnvelope(BaseModel):
    """An envelope whose `data` is already its type's model (see `TYPED_ENVELOPES`)."""

    model_config = ConfigDict(extra="ignore")

    type: str
    timestamp: datetime
    data: EventData


def _typed_envelopes(source: Source) -> TypeAdapter[TypedEnvelope]:
    by_model: dict[type[EventData], list[str]] = {}
    for event_type, model in CATALOGUE[source].items():
        # The plain string, so a validated envelope's `type` is a `str` as in the two-step path.
        by_model.setdefault(model, []).append(str(event_type))
    members = [
        create_model(
            f"{model.__name__}Envelope",
            __base__=TypedEnvelope,
            type=(Literal[tuple(types)], ...),
            data=(model, ...),
        )
        for model, types in by_model.items()
    ]
    return TypeAdapter(Annotated[Union[tuple(members)], Field(discriminator="type")])  # noqa: UP007


# Envelope and data in one pass of pydantic-core over the raw body, picked by `type`: the webhook path's fast
# way for a well-formed event. It accepts exactly what `Envelope` then `data_model(...)` accept; the gateway
# goes through those two steps only to explain a refusal (400 or 422) or to ignore an unknown type.
TYPED_ENVELOPES: dict[Source, TypeAdapter[TypedEnvelope]] = {source: _typed_envelopes(source) for source in Source}


class AcceptedEvent(BaseModel):
    """What the gateway stores for an accepted event and what a handler receives."""

    model_config = ConfigDict(frozen=True)

    id: str
    source: Source
    type: str
    entity: str
    timestamp: datetime
    data: dict[str, Any]

    @property
    def ref(self) -> str:
        """Unique across sources: webhook ids are only unique per sender."""
        return f"{self.source}:{self.id}"
