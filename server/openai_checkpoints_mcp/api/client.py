"""The read side of the fine-tuning API over one long-lived ``httpx2.AsyncClient``.

`OpenAIClient` sends each request with the configured headers, retries it as
openai-python does (`retry.decide`), turns every failure into a
`CheckpointsError`, and parses the answers into the lenient `models`. It never
logs a header, and masks the key in any text it passes on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio
import httpx2
from pydantic import BaseModel, ValidationError

from ..config import Settings
from ..errors import CheckpointsError, ErrorCode
from . import retry
from .errors import bad_response, error_from_status, redact, request_id_from
from .models import ApiObject, Checkpoint, Job, ListPage
from .pagination import Collected, OnPage, Page, collect_pages

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)
ObjectT = TypeVar("ObjectT", bound=ApiObject)
QueryParams = list[tuple[str, str | int | float | bool | None]]

_CONNECT_TIMEOUT = 5.0


def create_http_client(settings: Settings, transport: httpx2.AsyncBaseTransport | None = None) -> httpx2.AsyncClient:
    """The one HTTP client of the server's lifetime: connection reuse, timeouts, no redirects."""
    return httpx2.AsyncClient(
        base_url=settings.base_url,
        timeout=httpx2.Timeout(settings.timeout, connect=min(_CONNECT_TIMEOUT, settings.timeout)),
        limits=httpx2.Limits(max_connections=32, max_keepalive_connections=16),
        headers={"accept": "application/json", "user-agent": "openai-checkpoints-mcp"},
        transport=transport,
        follow_redirects=False,
    )


class OpenAIClient:
    """Reads fine-tuning jobs and checkpoints; every method may raise `CheckpointsError`."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        settings: Settings,
        *,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._http = http
        self._settings = settings
        self._sleep = sleep
        self._secrets = tuple(s for s in (settings.api_key,) if s)

    def _headers(self) -> dict[str, str]:
        headers = dict(self._settings.extra_headers)
        if self._settings.api_key:
            headers["authorization"] = f"Bearer {self._settings.api_key}"
        if self._settings.organization:
            headers["openai-organization"] = self._settings.organization
        if self._settings.project:
            headers["openai-project"] = self._settings.project
        return headers

    def _require_key(self) -> None:
        if not self._settings.api_key and not self._settings.demo:
            raise CheckpointsError(
                ErrorCode.AUTH_MISSING,
                "No API key is configured. Set OPENAI_API_KEY in this server's environment (in Claude Desktop: the "
                '"env" of its entry in claude_desktop_config.json) and restart it, or start it with --demo to try '
                "it on demo data.",
            )

    async def get_json(self, path: str, params: QueryParams | None = None, *, what: str) -> Any:
        """GET `path` (relative to the base URL) with retries and return the decoded JSON body."""
        response = await self._get(path, params, what=what)
        request_id = request_id_from(response.headers)
        content_type = response.headers.get("content-type", "")
        body = response.content
        if "html" in content_type or body.lstrip()[:1] == b"<":
            raise bad_response(
                what, f"HTML instead of JSON (HTTP {response.status_code})", status=response.status_code,
                request_id=request_id,
            )
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise bad_response(
                what, f"malformed JSON (HTTP {response.status_code}, {len(body)} bytes)",
                status=response.status_code, request_id=request_id,
            ) from None

    async def _get(self, path: str, params: QueryParams | None, *, what: str) -> httpx2.Response:
        self._require_key()
        headers = self._headers()
        retries_taken = 0
        while True:
            headers["x-stainless-retry-count"] = str(retries_taken)
            status: int | None = None
            response: httpx2.Response | None = None
            failure: Exception | None = None
            try:
                response = await self._http.get(path, params=params, headers=headers)
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
                    "GET %s failed (%s); retry %d of %d in %.2f s",
                    path, status or type(failure).__name__, attempts, self._settings.max_retries, decision.wait,
                )
                await self._sleep(decision.wait)
                retries_taken += 1
                continue
            if response is not None:
                raise error_from_status(
                    response.status_code, response.content, response.headers, what=what, attempts=attempts,
                    server_wait=decision.server_wait, secrets=self._secrets,
                )
            raise self._transport_error(failure, what=what, attempts=attempts)

    def _transport_error(self, failure: Exception | None, *, what: str, attempts: int) -> CheckpointsError:
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if isinstance(failure, httpx2.TimeoutException):
            return CheckpointsError(
                ErrorCode.TIMEOUT,
                f"No answer from the API within {self._settings.timeout:g} s while reading {what} ({tries}). "
                "Try again; if it persists, raise --timeout.",
            )
        detail = redact(f"{type(failure).__name__}: {failure}", self._secrets)[:200]
        return CheckpointsError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"Could not reach the API at {self._settings.base_url} while reading {what} ({tries}; {detail}). "
            "Check the network and OPENAI_BASE_URL.",
        )

    async def get_object(self, path: str, model: type[ModelT], *, what: str) -> ModelT:
        payload = await self.get_json(path, what=what)
        return _parse(model, payload, what=what)

    async def get_job(self, job_id: str) -> Job:
        """The job, or `not_found`."""
        return await self.get_object(f"/fine_tuning/jobs/{job_id}", Job, what=f"job {job_id}")

    async def list_jobs_page(
        self, *, limit: int, after: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> Page[Job]:
        """One page of jobs, newest first."""
        params: QueryParams = [("limit", str(limit))]
        if after:
            params.append(("after", after))
        for key, value in (metadata or {}).items():
            params.append((f"metadata[{key}]", value))
        return await self._list_page("/fine_tuning/jobs", params, Job, what="fine-tuning jobs")

    async def list_checkpoints(
        self, job_id: str, *, after: str | None = None, on_page: OnPage | None = None
    ) -> Collected[Checkpoint]:
        """Every checkpoint of the job, following every page (capped at ``max_items``), in API order."""
        what = f"checkpoints of job {job_id}"
        path = f"/fine_tuning/jobs/{job_id}/checkpoints"

        async def fetch(cursor: str | None) -> Page[Checkpoint]:
            params: QueryParams = [("limit", str(self._settings.page_size))]
            if cursor:
                params.append(("after", cursor))
            return await self._list_page(path, params, Checkpoint, what=what)

        return await collect_pages(
            fetch, max_items=self._settings.max_items, after=after, what=what, on_page=on_page
        )

    async def _list_page(self, path: str, params: QueryParams, model: type[ObjectT], *, what: str) -> Page[ObjectT]:
        payload = await self.get_json(path, params, what=what)
        page = _parse(ListPage, payload, what=what)
        items = [_parse(model, item, what=what) for item in page.data]
        return Page(items=items, has_more=page.has_more)


def _parse(model: type[ModelT], payload: Any, *, what: str) -> ModelT:
    if not isinstance(payload, dict):
        raise bad_response(what, f"expected a JSON object, got {type(payload).__name__}")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        fields = ", ".join(sorted({".".join(str(p) for p in e["loc"]) or "(root)" for e in exc.errors()}))
        raise bad_response(what, f"{model.__name__} is missing or has invalid {fields}") from None


def _time_left() -> float:
    """Seconds until the enclosing cancel scope's deadline (inf without one)."""
    return anyio.current_effective_deadline() - anyio.current_time()
