"""Shared fixtures: the fake API served over real HTTP on 127.0.0.1, and MCP clients of our server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from typing import Any

import pytest
from mcp import Client

from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.fake import FakeData, FakeOpenAI, FaultInjector, running_server
from openai_checkpoints_mcp.server import create_server

TEST_KEY = "sk-test-0123456789abcdefSECRET"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Harness:
    """A fake API behind a fault injector, served on 127.0.0.1, and a way to reach it through MCP."""

    fake: FakeOpenAI
    faults: FaultInjector
    base_url: str
    settings: Settings

    @asynccontextmanager
    async def client(self, mode: str = "auto", **overrides: Any) -> AsyncIterator[Client]:
        """An MCP client (in memory) of a server configured for this fake; `overrides` change settings."""
        server = create_server(replace(self.settings, **overrides))
        async with Client(server, mode=mode, raise_exceptions=mode != "legacy") as client:
            yield client

    def upstream_requests(self, path_part: str = "/fine_tuning") -> list[Any]:
        """Requests that reached the injector (faulted ones included) whose path contains `path_part`."""
        return [r for r in self.faults.requests if path_part in r.path]


@pytest.fixture
def serve_fake() -> Iterator[Callable[..., Any]]:
    """``with serve_fake(data, max_page_size=100) as harness:`` serves a fake API for the test."""

    @contextmanager
    def serve(data: FakeData, **fake_options: Any) -> Iterator[Harness]:
        fake_options.setdefault("api_key", TEST_KEY)
        fake = FakeOpenAI(data, **fake_options)
        faults = FaultInjector(fake)
        with running_server(faults) as base_url:
            settings = Settings(api_key=TEST_KEY, base_url=base_url, timeout=5.0, deadline=30.0)
            yield Harness(fake=fake, faults=faults, base_url=base_url, settings=settings)

    yield serve


@pytest.fixture(params=["auto", "legacy"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both protocol eras: 2026-07-28 (auto) and the 2025-11-25 initialize handshake (legacy)."""
    return request.param


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
