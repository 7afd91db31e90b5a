"""arq job (de)serialization with orjson instead of pickle: a value in Redis can never run code."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(obj: Any) -> bytes:
    # arq also serializes results and failures (exceptions): render what JSON cannot hold as text.
    return orjson.dumps(obj, default=repr)


def loads(data: bytes) -> Any:
    return orjson.loads(data)
