"""The Lua scripts of ``lua/``: their source, their SHA-1 and loading them into Redis."""

from __future__ import annotations

import hashlib
from pathlib import Path

import redis

LUA_FOLDER = Path(__file__).with_name("lua")


class LuaScript:
    """A Lua script from ``lua/``, run by EVALSHA and loaded on demand.

    redis-py's own Script objects check every script with SCRIPT EXISTS before each pipeline
    runs: one more round trip on the hot path, which this avoids.

    Every script opens with the ``#!lua`` shebang and no flags, which declares it as one that
    writes and may not run out of memory: Redis 7 then refuses it *before* it runs when memory
    is full (``OOM``), so a refused script has written nothing. Without the shebang Redis
    checks each command as it runs, and a script whose first write frees or needs no memory
    (ZREMRANGEBYSCORE, HDEL) may then write part of its work.
    """

    def __init__(self, name: str, prelude: str | None = None) -> None:
        self.name = name
        shebang, _, body = (LUA_FOLDER / f"{name}.lua").read_text().partition("\n")
        # a shared prelude (lua/<prelude>.lua) goes after the shebang, which must stay first
        shared = "" if prelude is None else (LUA_FOLDER / f"{prelude}.lua").read_text()
        self.source = f"{shebang}\n{shared}{body}"
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()  # Redis's id

    def load(self, client: redis.Redis | redis.RedisCluster) -> None:
        """Load the script into Redis's script cache (after a restart or SCRIPT FLUSH); a
        cluster client loads it into every master."""
        client.script_load(self.source)
