"""Fault injection: an ASGI wrapper that answers chosen requests with errors or delays.

Used to drive a client's retry, timeout and error paths against the fake API:
429 with `retry-after-ms`, 5xx, `x-should-retry`, an HTML page from a proxy, or a
slow answer; and to add latency to every request and count the requests in flight.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

from .app import RecordedRequest, default_error_body, with_request_id


@dataclass
class Fault:
    """One scripted misbehaviour, used for the next `times` matching requests.

    `body`: a dict is sent as JSON, bytes as-is (with `content_type`), None as an
    OpenAI error envelope that suits `status`. With `passthrough_after_delay`, the
    request is only delayed by `delay` seconds and then answered by the wrapped app.
    """

    status: int = 500
    body: bytes | dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    path_contains: str | None = None
    times: int = 1
    delay: float = 0.0
    passthrough_after_delay: bool = False

    def matches(self, path: str) -> bool:
        """Whether this fault applies to a request for `path`."""
        return self.path_contains is None or self.path_contains in path

    def render(self) -> tuple[bytes, str]:
        """The response body and its content type."""
        if isinstance(self.body, bytes):
            return self.body, self.content_type or "application/octet-stream"
        payload = default_error_body(self.status) if self.body is None else self.body
        return json.dumps(payload).encode(), self.content_type or "application/json"


@dataclass
class _Slot:
    fault: Fault
    left: int


class FaultInjector:
    """Wraps an ASGI app; each request is answered by the first matching fault not yet used up.

    Faults are consumed in the order they were added. Requests no fault claims go to
    the wrapped app unchanged. Every request that arrives is recorded in `requests`.

    `latency` (seconds) delays every HTTP request before it is answered, by a fault
    (whose own `delay` comes on top) or by the wrapped app: a network round trip.
    `in_flight` is how many HTTP requests are being answered now, and `peak` the most
    at once since the injector was made or `reset_peak()` was last called (uvicorn
    serves it on one event loop, so the counts need no lock). `arrivals` is `in_flight` as each request arrived
    (itself included): how the client's bound moved over time.
    """

    def __init__(self, app: ASGIApp, faults: list[Fault] | None = None, *, latency: float = 0.0) -> None:
        self.app = app
        self.latency = latency
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.peak = 0
        self.arrivals: list[int] = []
        self._slots: list[_Slot] = []
        self.add(*(faults or []))

    def add(self, *faults: Fault) -> None:
        """Queue more faults after the ones already pending."""
        self._slots.extend(_Slot(fault, fault.times) for fault in faults)

    @property
    def remaining(self) -> int:
        """How many faulted answers are still to be given."""
        return sum(slot.left for slot in self._slots)

    def _claim(self, path: str) -> Fault | None:
        for slot in self._slots:
            if slot.left > 0 and slot.fault.matches(path):
                slot.left -= 1
                return slot.fault
        return None

    def reset_peak(self) -> None:
        """Measure `peak` afresh from now on (it starts at the requests in flight now)."""
        self.peak = self.in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.arrivals.append(self.in_flight)
        try:
            await self._answer(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.requests.append(RecordedRequest.from_scope(scope))
        fault = self._claim(scope["path"])
        if self.latency > 0:
            await anyio.sleep(self.latency)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.delay > 0:
            await anyio.sleep(fault.delay)
        if fault.passthrough_after_delay:
            await self.app(scope, receive, send)
            return
        body, content_type = fault.render()
        headers = {"content-type": content_type, "content-length": str(len(body)), **fault.headers}
        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        send = with_request_id(send)
        await send({"type": "http.response.start", "status": fault.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})
