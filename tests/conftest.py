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
from openai_checkpoints_mcp.fake.app import FLAVOURS
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


@pytest.fixture
def serve_fake_flavoured() -> Iterator[Callable[..., Any]]:
    """``with serve_fake_flavoured(data, flavour="azure") as harness:`` serves the fake API in a flavour
    (``openai``, ``azure``: Azure's legacy API under /openai, ``azure-v1``: Azure's v1 API under /openai/v1), with
    the settings a user of that flavour gets from ``Settings.from_env``: ``AZURE_OPENAI_ENDPOINT`` and
    ``AZURE_OPENAI_API_KEY`` for ``azure``; ``OPENAI_BASE_URL``, ``AZURE_OPENAI_API_KEY`` and
    ``--auth-header api-key`` for ``azure-v1`` (the fake is not on an Azure host)."""

    @contextmanager
    def serve(data: FakeData, flavour: str = "openai", **fake_options: Any) -> Iterator[Harness]:
        fake_options.setdefault("api_key", TEST_KEY)
        fake = FakeOpenAI(data, flavour=flavour, **fake_options)
        faults = FaultInjector(fake)
        with running_server(faults, base_path="") as root:
            base_url = root + fake.base_path
            env = {
                "openai": {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": base_url},
                "azure": {"AZURE_OPENAI_ENDPOINT": root, "AZURE_OPENAI_API_KEY": TEST_KEY},
                "azure-v1": {"OPENAI_BASE_URL": base_url, "AZURE_OPENAI_API_KEY": TEST_KEY},
            }[flavour]
            auth_header = "api-key" if flavour == "azure-v1" else None
            settings = Settings.from_env(env, timeout=5.0, deadline=30.0, auth_header=auth_header)
            assert settings.base_url == base_url
            yield Harness(fake=fake, faults=faults, base_url=base_url, settings=settings)

    yield serve


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    """Each flavour of the fake API: OpenAI, Azure's legacy dated API, Azure's v1 API."""
    return request.param


@pytest.fixture(params=["auto", "legacy"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both protocol eras: 2026-07-28 (auto) and the 2025-11-25 initialize handshake (legacy)."""
    return request.param


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def console_script() -> str:
    """The installed `openai-checkpoints-mcp`, next to this interpreter (or on PATH)."""
    import shutil
    import sys
    from pathlib import Path

    beside = Path(sys.executable).with_name("openai-checkpoints-mcp")
    found = str(beside) if beside.exists() else shutil.which("openai-checkpoints-mcp")
    if found is None:
        pytest.fail("the console script openai-checkpoints-mcp is not installed; pip install the project first")
    return found
