"""Malformed JSON-RPC over stdio gets its error at once, never silence: a real server subprocess fed raw lines.

Each case writes one line that a hostile or broken client could send, expects the JSON-RPC error with the exact code
and id within a few seconds, then checks that the same server still answers a valid ``tools/call``. The SDK's own
stdio transport answered the last two cases of `MALFORMED` (their envelopes are valid), and the depth-100 arguments
and the 5,000-character id as if they were valid: every other line went unanswered, and the client waited for its own
timeout. One subprocess serves the
whole module.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from openai_checkpoints_mcp.fake import DEMO_JOB_IDS
from openai_checkpoints_mcp.transport.jsonrpc import (
    Drop,
    Forward,
    LineSplitter,
    Overlong,
    Refuse,
    check_line,
    check_overlong,
    nesting_depth,
)

from .helpers import INITIALIZE
from .test_stdio import TEST_CACHE_ENV

REPLY_WITHIN = 10.0
"""Seconds a reply may take on a loaded machine; the client's own timeout, which it would otherwise wait for, is
typically a minute or more."""

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602


@dataclass
class StdioServer:
    """A server subprocess: raw lines in, parsed JSON-RPC messages out (every stdout line must parse)."""

    process: subprocess.Popen[bytes]
    replies: queue.Queue[Any]
    next_id: int = 1000

    def send(self, line: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + b"\n")
        self.process.stdin.flush()

    def reply(self) -> dict[str, Any]:
        try:
            message = self.replies.get(timeout=REPLY_WITHIN)
        except queue.Empty:
            pytest.fail(f"no reply within {REPLY_WITHIN:g} s")
        assert isinstance(message, dict), f"stdout carried a line that is not JSON-RPC: {message!r}"
        return message

    def call_tool(self) -> dict[str, Any]:
        """A valid ``tools/call``, answered with its result."""
        self.next_id += 1
        request = {
            "jsonrpc": "2.0",
            "id": self.next_id,
            "method": "tools/call",
            "params": {"name": "get_job", "arguments": {"job_id": DEMO_JOB_IDS["support_bot"]}},
        }
        self.send(json.dumps(request).encode())
        reply = self.reply()
        assert reply["id"] == self.next_id and reply["result"]["isError"] is False, reply
        return reply


def _read_stdout(process: subprocess.Popen[bytes], replies: queue.Queue[Any]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        try:
            replies.put(json.loads(line))
        except ValueError:
            replies.put(line)  # StdioServer.reply fails on it


@pytest.fixture(scope="module")
def server() -> Iterator[StdioServer]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **TEST_CACHE_ENV}
    with (
        tempfile.TemporaryFile() as errlog,
        subprocess.Popen(
            [sys.executable, "-m", "openai_checkpoints_mcp", "--demo"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errlog,
            env=env,
        ) as process,
    ):
        replies: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=_read_stdout, args=(process, replies), daemon=True).start()
        stdio = StdioServer(process, replies)
        try:
            stdio.send(json.dumps(INITIALIZE).encode())
            assert stdio.reply()["id"] == 1
            stdio.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
            yield stdio
        finally:
            process.kill()


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _request(**members: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", **members}).encode()


def _call(arguments: str, id: Any = 7) -> bytes:
    return b'{"jsonrpc": "2.0", "id": %s, "method": "tools/call", "params": {"name": "get_job", "arguments": %s}}' % (
        json.dumps(id).encode(),
        arguments.encode(),
    )


MALFORMED = {
    # not JSON at all: -32700, and the id cannot be known
    "truncated JSON": (b'{"jsonrpc": "2.0", "id": 20, "method": "tools/list"', PARSE_ERROR, None),
    "not UTF-8": (
        b'{"jsonrpc": "2.0", "id": 21, "method": "tools/list", "params": {"cursor": "\xff\xfe"}}',
        PARSE_ERROR,
        None,
    ),
    "NaN is not JSON": (_call('{"job_id": NaN}', 22), PARSE_ERROR, None),
    "plain text": (b"hello", PARSE_ERROR, None),
    # JSON, but not a request: -32600, with the id when it is one
    "missing method": (_request(id=12), INVALID_REQUEST, 12),
    'jsonrpc "1.0"': (json.dumps({"jsonrpc": "1.0", "id": 13, "method": "tools/list"}).encode(), INVALID_REQUEST, 13),
    "no jsonrpc member": (json.dumps({"id": "a", "method": "tools/list"}).encode(), INVALID_REQUEST, "a"),
    "method not a string": (_request(id=14, method=["tools/list"]), INVALID_REQUEST, 14),
    "params a string": (_request(id=15, method="tools/list", params="x"), INVALID_REQUEST, 15),
    "an array (batch)": (b'[{"jsonrpc": "2.0", "id": 16, "method": "ping"}]', INVALID_REQUEST, None),
    "a number": (b"5", INVALID_REQUEST, None),
    "an empty object": (b"{}", INVALID_REQUEST, None),
    "a malformed notification": (b'{"jsonrpc": "1.0", "method": "notifications/initialized"}', INVALID_REQUEST, None),
    # odd ids: the request is invalid, and its id cannot be echoed
    "float id": (_request(id=1.5, method="tools/list"), INVALID_REQUEST, None),
    "object id": (_request(id={"n": 1}, method="tools/list"), INVALID_REQUEST, None),
    "array id": (_request(id=[1], method="tools/list"), INVALID_REQUEST, None),
    "boolean id": (_request(id=True, method="tools/list"), INVALID_REQUEST, None),
    "null id": (_request(id=None, method="tools/list"), INVALID_REQUEST, None),
    "very long id": (_request(id="x" * 5000, method="tools/list"), INVALID_REQUEST, None),
    # a request whose params are wrong: -32602 with its id
    "params an array": (_request(id=17, method="tools/call", params=["get_job"]), INVALID_PARAMS, 17),
    "deep arguments": (_call(f'{{"job_id": {_deep(100)}}}', 18), INVALID_PARAMS, 18),
    "very deep arguments": (_call(f'{{"job_id": {_deep(200_000)}}}', 19), INVALID_PARAMS, 19),
    "deep elsewhere": (
        b'{"jsonrpc": "2.0", "id": 23, "method": "ping", "x": %s}' % _deep(1000).encode(),
        INVALID_REQUEST,
        23,
    ),
    "a tool name that is not a string": (_request(id=24, method="tools/call", params={"name": 5}), INVALID_PARAMS, 24),
    # a method nobody serves: -32601
    "unknown method": (_request(id=25, method="tools/destroy"), METHOD_NOT_FOUND, 25),
}


@pytest.mark.parametrize(("line", "code", "id"), list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_message_gets_its_error_at_once(server: StdioServer, line: bytes, code: int, id: Any) -> None:
    server.send(line)
    reply = server.reply()
    assert reply["jsonrpc"] == "2.0" and reply["id"] == id and reply["error"]["code"] == code, reply
    assert reply["error"]["message"]
    server.call_tool()


def test_a_line_beyond_the_bound_is_refused_with_its_id_and_the_rest_skipped(server: StdioServer) -> None:
    """5 MiB in one line (the bound is 4 MiB): -32600 with the id found at the line's start, before the line has
    even ended; the rest of the line, up to its newline, is read and dropped, and the next line is a message again."""
    line = _call(json.dumps({"job_id": "a" * (5 * 2**20)}), 30)
    assert server.process.stdin is not None
    server.process.stdin.write(line)  # no newline yet
    server.process.stdin.flush()
    reply = server.reply()
    server.send(b"still the same line")
    assert reply["id"] == 30 and reply["error"]["code"] == INVALID_REQUEST, reply
    assert "4 MiB" in reply["error"]["message"]
    server.call_tool()


def test_odd_but_valid_ids_are_echoed(server: StdioServer) -> None:
    for odd in ("x" * 1000, 2**62, -3, 0, "", "ü ✓"):
        server.send(_request(id=odd, method="ping"))
        reply = server.reply()
        assert reply == {"jsonrpc": "2.0", "id": odd, "result": {}}


def test_a_malformed_response_from_the_client_gets_no_reply(server: StdioServer) -> None:
    """A response belongs to the server's own request ids: answering it would address an error to one of the
    client's requests. It is dropped (logged), and the next request is the next thing answered."""
    server.send(b'{"jsonrpc": "2.0", "id": 5, "result": 3}')
    server.send(b'{"jsonrpc": "2.0", "id": 6, "error": "no"}')
    server.call_tool()


def test_blank_lines_are_skipped(server: StdioServer) -> None:
    server.send(b"")
    server.send(b"   \r")
    server.call_tool()


# --- the checks themselves (pure) -------------------------------------------------------------------------------------


def test_the_splitter_bounds_a_line_and_skips_its_rest() -> None:
    splitter = LineSplitter(limit=10, keep=4)
    assert splitter.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert splitter.feed(b":2}\n") == [b'{"b":2}']
    assert splitter.feed(b"0123456789") == []  # at the bound: still a line
    assert splitter.feed(b"X") == [Overlong(b"0123")]  # past it: answered at once
    assert splitter.feed(b"more and more") == []  # the rest is dropped, never kept
    assert splitter.feed(b"still\nnext\nlast") == [b"next"]
    assert splitter.end() == [b"last"]


def test_nesting_depth_ignores_brackets_in_strings_and_survives_hostile_strings() -> None:
    assert nesting_depth(b'{"a": [1, {"b": "[[[[{{{"}]}') == 3
    assert nesting_depth(b'"\\"[[[') == 0  # an unterminated string runs to the end
    assert nesting_depth(b"[" * 100_000) == 100_000
    assert nesting_depth(b'"\\"' * 200_000 + b"[") == 0  # linear: no retried match per quote


def test_a_cut_or_deep_line_still_yields_its_id() -> None:
    cut = _call(json.dumps({"job_id": "a" * 100_000}), "req-1")[:1000]
    assert check_overlong(cut).id == "req-1"
    assert check_overlong(b'{"jsonrpc": "2.0", "params": {"x": "' + b"a" * 100_000).id is None
    assert check_overlong(b'[{"id": 3}').id is None
    deep = check_line(b'{"params": {"a": %s}, "jsonrpc": "2.0", "id": 4}' % _deep(100).encode())
    assert isinstance(deep, Refuse) and deep.code == INVALID_REQUEST and deep.id is None  # the id comes too late
    early = check_line(b'{"id": 4, "\\u0070arams": {"a": %s}}' % _deep(100).encode())
    assert early == Refuse(4, INVALID_PARAMS, "Invalid params: they nest deeper than 64 levels.")


def test_valid_messages_are_forwarded_as_the_sdk_reads_them() -> None:
    request = check_line(_call('{"job_id": "ftjob-abc"}', 3))
    assert isinstance(request, Forward) and request.message.model_dump()["id"] == 3
    assert isinstance(check_line(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}'), Forward)
    assert isinstance(check_line(b'{"jsonrpc": "2.0", "id": 9, "result": {}}'), Forward)
    assert check_line(b'{"jsonrpc": "2.0", "id": 9, "result": 3}') == Drop("a malformed response")


ECHO_SERVER = """
import os, anyio
from openai_checkpoints_mcp.transport.stdio import serve_stdio

async def echo(read, write):
    print("a stray print")
    os.write(1, b"a stray write\\n")
    async with read, write:
        async for message in read:
            await write.send(message)

anyio.run(serve_stdio, echo)
"""


def test_stdout_is_the_protocols_alone_and_stdin_closing_ends_the_session() -> None:
    """The transport alone, around a session that echoes what it is handed: what the process prints to fd 1 goes to
    stderr, the wire carries only the echo and the refusal, and closing stdin ends the process cleanly."""
    request = _request(id=1, method="ping")
    done = subprocess.run(
        [sys.executable, "-c", ECHO_SERVER],
        input=request + b"\n{oops\n" + request,  # the last line without a newline still counts
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]  # in any order: the refusal does not queue
    errors = [line for line in lines if "error" in line]
    assert [line for line in lines if "error" not in line] == [json.loads(request)] * 2
    assert len(errors) == 1 and errors[0]["id"] is None and errors[0]["error"]["code"] == PARSE_ERROR
    assert b"a stray print" in done.stderr and b"a stray write" in done.stderr


def test_a_flood_of_malformed_lines_is_logged_once_per_kind(caplog):
    """A client looping on a bad line: the first refusal of each kind is logged, the rest held back (counted on the
    next line of that kind, a minute later), and a line's content is never logged."""
    import logging

    from openai_checkpoints_mcp.transport.jsonrpc import Drop, Refuse
    from openai_checkpoints_mcp.transport.logs import OncePerInterval
    from openai_checkpoints_mcp.transport.stdio import _log_refusal

    stdio_log = logging.getLogger("openai_checkpoints_mcp.transport.stdio")
    kept, stdio_log.filters = stdio_log.filters, [OncePerInterval(60.0)]  # this test's own minute
    try:
        with caplog.at_level(logging.WARNING, logger=stdio_log.name):
            for n in range(500):
                _log_refusal(Refuse(id=n, code=-32700, message=f"Parse error at {n}"))
                _log_refusal(Refuse(id=n, code=-32600, message="Invalid request"))
                _log_refusal(Drop(reason="a malformed response"))
                _log_refusal(Drop(reason="a blank line"))
    finally:
        stdio_log.filters = kept
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert any("-32700" in line for line in lines) and any("-32600" in line for line in lines)
    assert any("dropped a malformed response" in line for line in lines)
