"""What the transports make of each line a client sends over stdio (`transport.stdio`), or each body it posts over
HTTP (`transport.jsonrpc_check`): a JSON-RPC message for the SDK, or the error that answers it. Pure: bytes in, a
verdict out, no I/O.

The SDK's own stdio transport drops every line that does not validate as a JSON-RPC message without answering it, so a
client whose request was malformed waits for its own timeout. Here each such line is answered at once, by the rules of
JSON-RPC 2.0:

* not JSON (or not UTF-8, or ``NaN``): ``-32700`` parse error, id ``null``;
* JSON but not a request: ``-32600`` invalid request, with the request's id when it has a valid one (a string of at
  most `MAX_ID_CHARS` characters, or an integer), else ``null``: no ``"jsonrpc": "2.0"``, no method or one that is
  not a string, params that are neither an object nor an array, an array (batches are not part of MCP), a float,
  boolean, object, null or overlong id, a line longer than `MAX_LINE_BYTES`, or nesting deeper than `MAX_DEPTH`
  outside the params;
* params that are an array, or nested deeper than `MAX_DEPTH`: ``-32602`` invalid params, with the id.

A malformed *response* (a message with ``result`` or ``error`` and no method) is never answered: its id is one of the
server's own request ids, and an error carrying it would be taken by the client as the answer to its own request of
that number. Blank lines are skipped. Everything else is handed to the SDK, which answers unknown methods (``-32601``)
and each method's params that fail their schema (``-32602``).
"""

from __future__ import annotations

import json
import re
from contextlib import suppress
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Final

from mcp.types import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, JSONRPCMessage, jsonrpc_message_adapter
from pydantic import ValidationError

MAX_LINE_BYTES: Final = 4 * 1024 * 1024
"""The longest line read as a message, newline excluded: 4 MiB, the SDK's bound on an HTTP request body. The largest
request a client of these tools sends is a few kilobytes."""

MAX_DEPTH: Final = 64
"""The deepest nesting of arrays and objects in a message (the message itself is level 1; a tool's arguments are level
3). No request of these tools needs more than 6."""

MAX_ID_CHARS: Final = 1024
"""The longest string id accepted: the id is repeated in every reply and progress notification of its request."""

ID_SCAN_BYTES: Final = 64 * 1024
"""How much of a line that is too long or too deep is searched for its id (clients write the id first, or nearly)."""

CHECK_IN_THREAD: Final = 64 * 1024
"""Lines (HTTP bodies) longer than this are checked in a worker thread by the transports, off the event loop."""

RequestId = int | str


@dataclass(frozen=True)
class Forward:
    """A JSON-RPC message, as the SDK's models read it."""

    message: JSONRPCMessage


@dataclass(frozen=True)
class Refuse:
    """The error that answers a malformed line."""

    id: RequestId | None
    code: int
    message: str


@dataclass(frozen=True)
class Drop:
    """A line that gets no answer: a blank line, or a malformed response (`reason` says which, for the log)."""

    reason: str


Verdict = Forward | Refuse | Drop

_MISSING: Final = object()
_CONTAINER: Final = object()
"""In `_scan_top_level`'s members: a member whose value is an array or object (never a valid id)."""

_STRING = rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)'
"""A JSON string, or an unterminated one running to the end (so that no attempt fails and is retried further on)."""
_STRINGS: Final = re.compile(_STRING, re.DOTALL)
_NOT_BRACKETS: Final = re.compile(rb"[^\[\]{}]++")
_DEPTH_STEP: Final = [0] * 256
for _open, _close in (b"[]", b"{}"):
    _DEPTH_STEP[_open], _DEPTH_STEP[_close] = 1, -1
_TOKENS: Final = re.compile(_STRING.decode() + r'|[\[\]{}:,]|[^\s\[\]{}:,"]++', re.DOTALL)


def nesting_depth(line: bytes) -> int:
    """How deep arrays and objects nest in `line` (brackets inside strings do not count), without parsing it: linear
    and at C speed, so that a line of 4 MiB of ``[`` costs milliseconds and never reaches a recursive parser."""
    brackets = _NOT_BRACKETS.sub(b"", _STRINGS.sub(b"", line))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def valid_id(value: object) -> bool:
    """A request id this server echoes: an integer (not a boolean) or a string of at most `MAX_ID_CHARS`."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and len(value) <= MAX_ID_CHARS)


def _id_problem(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a number with a fraction or an exponent"
    if isinstance(value, str):
        return f"a string of {len(value)} characters (at most {MAX_ID_CHARS})"
    return "an array" if isinstance(value, list) else "an object"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_line(line: bytes) -> Verdict:
    """The verdict on one line (without its newline) of at most `MAX_LINE_BYTES`."""
    if not line.strip():
        return Drop("a blank line")
    if line.count(b"[") + line.count(b"{") > MAX_DEPTH and nesting_depth(line) > MAX_DEPTH:
        return _too_deep(line)
    try:
        message = json.loads(line.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        return Refuse(None, PARSE_ERROR, f"Parse error: the line is not UTF-8 (byte {exc.start}).")
    except json.JSONDecodeError as exc:
        return Refuse(None, PARSE_ERROR, f"Parse error: {exc.msg} at character {exc.pos}.")
    except ValueError as exc:
        return Refuse(None, PARSE_ERROR, f"Parse error: {exc}.")
    except RecursionError:  # not reached (the depth is checked first), but a parser's recursion is never let through
        return _too_deep(line)
    return check_message(message)


def check_message(message: object) -> Verdict:
    """The verdict on one parsed JSON value, by the rules in this module's docstring."""
    if not isinstance(message, dict):
        kind = "an array (batches are not supported)" if isinstance(message, list) else "not an object"
        return Refuse(None, INVALID_REQUEST, f"Invalid request: a message is one JSON-RPC object; this is {kind}.")
    if "method" not in message and ("result" in message or "error" in message):
        return _check_response(message)
    id_ = message.get("id", _MISSING)
    if id_ is not _MISSING and not valid_id(id_):
        return Refuse(
            None, INVALID_REQUEST, f"Invalid request: the id must be a string or an integer, not {_id_problem(id_)}."
        )
    answer_id = None if id_ is _MISSING else id_
    if message.get("jsonrpc") != "2.0":
        return Refuse(answer_id, INVALID_REQUEST, 'Invalid request: "jsonrpc" must be "2.0".')
    method = message.get("method", _MISSING)
    if method is _MISSING:
        return Refuse(answer_id, INVALID_REQUEST, "Invalid request: there is no method.")
    if not isinstance(method, str):
        return Refuse(answer_id, INVALID_REQUEST, "Invalid request: the method must be a string.")
    params = message.get("params")
    if isinstance(params, list):
        return Refuse(answer_id, INVALID_PARAMS, "Invalid params: params must be an object, not an array.")
    if params is not None and not isinstance(params, dict):
        return Refuse(answer_id, INVALID_REQUEST, "Invalid request: params must be an object.")
    try:
        return Forward(jsonrpc_message_adapter.validate_python(message, by_name=False))
    except ValidationError:  # not expected after the checks above; still an answer, never silence
        return Refuse(answer_id, INVALID_REQUEST, "Invalid request: not a JSON-RPC request or notification.")


def _check_response(message: dict[str, Any]) -> Verdict:
    try:
        return Forward(jsonrpc_message_adapter.validate_python(message, by_name=False))
    except ValidationError:
        return Drop("a malformed response")


def check_overlong(prefix: bytes) -> Refuse:
    """The answer to a line longer than `MAX_LINE_BYTES`, from its first bytes: with the id if they hold one."""
    found = _scan_top_level(prefix[:ID_SCAN_BYTES].decode("utf-8", errors="replace"))
    id_ = found.members.get("id")
    return Refuse(
        id_ if valid_id(id_) else None,
        INVALID_REQUEST,
        f"Invalid request: the message is longer than {MAX_LINE_BYTES} bytes (4 MiB), the most this server reads as "
        "one line; it was skipped.",
    )


def _too_deep(line: bytes) -> Refuse:
    found = _scan_top_level(line[:ID_SCAN_BYTES].decode("utf-8", errors="replace"))
    id_ = found.members.get("id")
    answer_id = id_ if valid_id(id_) else None
    if answer_id is not None and found.deep_member == "params":
        return Refuse(answer_id, INVALID_PARAMS, f"Invalid params: they nest deeper than {MAX_DEPTH} levels.")
    return Refuse(answer_id, INVALID_REQUEST, f"Invalid request: the message nests deeper than {MAX_DEPTH} levels.")


@dataclass
class _TopLevel:
    members: dict[str, Any]
    """The top-level object's members seen, with scalar values parsed and containers as `_CONTAINER`."""
    deep_member: str | None = None
    """The member within which the nesting first went past `MAX_DEPTH`."""


def _scan_top_level(text: str) -> _TopLevel:
    """The top-level members of a message that cannot be parsed whole (too deep, or cut short), token by token:
    tolerant of a truncated end, and bounded by the length of `text` (the caller passes at most `ID_SCAN_BYTES`)."""
    found = _TopLevel(members={})
    depth = 0
    key: str | None = None  # the last string at depth 1: a key when a colon follows
    member: str | None = None  # the member whose value is being read
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            if depth == 0 and token == "[":
                return found  # an array: no members, no id
            depth += 1
            if depth == 2 and member is not None:
                found.members.setdefault(member, _CONTAINER)
            if depth > MAX_DEPTH:
                found.deep_member = member
                return found
        elif token in ("]", "}"):
            depth -= 1
        elif depth != 1:
            continue
        elif token == ":":
            member, key = key, None
        elif token == ",":
            member = key = None
        elif member is not None:
            with suppress(ValueError):
                found.members.setdefault(member, json.loads(token))
            member = None
        else:
            try:
                key = json.loads(token)
            except ValueError:
                key = None
    return found


class LineSplitter:
    """Cuts what is read from stdin into lines of at most `limit` bytes, keeping no more than that in memory.

    `feed` returns the complete lines a chunk ends, each as ``bytes``, and for a line that grows past `limit` its
    first `keep` bytes as an `Overlong`, at once; the rest of that line, up to its newline, is read and dropped.
    `end` returns what was left without a newline when the input closed."""

    def __init__(self, limit: int = MAX_LINE_BYTES, keep: int = ID_SCAN_BYTES) -> None:
        self._limit = limit
        self._keep = keep
        self._pending = bytearray()
        self._skipping = False

    def feed(self, chunk: bytes) -> list[bytes | Overlong]:
        out: list[bytes | Overlong] = []
        start = 0
        while start < len(chunk):
            newline = chunk.find(b"\n", start)
            end = len(chunk) if newline < 0 else newline
            if not self._skipping:
                self._pending += chunk[start:end]
                if len(self._pending) > self._limit:
                    out.append(Overlong(bytes(self._pending[: self._keep])))
                    self._pending.clear()
                    self._skipping = True
                elif newline >= 0:
                    out.append(bytes(self._pending))
                    self._pending.clear()
            if newline < 0:
                break
            self._skipping = False
            start = newline + 1
        return out

    def end(self) -> list[bytes | Overlong]:
        line, self._pending = bytes(self._pending), bytearray()
        return [] if self._skipping or not line else [line]


@dataclass(frozen=True)
class Overlong:
    """The start of a line that went past the bound."""

    prefix: bytes
