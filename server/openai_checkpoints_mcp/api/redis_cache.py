"""The shared cache: finished jobs, their checkpoint lists and result files kept in one Redis database, so that
several replicas of the server (uvicorn workers, machines behind a load balancer, one-off ``call``s) answer from
what any of them read.

`RedisBackend` implements `CacheBackend` for the kinds in `cache.PERSISTENT_KINDS` (listings stay in memory), behind
a `MemoryBackend` (`cache.LayeredBackend`), as the SQLite file does; it replaces the file when ``--cache-url`` is
given. The rules of what may be kept, and for how long it may be served, are the store's.

* **Keys.** Everything lives under ``openai-checkpoints-mcp:1:`` (1: this layout). An entry is the hash
  ``…:e:<namespace>:<kind>:<id>`` with ``v``, the value as `cache.encode` writes it, and ``t``, when it was read
  from the API. ``<namespace>`` is `cache.account_namespace` (a SHA-256 digest of base URL, organisation, project,
  key and key header): the key itself is never sent to Redis, and another account's keys are never read.
* **Size bound and LRU, across every namespace of the database.** ``…:lru`` is a sorted set of every entry's key
  scored by its last use (a write or a read), ``…:size`` a hash of their sizes in bytes, ``…:bytes`` their total.
  The score is a logical clock (``INCR …:tick``), not a wall clock, so replicas with skewed clocks agree on the
  order. Every operation is one Lua script, so an entry, its index and the total change together, and a write
  evicts, in the same script, the lowest-scored entries while the total exceeds ``--cache-max-mb``: eviction is
  atomic, and two replicas never evict the same entry twice or count one twice. Scripts touch keys they are not
  passed (the victims), so this needs one Redis (or a primary), not Redis Cluster.
* **Job objects expire** (``PEXPIRE``) when the store would stop serving them (``--cache-ttl`` after they were
  read), so stale job objects do not pile up; the store still judges their age from ``t``. Checkpoint lists and
  result files stay until evicted. An expired job's index entry is removed by the next read that misses it, or by
  eviction; until then its size still counts, so the bound errs on the side of holding less.
* **Failure rule.** Redis down, refusing, slow or answering garbage never fails a tool nor delays it much: connect
  and socket timeouts of `TIMEOUT` (no retries), at most `OPERATION_TIMEOUT` for one operation, one warning for the
  outage, then no Redis at all for `RETRY_AFTER` seconds (reads miss, writes are dropped; the store re-checks every
  age, so a dropped drop is harmless), then one more try; a success after an outage logs that Redis is back. An
  entry that does not decode is dropped. Without the ``redis`` package it warns once and stays in memory.
* **Writes are off the critical path**: `put` and `drop` queue an operation for one writer task, which sends what
  is queued in one pipeline; what is queued is served from a pending map meanwhile (read-your-writes). `aclose`
  waits at most `CLOSE_TIMEOUT` for the queue, then cancels the writer and closes the connections.
* ``redis`` is imported on first use (in a worker thread), never at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from ..config import REDIS_EXTRA, cache_url_passwords, mask_url
from .cache import PERSISTENT_KINDS, CacheKey, Entry, decode, encode

if TYPE_CHECKING:
    from ..redaction import Redactor

log = logging.getLogger(__name__)

PREFIX = "openai-checkpoints-mcp:1:"
"""Every key this code writes starts with it (1: the layout version); `clear` removes them all."""
TIMEOUT = 0.5
"""Seconds to connect, and to wait for each socket read or write, before Redis counts as unusable."""
OPERATION_TIMEOUT = 2.0
"""Seconds one operation (a read, or one pipeline of writes) may take in all, connecting included."""
RETRY_AFTER = 30.0
"""Seconds without Redis after it failed, before it is tried again."""
CLOSE_TIMEOUT = 3.0
"""Seconds `aclose` waits for the queued writes."""
MAX_QUEUED = 1024
"""Writes queued at most; beyond, new writes are dropped (Redis is too slow to keep up)."""
BATCH = 256
"""Writes sent in one pipeline at most."""

_LRU, _SIZES, _BYTES, _TICK = (PREFIX + name for name in ("lru", "size", "bytes", "tick"))

# KEYS: the entry, lru, size, bytes, tick. Returns {value, stored_at}, or nil (and forgets an expired entry's index).
_GET = """
local found = redis.call('HMGET', KEYS[1], 'v', 't')
if found[1] then
  redis.call('ZADD', KEYS[2], 'XX', redis.call('INCR', KEYS[5]), KEYS[1])
  return found
end
local size = redis.call('HGET', KEYS[3], KEYS[1])
if size then
  redis.call('HDEL', KEYS[3], KEYS[1])
  redis.call('ZREM', KEYS[2], KEYS[1])
  redis.call('DECRBY', KEYS[4], size)
end
return false
"""

# KEYS: the entry, lru, size, bytes, tick. ARGV: value, stored_at, size, max_bytes, expiry in ms (0: none).
# Returns how many entries were evicted.
_PUT = """
local size = tonumber(ARGV[3])
local max = tonumber(ARGV[4])
local old = tonumber(redis.call('HGET', KEYS[3], KEYS[1]) or '0')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 't', ARGV[2])
if tonumber(ARGV[5]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
redis.call('HSET', KEYS[3], KEYS[1], size)
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[5]), KEYS[1])
local total = redis.call('INCRBY', KEYS[4], size - old)
local evicted = 0
while total > max do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)
  if #oldest == 0 or oldest[1] == KEYS[1] then
    redis.call('SET', KEYS[4], size)
    break
  end
  local victim = oldest[1]
  local victim_size = tonumber(redis.call('HGET', KEYS[3], victim) or '0')
  redis.call('ZREM', KEYS[2], victim)
  redis.call('HDEL', KEYS[3], victim)
  redis.call('DEL', victim)
  total = redis.call('DECRBY', KEYS[4], victim_size)
  evicted = evicted + 1
end
return evicted
"""

# KEYS: the entry, lru, size, bytes.
_DROP = """
redis.call('DEL', KEYS[1])
local size = redis.call('HGET', KEYS[3], KEYS[1])
if size then
  redis.call('HDEL', KEYS[3], KEYS[1])
  redis.call('ZREM', KEYS[2], KEYS[1])
  redis.call('DECRBY', KEYS[4], size)
end
return 0
"""

_Op = tuple[str, Any, Entry | None, int]
"""``(op, key or kind, entry, sequence)``: op is ``put``, ``drop`` or ``drop_kind``."""


def _import_redis() -> Any:
    return importlib.import_module("redis.asyncio")


def _connect(url: str) -> Any:
    """A client of the database at `url`: short timeouts, no retries (the failure rule is this module's)."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    module = _import_redis()
    return module.Redis.from_url(
        url,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


class RedisBackend:
    """One account's entries in the Redis database at `url`, at most `max_bytes` in all (across accounts).

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` (checked by `config.check_cache_url`).
        namespace: `cache.account_namespace` of the account.
        max_bytes: the bound of the whole database's entries (each write evicts beyond it).
        job_ttl: seconds a job object is served by the store; it expires in Redis then.
        retry_after: seconds without Redis after a failure (`RETRY_AFTER`).
        clock: wall-clock seconds, the store's clock (a job's expiry is counted from its ``stored_at``).
    """

    def __init__(
        self,
        url: str,
        namespace: str,
        *,
        max_bytes: int,
        job_ttl: float,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.time,
        redactor: Redactor | None = None,
    ) -> None:
        """`redactor`: masks any echo of a secret in what is written (`cache.encode`)."""
        self._url = url
        self._redactor = redactor
        self.shown_url = mask_url(url)
        """The URL as logs show it (the password masked)."""
        self._prefix = f"{PREFIX}e:{namespace}:"
        self._max_bytes = max_bytes
        self._job_ttl = job_ttl
        self._retry_after = retry_after
        self._clock = clock
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._unavailable = False  # the redis package is missing: memory only, for good
        self._down_until = 0.0  # time.monotonic() before which Redis is not tried
        self._warned = False  # a warning for the current outage was logged
        self._queue: deque[_Op] = deque()
        self._pending: dict[CacheKey, tuple[int, Entry | None]] = {}
        self._sequence = itertools.count(1)
        self._writer: asyncio.Task[None] | None = None

    @property
    def down(self) -> bool:
        """Whether Redis is not being used now (it failed less than `retry_after` ago, or redis is missing)."""
        return self._unavailable or time.monotonic() < self._down_until

    def key(self, key: CacheKey) -> str:
        """The Redis key of an entry."""
        return f"{self._prefix}{key[0]}:{key[1]}"

    # --- the CacheBackend interface -----------------------------------------------------------------------------

    async def get(self, key: CacheKey) -> Entry | None:
        if key[0] not in PERSISTENT_KINDS:
            return None
        pending = self._pending.get(key)
        if pending is not None:
            return pending[1]
        client = await self._ready()
        if client is None:
            return None
        name = self.key(key)
        try:
            with anyio.fail_after(OPERATION_TIMEOUT):
                found = await self._scripts["get"](keys=[name, _LRU, _SIZES, _BYTES, _TICK], client=client)
        except Exception as exc:  # whatever Redis does, the tool goes on without it
            self._failed("read", exc)
            return None
        self._recovered()
        if not found:
            return None
        try:
            blob, stored_at = found
            value = decode(key[0], blob)
            entry = Entry(value, float(stored_at), len(blob) if key[0] == "file" else 0)
        except (ValueError, TypeError):  # pydantic's ValidationError included: not what this code wrote
            self._enqueue("drop", key, None)
            return None
        return entry

    async def put(self, key: CacheKey, value: Any, *, stored_at: float, size: int = 0) -> None:
        if key[0] in PERSISTENT_KINDS and size <= self._max_bytes:
            self._enqueue("put", key, Entry(value, stored_at, size))

    async def drop(self, key: CacheKey) -> None:
        if key[0] in PERSISTENT_KINDS:
            self._enqueue("drop", key, None)

    async def drop_kind(self, kind: str) -> None:
        if kind in PERSISTENT_KINDS:
            self._enqueue("drop_kind", kind, None)

    async def aclose(self) -> None:
        """Send what is queued (waiting at most `CLOSE_TIMEOUT`), then close the connections."""
        writer, self._writer = self._writer, None
        if writer is not None and not writer.done():
            done, _ = await asyncio.wait({writer}, timeout=CLOSE_TIMEOUT)
            if not done:
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)
                log.warning(
                    "the Redis cache at %s: writes still queued after %gs were dropped", self.shown_url, CLOSE_TIMEOUT
                )
        self._queue.clear()
        self._pending.clear()
        client, self._client = self._client, None
        if client is not None:
            with anyio.move_on_after(TIMEOUT), contextlib.suppress(Exception):
                close = getattr(client, "aclose", None) or client.close  # aclose from redis 5.0.1
                await close()

    # --- the connection and the failure rule --------------------------------------------------------------------

    async def _ready(self) -> Any:
        """The client, created on first use; None while Redis is down or when redis is not installed."""
        if self.down:
            return None
        if self._client is None:
            try:
                await anyio.to_thread.run_sync(_import_redis)
            except ImportError:
                self._unavailable = True
                log.warning(
                    "--cache-url needs the redis package (%s); going on with the in-memory cache only", REDIS_EXTRA
                )
                return None
            if self._client is None:  # another task may have created it during the import
                try:
                    client = _connect(self._url)
                except Exception as exc:  # a URL redis cannot use after all
                    self._failed("connect", exc)
                    return None
                self._scripts = {name: client.register_script(source) for name, source in _SCRIPTS.items()}
                self._client = client
        return self._client

    def _failed(self, what: str, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self._retry_after
        detail = f"{what}: {type(exc).__name__}: {self._scrub(str(exc))}"
        if self._warned:
            log.debug("the Redis cache at %s still cannot be used (%s)", self.shown_url, detail)
            return
        self._warned = True
        log.warning(
            "the Redis cache at %s cannot be used (%s); going on with the in-memory cache only, trying again in %gs",
            self.shown_url,
            detail,
            self._retry_after,
        )

    def _recovered(self) -> None:
        if self._warned:
            self._warned = False
            log.info("the Redis cache at %s is used again", self.shown_url)

    def _scrub(self, text: str) -> str:
        """`text` without the URL's passwords (userinfo and ``password=``), in case an error quotes them."""
        for password in cache_url_passwords(self._url):
            text = text.replace(password, "***")
        return text[:300]

    # --- writing (in the writer task) ---------------------------------------------------------------------------

    def _enqueue(self, op: str, target: Any, entry: Entry | None) -> None:
        if self.down or len(self._queue) >= MAX_QUEUED:
            return
        sequence = next(self._sequence)
        if op in ("put", "drop"):
            self._pending[target] = (sequence, entry)
        self._queue.append((op, target, entry, sequence))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_queued())

    async def _write_queued(self) -> None:
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
            try:
                client = await self._ready()
                if client is not None:
                    with anyio.fail_after(OPERATION_TIMEOUT):
                        await self._write(client, batch)
                    self._recovered()
            except Exception as exc:  # whatever Redis does, the server goes on without it
                self._failed("write", exc)
            finally:
                self._settle(batch)
            if self.down:
                self._settle(list(self._queue))
                self._queue.clear()

    def _settle(self, batch: list[_Op]) -> None:
        """The batch is written (or never will be): its keys are read from Redis again."""
        for op, target, _, sequence in batch:
            if op in ("put", "drop") and self._pending.get(target, (0, None))[0] == sequence:
                del self._pending[target]

    async def _write(self, client: Any, batch: list[_Op]) -> None:
        for op, target, _, _ in batch:
            if op == "drop_kind":  # rare (no caller drops a persistent kind today): its keys first
                pattern = f"{self._prefix}{target}:*"  # hex digits and a kind: no glob characters
                names = [name async for name in client.scan_iter(match=pattern, count=500)]
                batch = batch + [("drop", name, None, 0) for name in names]
        pipe = client.pipeline(transaction=False)
        now = self._clock()
        for op, target, entry, _ in batch:
            if op == "put":
                assert entry is not None
                blob = encode(target[0], entry.value, self._redactor)
                expiry = 0
                if target[0] == "job":
                    remaining = self._job_ttl - (now - entry.stored_at)
                    if remaining <= 0:
                        continue  # the store would not serve it any more
                    expiry = math.ceil(remaining * 1000)
                if len(blob) > self._max_bytes:
                    continue
                keys = [self.key(target), _LRU, _SIZES, _BYTES, _TICK]
                args = [blob, repr(entry.stored_at), len(blob), self._max_bytes, expiry]
                await self._scripts["put"](keys=keys, args=args, client=pipe)
            elif op == "drop":
                name = target if isinstance(target, str) else self.key(target)
                await self._scripts["drop"](keys=[name, _LRU, _SIZES, _BYTES], client=pipe)
        if len(pipe):
            await pipe.execute()


_SCRIPTS = {"get": _GET, "put": _PUT, "drop": _DROP}


async def clear(url: str) -> int:
    """Remove every key of this cache (every account's) from the database at `url`; how many were removed.
    Raises what redis raises when it cannot be reached."""
    client = _connect(url)
    removed = 0
    try:
        with anyio.fail_after(60):
            batch: list[Any] = []
            async for name in client.scan_iter(match=f"{PREFIX}*", count=1000):
                batch.append(name)
                if len(batch) >= 1000:
                    removed += await client.unlink(*batch)
                    batch = []
            if batch:
                removed += await client.unlink(*batch)
    finally:
        close = getattr(client, "aclose", None) or client.close
        await close()
    return int(removed)
