"""The MCP server: `create_server()` builds it, `serve()` runs it over stdio.

`tool_table()` is the registration table: every tool, declared once in its family's module
under `tools/`. Which are served follows from their annotations: a tool that is not
read-only is served only with --allow-writes (`served_tools`). The resource templates and
the prompts have their own tables (`tools.resources.TEMPLATES`, `tools.prompts.PROMPTS`);
completions are answered by `tools.completions`.

Start-up stays as cheap as the SDK allows (the time to answer ``initialize`` is what
a user waits for when a client launches the server): the tools, their schemas and
the API layer are only imported and registered when a client first lists or calls
tools (resources, prompts: when it first lists or reads them), and the HTTP client is
created on the first API call (see `state`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from mcp import MCPError
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import (
    ResourceError,
    ResourceNotFoundError,
    ToolError,
    UnexpectedResourceError,
    UnexpectedToolError,
)
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.types import INVALID_PARAMS, CompleteRequestParams, CompleteResult

from .config import Settings
from .errors import CheckpointsError, ErrorCode, internal_error
from .masked_exits import masked_exit
from .redaction import install_log_masking
from .result_bounds import as_sent
from .state import AppState

ArgModelT = TypeVar("ArgModelT", bound=ArgModelBase)

if TYPE_CHECKING:
    from collections.abc import Iterable

    import httpx2
    from mcp.server.context import ServerRequestContext
    from mcp.server.lowlevel.helper_types import ReadResourceContents
    from mcp.server.mcpserver.prompts.base import Prompt as RegisteredPrompt
    from mcp.server.mcpserver.tools.base import Tool as RegisteredTool
    from mcp.types import (
        CallToolResult,
        GetPromptResult,
        InputRequiredResult,
        Prompt,
        ResourceTemplate,
        Tool,
    )
    from pydantic import AnyUrl

    from .api.store import JobStore
    from .tools.common import ToolSpec

logger = logging.getLogger(__name__)

masked = masked_exit(lambda server: server._settings.redactor)
"""On each handler that answers a client: every text of its answer or error, and its progress messages, masked."""

SERVER_NAME = "openai-checkpoints"

INSTRUCTIONS = """Inspects fine-tuning jobs on the OpenAI API (or a compatible server) and answers "which checkpoint
should I deploy, and why?". {guides}
{access}
Errors start with a short code (invalid_argument, auth_missing, auth_failed, permission_denied, not_found,
rate_limited, upstream_unavailable, timeout, bad_response, missing_dependency, internal_error) followed by what to
do."""
"""The tools' sentences come from the served toolsets (`tools.toolsets`): the instructions name served tools only."""

READ_ONLY_ACCESS = "All tools are read-only."
WRITE_ACCESS = (
    "Writes are enabled: {names} change a job for real, so call them only when the user asks, after confirming which "
    "job with them; the other tools are read-only."
)

DEMO_INSTRUCTIONS = """DEMO MODE: every job, checkpoint and metric comes from a bundled, invented demo dataset, not
from an OpenAI account; say so when you show results. """

ARCHIVE_INSTRUCTIONS = """OFFLINE: answers come from an archive file of an account's fine-tuning history, not from the
live API; each result's notice says which account and when it was archived: say so when you show results. """


def tool_table() -> tuple[ToolSpec, ...]:
    """Every tool, in the order tools/list shows them. Adding a tool: declare it in its family's module with
    `tools.common.tool`, and add one line here."""
    from .tools import checkpoints, curves, events, jobs, models, permissions, plots, sweeps, writes

    return (
        jobs.list_jobs,
        jobs.get_job,
        checkpoints.list_checkpoints,
        checkpoints.best_checkpoint,
        sweeps.compare_jobs,
        curves.training_metrics,
        plots.plot_training_curve,
        events.list_events,
        models.list_fine_tuned_models,
        permissions.list_checkpoint_permissions,
        writes.cancel_job,
        writes.pause_job,
        writes.resume_job,
    )


# --- tools ---------------------------------------------------------------------------------------------------------


def served_tools(settings: Settings) -> tuple[ToolSpec, ...]:
    """The tools this server serves: those of the chosen toolsets (`--toolsets`; all without it), the read-only ones,
    and the others only with --allow-writes (without it they do not exist, not even as names)."""
    from .tools.toolsets import tool_names

    writes = settings.allow_writes and not settings.archive
    chosen = tool_names(settings.toolsets)
    return tuple(spec for spec in tool_table() if (spec.read_only or writes) and spec.name in chosen)


def strict_arguments(model: type[ArgModelT]) -> type[ArgModelT]:
    """The SDK's arguments model of a tool, validating strictly: ``true`` is not the integer 1, ``"yes"`` is not a
    boolean, ``"3"`` is not a number (lax pydantic takes all three). Its JSON schema, already published, is the
    same; `tools.arguments.describe_validation_error` words the refusals."""
    from pydantic import ConfigDict

    config = ConfigDict(**{**model.model_config, "strict": True})
    return type(model.__name__, (model,), {"model_config": config, "__module__": model.__module__})


def _write_may_have_landed(name: str) -> str:
    """For a write tool cut by the deadline, that its request may have reached the API (its answer was lost, not the
    write): an empty string for any other tool."""
    if name not in {spec.name for spec in tool_table() if not spec.read_only}:
        return ""
    return (
        f" The {name.removesuffix('_job')} request may have reached the API before the failure: check the job with "
        "get_job before trying again."
    )


def write_hint(name: str) -> str:
    """For a write tool this server does not serve, why and how to serve it (an empty string for any other name)."""
    writes = {spec.name for spec in tool_table() if not spec.read_only}
    if name not in writes:
        return ""
    return (
        f". {name} is a write tool, served only with --allow-writes: restart the server with that flag to use it "
        "(never with --archive)"
    )


NAME_SHOWN = 64
"""Characters of an unknown name an error message repeats; the rest is counted, never echoed."""


def shown_name(name: str, limit: int = NAME_SHOWN) -> str:
    """`name` as an error message may repeat it: at most `limit` characters, then how many more there were."""
    if len(name) <= limit:
        return name
    return f"{name[:limit]}… ({len(name) - limit} more characters)"


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def instructions(settings: Settings) -> str:
    """The server's instructions: the demo warning first in demo mode; a sentence for each served toolset; write
    tools mentioned only when served. Written from `tools.toolsets` alone: no tool module is imported at start-up."""
    from .tools.toolsets import TOOLSETS, WRITES, chosen, guides

    served = chosen(settings.toolsets)
    if settings.allow_writes and not settings.archive and WRITES in served:
        access = WRITE_ACCESS.format(names=_names(list(TOOLSETS[WRITES].tools)))
    else:
        access = READ_ONLY_ACCESS
    mode = DEMO_INSTRUCTIONS if settings.demo else ARCHIVE_INSTRUCTIONS if settings.archive else ""
    return mode + INSTRUCTIONS.format(guides=" ".join(guides(served)), access=access)


def server_version() -> str:
    try:
        return version("openai-checkpoints-mcp")
    except PackageNotFoundError:  # running from a source tree
        return "0.0.0+source"


class CheckpointsServer(MCPServer[AppState]):
    """`MCPServer` with this project's conventions.

    * Tool errors start with a short code, translated here and only here: our `CheckpointsError`s keep their text,
      a metric or goal that cannot be used (`MetricChoiceError`) and arguments that fail the input schema become
      ``invalid_argument`` sentences naming the argument and what is accepted.
    * Each call has an overall deadline (``timeout`` when it passes); so has each resource read.
    * An unknown tool is a protocol error (``-32602``), not a tool result; so are an unknown prompt (the message lists
      the prompts) and a prompt's bad arguments, with no traceback in the log.
    * A resource read's failures are protocol errors whose message starts with our short code: an unknown job (or
      nothing to serve yet: no result file, no curve to draw) is resource-not-found (``-32602``, data
      ``{"uri": ...}``), an invalid job id ``-32602`` before any request, anything upstream (or matplotlib missing)
      ``-32603``.
    * Tools are registered on first use (listing or calling), keeping start-up cheap; resource templates and prompts
      likewise. The completion handler is registered at once (it is what advertises the capability) and imports its
      module on first use.
    """

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._settings = settings
        self._deadline = settings.deadline
        self._tools_registered = False
        self._resources_registered = False
        self._prompts_registered = False
        # MCPServer.completion() does not hand its function the request context, which holds the store.
        self._lowlevel_server.add_request_handler("completion/complete", CompleteRequestParams, self._complete)

    def _ensure_tools(self) -> None:
        if not self._tools_registered:
            for spec in served_tools(self._settings):
                self.add_tool(spec.fn, title=spec.title, description=spec.description, annotations=spec.annotations)
                tool = self._tool_manager.get_tool(spec.name)
                if tool is not None:
                    tool.fn_metadata.arg_model = strict_arguments(tool.fn_metadata.arg_model)
            self._tools_registered = True

    async def list_tools(self) -> list[Tool]:
        self._ensure_tools()
        tools = await super().list_tools()
        for listed in tools:  # the schemas' titles are pydantic's names ("Job Id" for job_id): nothing to read
            listed.input_schema = untitled(listed.input_schema)
            if listed.output_schema is not None:
                listed.output_schema = untitled(listed.output_schema, output=True)
        return tools

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:  # used by the HTTP transport
        self._ensure_tools()
        return super()._tool_input_schema(name)

    @staticmethod
    def _refuse_unknown_arguments(tool: RegisteredTool, arguments: dict[str, Any] | None) -> None:
        """An argument the tool does not take is a mistake (a misspelt or renamed argument), not something to drop
        silently: the call would otherwise run with the default and answer a different question."""
        name = tool.name
        accepted = list(tool.parameters.get("properties", {}))
        unknown = sorted(set(arguments or {}) - set(accepted))
        if unknown:
            raise ToolError(
                f"invalid_argument: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not "
                f"{'an argument' if len(unknown) == 1 else 'arguments'} of {name}; it takes: "
                f"{', '.join(accepted) or 'no arguments'}."
            )

    @masked
    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[AppState, Any] | None = None
    ) -> CallToolResult | Any:
        self._ensure_tools()
        tool = self._tool_manager.get_tool(name)
        if tool is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {shown_name(name)}{write_hint(name)}")
        self._refuse_unknown_arguments(tool, arguments)
        try:
            with anyio.fail_after(self._deadline):
                return as_sent(await super().call_tool(name, arguments, context))
        except TimeoutError:
            raise ToolError(
                CheckpointsError(
                    ErrorCode.TIMEOUT,
                    f"The call did not finish within the server's {self._deadline:g} s deadline. Try again later, "
                    f"or start the server with a longer --deadline.{_write_may_have_landed(name)}",
                ).text
            ) from None
        except UnexpectedToolError as exc:
            from .analysis.ranking import MetricChoiceError

            cause = exc.__cause__
            if isinstance(cause, CheckpointsError):
                raise ToolError(cause.text) from cause
            if isinstance(cause, MetricChoiceError):
                raise ToolError(CheckpointsError(ErrorCode.INVALID_ARGUMENT, str(cause)).text) from cause
            raise _unexpected(name, cause or exc) from None
        except ToolError as exc:
            from pydantic import ValidationError

            if isinstance(exc.__cause__, ValidationError):
                from .tools.arguments import describe_validation_error

                raise ToolError(describe_validation_error(exc.__cause__)) from exc.__cause__
            raise
        except MCPError:
            raise
        except Exception as exc:  # outside the tool function: the result's conversion, out of memory, ...
            raise _unexpected(name, exc) from None

    async def run_stdio_async(self) -> None:
        """Serve over stdio through our own layer (`transport.stdio`), which answers the malformed lines the SDK's
        transport would drop unanswered."""
        from .transport.stdio import serve_stdio

        lowlevel = self._lowlevel_server
        await serve_stdio(lambda read, write: lowlevel.run(read, write, lowlevel.create_initialization_options()))

    # --- resources ------------------------------------------------------------------------------------------------

    def _ensure_resources(self) -> None:
        if not self._resources_registered:
            from .tools.resources import TEMPLATES, resource_function

            for spec in TEMPLATES:
                self.resource(
                    spec.uri_template,
                    name=spec.name,
                    title=spec.title,
                    description=spec.description,
                    mime_type=spec.mime_type,
                )(resource_function(spec))
            self._resources_registered = True

    async def list_resource_templates(self) -> list[ResourceTemplate]:
        self._ensure_resources()
        return await super().list_resource_templates()

    @masked
    async def read_resource(
        self, uri: AnyUrl | str, context: Context[AppState, Any] | None = None
    ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        self._ensure_resources()
        try:
            with anyio.fail_after(self._deadline):
                return await super().read_resource(uri, context)
        except TimeoutError:
            raise ResourceError(
                CheckpointsError(
                    ErrorCode.TIMEOUT,
                    f"Reading the resource did not finish within the server's {self._deadline:g} s deadline. Try "
                    "again later, or start the server with a longer --deadline.",
                ).text
            ) from None
        except UnexpectedResourceError as exc:
            cause = exc.__cause__
            if not isinstance(cause, CheckpointsError):
                failure = cause or exc
                logger.error(
                    "reading %s failed unexpectedly", uri, exc_info=(type(failure), failure, failure.__traceback__)
                )
                raise ResourceError(internal_error(f"the read of {uri}", failure).text) from None
            if cause.code is ErrorCode.INVALID_ARGUMENT:
                raise MCPError(code=INVALID_PARAMS, message=cause.text, data={"uri": str(uri)}) from None
            if cause.code is ErrorCode.NOT_FOUND:
                raise ResourceNotFoundError(cause.text) from cause
            raise ResourceError(cause.text) from cause

    # --- prompts --------------------------------------------------------------------------------------------------

    def _ensure_prompts(self) -> None:
        if not self._prompts_registered:
            from .tools.prompts import PROMPTS
            from .tools.toolsets import tool_names

            served = tool_names(self._settings.toolsets)  # a prompt whose tools are not all served is not offered
            for spec in (p for p in PROMPTS if set(p.tools) <= served):
                self.prompt(name=spec.name, title=spec.title, description=spec.description)(spec.fn)
            self._prompts_registered = True

    async def list_prompts(self) -> list[Prompt]:
        self._ensure_prompts()
        return await super().list_prompts()

    @staticmethod
    def _check_prompt_arguments(prompt: RegisteredPrompt, arguments: dict[str, Any] | None) -> None:
        """Unknown and missing arguments, as the tools refuse them (`_refuse_unknown_arguments`)."""
        accepted = [argument.name for argument in prompt.arguments or []]
        unknown = sorted(set(arguments or {}) - set(accepted))
        missing = [a.name for a in prompt.arguments or [] if a.required and a.name not in (arguments or {})]
        if unknown:
            message = (
                f"invalid_argument: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not "
                f"{'an argument' if len(unknown) == 1 else 'arguments'} of the prompt {prompt.name}; it takes: "
                f"{', '.join(accepted) or 'no arguments'}."
            )
        elif missing:
            message = f"invalid_argument: {', '.join(missing)} is required by the prompt {prompt.name}."
        else:
            return
        raise MCPError(code=INVALID_PARAMS, message=message)

    @masked
    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[AppState, Any] | None = None
    ) -> GetPromptResult | InputRequiredResult:
        """An unknown prompt or a bad argument is ``-32602`` (the SDK would answer a bare exception: a traceback in
        the log, and code 0 or -32603 on the wire)."""
        self._ensure_prompts()
        prompt = self._prompt_manager.get_prompt(name)
        if prompt is None:
            names = ", ".join(p.name for p in self._prompt_manager.list_prompts())
            raise MCPError(
                code=INVALID_PARAMS, message=f"Unknown prompt: {shown_name(name)}. The prompts are: {names}."
            )
        self._check_prompt_arguments(prompt, arguments)
        try:
            return await super().get_prompt(name, arguments, context)
        except ValueError as exc:
            problem = _argument_problem(exc)
            if problem is None:
                raise
            raise MCPError(code=INVALID_PARAMS, message=problem) from None

    # --- completions ----------------------------------------------------------------------------------------------

    @masked
    async def _complete(self, ctx: ServerRequestContext[AppState], params: CompleteRequestParams) -> CompleteResult:
        from .tools.completions import complete

        def store() -> JobStore:
            return ctx.lifespan_context.store

        self._ensure_prompts()
        served = frozenset(p.name for p in self._prompt_manager.list_prompts())
        return CompleteResult(completion=await complete(store, params.ref, params.argument, served))


_SCHEMA_MAPS = ("properties", "$defs", "patternProperties")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_VALUES = ("items", "additionalProperties", "not")


def untitled(schema: dict[str, Any], *, output: bool = False) -> dict[str, Any]:
    """`schema` without the ``title`` keywords pydantic writes into every schema it generates (the field or model
    name, title-cased), which repeat the property names the model already reads. Only the keyword goes: a property
    called ``title`` stays. An `output` schema also loses its ``default`` keywords (a result has no defaults), and
    ``anyOf: [{type: T}, {type: null}]`` becomes the same constraint written ``type: [T, "null"]``; input schemas
    keep their ``anyOf`` and defaults, which some clients' tool-schema dialects need."""
    out = {
        key: value
        for key, value in schema.items()
        if not (key == "title" and isinstance(value, str)) and not (output and key == "default")
    }
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: _sub(sub, output) for name, sub in out[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_sub(sub, output) for sub in out[key]]
    for key in _SCHEMA_VALUES:
        if isinstance(out.get(key), dict):
            out[key] = untitled(out[key], output=output)
    arms = out.get("anyOf")
    if output and "type" not in out and isinstance(arms, list) and all(_bare_type(arm) for arm in arms):
        del out["anyOf"]
        out["type"] = [arm["type"] for arm in arms]
    return out


def _sub(schema: Any, output: bool) -> Any:
    return untitled(schema, output=output) if isinstance(schema, dict) else schema


def _bare_type(schema: Any) -> bool:
    """A schema that is only ``{"type": "<one type>"}``."""
    return isinstance(schema, dict) and list(schema) == ["type"] and isinstance(schema["type"], str)


def _unexpected(tool: str, exc: BaseException) -> ToolError:
    """An unanticipated failure as a tool error with a code (``internal_error``), its traceback logged to stderr:
    the SDK would answer the bare ``Error executing tool ...``."""
    logger.error("tool %s failed unexpectedly", tool, exc_info=(type(exc), exc, exc.__traceback__))
    return ToolError(internal_error(tool, exc).text)


def _argument_problem(error: BaseException) -> str | None:
    """The ``invalid_argument`` sentence behind a prompt's failure, if bad arguments caused it (the SDK wraps the
    validation error, or our `CheckpointsError`, in two ValueErrors)."""
    from pydantic import ValidationError

    from .tools.arguments import describe_validation_error

    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ValidationError):
            return describe_validation_error(cause)
        if isinstance(cause, CheckpointsError):
            return cause.text
        cause = cause.__cause__
    return None


def create_server(
    settings: Settings,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    log_level: str = "INFO",
) -> CheckpointsServer:
    """Build the server. `transport` replaces the network (tests); demo mode uses the bundled fake API."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        install_log_masking(settings.redactor)  # here, once the handlers exist (uvicorn's too)
        state = AppState(settings=settings, transport=transport)
        try:
            yield state
        finally:
            await state.aclose()

    return CheckpointsServer(
        settings,
        name=SERVER_NAME,
        title="OpenAI fine-tuning checkpoints",
        version=server_version(),
        instructions=instructions(settings),
        lifespan=lifespan,
        subscriptions=False,
        log_level=log_level,
    )


def warn_if_no_key(settings: Settings) -> None:
    """One line on stderr when no key is configured: the server still starts, and its tools say auth_missing."""
    if not settings.api_key and not settings.demo and not settings.archive:
        logger.warning("%s is not set: tools will answer auth_missing until it is (or use --demo)", settings.key_env)


async def serve(settings: Settings, *, log_level: str = "INFO") -> None:
    """Run over stdio until the client closes stdin. Logs go to stderr; stdout carries only JSON-RPC (a malformed
    line is answered with its error: `transport.jsonrpc`)."""
    warn_if_no_key(settings)
    logger.info("serving over stdio: %s", settings)
    await create_server(settings, log_level=log_level).run_stdio_async()
