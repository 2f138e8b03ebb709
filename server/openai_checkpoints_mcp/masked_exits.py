"""The server's exits, masked: what its handlers answer (`mask_result`), what they raise (`masked_error`) and the
progress they report (`masked_context`), all through one decorator, `masked_exit`, with the server's `Redactor`.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .redaction import Redactor

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context
    from mcp.types import CallToolResult


def mask_result(result: Any, redactor: Redactor) -> Any:
    """A handler's answer with every text masked: a tool result (structured content, text blocks, embedded
    resources, links), a resource read (its text contents), a prompt (description and messages), or a completion
    (whose values that would need masking are left out). Binary content (a PNG) is left as it is. Called once, at
    each exit of `server.CheckpointsServer`."""
    if not redactor:
        return result
    from mcp.server.lowlevel.helper_types import ReadResourceContents
    from mcp.types import CallToolResult, CompleteResult, Completion, GetPromptResult

    if isinstance(result, CallToolResult):
        return _masked_tool_result(result, redactor)
    if isinstance(result, CompleteResult):  # a masked suggestion would match nothing: it is left out
        kept = [
            value for value in result.completion.values if not redactor.suspect(value) or redactor.mask(value) == value
        ]
        dropped = len(result.completion.values) - len(kept)
        if dropped:
            total = None if result.completion.total is None else max(result.completion.total - dropped, len(kept))
            result.completion = Completion(values=kept, total=total, has_more=result.completion.has_more)
        return result
    if isinstance(result, GetPromptResult):
        if result.description is not None:
            result.description = redactor.mask(result.description)
        for message in result.messages:
            message.content = _masked_block(message.content, redactor)
        return result
    if isinstance(result, str):
        return redactor.mask(result)
    if isinstance(result, list | tuple) and all(isinstance(item, ReadResourceContents) for item in result):
        return [
            ReadResourceContents(content=redactor.mask(item.content), mime_type=item.mime_type, meta=item.meta)
            if isinstance(item.content, str)
            else item
            for item in result
        ]
    return result


def _masked_tool_result(result: CallToolResult, redactor: Redactor) -> CallToolResult:
    """A tool result masked: checked whole first (its JSON text block is the structured content, as
    `result_bounds.as_sent` writes it, so one check covers both); only a result that may hold a secret is walked."""
    from mcp.types import TextContent

    structured = result.structured_content
    first = result.content[0] if result.content else None
    dumped = json.dumps(structured, separators=(",", ":"), ensure_ascii=False) if structured is not None else None
    same_text = isinstance(first, TextContent) and dumped is not None and first.text == dumped
    texts = [dumped or ""] + [getattr(block, "text", "") or "" for block in result.content[1 if same_text else 0 :]]
    meta = [block.meta for block in result.content if getattr(block, "meta", None)]
    if not any(redactor.suspect(text) for text in texts) and not any(
        redactor.suspect(json.dumps(m, default=str)) for m in meta
    ):
        return result  # the usual case: one check of the whole answer
    if structured is not None:
        result.structured_content = redactor.mask_value(structured)
    blocks = list(result.content)
    for index, block in enumerate(blocks):
        if index == 0 and same_text:
            text = json.dumps(result.structured_content, separators=(",", ":"), ensure_ascii=False)
            blocks[index] = _masked_block(block.model_copy(update={"text": text}), redactor)
        else:
            blocks[index] = _masked_block(block, redactor)
    result.content = blocks
    return result


_TEXT_FIELDS = ("text", "name", "title", "description", "uri")


def _masked_block(block: Any, redactor: Redactor) -> Any:
    """A content block (text, resource link, embedded resource) with its texts masked; image and audio data, and
    resource blobs, are binary and left as they are."""
    from mcp.types import EmbeddedResource, TextResourceContents

    updates: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = getattr(block, name, None)
        if isinstance(value, str) and redactor.suspect(value):
            updates[name] = redactor.mask(value)
    meta = getattr(block, "meta", None)
    if meta:
        masked_meta = redactor.mask_value(meta)
        if masked_meta is not meta:
            updates["meta"] = masked_meta
    resource = block.resource if isinstance(block, EmbeddedResource) else None
    if isinstance(resource, TextResourceContents) and redactor.suspect(resource.text):
        updates["resource"] = resource.model_copy(update={"text": redactor.mask(resource.text)})
    return block.model_copy(update=updates) if updates else block


def masked_error(error: BaseException, redactor: Redactor) -> BaseException | None:
    """An error like `error` whose message is masked, to raise in its place; None when its message needs nothing.

    `MCPError` keeps its code (its data is masked too); `ToolError`, `ResourceError` and their kinds keep their type;
    an error whose type cannot be made from its message alone becomes a `ValueError` of the masked message (what the
    SDK answers is that text)."""
    from mcp import MCPError

    if not redactor:
        return None
    if isinstance(error, MCPError):
        message = redactor.mask(error.error.message)
        data = redactor.mask_value(error.error.data)
        if message == error.error.message and data is error.error.data:
            return None
        return MCPError(code=error.error.code, message=message, data=data)
    text = str(error)
    masked = redactor.mask(text)
    if masked == text:
        return None
    try:
        replacement: BaseException = type(error)(masked)
    except Exception:  # a type that does not take one message (CheckpointsError)
        replacement = ValueError(masked)
    return replacement if str(replacement) == masked else ValueError(masked)


F = TypeVar("F", bound=Callable[..., Any])


def masked_exit(redactor_of: Callable[[Any], Redactor]) -> Callable[[F], F]:
    """Decorate a handler method of the server (``call_tool``, ``read_resource``, ``get_prompt``): its answer goes
    through `mask_result`, what it raises through `masked_error`, and its ``context`` argument (the `Context` the
    tool or resource function receives) reports progress through `masked_context`. `redactor_of(self)` is the
    server's `Redactor`."""

    def decorate(method: F) -> F:
        signature = inspect.signature(method)

        @functools.wraps(method)
        async def masked(self: Any, *args: Any, **kwargs: Any) -> Any:
            redactor = redactor_of(self)
            bound = signature.bind(self, *args, **kwargs)
            if bound.arguments.get("context") is not None:
                bound.arguments["context"] = masked_context(bound.arguments["context"], redactor)
            try:
                result = await method(*bound.args, **bound.kwargs)
            except Exception as exc:
                replacement = masked_error(exc, redactor)
                if replacement is None:
                    raise
                raise replacement from exc.__cause__  # the log shows the cause, through `MaskingFilter`
            return mask_result(result, redactor)

        return masked  # type: ignore[return-value]

    return decorate


def masked_context(context: Context[Any, Any], redactor: Redactor) -> Context[Any, Any]:
    """`context` whose progress notifications and log messages to the client are masked."""
    from mcp.server.mcpserver import Context

    if not redactor or not isinstance(context, Context) or isinstance(context, _masked_context_type()):
        return context
    wrapped = _masked_context_type()(
        request_context=context._request_context,
        mcp_server=context._mcp_server,
        input_params=context._input_params,
        subscriptions=context._subscriptions,
    )
    object.__setattr__(wrapped, "_redactor", redactor)
    return wrapped


@functools.cache
def _masked_context_type() -> type[Context[Any, Any]]:
    from mcp.server.mcpserver import Context

    class MaskedContext(Context):
        """A `Context` that masks the progress messages and log data it sends to the client."""

        async def report_progress(
            self, progress: float, total: float | None = None, message: str | None = None
        ) -> None:
            redactor: Redactor = self.__dict__["_redactor"]
            await super().report_progress(progress, total, None if message is None else redactor.mask(message))

        async def log(self, level: Any, data: Any, *, logger_name: str | None = None) -> None:
            redactor: Redactor = self.__dict__["_redactor"]
            await super().log(level, redactor.mask_value(data), logger_name=logger_name)

    return MaskedContext
