"""One Redis connection kept for one Lua script, outside redis-py's pool.

The ingest flusher runs the accept script thousands of times a second. Through `Redis`/`Script` every call
borrows a pooled connection (a lock, a health check, retry wrapping) and EVALSHA's argument list is packed
in Python; together that cost the gateway more CPU per webhook than the script costs Redis. Here the
connection is made once from the client's own pool settings (so unix://, rediss:// and passwords behave
the same), the script is loaded on connect and re-loaded after a Redis restart (NOSCRIPT), and any error
drops the connection so the next call starts clean: a reply can never be read by the wrong caller.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError


class ScriptConnection:
    def __init__(self, redis: Redis, script: str) -> None:
        self._redis = redis
        self._script = script.encode()
        self._sha = hashlib.sha1(self._script, usedforsecurity=False).hexdigest()  # Redis names scripts by SHA-1
        self._conn: AbstractConnection | None = None
        self._closing: set[asyncio.Task[None]] = set()

    async def call(self, *args: Any) -> Any:
        conn = self._conn or await self._connect()
        try:
            try:
                return await self._evalsha(conn, args)
            except NoScriptError:
                # Redis restarted without its script cache: load it again and run once more.
                await conn.send_command("SCRIPT", "LOAD", self._script)
                await conn.read_response()
                return await self._evalsha(conn, args)
        except BaseException:
            # Includes cancellation by the caller's deadline: the reply may still be on its way, so the
            # connection is no longer in step with its replies.
            self._drop()
            raise

    async def _evalsha(self, conn: AbstractConnection, args: tuple[Any, ...]) -> Any:
        await conn.send_command("EVALSHA", self._sha, 0, *args)
        return await conn.read_response()

    async def _connect(self) -> AbstractConnection:
        conn = self._redis.connection_pool.make_connection()
        try:
            await conn.connect()
        except BaseException:
            await conn.disconnect()
            raise
        self._conn = conn
        return conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # disconnect() is a coroutine; closing the transport now is enough and cannot block.
            task = asyncio.get_running_loop().create_task(conn.disconnect(nowait=True))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.disconnect()
