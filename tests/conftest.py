"""Shared fixtures: the fake API served over real HTTP on 127.0.0.1, and MCP clients of our server."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from openai_checkpoints_mcp import config as config_module
from openai_checkpoints_mcp.config import CACHE_DIR_ENV, Settings
from openai_checkpoints_mcp.fake import FakeData, FakeOpenAI, FaultInjector
from openai_checkpoints_mcp.fake.app import FLAVOURS
from openai_checkpoints_mcp.redaction import forget_log_masking

from .helpers import TEST_KEY, Harness, serve_app, stop_shared_server


def pytest_configure(config: pytest.Config) -> None:
    """Nothing a test runs writes to the user's real cache directory. A bare ``Settings(...)``, as the harness builds,
    has no persistent cache at all; ``Settings.from_env`` turns it on, so the default directory is a temporary one
    here, in this process (`config.default_cache_dir`, also for an explicit environment mapping) and in the
    subprocesses (``OPENAI_CHECKPOINTS_MCP_CACHE_DIR``, passed on by `clean_env` and test_stdio)."""
    directory = tempfile.mkdtemp(prefix="openai-checkpoints-mcp-tests-")
    os.environ[CACHE_DIR_ENV] = directory
    config_module.default_cache_dir = lambda: Path(directory)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ.pop(CACHE_DIR_ENV, ""), ignore_errors=True)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def _shared_fake_server() -> Iterator[None]:
    """The one uvicorn server of this test process (started on first use) is stopped once, at the end."""
    yield
    stop_shared_server()


@pytest.fixture(autouse=True)
def _log_masking_of_this_test_only() -> Iterator[None]:
    """Each test's servers register their secrets for log masking in this process; they must not mask the next
    test's log (a key of zeros would mask a job id's zeros there)."""
    yield
    forget_log_masking()


@pytest.fixture
def serve_fake() -> Iterator[Callable[..., Any]]:
    """``with serve_fake(data, max_page_size=100) as harness:`` serves a fake API (fresh data, no faults) for the
    test, over real HTTP on the process's shared server."""

    @contextmanager
    def serve(data: FakeData, **fake_options: Any) -> Iterator[Harness]:
        fake_options.setdefault("api_key", TEST_KEY)
        fake = FakeOpenAI(data, **fake_options)
        faults = FaultInjector(fake)
        with serve_app(faults) as base_url:
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
        with serve_app(faults, base_path="") as root:
            base_url = root + fake.base_path
            env = {
                "openai": {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": base_url},
                "azure": {
                    "AZURE_OPENAI_ENDPOINT": root,
                    "AZURE_OPENAI_API_KEY": TEST_KEY,
                },
                "azure-v1": {
                    "OPENAI_BASE_URL": base_url,
                    "AZURE_OPENAI_API_KEY": TEST_KEY,
                },
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
