"""The MCP server: `create_server()` builds it, `serve()` runs it over stdio."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import anyio
import httpx2
from mcp import MCPError
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import INVALID_PARAMS
from pydantic import ValidationError

from .api.client import OpenAIClient, create_http_client
from .config import Settings
from .errors import CheckpointsError, ErrorCode
from .inputs import describe_validation_error
from .tools import AppState, register_tools

logger = logging.getLogger(__name__)

SERVER_NAME = "openai-checkpoints"

INSTRUCTIONS = """Inspects fine-tuning jobs on the OpenAI API (or a compatible server) and answers "which checkpoint
should I deploy, and why?". Typical flow: list_jobs to find the job, then best_checkpoint(job_id) for the answer and
a rationale to quote; list_checkpoints shows every checkpoint with its metrics, get_job the job's settings. All tools
are read-only. Errors start with a short code (invalid_argument, auth_missing, auth_failed, permission_denied,
not_found, rate_limited, upstream_unavailable, timeout, bad_response) followed by what to do."""

DEMO_INSTRUCTIONS = """DEMO MODE: every job, checkpoint and metric comes from a bundled, invented demo dataset, not
from an OpenAI account; say so when you show results. """


def server_version() -> str:
    try:
        return version("openai-checkpoints-mcp")
    except PackageNotFoundError:  # running from a source tree
        return "0.0.0+source"


class CheckpointsServer(MCPServer[AppState]):
    """`MCPServer` whose tool errors start with our short codes, with an overall deadline per call,
    and where an unknown tool is a protocol error (``-32602``) rather than a tool result."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._deadline = settings.deadline
        self._tool_names: set[str] = set()

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context[AppState, Any] | None = None):
        if not self._tool_names:
            self._tool_names = {tool.name for tool in await self.list_tools()}
        if name not in self._tool_names:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {name}")
        try:
            with anyio.fail_after(self._deadline):
                return await super().call_tool(name, arguments, context)
        except TimeoutError:
            raise ToolError(
                CheckpointsError(
                    ErrorCode.TIMEOUT,
                    f"The call did not finish within the server's {self._deadline:g} s deadline. Try again later, "
                    "or start the server with a longer --deadline.",
                ).text
            ) from None
        except UnexpectedToolError as exc:
            if isinstance(exc.__cause__, CheckpointsError):
                raise ToolError(exc.__cause__.text) from exc.__cause__
            raise
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(describe_validation_error(exc.__cause__)) from exc.__cause__
            raise


def create_server(
    settings: Settings,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    log_level: str = "INFO",
) -> CheckpointsServer:
    """Build the server. `transport` replaces the network (tests; demo mode uses the bundled fake API)."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        chosen = transport
        if chosen is None and settings.demo:
            from .fake import FakeOpenAI, demo_data  # only demo mode pays for the fake

            chosen = httpx2.ASGITransport(app=FakeOpenAI(demo_data(), api_key=None))
        async with create_http_client(settings, chosen) as http:
            yield AppState(client=OpenAIClient(http, settings), settings=settings)

    server = CheckpointsServer(
        settings,
        name=SERVER_NAME,
        title="OpenAI fine-tuning checkpoints",
        version=server_version(),
        instructions=(DEMO_INSTRUCTIONS if settings.demo else "") + INSTRUCTIONS,
        lifespan=lifespan,
        subscriptions=False,
        log_level=log_level,
    )
    register_tools(server)
    return server


async def serve(settings: Settings, *, log_level: str = "INFO") -> None:
    """Run over stdio until the client closes stdin. Logs go to stderr; stdout carries only JSON-RPC."""
    if not settings.api_key and not settings.demo:
        logger.warning("OPENAI_API_KEY is not set: tools will answer auth_missing until it is (or use --demo)")
    logger.info("serving over stdio: %s", settings)
    await create_server(settings, log_level=log_level).run_stdio_async()
