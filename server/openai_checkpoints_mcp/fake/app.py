"""A faithful, in-memory fake of OpenAI's fine-tuning REST API, as an ASGI app.

It serves the read endpoints this project uses (jobs, checkpoints, events and
result files) from a `FakeData` snapshot, with the real API's defaults, newest-first
ordering, cursor paging, metadata filter, error envelopes and bearer auth, and the
job actions (POST cancel, pause, resume), which change the job in that data. Every
request is recorded (method included) so tests can assert on what a client actually sent.
"""

from __future__ import annotations

import base64
import hmac
import math
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

JOBS_DEFAULT_LIMIT = 20
EVENTS_DEFAULT_LIMIT = 20
CHECKPOINTS_DEFAULT_LIMIT = 10
PERMISSIONS_DEFAULT_LIMIT = 10
ADMIN_KEY = "sk-admin-fake-0123456789abcdef"
"""The admin key the fake accepts on the checkpoint permissions endpoint by default."""
_PERMISSIONS_PATH = re.compile(r"/fine_tuning/checkpoints/(?P<checkpoint>[^/]+)/permissions")

_METADATA_KEY = re.compile(r"metadata\[(.*)\]")
JOB_ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "cancel": (frozenset({"validating_files", "queued", "running", "paused"}), "cancelled"),
    "pause": (frozenset({"running"}), "paused"),
    "resume": (frozenset({"paused"}), "queued"),  # the spec's example answers "queued"; training follows
}
"""POST /fine_tuning/jobs/{id}/<action>: the statuses it is accepted from, and the status it sets."""
_INTEGER = re.compile(r"[+-]?\d+")


@dataclass
class FakeFile:
    """A stored file: its `OpenAIFile` object and its raw (CSV) content."""

    meta: dict[str, Any]
    content: bytes


@dataclass
class FakeData:
    """Everything the fake serves, as raw JSON-ready objects (any order)."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[str, FakeFile] = field(default_factory=dict)
    models: list[dict[str, Any]] | None = None
    """What ``GET /models`` lists; None: the succeeded jobs' fine-tuned models and a few base models."""
    permissions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """``checkpoint.permission`` objects by checkpoint (or fine-tuned model) name."""

    def model_objects(self) -> list[dict[str, Any]]:
        """The models ``GET /models`` serves."""
        if self.models is not None:
            return self.models
        listed = [{"id": base, "object": "model", "created": 1721172741, "owned_by": "system"} for base in BASE_MODELS]
        for job in self.jobs:
            name = job.get("fine_tuned_model")
            if job.get("status") == "succeeded" and isinstance(name, str) and name:
                owner = job.get("organization_id") or "user"
                listed.append({"id": name, "object": "model", "created": job.get("finished_at"), "owned_by": owner})
        return listed


BASE_MODELS = ("gpt-4o-mini-2024-07-18", "gpt-4.1-mini-2025-04-14", "gpt-4.1-2025-04-14")
"""The base models the fake lists besides the fine-tuned ones."""


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]

    @classmethod
    def from_scope(cls, scope: Scope) -> RecordedRequest:
        """Record an ASGI http scope: decoded query, lower-cased header names."""
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", []):
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        return cls(method=scope["method"], path=scope["path"], query=query, headers=headers)


class ApiError(Exception):
    """An error answered with OpenAI's `{"error": {...}}` envelope (`body`), or on the Azure legacy flavour with
    Azure's (`azure_body`; `azure` gives its code and message when they differ from the generic ones)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        azure: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(message, error_type=error_type, param=param, code=code)
        self.headers = headers or {}
        self.message, self.param, self.code, self.azure = message, param, code, azure

    @property
    def azure_body(self) -> dict[str, Any]:
        """Azure's legacy error body: Azure's code and message, OpenAI's param as `target`, its code as the
        inner error."""
        code, message = self.azure or (_AZURE_CODES.get(self.status, str(self.status)), self.message)
        return azure_error_body(code, message, target=self.param, inner_code=self.code)


def error_body(
    message: str, *, error_type: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error envelope; all four keys are always present."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


AZURE_ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource."
)
"""What Azure's gateway answers (HTTP 401, code "401") to a missing or wrong key, on every API surface."""
_AZURE_CODES = {
    400: "BadRequest",
    403: "PermissionDenied",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    429: "429",
    500: "InternalServerError",
}
_AZURE_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
_BASE_PATHS = {"openai": "/v1", "azure": "/openai", "azure-v1": "/openai/v1"}
FLAVOURS = tuple(_BASE_PATHS)
"""The flavours of the fake API: ``openai``, ``azure`` (Azure's legacy dated API), ``azure-v1`` (Azure's v1 API)."""


def azure_error_body(
    code: str,
    message: str,
    *,
    target: str | None = None,
    inner_code: str | None = None,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Azure's legacy error body (Microsoft REST guidelines): `code` and `message`, and `target`, `details`
    and `innererror` only when there are any."""
    error: dict[str, Any] = {"code": code, "message": message}
    if target is not None:
        error["target"] = target
    if details:
        error["details"] = details
    if inner_code is not None:
        error["innererror"] = {"code": inner_code}
    return {"error": error}


def default_error_body(status: int) -> dict[str, Any]:
    """An OpenAI-style error envelope that fits an HTTP status (used by fault injection)."""
    if status == 429:
        return error_body("Rate limit reached for requests", error_type="requests", code="rate_limit_exceeded")
    known: dict[int, tuple[str, str, str | None]] = {
        401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
        403: ("You are not allowed to perform this request.", "invalid_request_error", None),
        408: ("The request timed out.", "invalid_request_error", None),
        409: ("Another request is modifying this resource; try again.", "invalid_request_error", None),
        500: ("The server had an error while processing your request.", "server_error", None),
        502: ("Bad gateway.", "server_error", None),
        503: ("The server is overloaded or not ready yet.", "server_error", None),
        504: ("The gateway timed out.", "server_error", None),
    }
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = f"HTTP {status}"
    fallback = (phrase, "server_error" if status >= 500 else "invalid_request_error", None)
    message, error_type, code = known.get(status, fallback)
    return error_body(message, error_type=error_type, code=code)


def new_request_id() -> str:
    """A fresh `x-request-id` value: `req_` + 32 hex digits."""
    return f"req_{secrets.token_hex(16)}"


def with_request_id(send: Send) -> Send:
    """Wrap `send` so the response carries an `x-request-id` header (unless it has one)."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(name.lower() == b"x-request-id" for name, _ in headers):
                headers.append((b"x-request-id", new_request_id().encode()))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def with_azure_request_id(send: Send, *, gateway: bool = False) -> Send:
    """Wrap `send` as Azure answers: an ``apim-request-id`` (a UUID) on every response and the same value as
    ``x-request-id``, except on the gateway's own answers (`gateway`: 401), which carry only the former."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {name.lower() for name, _ in headers}
            request_id = str(uuid.uuid4()).encode()
            if b"apim-request-id" not in names:
                headers.append((b"apim-request-id", request_id))
            if not gateway and b"x-request-id" not in names:
                headers.append((b"x-request-id", request_id))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def mask_key(key: str) -> str:
    """How OpenAI echoes a rejected key: a fixed prefix and at most its last 4 characters."""
    return "sk-..." + (key[-4:] if len(key) > 8 else "")


def _parse_limit(raw: str | None, default: int, maximum: int) -> int:
    """The page size: `default` when absent, 400 when not an integer >= 1, clamped to `maximum`."""
    if raw is None:
        return min(default, maximum)
    if not _INTEGER.fullmatch(raw.strip()):
        raise ApiError(400, f"Invalid 'limit': expected an integer, got {raw!r}.", param="limit", code="invalid_type")
    limit = int(raw)
    if limit < 1:
        message = f"Invalid 'limit': expected a value >= 1, got {limit}."
        raise ApiError(400, message, param="limit", code="integer_below_min_value")
    return min(limit, maximum)


def _metadata_filter(query_string: str) -> dict[str, str] | bool | None:
    """The `metadata` filter: a dict to AND-match, None for `metadata=null`, False for no filter."""
    pairs: dict[str, str] = {}
    null = False
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        if key == "metadata":
            if value != "null":
                message = "Invalid 'metadata': use metadata[key]=value pairs, or metadata=null."
                raise ApiError(400, message, param="metadata")
            null = True
        elif match := _METADATA_KEY.fullmatch(key):
            pairs[match.group(1)] = value
    if null and pairs:
        message = "Invalid 'metadata': metadata=null cannot be combined with metadata[key]=value."
        raise ApiError(400, message, param="metadata")
    if null:
        return None
    return pairs or False


def _matches(job: dict[str, Any], wanted: dict[str, str] | bool | None) -> bool:
    if wanted is False:
        return True
    metadata = job.get("metadata")
    if wanted is None:
        return metadata is None
    assert isinstance(wanted, dict)
    return metadata is not None and all(metadata.get(k) == v for k, v in wanted.items())


Handler = Callable[[Request, re.Match[str]], Awaitable[Response]]


def _limit_headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    """OpenAI's request rate-limit headers (the reset as its duration text, e.g. ``250ms``)."""
    return {
        "x-ratelimit-limit-requests": str(limit),
        "x-ratelimit-remaining-requests": str(remaining),
        "x-ratelimit-reset-requests": f"{max(1, math.ceil(reset * 1000))}ms",
    }


class FakeOpenAI:
    """The fake API; an instance is the ASGI app.

    `api_key=None` disables auth (demo mode). `max_page_size` clamps `limit`
    (OpenAI documents no cap). `base64_results` serves file content base64-encoded,
    a quirk seen on real `fine-tune-results` files.

    `flavour`: ``"openai"`` (under ``/v1``); ``"azure"``, Azure OpenAI's legacy dated API (under ``/openai``;
    a request without ``api-version`` gets Azure's 404 ``{"error": {"code": "404", "message": "Resource not
    found"}}``, one not shaped ``YYYY-MM-DD[-preview]`` a 400 "API version not supported"; errors in Azure's
    ``{"error": {"code", "message", "target", "innererror"}}`` body); ``"azure-v1"``, Azure's v1 API (under
    ``/openai/v1``, OpenAI's error envelope, ``api-version`` optional: absent, ``v1`` or ``preview``). Both Azure
    flavours take the key in the ``api-key`` header only (``Authorization: Bearer`` is refused), answer a missing
    or wrong key with the gateway's 401 (`AZURE_ACCESS_DENIED`), and send ``apim-request-id``. `base_path`
    defaults to the flavour's. `auth_header` makes any flavour take the bare key in that header instead
    (e.g. ``x-api-key``). `fake.azure` has builders of Azure-looking data.

    `rate_limit` (requests per second, off by default) answers any request beyond that many in the last second
    with OpenAI's 429 ``rate_limit_exceeded``, a ``retry-after-ms``/``retry-after`` until a slot frees, and the
    ``x-ratelimit-*-requests`` headers (also sent on every answer it lets through); `throttled` counts the 429s.

    The checkpoint permissions endpoint (``GET /fine_tuning/checkpoints/{name}/permissions``, the name's colons as
    they are) takes only `admin_key` (an admin key: ``sk-admin-...``): the ordinary `api_key` gets a 403, anything
    else a 401; with `api_key=None` (demo mode) neither is asked for. A name the fake knows no job, checkpoint or
    permission of is a 404.
    """

    def __init__(
        self,
        data: FakeData,
        *,
        api_key: str | None = "sk-fake-key",
        max_page_size: int = 100,
        base64_results: bool = False,
        base_path: str | None = None,
        flavour: str = "openai",
        auth_header: str | None = None,
        rate_limit: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        admin_key: str = ADMIN_KEY,
    ) -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {', '.join(FLAVOURS)}, got {flavour!r}")
        self.data = data
        self.api_key = api_key
        self.admin_key = admin_key
        self.max_page_size = max_page_size
        self.base64_results = base64_results
        self.flavour = flavour
        self.azure = flavour != "openai"
        self.auth_header = (auth_header or ("api-key" if self.azure else "authorization")).lower()
        self.base_path = (_BASE_PATHS[flavour] if base_path is None else base_path).rstrip("/")
        self.requests: list[RecordedRequest] = []
        self.rate_limit = rate_limit
        self.throttled = 0
        self._clock = clock
        self._window: deque[float] = deque()
        """When each request let through in the last second arrived (for `rate_limit`)."""
        self._routes: list[tuple[re.Pattern[str], Handler]] = [
            (re.compile(r"/fine_tuning/jobs"), self._list_jobs),
            (re.compile(r"/fine_tuning/jobs/(?P<job>[^/]+)"), self._get_job),
            (re.compile(r"/fine_tuning/jobs/(?P<job>[^/]+)/checkpoints"), self._list_checkpoints),
            (re.compile(r"/fine_tuning/jobs/(?P<job>[^/]+)/events"), self._list_events),
            (re.compile(r"/models"), self._list_models),
            (re.compile(r"/files/(?P<file>[^/]+)"), self._get_file),
            (re.compile(r"/files/(?P<file>[^/]+)/content"), self._get_file_content),
            (_PERMISSIONS_PATH, self._list_permissions),
        ]
        self._post_routes: list[tuple[re.Pattern[str], Handler]] = [
            (re.compile(r"/fine_tuning/jobs/(?P<job>[^/]+)/(?P<action>cancel|pause|resume)"), self._job_action),
        ]

    def reset_requests(self) -> None:
        """Forget the recorded requests."""
        self.requests.clear()

    def requests_to(self, path_suffix_or_substring: str) -> list[RecordedRequest]:
        """The recorded requests whose path contains the given text."""
        return [r for r in self.requests if path_suffix_or_substring in r.path]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.requests.append(RecordedRequest.from_scope(scope))
        request = Request(scope, receive)
        try:
            limit_headers = self._admit()
            response = await self._dispatch(request)
        except ApiError as err:
            response = JSONResponse(self._error_body(err), status_code=err.status, headers=err.headers)
        else:
            response.headers.update(limit_headers)
        if self.azure:
            await response(scope, receive, with_azure_request_id(send, gateway=response.status_code == 401))
            return
        await response(scope, receive, with_request_id(send))

    def _admit(self) -> dict[str, str]:
        """Let one request through the rate limit (its ``x-ratelimit-*`` headers), or raise its 429."""
        if self.rate_limit is None:
            return {}
        now = self._clock()
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        allowed = max(1, math.floor(self.rate_limit))
        if len(self._window) >= allowed:
            self.throttled += 1
            wait = max(0.001, self._window[0] + 1.0 - now)
            raise ApiError(
                429,
                f"Rate limit reached for requests: Limit {allowed} / sec. Please try again in {wait * 1000:.0f}ms.",
                error_type="requests",
                code="rate_limit_exceeded",
                headers={
                    "retry-after-ms": str(math.ceil(wait * 1000)),
                    "retry-after": str(math.ceil(wait)),
                    **_limit_headers(allowed, 0, wait),
                },
            )
        self._window.append(now)
        reset = self._window[0] + 1.0 - now
        return _limit_headers(allowed, allowed - len(self._window), reset)

    def _error_body(self, err: ApiError) -> dict[str, Any]:
        if self.azure and err.status == 401:  # the gateway's answer, whatever the API surface
            return azure_error_body("401", AZURE_ACCESS_DENIED)
        return err.azure_body if self.flavour == "azure" else err.body

    async def _dispatch(self, request: Request) -> Response:
        self._check_auth(request)
        self._check_api_version(request)
        path = request.url.path
        if not path.startswith(self.base_path + "/"):
            raise ApiError(404, f"Invalid URL ({request.method} {path})", azure=("404", "Resource not found"))
        relative = path[len(self.base_path) :]
        for pattern, handler in self._post_routes:
            if match := pattern.fullmatch(relative):
                if request.method != "POST":
                    message = f"Method {request.method} is not allowed for {path}."
                    raise ApiError(405, message, headers={"allow": "POST"})
                return await handler(request, match)
        for pattern, handler in self._routes:
            if match := pattern.fullmatch(relative):
                if request.method not in ("GET", "HEAD"):
                    raise ApiError(405, f"Method {request.method} is not allowed for {path}.", headers={"allow": "GET"})
                return await handler(request, match)
        raise ApiError(404, f"Invalid URL ({request.method} {path})", azure=("404", "Resource not found"))

    def _check_api_version(self, request: Request) -> None:
        """Azure's legacy API needs a dated ``api-version``; its v1 API takes none, ``v1`` or ``preview``."""
        if not self.azure:
            return
        version = request.query_params.get("api-version")
        if self.flavour == "azure" and version is None:
            raise ApiError(404, "Resource not found", azure=("404", "Resource not found"))
        if self.flavour == "azure-v1":
            accepted = version in (None, "v1", "preview")
        else:
            accepted = bool(version and _AZURE_API_VERSION.fullmatch(version))
        if not accepted:
            raise ApiError(
                400,
                "API version not supported",
                param="api-version",
                code="BadRequest",
                azure=("BadRequest", "API version not supported"),
            )

    def _check_auth(self, request: Request) -> None:
        if self.api_key is None:
            return
        relative = request.url.path.removeprefix(self.base_path)
        if not self.azure and _PERMISSIONS_PATH.fullmatch(relative):
            self._check_admin(request)
            return
        bearer_ok = self.flavour == "azure-v1" and request.headers.get("authorization", "").lower().startswith(
            "bearer "
        )  # Azure's v1 API also takes the key as a bearer token, as the plain OpenAI client sends it
        if self.auth_header != "authorization" and not bearer_ok:
            key = request.headers.get(self.auth_header, "").strip()
            missing = f"You didn't provide an API key. Send it in the {self.auth_header} header."
            wrong = f"Incorrect API key provided: {mask_key(key)}."
        else:
            scheme, _, key = request.headers.get("authorization", "").partition(" ")
            key = key.strip() if scheme.lower() == "bearer" else ""
            missing = (
                "You didn't provide an API key. Send it in an Authorization header using Bearer auth "
                "(Authorization: Bearer YOUR_KEY)."
            )
            wrong = (
                f"Incorrect API key provided: {mask_key(key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
        if not key:
            raise ApiError(401, missing)
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise ApiError(401, wrong, code="invalid_api_key")

    def _check_admin(self, request: Request) -> None:
        """The permissions endpoint: an admin key, or 403 for the ordinary key (OpenAI's answer to a key that lacks
        the scope), or 401."""
        assert self.api_key is not None
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        key = key.strip() if scheme.lower() == "bearer" else ""
        if not key:
            raise ApiError(401, "You didn't provide an API key. Send an admin key in an Authorization header.")
        if hmac.compare_digest(key.encode(), self.admin_key.encode()) and key.startswith("sk-admin-"):
            return
        if hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise ApiError(
                403,
                "You have insufficient permissions for this operation. This endpoint requires an admin API key.",
                code="insufficient_permissions",
            )
        raise ApiError(401, f"Incorrect API key provided: {mask_key(key)}.", code="invalid_api_key")

    async def _list_permissions(self, request: Request, match: re.Match[str]) -> Response:
        """A checkpoint's permissions, newest first (``order=ascending`` for oldest first), paged, optionally for
        one ``project_id``; a name that is no known checkpoint, model or shared name is a 404."""
        name = match["checkpoint"]
        stored = self.data.permissions.get(name)
        if stored is None and not self._knows_model(name):
            raise ApiError(404, f"Fine-tuned model checkpoint {name} not found.", param="fine_tuned_model_checkpoint")
        ordered = sorted(stored or [], key=lambda p: (p.get("created_at") or 0, p["id"]), reverse=True)
        order = request.query_params.get("order", "descending")
        if order not in ("ascending", "descending"):
            raise ApiError(400, f"Invalid 'order': {order!r}.", param="order")
        if order == "ascending":
            ordered.reverse()
        project = request.query_params.get("project_id")
        page, has_more = self._paged(
            ordered,
            request,
            PERMISSIONS_DEFAULT_LIMIT,
            keep=lambda p: project is None or p.get("project_id") == project,
        )
        return JSONResponse(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": has_more,
            }
        )

    def _knows_model(self, name: str) -> bool:
        """Whether `name` is a fine-tuned model or a checkpoint of a job the fake holds."""
        if any(job.get("fine_tuned_model") == name for job in self.data.jobs):
            return True
        return any(c.get("fine_tuned_model_checkpoint") == name for cps in self.data.checkpoints.values() for c in cps)

    def _job(self, job_id: str) -> dict[str, Any]:
        for job in self.data.jobs:
            if job["id"] == job_id:
                return job
        raise ApiError(
            404,
            f"Could not find fine tune: {job_id}",
            param="fine_tune_id",
            code="fine_tune_not_found",
            azure=("NotFound", f"The specified job '{job_id}' was not found."),
        )

    async def _list_jobs(self, request: Request, match: re.Match[str]) -> Response:
        wanted = _metadata_filter(request.url.query)
        ordered = sorted(self.data.jobs, key=lambda j: (j.get("created_at") or 0, j["id"]), reverse=True)
        page, has_more = self._paged(ordered, request, JOBS_DEFAULT_LIMIT, keep=lambda j: _matches(j, wanted))
        return JSONResponse({"object": "list", "data": page, "has_more": has_more})

    async def _get_job(self, request: Request, match: re.Match[str]) -> Response:
        return JSONResponse(self._job(match["job"]))

    async def _job_action(self, request: Request, match: re.Match[str]) -> Response:
        """cancel, pause or resume: change the job's status (and its timings and events) as the API does, and
        answer the job; a job in another status gets a 400 in OpenAI's envelope and is left as it was."""
        job, action = self._job(match["job"]), match["action"]
        accepted_from, new_status = JOB_ACTIONS[action]
        status = job.get("status")
        if status not in accepted_from:
            if action == "cancel":
                done = "been cancelled" if status == "cancelled" else "completed"
                message = f"Cannot cancel job {job['id']}: the job has already {done}."
            else:
                wanted = "running" if action == "pause" else "paused"
                message = f"Cannot {action} job {job['id']}: only {wanted} jobs can be {action}d (status: {status})."
            raise ApiError(400, message)
        now = max(int(time.time()), job.get("created_at") or 0)
        job["status"] = new_status
        if new_status != "queued":
            job["estimated_finish"] = None
        if new_status == "cancelled":
            job["finished_at"] = now
        event = "cancelled" if action == "cancel" else f"{action}d"
        self.data.events.setdefault(job["id"], []).append(
            {
                "object": "fine_tuning.job.event",
                "id": f"ftevent-{secrets.token_hex(12)}",
                "created_at": now,
                "level": "info",
                "message": f"Fine-tuning job {event}",
                "data": {},
                "type": "message",
            }
        )
        return JSONResponse(job)

    async def _list_checkpoints(self, request: Request, match: re.Match[str]) -> Response:
        job_id = self._job(match["job"])["id"]
        ordered = sorted(
            self.data.checkpoints.get(job_id, []),
            key=lambda c: (c.get("step_number") or 0, c.get("created_at") or 0, c["id"]),
            reverse=True,
        )
        page, has_more = self._paged(ordered, request, CHECKPOINTS_DEFAULT_LIMIT)
        return JSONResponse(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": has_more,
            }
        )

    async def _list_events(self, request: Request, match: re.Match[str]) -> Response:
        job_id = self._job(match["job"])["id"]
        ordered = sorted(self.data.events.get(job_id, []), key=lambda e: e.get("created_at") or 0, reverse=True)
        page, has_more = self._paged(ordered, request, EVENTS_DEFAULT_LIMIT)
        return JSONResponse({"object": "list", "data": page, "has_more": has_more})

    async def _list_models(self, request: Request, match: re.Match[str]) -> Response:
        """Every model at once, as OpenAI answers (no pages); ``limit``/``after`` page it, for the paginator's tests."""
        models = self.data.model_objects()
        if "limit" not in request.query_params and "after" not in request.query_params:
            return JSONResponse({"object": "list", "data": models})
        page, has_more = self._paged(models, request, len(models) or 1)
        return JSONResponse({"object": "list", "data": page, "has_more": has_more})

    def _paged(
        self,
        ordered: list[dict[str, Any]],
        request: Request,
        default_limit: int,
        keep: Callable[[dict[str, Any]], bool] = lambda _: True,
    ) -> tuple[list[dict[str, Any]], bool]:
        """One cursor page of `ordered`: the kept items after the `after` id, at most `limit`."""
        limit = _parse_limit(request.query_params.get("limit"), default_limit, self.max_page_size)
        after = request.query_params.get("after")
        if after is not None:
            ids = [item["id"] for item in ordered]
            if after not in ids:
                raise ApiError(400, f"Invalid 'after': no object with id {after!r} in this list.", param="after")
            ordered = ordered[ids.index(after) + 1 :]
        kept = [item for item in ordered if keep(item)]
        return kept[:limit], len(kept) > limit

    def _file(self, file_id: str) -> FakeFile:
        stored = self.data.files.get(file_id)
        if stored is None:
            raise ApiError(
                404,
                f"No such File object: {file_id}",
                param="id",
                azure=("NotFound", f"File with id '{file_id}' was not found."),
            )
        return stored

    async def _get_file(self, request: Request, match: re.Match[str]) -> Response:
        return JSONResponse(self._file(match["file"]).meta)

    async def _get_file_content(self, request: Request, match: re.Match[str]) -> Response:
        content = self._file(match["file"]).content
        if self.base64_results:
            content = base64.b64encode(content)
        return Response(content, media_type="application/octet-stream")
