"""The persistent cache: finished jobs, their checkpoint lists and result files kept in one SQLite file.

`SQLiteBackend` implements `CacheBackend` for the kinds in `cache.PERSISTENT_KINDS`; `cache.LayeredBackend` puts a
`MemoryBackend` in front of it (listings stay in memory only). The rules of what may be kept are the store's,
as for any backend. Values are stored as `cache.encode` writes them, under `cache.account_namespace`.

* The event loop never waits on the database: reads run in a worker thread, writes go through a queue to one
  writer thread. What is queued but not yet written is served from a pending map (read-your-writes).
* The file is opened on first use, never at import or start-up; WAL mode and a busy timeout let several
  processes share it.
* Every key is namespaced by a SHA-256 digest of the account (base URL, organisation, project and key), never
  the key itself: another account sees nothing.
* ``PRAGMA user_version`` is the schema version; a file of any other version is rebuilt. A database that cannot
  be used (corrupt, locked, read-only, full) logs one warning, and the server goes on with memory only.
* Beyond `max_bytes` the least recently used entries (``last_used``) are evicted.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from .cache import PERSISTENT_KINDS, CacheKey, Entry, decode, encode

if TYPE_CHECKING:
    from ..redaction import Redactor

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of the file this code writes; any other is rebuilt."""
FILE_NAME = "cache.sqlite3"
BUSY_TIMEOUT_MS = 2000
"""How long a statement waits for another process's lock before the database counts as unusable."""
CLOSE_TIMEOUT = 5.0
"""Seconds `close` waits for the writer to write what is queued."""

_SCHEMA = (
    "CREATE TABLE entries (ns TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, value BLOB NOT NULL, "
    "stored_at REAL NOT NULL, last_used REAL NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (ns, kind, id)) "
    "WITHOUT ROWID",
    "CREATE INDEX entries_last_used ON entries (last_used)",
)


def cache_files(directory: Path) -> list[Path]:
    """The database file and its WAL companions in `directory`."""
    return [directory / (FILE_NAME + suffix) for suffix in ("", "-wal", "-shm", "-journal")]


_Op = tuple[str, Any, Any, int]
"""``(op, key or kind, entry, sequence)``: op is ``put``, ``drop``, ``drop_kind`` or ``touch``."""


class SQLiteBackend:
    """One account's entries in the SQLite file at `path`, at most `max_bytes` in all (across accounts)."""

    def __init__(self, path: Path, namespace: str, *, max_bytes: int, redactor: Redactor | None = None) -> None:
        """`redactor`: masks any echo of a secret in what is written (`cache.encode`)."""
        self.path = path
        self._redactor = redactor
        self._ns = namespace
        self._max_bytes = max_bytes
        self._lock = threading.Lock()  # opening and the reader connection (held only in worker threads)
        self._pending_lock = threading.Lock()  # the pending map and the writer (never held while waiting on disk)
        self._reader: sqlite3.Connection | None = None
        self._opened = False
        self._broken = False
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._pending: dict[CacheKey, tuple[int, Entry | None]] = {}
        self._sequence = itertools.count(1)

    @property
    def broken(self) -> bool:
        """Whether the database was found unusable (the server then goes on with memory only)."""
        return self._broken

    # --- the CacheBackend interface -----------------------------------------------------------------------------

    async def get(self, key: CacheKey) -> Entry | None:
        if key[0] not in PERSISTENT_KINDS or self._broken:
            return None
        with self._pending_lock:
            pending = self._pending.get(key)
        if pending is not None:
            return pending[1]
        return await anyio.to_thread.run_sync(self._read, key)

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
        await anyio.to_thread.run_sync(self.close)

    def close(self) -> None:
        """Write what is queued (waiting at most `CLOSE_TIMEOUT`), then close the connections."""
        with self._pending_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(None)
            writer.join(CLOSE_TIMEOUT)
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            self._opened = False

    # --- opening --------------------------------------------------------------------------------------------------

    def _fail(self, what: str, exc: BaseException) -> None:
        if not self._broken:
            self._broken = True
            log.warning(
                "the persistent cache %s cannot be used (%s: %s: %s); going on with the in-memory cache only%s",
                self.path,
                what,
                type(exc).__name__,
                exc,
                "; it is left as it is: `openai-checkpoints-mcp cache clear` removes it" if _corrupt(exc) else "",
            )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    def _ensure_open(self) -> bool:
        """Open (creating or rebuilding) the file once; False when it cannot be used."""
        with self._lock:
            if self._broken:
                return False
            if self._opened:
                return True
            try:
                _make_dir(self.path.parent)
                os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
                conn = self._connect()
                try:
                    _use_wal(conn)
                    self._migrate(conn)
                except BaseException:
                    conn.close()
                    raise
            except (sqlite3.Error, OSError) as exc:
                self._fail("open", exc)
                return False
            self._reader = conn
            self._opened = True
            return True

    def _migrate(self, conn: sqlite3.Connection) -> None:
        if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                if version != 0 or tables:
                    log.warning(
                        "the persistent cache %s has schema version %d, this server writes %d: rebuilt empty",
                        self.path,
                        version,
                        SCHEMA_VERSION,
                    )
                for table in tables:
                    conn.execute(f'DROP TABLE IF EXISTS "{table.replace(chr(34), chr(34) * 2)}"')
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    # --- reading (in a worker thread) ---------------------------------------------------------------------------

    def _read(self, key: CacheKey) -> Entry | None:
        if not self._ensure_open():
            return None
        try:
            with self._lock:
                if self._reader is None:
                    return None
                row = self._reader.execute(
                    "SELECT value, stored_at, size FROM entries WHERE ns = ? AND kind = ? AND id = ?",
                    (self._ns, *key),
                ).fetchone()
        except sqlite3.Error as exc:
            self._fail("read", exc)
            return None
        if row is None:
            return None
        try:
            value = decode(key[0], row[0])
        except ValueError:  # pydantic's ValidationError included: not what this code wrote
            self._enqueue("drop", key, None)
            return None
        self._enqueue("touch", key, None)
        return Entry(value, row[1], row[2] if key[0] == "file" else 0)

    # --- writing (in the writer thread) -------------------------------------------------------------------------

    def _enqueue(self, op: str, target: Any, entry: Entry | None) -> None:
        if self._broken:
            return
        with self._pending_lock:
            sequence = next(self._sequence)
            if op in ("put", "drop"):
                self._pending[target] = (sequence, entry)
            if self._writer is None:
                self._writer = threading.Thread(target=self._run, name="openai-checkpoints-mcp-cache", daemon=True)
                self._writer.start()
        self._queue.put((op, target, entry, sequence))

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        stop = False
        try:
            while not stop:
                first = self._queue.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < 256:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stop = True
                        break
                    batch.append(item)
                if not self._ensure_open():
                    self._settle(batch)
                    continue
                try:
                    if conn is None:
                        conn = self._connect()
                    self._write(conn, batch)
                except (sqlite3.Error, OSError, ValueError) as exc:
                    self._fail("write", exc)
                self._settle(batch)
        finally:
            if conn is not None:
                conn.close()

    def _settle(self, batch: list[_Op]) -> None:
        """The batch is written (or never will be): its keys are read from the database again."""
        with self._pending_lock:
            for op, target, _, sequence in batch:
                if op in ("put", "drop") and self._pending.get(target, (0, None))[0] == sequence:
                    del self._pending[target]

    def _write(self, conn: sqlite3.Connection, batch: list[_Op]) -> None:
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for op, target, entry, _ in batch:
                if op == "put":
                    assert entry is not None
                    blob = encode(target[0], entry.value, self._redactor)
                    conn.execute(
                        "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (self._ns, target[0], target[1], blob, entry.stored_at, now, len(blob)),
                    )
                elif op == "drop":
                    conn.execute("DELETE FROM entries WHERE ns = ? AND kind = ? AND id = ?", (self._ns, *target))
                elif op == "drop_kind":
                    conn.execute("DELETE FROM entries WHERE ns = ? AND kind = ?", (self._ns, target))
                else:
                    conn.execute(
                        "UPDATE entries SET last_used = ? WHERE ns = ? AND kind = ? AND id = ?",
                        (now, self._ns, *target),
                    )
            self._evict(conn)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def _evict(self, conn: sqlite3.Connection) -> None:
        total = conn.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()[0]
        if total <= self._max_bytes:
            return
        victims = []
        for ns, kind, entry_id, size in conn.execute("SELECT ns, kind, id, size FROM entries ORDER BY last_used"):
            if total <= self._max_bytes:
                break
            victims.append((ns, kind, entry_id))
            total -= size
        conn.executemany("DELETE FROM entries WHERE ns = ? AND kind = ? AND id = ?", victims)


def _busy(exc: sqlite3.Error) -> bool:
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _corrupt(exc: BaseException) -> bool:
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode (once for all processes), waiting at most the busy timeout for other processes.

    Switching to WAL needs the file to itself, and when another process holds its write lock (or switches it too)
    SQLite answers "database is locked" at once, without waiting in the busy handler (which could deadlock); so
    the switch is retried, with short sleeps, until the busy timeout has passed since the first try."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA user_version").fetchone()  # reads the header: the mode the file is in
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if not _busy(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 0.1)


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the transaction if it is still open: after a full disk or an I/O error SQLite may have rolled it
    back already, and a failed ROLLBACK must not hide the error that caused it."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.debug("ROLLBACK failed", exc_info=True)


def _make_dir(directory: Path) -> None:
    """Create the cache directory (0700: only this OS user reads what was cached); an existing one is left as is."""
    if not directory.is_dir():
        directory.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
