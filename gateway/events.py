"""The webhook event catalogue: envelope, one data model per event type, and the entity each one is about.

Events are thin change signals: the worker fetches the entity's current state from its source system, so
a data model carries only what identifies the entity. Unknown extra fields are tolerated (senders add
fields over time) but are not stored.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

CrId = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
MagentoId = Annotated[int, Field(gt=0, lt=2**63, strict=True)]


class Source(StrEnum):
    CLOUDRETAILER = "cloudretailer"
    MAGENTO = "magento"


class Envelope(BaseModel):
    """`{"type", "timestamp", "data"}`; `data` is validated against the type's model afterwards."""

    model_config = ConfigDict(extra="ignore")

    type: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    timestamp: datetime
    data: dict[str, Any]


class EventData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    def entity(self, source: Source, event_type: str) -> str:
        raise NotImplementedError


class ProductEvent(EventData):
    product_id: CrId
    sku: Sku

    def entity(self, source: Source, event_type: str) -> str:
        return f"{source}:product:{self.product_id}"


class InventoryEvent(EventData):
    sku: Sku
    store_id: CrId
    on_hand: float | None = None

    def entity(self, source: Source, event_type: str) -> str:
        return f"{source}:inventory:{self.store_id}:{self.sku}"


class CategoryEvent(EventData):
    category_id: CrId

    def entity(self, source: Source, event_type: str) -> str:
        return f"{source}:category:{self.category_id}"


class CustomerEvent(EventData):
    customer_id: CrId

    def entity(self, source: Source, event_type: str) -> str:
        return f"{source}:customer:{self.customer_id}"


class MagentoOrderEvent(EventData):
    order_id: MagentoId
    increment_id: Annotated[str, StringConstraints(min_length=1, max_length=50, strip_whitespace=True)]

    def entity(self, source: Source, event_type: str) -> str:
        return f"{source}:order:{self.order_id}"


class MagentoCustomerEvent(EventData):
    customer_id: MagentoId

    def entity(self, source: Source, event_type: str) -> str:
        return f"{source}:customer:{self.customer_id}"


class MagentoCategoryEvent(EventData):
    category_id: MagentoId

    def entity(self, source: Source, event_type: str) -> str:
        return f"{source}:category:{self.category_id}"


CATALOGUE: dict[Source, dict[str, type[EventData]]] = {
    Source.CLOUDRETAILER: {
        "product.created": ProductEvent,
        "product.updated": ProductEvent,
        "product.deleted": ProductEvent,
        "product.images.updated": ProductEvent,
        "inventory.updated": InventoryEvent,
        "category.created": CategoryEvent,
        "category.updated": CategoryEvent,
        "customer.created": CustomerEvent,
        "customer.updated": CustomerEvent,
    },
    Source.MAGENTO: {
        "order.completed": MagentoOrderEvent,
        "customer.created": MagentoCustomerEvent,
        "category.created": MagentoCategoryEvent,
    },
}


def data_model(source: Source, event_type: str) -> type[EventData] | None:
    return CATALOGUE[source].get(event_type)


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
