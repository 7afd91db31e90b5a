"""Request bodies: strict pydantic models (no coercion, unknown fields refused) and the reader that turns
a bad body into a 400 (not JSON) or a 422 naming the first bad field, e.g. `lines[0].sku`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from sandbox.cloudretailer.errors import ApiError

READ_ONLY = frozenset({"id", "sku", "updated_at", "created_at", "deleted", "level", "sha256", "variant_ids"})
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")

Text = Annotated[str, StringConstraints(min_length=1, max_length=255, strip_whitespace=True)]
# Product codes and category codes travel in URL paths and Magento SKUs: keep them to a safe alphabet.
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Money = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# --- products ---------------------------------------------------------------------------------------
class AttributeSetIn(Strict):
    name: Text
    primary: bool = False


class ImageIn(Strict):
    """`id` alone keeps an image, `id` + `content_base64` replaces its bytes, `content_base64` alone adds one."""

    id: Ref | None = None
    content_base64: str | None = None
    position: Annotated[int, Field(ge=0, le=1000)] | None = None
    primary: bool | None = None


class PriceLevelsIn(Strict):
    """A level sent as null is cleared; a level not sent is left as it is."""

    A: Money | None = None
    B: Money | None = None
    C: Money | None = None


class ProductUpdate(Strict):
    name: Text | None = None
    description_html: Annotated[str, StringConstraints(max_length=65_535)] | None = None
    price: Money | None = None
    price_levels: PriceLevelsIn | None = None
    weight: Money | None = None
    web_active: bool | None = None
    department_id: Ref | None = None
    category_ids: Annotated[list[Ref], Field(max_length=20)] | None = None
    attribute_sets: Annotated[list[AttributeSetIn], Field(min_length=1, max_length=10)] | None = None
    attributes: dict[str, Any] | None = None
    images: Annotated[list[ImageIn], Field(max_length=20)] | None = None
    style_id: Ref | None = None


class ProductCreate(ProductUpdate):
    sku: Code
    name: Text
    price: Money


PRODUCT_NULLABLE = frozenset({"weight", "department_id", "description_html", "price_levels", "style_id"})


# --- styles -----------------------------------------------------------------------------------------
# The attributes a style's variants differ in (which ones are allowed is sandbox/cloudretailer/variants.py's).
Axes = Annotated[list[Annotated[str, StringConstraints(max_length=60)]], Field(min_length=1, max_length=3)]


class StyleUpdate(Strict):
    code: Code | None = None  # accepted when unchanged, so a consumer may send the whole style back
    name: Text | None = None
    description_html: Annotated[str, StringConstraints(max_length=65_535)] | None = None
    department_id: Ref | None = None
    category_ids: Annotated[list[Ref], Field(max_length=20)] | None = None
    attribute_sets: Annotated[list[AttributeSetIn], Field(min_length=1, max_length=10)] | None = None
    axes: Axes | None = None
    attributes: dict[str, Any] | None = None
    images: Annotated[list[ImageIn], Field(max_length=20)] | None = None


class StyleCreate(StyleUpdate):
    code: Code
    name: Text
    axes: Axes


STYLE_NULLABLE = frozenset({"department_id", "description_html"})


# --- customers --------------------------------------------------------------------------------------
class AddressIn(Strict):
    line1: Text
    line2: Annotated[str, StringConstraints(max_length=255)] | None = None
    city: Text
    region_code: Annotated[str, StringConstraints(max_length=10)] | None = None
    postcode: Annotated[str, StringConstraints(max_length=20)] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
    default_billing: bool = False
    default_shipping: bool = False


class CustomerUpdate(Strict):
    email: str | None = None
    first_name: Text | None = None
    last_name: Text | None = None
    phone: Annotated[str, StringConstraints(max_length=40)] | None = None
    addresses: Annotated[list[AddressIn], Field(max_length=20)] | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 254 or not EMAIL.match(value)):
            raise ValueError("not a valid email address (expected name@example.com)")
        return value


class CustomerCreate(CustomerUpdate):
    email: str
    first_name: Text
    last_name: Text


CUSTOMER_NULLABLE = frozenset({"phone"})


# --- categories, inventory, sales -------------------------------------------------------------------
class CategoryUpdate(Strict):
    code: Code | None = None
    name: Text | None = None
    parent_id: Ref | None = None
    active: bool | None = None


class CategoryCreate(CategoryUpdate):
    code: Code
    name: Text


CATEGORY_NULLABLE = frozenset({"parent_id"})


class OnHandIn(Strict):
    on_hand: Annotated[float, Field(ge=0, allow_inf_nan=False)]


class SaleLineIn(Strict):
    sku: Ref
    quantity: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    unit_price: Money
    discount: Money = 0
    tax: Money = 0


class TenderIn(Strict):
    type: Text
    amount: Money


class SaleIn(Strict):
    store_id: Ref
    external_ref: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    customer_id: Ref | None = None
    lines: Annotated[list[SaleLineIn], Field(min_length=1, max_length=500)]
    shipping: Money = 0
    tax_total: Money = 0
    total: Money
    tenders: Annotated[list[TenderIn], Field(min_length=1, max_length=20)]
    completed_at: Annotated[str, StringConstraints(min_length=1, max_length=64)]


# --- reading ----------------------------------------------------------------------------------------
M = TypeVar("M", bound=BaseModel)


async def read_body(request: web.Request, model: type[M], nullable: Iterable[str] = ()) -> M:
    raw = await request.read()
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise ApiError(400, "The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc) from None
    # Partial updates use None for "not sent"; an explicit null is only allowed where the field is nullable.
    allowed = set(nullable)
    for name in parsed.model_fields_set:
        if getattr(parsed, name) is None and name not in allowed:
            raise ApiError(422, f"{name} must not be null", field=name)
    return parsed


def field_path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _first_error(exc: ValidationError) -> ApiError:
    err = exc.errors(include_url=False, include_input=False)[0]
    field = field_path(err["loc"])
    if err["type"] == "extra_forbidden":
        name = str(err["loc"][-1])
        why = "is read-only" if name in READ_ONLY else "is not a field of this request"
        return ApiError(422, f"{field} {why}", field=field)
    if err["type"] == "missing":
        return ApiError(422, f"{field} is required", field=field)
    message = str(err["msg"]).removeprefix("Value error, ")
    return ApiError(422, f"{field}: {message}", field=field)
