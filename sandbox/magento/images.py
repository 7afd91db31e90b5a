"""Image content checks as `Framework/Api/ImageContentValidator` does them (base64, a real image whose type
matches the declared MIME type, a safe file name), and the media path Magento gives a new file."""

from __future__ import annotations

import base64
import binascii
import re
import struct
from typing import Any

from sandbox.magento.errors import MagentoError

ALLOWED_MIME = {"image/jpg", "image/jpeg", "image/gif", "image/png"}
EXTENSIONS = {"image/jpg": "jpg", "image/jpeg": "jpg", "image/gif": "gif", "image/png": "png"}
_FORBIDDEN_NAME = re.compile(r"[\\/:*?\"<>|\x00-\x1f]")
_NOT_FILE_CHAR = re.compile(r"[^a-z0-9_\-.]")


def sniff(data: bytes) -> tuple[str, int, int] | None:
    """(mime, width, height) of a PNG, GIF or JPEG, like getimagesizefromstring; None otherwise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return ("image/png", width, height) if width and height else None
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return ("image/gif", width, height) if width and height else None
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[str, int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and pos + 9 <= len(data):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return ("image/jpeg", width, height) if width and height else None
        pos += 2 + length
    return None


def validate_content(content: Any) -> tuple[bytes, str, str]:
    """The decoded bytes, MIME type and name of an `ImageContentInterface`, or Magento's 400."""
    if not isinstance(content, dict):
        raise MagentoError(400, "The image content is invalid. Verify the content and try again.")
    encoded = content.get("base64_encoded_data") or ""
    try:
        data = base64.b64decode(str(encoded), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if not data:
        raise MagentoError(400, "The image content must be valid base64 encoded data.")
    found = sniff(data)
    if found is None:
        raise MagentoError(400, "The image content must be valid base64 encoded data.")
    declared = str(content.get("type") or "")
    mime = "image/jpeg" if found[0] == "image/jpeg" and declared == "image/jpg" else found[0]
    if mime != declared or declared not in ALLOWED_MIME:
        raise MagentoError(400, "The image MIME type is not valid or not supported.")
    name = str(content.get("name") or "")
    if not name or _FORBIDDEN_NAME.search(name):
        raise MagentoError(400, "Provided image name contains forbidden characters.")
    return data, declared, name


def media_path(name: str, mime: str, taken: set[str]) -> str:
    """`/c/r/cr-000001.png`: lower-cased, two dispersion folders, `_1`, `_2`... when the file exists."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = _NOT_FILE_CHAR.sub("_", stem.lower()) or "image"
    folder_a = stem[0] if stem[0].isalnum() else "_"
    folder_b = stem[1] if len(stem) > 1 and stem[1].isalnum() else "_"
    base = f"/{folder_a}/{folder_b}/{stem}"
    ext = EXTENSIONS[mime]
    path, n = f"{base}.{ext}", 0
    while path in taken:
        n += 1
        path = f"{base}_{n}.{ext}"
    return path
