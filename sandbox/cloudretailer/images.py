"""Product images: the bytes route, and applying an `images` list from a product write.

An image's identity is its id; its content is its sha256. Replacing the bytes under the same id changes
the sha256, which is how a consumer tells a changed image from an unchanged one without downloading it."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from sandbox.cloudretailer.bodies import ImageIn
from sandbox.cloudretailer.errors import ApiError
from sandbox.cloudretailer.keys import BASE, state
from sandbox.cloudretailer.paging import check_params
from sandbox.cloudretailer.records import JPEG, PNG, Image
from sandbox.cloudretailer.state import State

MAX_IMAGE_BYTES = 5 * 1024 * 1024
routes = web.RouteTableDef()


@routes.get(BASE + "/products/{product_id}/images/{image_id}")
async def image_bytes(request: web.Request) -> web.Response:
    check_params(request, ())
    product = state(request).products.get(request.match_info["product_id"])
    if product is None:
        raise ApiError(404, f"product {request.match_info['product_id']!r} does not exist")
    return image_response(f"product {product.id}", product.images, request.match_info["image_id"])


@routes.get(BASE + "/styles/{style_id}/images/{image_id}")
async def style_image_bytes(request: web.Request) -> web.Response:
    check_params(request, ())
    style = state(request).styles.get(request.match_info["style_id"])
    if style is None:
        raise ApiError(404, f"style {request.match_info['style_id']!r} does not exist")
    return image_response(f"style {style.id}", style.images, request.match_info["image_id"])


def image_response(owner: str, images: list[Image], image_id: str) -> web.Response:
    image = next((i for i in images if i.id == image_id), None)
    if image is None:
        raise ApiError(404, f"{owner} has no image {image_id!r}")
    # The sha256 doubles as a strong ETag: the bytes under one id change only when the sha256 does.
    return web.Response(body=image.data(), content_type=image.content_type, headers={"ETag": f'"{image.sha256()}"'})


def fingerprint(images: list[Image]) -> list[tuple[str, str, int, bool]]:
    return [(i.id, i.sha256(), i.position, i.primary) for i in images]


def apply_images(st: State, current: list[Image], entries: list[ImageIn]) -> list[Image]:
    """A product's or style's new image list (the old one is not touched, so a 422 changes nothing)."""
    existing = {i.id: i for i in current}
    out: list[Image] = []
    seen: set[str] = set()
    for n, entry in enumerate(entries):
        at = f"images[{n}]"
        if entry.id is None and entry.content_base64 is None:
            raise ApiError(422, f"{at} needs an id (keep or replace an image) or content_base64 (add one)", field=at)
        if entry.id is not None:
            if entry.id not in existing:
                raise ApiError(422, f"{at}.id: there is no image {entry.id!r} to keep", field=f"{at}.id")
            if entry.id in seen:
                raise ApiError(422, f"{at}.id: image {entry.id!r} is listed twice", field=f"{at}.id")
            seen.add(entry.id)
        position = entry.position if entry.position is not None else n
        old = existing.get(entry.id or "")
        # Unless the entry says otherwise, a kept or replaced image keeps its primary flag.
        primary = entry.primary if entry.primary is not None else bool(old and old.primary)
        if entry.content_base64 is not None:
            content, content_type = _decode(entry.content_base64, f"{at}.content_base64")
            image_id = entry.id or st.next_id("IMG-U")
            out.append(Image(image_id, position, primary, content=content, content_type=content_type))
        else:
            assert old is not None
            out.append(Image(old.id, position, primary, old.color, old.content, old.content_type, old._sha256))
    primaries = [i for i in out if i.primary]
    if len(primaries) > 1:
        raise ApiError(422, "images: only one image can be primary", field="images")
    out.sort(key=lambda i: (i.position, i.id))
    if out and not primaries:
        out[0].primary = True  # a product with images always has a primary one (Magento's base image)
    return out


def _decode(value: str, field: str) -> tuple[bytes, str]:
    try:
        content = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, f"{field} is not valid base64", field=field) from None
    if len(content) > MAX_IMAGE_BYTES:
        raise ApiError(422, f"{field}: images are limited to {MAX_IMAGE_BYTES} bytes", field=field)
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return content, PNG
    if content.startswith(b"\xff\xd8\xff"):
        return content, JPEG
    raise ApiError(422, f"{field} must be a PNG or JPEG image", field=field)
