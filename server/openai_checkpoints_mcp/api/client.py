"""The fine-tuning API over one long-lived ``httpx2.AsyncClient``: reads, and the opt-in cancel/pause/resume.

`OpenAIClient` sends each request with the configured headers, retries it as
openai-python does (`retry.decide`), turns every failure into a
`CheckpointsError`, and parses the answers into the lenient `models`. It never
logs a header, and masks the key in any text it passes on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import httpx2
from pydantic import BaseModel, ValidationError

from ..config import ADMIN_KEY_ENV, Settings, masked_base_url
from ..errors import CheckpointsError, ErrorCode
from . import retry
from .adaptive import AdaptiveLimit
from .errors import bad_response, error_from_status, redact, request_id_from
from .ids import is_file_id, is_job_id, not_a_file_id, not_a_job_id, shown_id
from .models import ApiObject, Checkpoint, Event, Job, ListPage, Model, Permission
from .pagination import Collected, OnPage, Page, collect_pages
from .selection import JobFilter

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)
ObjectT = TypeVar("ObjectT", bound=ApiObject)
QueryParams = list[tuple[str, str | int | float | bool | None]]

_CONNECT_TIMEOUT = 5.0
LISTING_PATHS = frozenset({"/fine_tuning/jobs", "/models"})
"""Listings that exist on every account: a 404 for one means the base URL is wrong, not an id."""


def create_http_client(settings: Settings, transport: httpx2.AsyncBaseTransport | None = None) -> httpx2.AsyncClient:
    """The one HTTP client of the server's lifetime: connection reuse, timeouts, no redirects.

    With ``settings.api_version`` (Azure's legacy API) every request carries ``api-version`` as a client-level
    query parameter, which httpx2 merges with each request's own parameters.
    """
    return httpx2.AsyncClient(
        base_url=settings.base_url,
        params={"api-version": settings.api_version} if settings.api_version else None,
        timeout=httpx2.Timeout(settings.timeout, connect=min(_CONNECT_TIMEOUT, settings.timeout)),
        # Never fewer connections than requests allowed in flight, or requests would queue for a connection.
        limits=httpx2.Limits(max_connections=max(32, settings.concurrency), max_keepalive_connections=16),
        headers={"accept": "application/json", "user-agent": "openai-checkpoints-mcp"},
        transport=transport,
        follow_redirects=False,
    )


class OpenAIClient:
    """Reads fine-tuning jobs and checkpoints (and cancels, pauses or resumes jobs for the opt-in write tools);
    every method may raise `CheckpointsError`."""

    def __init__(
        self,
        http: httpx2.AsyncClient | Callable[[], httpx2.AsyncClient],
        settings: Settings,
        *,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        """`http` is the HTTP client, or a function that makes it on the first request: a session that the cache
        answers never builds one (its TLS context alone takes tens of milliseconds)."""
        self._http: httpx2.AsyncClient | None = http if isinstance(http, httpx2.AsyncClient) else None
        self._make_http = None if isinstance(http, httpx2.AsyncClient) else http
        self._settings = settings
        self._sleep = sleep
        self._secrets = settings.secrets
        self.limit = AdaptiveLimit(settings.concurrency)
        """The adaptive (AIMD) bound on requests in flight, ``settings.concurrency`` at most, shared by every
        tool call: halved on a 429, grown back by successes."""
        self._in_flight = anyio.CapacityLimiter(settings.concurrency)
        """Enforces `limit`: its ``total_tokens`` follows ``limit.bound`` after every answer."""
        self._resume_at = 0.0
        """After a 429 with a server-directed wait, no request of the process is sent before this time
        (``anyio.current_time()``): the others would only be refused too."""

    async def aclose(self) -> None:
        """Close the HTTP client's connections (if it was ever made)."""
        if self._http is not None:
            await self._http.aclose()

    @property
    def http(self) -> httpx2.AsyncClient:
        if self._http is None:
            assert self._make_http is not None
            self._http = self._make_http()
        return self._http

    def _headers(self, *, admin: bool = False) -> dict[str, str]:
        """Extra headers, the key (``Authorization: Bearer <key>``, or the bare key in ``settings.auth_header``,
        e.g. Azure's ``api-key``), and the organisation and project when set. `admin`: the admin key as
        ``Authorization: Bearer`` instead, and never the ordinary key (as openai-python, with a client of its own)."""
        headers = dict(self._settings.extra_headers)
        if admin:
            if self._settings.admin_key:
                headers["authorization"] = f"Bearer {self._settings.admin_key}"
        elif self._settings.api_key:
            name = self._settings.auth_header.lower()
            headers[name] = f"Bearer {self._settings.api_key}" if name == "authorization" else self._settings.api_key
        if self._settings.organization:
            headers["openai-organization"] = self._settings.organization
        if self._settings.project:
            headers["openai-project"] = self._settings.project
        return headers

    def _require_key(self, *, admin: bool = False) -> None:
        if admin:
            if not self._settings.admin_key and not self._settings.demo:
                raise CheckpointsError(
                    ErrorCode.PERMISSION_DENIED,
                    f"Listing a checkpoint's permissions needs an admin key: set {ADMIN_KEY_ENV} to an admin key "
                    "(sk-admin-..., made by an organisation owner under Settings > Admin keys) in this server's "
                    "environment and restart it; an ordinary OPENAI_API_KEY cannot read them. No request was made.",
                )
            return
        if not self._settings.api_key and not self._settings.demo:
            variable = self._settings.key_env
            if self._settings.azure and variable == "AZURE_OPENAI_API_KEY":
                variable += " (a key of the Azure OpenAI resource: Keys and Endpoint in the Azure portal)"
            raise CheckpointsError(
                ErrorCode.AUTH_MISSING,
                f"No API key is configured. Set {variable} in this server's environment (in Claude Desktop: the "
                '"env" of its entry in claude_desktop_config.json) and restart it, or start it with --demo to try '
                "it on demo data.",
            )

    async def get_json(self, path: str, params: QueryParams | None = None, *, what: str, admin: bool = False) -> Any:
        """GET `path` (relative to the base URL) with retries and return the decoded JSON body; `admin`: with the
        admin key instead of the ordinary one."""
        response = await self._request("GET", path, params, what=what, admin=admin)
        return _decode_json(response, what=what, secrets=self._secrets)

    async def post_json(self, path: str, body: Mapping[str, Any] | None = None, *, what: str) -> Any:
        """POST `path` (with `body` as JSON, or no body) with retries and return the decoded JSON body."""
        response = await self._request("POST", path, None, what=what, body=body)
        return _decode_json(response, what=what, secrets=self._secrets)

    async def _get(self, path: str, params: QueryParams | None, *, what: str, bound: ReadBound | None = None) -> Answer:
        return await self._request("GET", path, params, what=what, bound=bound)

    async def _request(
        self,
        method: str,
        path: str,
        params: QueryParams | None,
        *,
        what: str,
        body: Mapping[str, Any] | None = None,
        admin: bool = False,
        bound: ReadBound | None = None,
    ) -> Answer:
        """Send one request, retried as openai-python retries it (`retry.decide`), and return the 2xx answer, its
        body read within `bound` (`settings.max_response_bytes` without one: `bad_response` beyond it).

        Every method gets the same policy, POST included: openai-python retries a POST (cancel, pause, resume,
        create) exactly like a GET, on 408, 409, 429, 5xx, timeouts and connection errors, and sends no
        Idempotency-Key. So a write whose answer was lost may be sent again; the write tools say so in their errors.
        """
        self._require_key(admin=admin)
        headers = self._headers(admin=admin)
        bound = bound or ReadBound(self._settings.max_response_bytes, "--max-response-mb")
        retries_taken = 0
        while True:
            headers["x-stainless-retry-count"] = str(retries_taken)
            status: int | None = None
            response: Answer | None = None
            failure: Exception | None = None
            try:
                response = await self._send(
                    method, path, params, headers, body, waited=retries_taken > 0, bound=bound, what=what
                )
                status = response.status_code
                if status < 300:
                    return response
            except httpx2.TimeoutException as exc:
                failure = exc
            except httpx2.TransportError as exc:
                failure = exc
            decision = retry.decide(
                status=status,
                headers=response.headers if response is not None else None,
                retries_taken=retries_taken,
                max_retries=self._settings.max_retries,
            )
            attempts = retries_taken + 1
            if decision.retry and decision.wait <= _time_left():
                logger.info(
                    "%s %s failed (%s); retry %d of %d in %.2f s",
                    method,
                    path,
                    status or type(failure).__name__,
                    attempts,
                    self._settings.max_retries,
                    decision.wait,
                )
                if status == 429 and decision.server_wait is not None and decision.server_wait > 0:
                    self._resume_at = max(self._resume_at, anyio.current_time() + decision.wait)
                await self._sleep(decision.wait)
                retries_taken += 1
                continue
            doing = "reading" if method == "GET" else "changing"
            if response is not None:
                raise error_from_status(
                    response.status_code,
                    response.content,
                    response.headers,
                    what=what,
                    attempts=attempts,
                    server_wait=decision.server_wait,
                    secrets=self._secrets,
                    azure=self._settings.azure or None,  # None: recognise Azure by its answer (the v1 surface)
                    doing=doing,
                    admin=admin,
                    listing=method == "GET" and path in LISTING_PATHS,
                )
            raise self._transport_error(failure, what=what, attempts=attempts, doing=doing)

    async def _send(
        self,
        method: str,
        path: str,
        params: QueryParams | None,
        headers: dict[str, str],
        body: Mapping[str, Any] | None,
        *,
        waited: bool,
        bound: ReadBound,
        what: str,
    ) -> Answer:
        """One attempt, in a slot of the adaptive bound, once any pause after a 429 is over (a retry has already
        slept its own wait, which set the pause, so it goes on). The body is streamed and read within `bound`
        (an error answer's within `ERROR_BODY_BYTES`, cut beyond: only its message is wanted)."""
        while True:
            pause = self._resume_at - anyio.current_time()
            if pause > 0 and not waited:
                await anyio.sleep(pause)
                continue
            async with self._in_flight:  # held for the request only, never across a retry wait
                if waited or self._resume_at <= anyio.current_time():
                    _count_request()
                    token = self.limit.begin()
                    request = self.http.build_request(method, path, params=params, headers=headers, json=body)
                    response = await self.http.send(request, stream=True)
                    try:
                        if response.status_code < 300:
                            content = await read_bounded(response, bound, what=what)
                        else:
                            content = await read_bounded(response, ReadBound(ERROR_BODY_BYTES), what=what, cut=True)
                    finally:
                        await response.aclose()
                    answer = Answer(response.status_code, response.headers, content)
                    self._adapt(token, answer)
                    return answer
            # A 429 arrived while this request waited for its slot: give the slot back and wait out the pause.

    def _adapt(self, token: int, response: Answer) -> None:
        """Let the adaptive bound see the answer and resize the limiter to it (lowering it never interrupts a
        request in flight: new ones wait until fewer are)."""
        before = self.limit.bound
        self.limit.observe(token, response.status_code, response.headers)
        if self.limit.bound != before:
            self._in_flight.total_tokens = self.limit.bound
            logger.debug("requests in flight bound %d -> %d", before, self.limit.bound)

    def _transport_error(self, failure: Exception | None, *, what: str, attempts: int, doing: str) -> CheckpointsError:
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if isinstance(failure, httpx2.TimeoutException):
            return CheckpointsError(
                ErrorCode.TIMEOUT,
                f"No answer from the API within {self._settings.timeout:g} s while {doing} {what} ({tries}). "
                "Try again; if it persists, raise --timeout.",
            )
        detail = redact(f"{type(failure).__name__}: {failure}", self._secrets)[:200]
        return CheckpointsError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"Could not reach the API at {masked_base_url(self._settings.base_url)} while {doing} {what} "
            f"({tries}; {detail}). "
            f"Check the network and {'AZURE_OPENAI_ENDPOINT' if self._settings.azure else 'OPENAI_BASE_URL'}.",
        )

    async def get_object(self, path: str, model: type[ModelT], *, what: str) -> ModelT:
        payload = await self.get_json(path, what=what)
        return _parse(model, payload, what=what)

    async def get_job(self, job_id: str) -> Job:
        """The job, or `not_found`; ``bad_response`` when the API answers with another job than the one asked for."""
        what = f"job {job_id}"
        return _same_job(await self.get_object(job_path(job_id), Job, what=what), job_id, what=what)

    async def cancel_job(self, job_id: str) -> Job:
        """Ask the API to cancel the job; returns the job as the API answered (status ``cancelled``, or soon)."""
        return await self._job_action(job_id, "cancel")

    async def pause_job(self, job_id: str) -> Job:
        """Ask the API to pause a running job; returns the job as the API answered (status ``paused``)."""
        return await self._job_action(job_id, "pause")

    async def resume_job(self, job_id: str) -> Job:
        """Ask the API to resume a paused job; returns the job as the API answered (status ``queued``, then running)."""
        return await self._job_action(job_id, "resume")

    async def _job_action(self, job_id: str, action: str) -> Job:
        what = f"job {job_id}"
        job = _parse(Job, await self.post_json(job_path(job_id, action), what=what), what=what)
        return _same_job(job, job_id, what=what)

    async def list_jobs_page(
        self,
        *,
        limit: int,
        after: str | None = None,
        metadata: Mapping[str, str] | None = None,
        where: JobFilter | None = None,
    ) -> Page[Job]:
        """One page of jobs, newest first. The API filters by metadata only: `where` is the caller's to apply.

        A listed job whose id is not a job id makes the page ``bad_response``, as a job without an id does: the tools
        would build requests from it (its checkpoints), and no tool could be asked about it."""
        params: QueryParams = [("limit", str(limit))]
        if after:
            params.append(("after", after))
        for key, value in (metadata or {}).items():
            params.append((f"metadata[{key}]", value))
        page = await self._list_page("/fine_tuning/jobs", params, Job, what="fine-tuning jobs")
        for job in page.items:
            if not is_job_id(job.id):
                raise not_a_job_id(job.id, where="listed a job")
        return page

    async def list_checkpoints(
        self, job_id: str, *, after: str | None = None, on_page: OnPage | None = None
    ) -> Collected[Checkpoint]:
        """Every checkpoint of the job, following every page (capped at ``max_items``), in API order."""
        what = f"checkpoints of job {job_id}"
        path = job_path(job_id, "checkpoints")

        async def fetch(cursor: str | None) -> Page[Checkpoint]:
            params: QueryParams = [("limit", str(self._settings.page_size))]
            if cursor:
                params.append(("after", cursor))
            page = await self._list_page(path, params, Checkpoint, what=what)
            for checkpoint in page.items:
                owner = checkpoint.fine_tuning_job_id
                if owner is not None and owner != job_id:
                    raise bad_response(what, f"checkpoint {shown_id(checkpoint.id)} belongs to job {shown_id(owner)}")
            return page

        return await collect_pages(fetch, max_items=self._settings.max_items, after=after, what=what, on_page=on_page)

    async def list_models(self, *, max_items: int) -> Collected[Model]:
        """Every model the account can call. OpenAI answers in one response, without ``has_more`` (openai-python
        never asks for a second page); a server that says ``has_more: true`` is followed page by page (capped at
        `max_items`)."""
        what = "models"

        async def fetch(cursor: str | None) -> Page[Model]:
            params: QueryParams = [("after", cursor)] if cursor else []
            page = await self._list_page("/models", params, Model, what=what)
            return Page(items=page.items, has_more=page.has_more is True)

        return await collect_pages(fetch, max_items=max_items, what=what)

    async def _list_page(
        self, path: str, params: QueryParams, model: type[ObjectT], *, what: str, admin: bool = False
    ) -> Page[ObjectT]:
        payload = await self.get_json(path, params, what=what, admin=admin)
        page = _parse(ListPage, payload, what=what)
        items = [_parse(model, item, what=what) for item in page.data]
        return Page(items=items, has_more=page.has_more, next_cursor=page.last_id if admin else None)

    async def list_checkpoint_permissions(
        self, checkpoint: str, *, project_id: str | None = None, on_page: OnPage | None = None
    ) -> Collected[Permission]:
        """Every permission of a fine-tuned checkpoint (or model): the projects it is shared with, every page
        (``last_id`` is the next ``after``, as openai-python pages this list), with the admin key only.

        `checkpoint` must already be validated; it is still escaped as one path segment (colons stay, as
        openai-python sends them) and a segment that could move the path is refused."""
        what = f"permissions of checkpoint {checkpoint}"
        path = f"/fine_tuning/checkpoints/{path_segment(checkpoint)}/permissions"

        async def fetch(cursor: str | None) -> Page[Permission]:
            params: QueryParams = [("limit", str(self._settings.page_size))]
            if project_id:
                params.append(("project_id", project_id))
            if cursor:
                params.append(("after", cursor))
            return await self._list_page(path, params, Permission, what=what, admin=True)

        return await collect_pages(fetch, max_items=self._settings.max_items, what=what, on_page=on_page)

    async def list_events_page(self, job_id: str, *, limit: int, after: str | None = None) -> Page[Event]:
        """One page of the job's events, newest first."""
        params: QueryParams = [("limit", str(limit))]
        if after:
            params.append(("after", after))
        return await self._list_page(job_path(job_id, "events"), params, Event, what=f"events of job {job_id}")

    async def get_file_content(self, file_id: str) -> bytes:
        """The raw body of a file (a result file is CSV, or the base64 of it), streamed and read within
        ``settings.max_result_file_bytes`` (`bad_response` beyond it, naming --max-result-file-mb). `file_id` comes
        from the API (a job's file): one that is not a file id is ``bad_response``, and is never requested."""
        if not is_file_id(file_id):
            raise not_a_file_id(file_id)
        bound = ReadBound(self._settings.max_result_file_bytes, "--max-result-file-mb")
        response = await self._get(f"/files/{path_segment(file_id)}/content", None, what=f"file {file_id}", bound=bound)
        return response.content


def job_path(job_id: str, *rest: str) -> str:
    """``/fine_tuning/jobs/<job_id>[/<rest>...]``, every part escaped as one path segment. `job_id` comes from the
    assistant (checked by the input schema) or from the API (a listing, checked there); one that is still not a job
    id is ``bad_response`` and never requested."""
    if not is_job_id(job_id):
        raise not_a_job_id(job_id, where="gave a job")
    return "/fine_tuning/jobs/" + "/".join(path_segment(part) for part in (job_id, *rest))


def _same_job(job: Job, job_id: str, *, what: str) -> Job:
    """`job`, when it is the job asked for: an API that answers with another job (a gateway's canned answer, a
    mix-up) must not have that job taken for this one."""
    if job.id != job_id:
        raise bad_response(what, f"it describes job {shown_id(job.id)} instead")
    return job


def path_segment(value: str) -> str:
    """`value` as one path segment: percent-encoded except for the characters a segment may hold as they are
    (letters, digits, ``-._~`` and ``:``, which openai-python leaves in a checkpoint name), so that ``/``, ``?``,
    ``#`` and ``%`` can never change the path; ``.`` and ``..``, which a URL resolves away, are refused."""
    if value in ("", ".", ".."):
        raise ValueError(f"{value!r} cannot be a path segment")
    return quote(value, safe=":")


ERROR_BODY_BYTES = 1024 * 1024
"""Bytes of an error answer's body read at most (the rest is dropped): its message is near the start."""


@dataclass(frozen=True)
class ReadBound:
    """The most bytes of one body to read (decompressed), and the flag that raises it (for the error sentence)."""

    limit: int
    flag: str | None = None


@dataclass(frozen=True)
class Answer:
    """An HTTP answer whose body has been read (within a `ReadBound`): what the client keeps of a response."""

    status_code: int
    headers: httpx2.Headers
    content: bytes


async def read_bounded(response: httpx2.Response, bound: ReadBound, *, what: str, cut: bool = False) -> bytes:
    """The body of a streamed `response`, decompressed, read until `bound` is passed and no further.

    A ``Content-Length`` above the bound is refused before anything is read; otherwise the decompressed bytes
    (what a gzip body expands to, not what travelled) are counted as they arrive and reading stops at the first
    chunk that passes the bound. `cut`: keep the first ``bound.limit`` bytes instead of refusing (an error answer,
    read for its message only). Raises `bad_response` naming ``bound.flag``."""
    declared = response.headers.get("content-length", "")
    if not cut and declared.isdigit() and int(declared) > bound.limit:
        raise too_large(what, bound, f"it declares {int(declared):,} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > bound.limit:
            if cut:
                chunks.append(chunk[: bound.limit - (size - len(chunk))])
                break
            raise too_large(what, bound, f"more than {bound.limit:,} bytes arrived (decompressed)")
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(what: str, bound: ReadBound, detail: str) -> CheckpointsError:
    """`bad_response` for a body over its bound: what was refused, the bound, and the flag to raise it."""
    raise_it = f" If the answer is genuine, start the server with a larger {bound.flag}." if bound.flag else ""
    return CheckpointsError(
        ErrorCode.BAD_RESPONSE,
        f"The API's answer for {what} is larger than the bound of {bound.limit:,} bytes ({detail}), so it was not "
        f"read further and nothing of it is used.{raise_it}",
    )


def _decode_json(response: Answer, *, what: str, secrets: tuple[str, ...] = ()) -> Any:
    """The JSON body of a 2xx answer, or `bad_response` for HTML (a proxy's page) or malformed JSON."""
    request_id = request_id_from(response.headers, secrets)
    content_type = response.headers.get("content-type", "")
    body = response.content
    if "html" in content_type or body.lstrip()[:1] == b"<":
        raise bad_response(
            what,
            f"HTML instead of JSON (HTTP {response.status_code})",
            status=response.status_code,
            request_id=request_id,
        )
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting too deep to decode
        raise bad_response(
            what,
            f"malformed JSON (HTTP {response.status_code}, {len(body)} bytes)",
            status=response.status_code,
            request_id=request_id,
        ) from None


def _parse(model: type[ModelT], payload: Any, *, what: str) -> ModelT:
    if not isinstance(payload, dict):
        raise bad_response(what, f"expected a JSON object, got {type(payload).__name__}")
    try:
        if issubclass(model, ApiObject):
            parsed: ModelT = model.from_api(payload)
            return parsed
        return model.model_validate(payload)
    except ValidationError as exc:
        fields = ", ".join(sorted({".".join(str(p) for p in e["loc"]) or "(root)" for e in exc.errors()}))
        raise bad_response(what, f"{model.__name__} is missing or has invalid {fields}") from None


_requests_made: ContextVar[list[int] | None] = ContextVar("requests_made", default=None)


def _count_request() -> None:
    counter = _requests_made.get()
    if counter is not None:
        counter[0] += 1


@contextmanager
def count_requests() -> Iterator[list[int]]:
    """Count the HTTP requests (retries included) made in this context and the tasks it starts: ``[n]``."""
    counter = [0]
    token = _requests_made.set(counter)
    try:
        yield counter
    finally:
        _requests_made.reset(token)


def _time_left() -> float:
    """Seconds until the enclosing cancel scope's deadline (inf without one)."""
    return anyio.current_effective_deadline() - anyio.current_time()
