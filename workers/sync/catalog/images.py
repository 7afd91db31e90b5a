"""Product images: Cloud Retailer's bytes become Magento media gallery entries.

Which Magento entries are ours is read from Magento itself, not from a cache: an uploaded image is named
`cr_<first 16 hex of its sha256>`, and Magento keeps that in the entry's file path. So an unchanged image
is never uploaded again, an image removed in Cloud Retailer is removed in Magento, an image an admin added
by hand (any other name) is left alone, and all of it stays right if Redis loses every key.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from workers.clients.cloudretailer_models import ImageRef
from workers.clients.magento_models import MediaEntry
from workers.registry import HandlerContext

ROLES = ["image", "small_image", "thumbnail"]
_OURS = re.compile(r"/cr_([0-9a-f]{16})(?:_\d+)?\.\w+$")
_MIME = {b"\xff\xd8\xff": ("image/jpeg", "jpg"), b"\x89PNG": ("image/png", "png"), b"GIF8": ("image/gif", "gif")}


def content_key(sha256: str) -> str:
    return sha256.lower()[:16]


def our_key(entry: MediaEntry) -> str | None:
    match = _OURS.search(entry.file or "")
    return match.group(1) if match else None


class WithImages(Protocol):
    """A product or a style: a Magento SKU whose gallery shows Cloud Retailer's images."""

    @property
    def images(self) -> Sequence[ImageRef]: ...


@dataclass
class ImagePlan:
    upload: list[ImageRef]
    delete: list[int]
    set_roles: list[tuple[int, list[str]]]


def plan(product: WithImages, entries: list[MediaEntry]) -> ImagePlan:
    """Pure: what to change so Magento shows Cloud Retailer's images, leaving hand-added ones alone."""
    wanted = {content_key(i.sha256): i for i in product.images}
    primary = next((content_key(i.sha256) for i in product.images if i.primary), None)
    if primary is None and product.images:
        primary = content_key(min(product.images, key=lambda i: i.position).sha256)
    have: dict[str, MediaEntry] = {}
    delete: list[int] = []
    for entry in entries:
        key = our_key(entry)
        if key is None or entry.id is None:
            continue  # added by hand in Magento: never ours to change
        if key in wanted and key not in have:
            have[key] = entry
        else:
            delete.append(entry.id)  # removed in Cloud Retailer, or a duplicate upload
    upload = [image for key, image in wanted.items() if key not in have]
    set_roles = []
    for key, entry in have.items():
        roles = ROLES if key == primary else []
        if sorted(entry.types) != sorted(roles) and entry.id is not None and (roles or set(entry.types) & set(ROLES)):
            set_roles.append((entry.id, roles))
    return ImagePlan(upload, delete, set_roles)


def _mime(data: bytes) -> tuple[str, str]:
    for magic, found in _MIME.items():
        if data.startswith(magic):
            return found
    return "image/jpeg", "jpg"


async def sync_images(
    ctx: HandlerContext,
    sku: str,
    label: str,
    record: WithImages,
    fetch: Callable[[str], Awaitable[bytes]],
) -> dict[str, int]:
    """Bring the gallery of Magento product `sku` in line with `record`'s images; `fetch(image_id)` reads an
    image's bytes from Cloud Retailer (products and styles serve them from their own routes)."""
    entries = await ctx.magento.list_media(sku)
    todo = plan(record, entries)
    primary = next((content_key(i.sha256) for i in record.images if i.primary), None)
    for entry_id in todo.delete:
        await ctx.magento.delete_media(sku, entry_id)
    for image in todo.upload:
        data = await fetch(image.id)
        mime, ext = _mime(data)
        key = content_key(image.sha256)
        entry = {
            "media_type": "image",
            "label": label,
            "position": image.position,
            "disabled": False,
            "types": ROLES if key == primary else [],
            "content": {
                "base64_encoded_data": base64.b64encode(data).decode(),
                "type": mime,
                "name": f"cr_{key}.{ext}",
            },
        }
        await ctx.magento.add_media(sku, entry)
    for entry_id, roles in todo.set_roles:
        await ctx.magento.set_media_roles(sku, entry_id, roles)
    return {"uploaded": len(todo.upload), "deleted": len(todo.delete), "roles": len(todo.set_roles)}
