"""Command line: run the server (stdio, or streamable HTTP), or ``call`` one tool once and print its result as JSON.

openai-checkpoints-mcp [--demo] [--timeout S] [--max-retries N] [--deadline S] [--log-level L]
openai-checkpoints-mcp --transport streamable-http [--host H] [--port P] [--auth-token-file F] [...]
openai-checkpoints-mcp call TOOL [key=value ...] [--demo] [...]
openai-checkpoints-mcp cache clear|path [--cache-dir DIR | --cache-url URL]
openai-checkpoints-mcp archive FILE [--since DATE | --job ID ...] [--include-training-files] [...]
openai-checkpoints-mcp --archive FILE [call TOOL ...]   (answers offline from an archive)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import anyio

from .api.retry import DEFAULT_MAX_RETRIES
from .config import (
    ALLOW_WRITES_ENV,
    ARCHIVE_ENV,
    CACHE_DIR_ENV,
    CACHE_URL_ENV,
    DEFAULT_CACHE_MAX_MB,
    DEFAULT_CACHE_SIZE,
    DEFAULT_CACHE_TTL,
    DEFAULT_CONCURRENCY,
    DEFAULT_DEADLINE,
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_RESPONSE_MB,
    DEFAULT_MAX_RESULT_FILE_MB,
    DEFAULT_TIMEOUT,
    HEADER_NAME,
    MAX_CONCURRENCY,
    MAX_RETRIES,
    MIB,
    REDIS_EXTRA,
    TOOLSETS_ENV,
    CacheUrlError,
    Settings,
    mask_url,
)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
Number = TypeVar("Number", int, float)


def _number(
    convert: Callable[[str], Number],
    *,
    low: float,
    high: float | None = None,
    above: bool = False,
    what: str | None = None,
) -> Callable[[str], Number]:
    """An argparse type: `convert` the text and check its range (``above``: strictly greater than `low`)."""
    kind = what or ("a whole number" if convert is int else "a number")
    if above:
        rule = f"{kind} above {low:g}"
    elif high is None:
        rule = f"{kind} of at least {low:g}"
    else:
        rule = f"{kind} from {low:g} to {high:g}"

    def parse(text: str) -> Number:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}") from None
        in_range = value > low if above else value >= low and (high is None or value <= high)
        if not in_range:  # NaN is never in range
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    return parse


_positive = _number(float, low=0, above=True)
_at_least_one = _number(int, low=1)
_concurrency = _number(int, low=1, high=MAX_CONCURRENCY)
_non_negative_int = _number(int, low=0)
_non_negative_float = _number(float, low=0)
_retries = _number(int, low=0, high=MAX_RETRIES)
_port = _number(int, low=1, high=65535, what="a port number")


def _header_name(text: str) -> str:
    if not HEADER_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be an HTTP header name such as api-key, got {text!r}")
    return text


SECRET_ENVS = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_ADMIN_KEY")
URL_ENVS = ("OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", CACHE_URL_ENV)


def environment_secrets() -> tuple[str, ...]:
    """The secrets the environment holds (the keys, the URLs' credentials), read before the settings are: a flag
    value that is a key (pasted into the wrong flag) is masked in argparse's error line."""
    from .config import base_url_credentials, cache_url_passwords

    found = [os.environ.get(name) or "" for name in SECRET_ENVS]
    for name in URL_ENVS:
        with contextlib.suppress(ValueError):
            found += base_url_credentials(os.environ.get(name) or "")
    found += cache_url_passwords(os.environ.get(CACHE_URL_ENV) or "")
    return tuple(dict.fromkeys(secret for secret in found if secret))


class MaskingParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose error line (which quotes a bad value) has the environment's secrets
    masked; its subcommands' parsers are of this class too."""

    def error(self, message: str) -> Any:  # argparse's signature is NoReturn
        from .redaction import redactor_for

        super().error(redactor_for(environment_secrets()).mask(message))


def _common_options(*, in_subcommand: bool = False) -> MaskingParser:
    """Flags accepted before and after ``call``. In the subcommand they default to "not given" (SUPPRESS),
    so a flag given before ``call`` is not reset by the subcommand's defaults."""
    common = MaskingParser(add_help=False, argument_default=argparse.SUPPRESS if in_subcommand else None)
    common.add_argument(
        "--demo",
        action="store_true",
        help="serve the bundled demo dataset in-process: no key, no network; every result says it is a demo",
    )
    common.add_argument(
        "--archive",
        dest="archive_file",
        metavar="FILE",
        help=f"answer offline from this archive (written by the archive command; or ${ARCHIVE_ENV}): no key, no "
        "network, no write tools",
    )
    common.add_argument(
        "--timeout",
        type=_positive,
        metavar="SECONDS",
        help=f"seconds to wait for one API response (default {DEFAULT_TIMEOUT:g})",
    )
    common.add_argument(
        "--max-retries",
        type=_retries,
        metavar="N",
        help=f"retries of a failed request, as openai-python (default {DEFAULT_MAX_RETRIES})",
    )
    common.add_argument(
        "--deadline",
        type=_positive,
        metavar="SECONDS",
        help=f"seconds one tool call may take in all (default {DEFAULT_DEADLINE:g})",
    )
    common.add_argument(
        "--max-items",
        type=_at_least_one,
        metavar="N",
        help=f"most items one listing collects before its result says it was truncated (default {DEFAULT_MAX_ITEMS:,})",
    )
    common.add_argument(
        "--max-response-mb",
        type=_at_least_one,
        metavar="N",
        help=f"MiB of one JSON answer of the API read at most, decompressed; a larger one is refused as bad_response "
        f"(default {DEFAULT_MAX_RESPONSE_MB})",
    )
    common.add_argument(
        "--max-result-file-mb",
        type=_at_least_one,
        metavar="N",
        help=f"MiB of one result file read at most, decompressed; a larger one is refused as bad_response "
        f"(default {DEFAULT_MAX_RESULT_FILE_MB})",
    )
    common.add_argument(
        "--concurrency",
        type=_concurrency,
        metavar="N",
        help=f"requests for different jobs in flight at once (default {DEFAULT_CONCURRENCY})",
    )
    common.add_argument(
        "--cache-size",
        type=_non_negative_int,
        metavar="N",
        help=f"finished jobs kept in memory, 0 to disable (default {DEFAULT_CACHE_SIZE})",
    )
    common.add_argument(
        "--cache-ttl",
        type=_non_negative_float,
        metavar="SECONDS",
        help=f"seconds a cached finished job object is reused (default {DEFAULT_CACHE_TTL:g})",
    )
    common.add_argument(
        "--cache-dir",
        dest="cache_dir_flag",
        metavar="DIR",
        help=f"directory of the persistent cache (default: the user cache directory, or ${CACHE_DIR_ENV})",
    )
    common.add_argument(
        "--cache-url",
        dest="cache_url_flag",
        metavar="URL",
        help="keep finished jobs in this Redis database instead of the cache file, shared by every server given "
        f"the same URL: redis://HOST[:PORT][/DB], rediss:// (TLS) or unix:///PATH (or ${CACHE_URL_ENV}); needs "
        f"{REDIS_EXTRA}",
    )
    common.add_argument(
        "--no-persistent-cache",
        action="store_true",
        default=argparse.SUPPRESS if in_subcommand else None,
        help=f"keep finished jobs in memory only, neither in the cache file nor in Redis (wins over ${CACHE_URL_ENV}; "
        "refused with --cache-url)",
    )
    common.add_argument(
        "--cache-max-mb",
        type=_at_least_one,
        metavar="N",
        help=f"megabytes the cache file (or the Redis database given by --cache-url) may hold before the least "
        f"recently used entries go (default {DEFAULT_CACHE_MAX_MB})",
    )
    common.add_argument(
        "--allow-writes",
        action="store_true",
        default=argparse.SUPPRESS if in_subcommand else None,
        help=f"also register cancel_job, pause_job and resume_job (or set {ALLOW_WRITES_ENV}=1)",
    )
    common.add_argument(
        "--toolsets",
        dest="toolsets_flag",
        metavar="LIST",
        help="serve only these tool families, comma-separated: jobs, checkpoints, sweeps, curves, events, models, "
        f"writes (needs --allow-writes), or all (or ${TOOLSETS_ENV}; default: every read tool)",
    )
    common.add_argument(
        "--auth-header",
        metavar="NAME",
        type=_header_name,
        help="header that carries the API key: Authorization (default, sent as 'Bearer <key>') or another name "
        "such as api-key, sent as the bare key",
    )
    common.add_argument("--log-level", choices=LOG_LEVELS, type=str.upper, help="stderr log level")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = MaskingParser(
        prog="openai-checkpoints-mcp",
        parents=[common],
        description="MCP server (stdio or streamable HTTP) that inspects OpenAI fine-tuning jobs and picks the "
        "checkpoint to deploy. Reads OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_ORG_ID and OPENAI_PROJECT_ID.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_http_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="{call,cache,archive}")
    call = commands.add_parser(
        "call",
        parents=[_common_options(in_subcommand=True)],
        help="run one tool once and print its structured result as JSON",
        description="Run one tool once and print its structured result as JSON on stdout. Values are JSON when they "
        'parse as JSON and the argument is not a string (top_k=5, metadata=\'{"team":"nlp"}\'), else text. '
        "Exit status: 0 ok, 1 tool error (text on stderr), 2 usage.",
    )
    call.add_argument("tool", nargs="?", help="tool name, e.g. best_checkpoint")  # checked in main: one clear line
    call.add_argument("arguments", nargs="*", metavar="key=value", help="tool arguments")
    call.add_argument("--version", action="version", version=f"{parser.prog} {_version()}")
    cache = commands.add_parser(
        "cache",
        parents=[_common_options(in_subcommand=True)],
        help="the persistent cache: clear removes its file, path prints where it is",
        description="clear: remove the persistent cache file (every account's entries), or with --cache-url every "
        "entry of this cache in that Redis database; path: print the file's path (or the URL, its password masked).",
    )
    cache.add_argument("action", choices=("clear", "path"), help="clear or path")
    _add_archive_command(commands)
    return parser


def _add_archive_command(commands: Any) -> None:
    archive = commands.add_parser(
        "archive",
        parents=[_common_options(in_subcommand=True)],
        help="write every fine-tuning job, checkpoint, event, result file and model to one SQLite file",
        description="Write the account's whole fine-tuning history to one SQLite file (created mode 0600; see "
        "docs/archive.md for its tables). Run it again to continue or refresh: jobs already archived complete and "
        "finished are not read again. Progress on stderr, the receipt on stdout. Exit status: 0 every selected job "
        "archived completely, 1 otherwise, 2 usage (or FILE is not an archive).",
    )
    archive.add_argument("file", metavar="FILE", help="the archive file (created if absent)")
    selection = archive.add_mutually_exclusive_group()
    selection.add_argument(
        "--since",
        type=_since,
        metavar="DATE",
        help="only jobs created at or after this ISO 8601 date or time (UTC unless it has an offset)",
    )
    selection.add_argument(
        "--job",
        dest="job_ids",
        action="append",
        type=_job_id,
        metavar="ID",
        help="only this job (repeatable)",
    )
    archive.add_argument(
        "--include-training-files",
        action="store_true",
        help="also archive each job's training and validation files (they can be large)",
    )


def _since(text: str) -> int:
    from .tools.arguments import parse_iso_time

    try:
        return parse_iso_time("--since", text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--since ")) from None


def _job_id(text: str) -> str:
    from .tools.arguments import JOB_ID_PATTERN, MAX_ID_LENGTH

    if len(text) > MAX_ID_LENGTH or not re.fullmatch(JOB_ID_PATTERN, text):
        raise argparse.ArgumentTypeError(
            f"must be 'ftjob-' followed by letters, digits, '_' or '-' (at most {MAX_ID_LENGTH} characters), "
            f"got {text!r}"
        )
    return text


HTTP_FLAGS = {
    "host": "--host",
    "port": "--port",
    "auth_token_file": "--auth-token-file",
    "allowed_host": "--allowed-host",
    "allowed_origin": "--allowed-origin",
    "stateless": "--stateless",
    "header_timeout": "--header-timeout",
    "idle_timeout": "--idle-timeout",
    "max_connections_flag": "--max-connections",
    "max_sessions_flag": "--max-sessions",
    "session_idle_timeout_flag": "--session-idle-timeout",
}


def _add_http_options(parser: argparse.ArgumentParser) -> None:
    """Serve-only flags (not accepted by ``call``); all but --transport need --transport streamable-http."""
    from .transport.limits import (
        DEFAULT_HEADER_TIMEOUT,
        DEFAULT_IDLE_TIMEOUT,
        DEFAULT_MAX_SESSIONS,
        DEFAULT_SESSION_IDLE_TIMEOUT,
        MAX_SESSIONS_ENV,
        SESSION_IDLE_TIMEOUT_ENV,
    )

    http = parser.add_argument_group(
        "serving over HTTP", "with --transport streamable-http; MCP is served at /mcp, GET /healthz is public"
    )
    http.add_argument(
        "--transport",
        choices=("stdio", "streamable-http"),
        default="stdio",
        help="stdio (default: launched by the client) or streamable-http (a server clients connect to)",
    )
    http.add_argument("--host", metavar="HOST", help="address to listen on (default 127.0.0.1)")
    http.add_argument("--port", type=_port, metavar="PORT", help="port to listen on (default 8000)")
    http.add_argument(
        "--auth-token-file",
        metavar="PATH",
        help="file holding the bearer token clients must send (default: $MCP_AUTH_TOKEN); required to listen on "
        "anything but loopback",
    )
    http.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also accept this Host header (name, name:port or name:*; a bare name allows any port); repeatable. "
        "Loopback and the --host address are always accepted",
    )
    http.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also accept this Origin header (scheme://host[:port], :* for any port); repeatable",
    )
    http.add_argument(
        "--stateless",
        action="store_true",
        default=None,
        help="no sessions, so any worker can answer any request (or set OPENAI_CHECKPOINTS_MCP_STATELESS=1); "
        "clients on the 2025-11-25 protocol then cannot cancel calls",
    )
    http.add_argument(
        "--header-timeout",
        type=_positive,
        metavar="SECONDS",
        help=f"seconds a client has to send a request's headers and body, from connecting or from the request's "
        f"first byte; then the connection is closed (default {DEFAULT_HEADER_TIMEOUT:g})",
    )
    http.add_argument(
        "--idle-timeout",
        type=_positive,
        metavar="SECONDS",
        help=f"seconds a kept-alive connection may wait for its next request (default {DEFAULT_IDLE_TIMEOUT:g})",
    )
    http.add_argument(
        "--max-connections",
        dest="max_connections_flag",
        type=_at_least_one,
        metavar="N",
        help="connections open at once; beyond it the slowest (part of a head sent, or nothing) is closed, or a new "
        "one refused with 503 (default: five eighths of what the descriptor limit leaves, at most 1024)",
    )
    http.add_argument(
        "--max-sessions",
        dest="max_sessions_flag",
        type=_at_least_one,
        metavar="N",
        help=f"sessions kept at once; at the cap the session idle longest is closed to open a new one (or "
        f"${MAX_SESSIONS_ENV}; default {DEFAULT_MAX_SESSIONS})",
    )
    http.add_argument(
        "--session-idle-timeout",
        dest="session_idle_timeout_flag",
        type=_positive,
        metavar="SECONDS",
        help=f"seconds a session may go without a request before it is closed (or ${SESSION_IDLE_TIMEOUT_ENV}; "
        f"default {DEFAULT_SESSION_IDLE_TIMEOUT:g})",
    )


def _serve_http(args: argparse.Namespace, settings: Settings, level: str) -> None:
    """Check the HTTP options (exit 2 with one line on stderr if they cannot work), then serve until interrupted."""
    from .transport.http import BindError, HttpConfigError, HttpOptions, bind_refusal, serve_http

    try:
        options = HttpOptions.from_env(
            host=args.host,
            port=args.port,
            auth_token_file=args.auth_token_file,
            allowed_hosts=args.allowed_host,
            allowed_origins=args.allowed_origin,
            stateless=args.stateless,
            header_timeout=args.header_timeout,
            idle_timeout=args.idle_timeout,
            max_connections=args.max_connections_flag,
            max_sessions=args.max_sessions_flag,
            session_idle_timeout=args.session_idle_timeout_flag,
        )
    except HttpConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    refusal = bind_refusal(options)
    if refusal:
        print(refusal, file=sys.stderr)
        sys.exit(2)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            anyio.run(lambda: serve_http(settings, options, log_level=level))
    except BindError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


def _mib(value: int | None) -> int | None:
    return None if value is None else value * MIB


def _version() -> str:
    from .server import server_version

    return server_version()


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        timeout=args.timeout,
        max_retries=args.max_retries,
        deadline=args.deadline,
        max_items=args.max_items,
        max_response_bytes=_mib(args.max_response_mb),
        max_result_file_bytes=_mib(args.max_result_file_mb),
        demo=bool(args.demo),
        archive=args.archive_file,
        concurrency=args.concurrency,
        cache_size=args.cache_size,
        cache_ttl=args.cache_ttl,
        cache_dir=args.cache_dir_flag,
        cache_url=args.cache_url_flag,
        persistent_cache=False if args.no_persistent_cache else None,
        cache_max_mb=args.cache_max_mb,
        allow_writes=args.allow_writes,
        toolsets=args.toolsets_flag,
        auth_header=args.auth_header,
    )


def _configure_logging(level: str, settings: Settings) -> None:
    """The log on stderr, with the secrets masked in every line (`redaction.install_log_masking`): also for the
    commands that make no server (``archive``), whose DEBUG lines quote the API's response headers."""
    from .redaction import install_log_masking

    logging.basicConfig(stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)  # a warning may quote a value (pydantic's do): through the masked log, not print
    sys.excepthook = _log_uncaught  # likewise a traceback that escapes a command
    install_log_masking(settings.redactor)
    if level != "DEBUG":
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        logging.getLogger("httpcore").setLevel(logging.WARNING)
        logging.getLogger("httpcore2").setLevel(logging.WARNING)


def _log_uncaught(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
    """An exception no command caught, logged (so masked) instead of printed; Ctrl-C keeps Python's own line."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    logging.getLogger("openai_checkpoints_mcp").critical("uncaught exception", exc_info=(kind, error, traceback))


def parse_arguments(pairs: Sequence[str], schema: dict[str, Any]) -> dict[str, Any]:
    """``key=value`` pairs into tool arguments, typed by the tool's input schema.

    A value is decoded as JSON unless the argument's schema says it is only a string.
    """
    properties = schema.get("properties", {})
    arguments: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"arguments are key=value, got {pair!r}")
        if key not in properties:
            raise ValueError(f"{key!r} is not an argument; this tool takes: {', '.join(properties) or 'nothing'}")
        if key in arguments:
            raise ValueError(f"{key} is given more than once; give each argument once")
        if _is_string_only(properties[key]):
            arguments[key] = raw
            continue
        try:
            arguments[key] = json.loads(raw)
        except json.JSONDecodeError as exc:
            if raw.lstrip()[:1] in ("[", "{", '"'):
                raise ValueError(
                    f"{key}: the value is JSON that failed to parse ({exc.msg} at position {exc.pos}): {raw[:80]!r}"
                ) from None
            if "array" in _types(properties[key]):
                example = json.dumps([part for part in raw.split(",") if part])
                raise ValueError(f"{key} is a list: give it as JSON, e.g. {key}='{example}'") from None
            arguments[key] = raw
        except ValueError:
            arguments[key] = raw
    return arguments


def _types(prop: dict[str, Any]) -> set[str]:
    return {t for t in [prop.get("type")] + [option.get("type") for option in prop.get("anyOf", [])] if t}


def _is_string_only(prop: dict[str, Any]) -> bool:
    types = [prop.get("type")] + [option.get("type") for option in prop.get("anyOf", [])]
    types = [t for t in types if t is not None]
    return bool(types) and all(t in ("string", "null") for t in types) and "string" in types


async def _call(settings: Settings, tool: str, pairs: Sequence[str], log_level: str) -> int:
    from mcp import Client

    from .server import create_server, shown_name, write_hint

    server = create_server(settings, log_level=log_level)
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        if tool not in tools:
            if write_hint(tool):
                print(
                    f"error: {tool} is a write tool, never served with --archive"
                    if settings.archive
                    else f"error: {tool} is a write tool, served only with --allow-writes: add the flag "
                    f"(call {tool} job_id=... --allow-writes)",
                    file=sys.stderr,
                )
                return 2
            print(f"error: unknown tool {shown_name(tool)!r}; tools: {', '.join(sorted(tools))}", file=sys.stderr)
            return 2
        try:
            arguments = parse_arguments(pairs, tools[tool].input_schema)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        result = await client.call_tool(tool, arguments)
    if result.is_error:
        text = " ".join(getattr(block, "text", "") for block in result.content)
        print(text, file=sys.stderr)
        return 1
    try:
        print(json.dumps(result.structured_content, indent=2, ensure_ascii=False), flush=True)
    except BrokenPipeError:  # the reader went away (``call ... | head``): not an error of the tool
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that exit's flush does not fail again
    return 0


def _cache_command(settings: Settings, action: str) -> int:
    """``cache path`` prints the cache file's path; ``cache clear`` removes it (and its WAL files). With a cache URL:
    the URL (password masked), and every key of this cache in that database."""
    if settings.cache_url:
        return _redis_cache_command(settings.cache_url, action)
    from .api.sqlite_cache import FILE_NAME, cache_files

    directory = settings.cache_directory()
    if action == "path":
        print(directory / FILE_NAME)
        return 0
    removed = 0
    for path in cache_files(directory):
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            print(f"error: cannot remove {path}: {exc}", file=sys.stderr)
            return 1
    print(f"removed {directory / FILE_NAME}" if removed else f"no cache file at {directory / FILE_NAME}")
    return 0


def _check_archive(parser: argparse.ArgumentParser, args: argparse.Namespace, settings: Settings) -> None:
    """``--archive``: refuse what cannot go with it, and a file that cannot be answered from (exit 2, one line)."""
    if settings.demo:
        parser.error("--demo and --archive exclude each other: the demo has its own data")
    if args.allow_writes:
        parser.error("--allow-writes does not apply to --archive: an archive is read-only")
    from .archive.reader import open_archive, read_origin
    from .archive.schema import ArchiveFileError

    try:
        conn = open_archive(settings.archive or "")
        try:
            read_origin(conn, Path(settings.archive or "").expanduser())
        finally:
            conn.close()
    except ArchiveFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def _redis_cache_command(url: str, action: str) -> int:
    if action == "path":
        print(mask_url(url))
        return 0
    from .api import redis_cache

    try:
        removed = anyio.run(redis_cache.clear, url)
    except Exception as exc:  # whatever redis raises: one line, never the password
        print(f"error: cannot clear the Redis cache at {mask_url(url)}: {type(exc).__name__}", file=sys.stderr)
        return 1
    print(f"removed {removed} keys from {mask_url(url)}")
    return 0


def _checked_settings(args: argparse.Namespace) -> Settings:
    """The settings, or exit 2 with one line on stderr: a cache URL that cannot be used, or no redis to use it; an
    unknown toolset, or toolsets that contradict --allow-writes."""
    from .tools.toolsets import ToolsetError

    try:
        settings = _settings(args)
    except (CacheUrlError, ToolsetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    if settings.cache_url and not (args.command == "cache" and args.action == "path"):
        import importlib.util

        if importlib.util.find_spec("redis") is None:  # looked up, not imported: the cold start does not pay
            print(f"error: --cache-url needs the redis package: {REDIS_EXTRA}", file=sys.stderr)
            sys.exit(2)
    return settings


def _archive_command(args: argparse.Namespace, settings: Settings) -> int:
    """Write the archive; the receipt on stdout. 0: every selected job archived completely; 1: not; 2: not an
    archive file."""
    from dataclasses import replace
    from pathlib import Path

    from .archive.database import ArchiveWriteError
    from .archive.progress import progress_for
    from .archive.schema import ArchiveFileError
    from .archive.writer import ARCHIVE_MAX_ITEMS, write_archive
    from .state import AppState

    if not settings.api_key and not settings.demo:
        print(
            f"error: auth_missing: no API key is configured; set {settings.key_env} (or add --demo to archive the "
            "demo data)",
            file=sys.stderr,
        )
        return 1
    # Nothing cached (every job is read once), and no list cut short.
    settings = replace(settings, max_items=args.max_items or ARCHIVE_MAX_ITEMS, cache_size=0, persistent_cache=False)
    progress = progress_for(sys.stderr)

    async def run() -> Any:
        state = AppState(settings)
        try:
            return await write_archive(
                state.store,
                Path(args.file),
                settings=settings,
                since=args.since,
                job_ids=args.job_ids or (),
                include_training_files=args.include_training_files,
                progress=progress,
            )
        finally:
            await state.aclose()

    try:
        receipt = anyio.run(run)
    except ArchiveFileError as exc:
        print(f"error: {settings.redactor.mask(str(exc))}", file=sys.stderr)
        return 2
    except ArchiveWriteError as exc:
        progress.close()
        print(f"error: {settings.redactor.mask(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        progress.close()
        print("interrupted: the jobs written so far are kept; run the same command to continue", file=sys.stderr)
        return 130
    progress.close()
    print(settings.redactor.mask(receipt.render()))
    return 0 if receipt.complete else 1


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    given = [flag for name, flag in HTTP_FLAGS.items() if getattr(args, name) not in (None, [])]
    if args.command in ("call", "archive") and (given or args.transport != "stdio"):
        parser.error(f"{', '.join(given) or '--transport'}: serving flags do not apply to {args.command}")
    if args.transport == "stdio" and given:
        parser.error(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --transport streamable-http")
    settings = _checked_settings(args)
    if args.command == "archive":  # it writes an archive from the live API: never from one
        if args.archive_file:
            parser.error("--archive does not apply to the archive command: it reads the live API")
        settings = dataclasses.replace(settings, archive=None)
    if settings.archive:
        _check_archive(parser, args, settings)
    if args.command == "cache":
        sys.exit(_cache_command(settings, args.action))
    if args.command == "call" and not args.tool:
        parser.error("call needs a tool name: call TOOL [key=value ...] (e.g. call list_jobs)")
    if args.command == "call":
        level = args.log_level or "WARNING"
        _configure_logging(level, settings)
        sys.exit(anyio.run(_call, settings, args.tool, args.arguments, level))
    if args.command == "archive":
        _configure_logging(args.log_level or "WARNING", settings)
        sys.exit(_archive_command(args, settings))
    level = args.log_level or "INFO"
    _configure_logging(level, settings)
    if args.transport == "streamable-http":
        _serve_http(args, settings, level)
        return
    from .server import serve

    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(lambda: serve(settings, log_level=level))
