"""The resource templates: a job, its checkpoints, its result file and its training curve (a PNG), read by URI
(``openai-ft://jobs/{job_id}...``), and the resource links that tools add to their results so that a client can read
them without another tool call.

`TEMPLATES` is the registration table: one template is one entry. Each reads through the store, so the cache rules
apply; the job id is checked before any request. The server maps failures to protocol errors (`server.py`). The
picture is drawn by `plots.draw` (matplotlib is imported only then, never when the templates are listed).
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import ResourceLink

from ..errors import CheckpointsError, ErrorCode
from ..state import AppState
from .arguments import checked_job_id
from .common import ToolResult, finish, off_loop, one_line, store_of

SCHEME = "openai-ft"

Reader = Callable[[Context[AppState, Any], str], Awaitable[str | bytes]]
"""``read(ctx, job_id)``: the resource's content, text (`str`) or binary (`bytes`); raises `CheckpointsError`."""


@dataclass(frozen=True)
class ResourceSpec:
    """One resource template as the server registers it."""

    uri_template: str
    name: str
    title: str
    description: str
    mime_type: str
    read: Reader
    linked: bool = True
    """Whether best_checkpoint and training_metrics link to it."""
    needs_result_file: bool = False
    """Whether it exists only once the job has a result file (then linked only when it has one)."""
    needs_matplotlib: bool = False
    """Whether reading it draws a picture (then linked only where the ``[plot]`` extra is installed)."""

    def uri(self, job_id: str) -> str:
        return self.uri_template.replace("{job_id}", job_id)

    def link(self, job_id: str) -> ResourceLink:
        return ResourceLink(
            type="resource_link",
            uri=self.uri(job_id),
            name=self.name,
            title=f"{self.title}: {job_id}",
            description=self.description,
            mime_type=self.mime_type,
        )


def _json(result: ToolResult) -> str:
    """A result as its tool's structuredContent, as JSON text."""
    return json.dumps(result.model_dump(mode="json", by_alias=True), indent=2, ensure_ascii=False)


async def _job(ctx: Context[AppState, Any], job_id: str) -> str:
    from .jobs import JobDetail

    return _json(finish(ctx, JobDetail.from_job(await store_of(ctx).job(job_id))))


async def _checkpoints(ctx: Context[AppState, Any], job_id: str) -> str:
    from .checkpoints import read_checkpoints

    return _json(finish(ctx, await read_checkpoints(store_of(ctx), job_id)))


async def _metrics_csv(ctx: Context[AppState, Any], job_id: str) -> str:
    from ..analysis.result_file import ResultFileError, result_file_text
    from ..api.errors import bad_response
    from .curves import no_result_file

    store = store_of(ctx)
    job = await store.job(job_id)
    if not job.result_files:
        raise CheckpointsError(ErrorCode.NOT_FOUND, f"Job {job_id} has no result file. {no_result_file(job)}")
    file_id = job.result_files[0]
    content = await store.result_file(job, file_id)
    try:
        return await off_loop(result_file_text, content)
    except ResultFileError as exc:
        raise bad_response(f"the result file {file_id} of job {job_id}", str(exc)) from None


JOB = ResourceSpec(
    uri_template=f"{SCHEME}://jobs/{{job_id}}",
    name="job",
    title="Fine-tuning job",
    description=one_line(
        """The job in full, as get_job returns it: status, models, method and hyperparameters, files, error, metadata
        and timings (JSON)."""
    ),
    mime_type="application/json",
    read=_job,
    linked=False,
)
CHECKPOINTS = ResourceSpec(
    uri_template=f"{SCHEME}://jobs/{{job_id}}/checkpoints",
    name="job_checkpoints",
    title="Checkpoints of a job",
    description=one_line(
        """Every checkpoint of the job, by step, with its metrics and the model name to deploy it by, as
        list_checkpoints returns them (JSON)."""
    ),
    mime_type="application/json",
    read=_checkpoints,
)
METRICS_CSV = ResourceSpec(
    uri_template=f"{SCHEME}://jobs/{{job_id}}/metrics.csv",
    name="job_metrics_csv",
    title="Per-step metrics of a job",
    description=one_line(
        """The job's result file: the metrics of every training step, as CSV (decoded when the API serves it in
        base64). Only finished jobs have one."""
    ),
    mime_type="text/csv",
    read=_metrics_csv,
    needs_result_file=True,
)


async def _curve_png(ctx: Context[AppState, Any], job_id: str) -> bytes:
    from .plots import draw

    _, png = await draw(
        store_of(ctx), [job_id], None, mask_text=ctx.request_context.lifespan_context.settings.redactor.mask
    )
    return png


CURVE_PNG = ResourceSpec(
    uri_template=f"{SCHEME}://jobs/{{job_id}}/curve.png",
    name="job_curve_png",
    title="Training curve (PNG)",
    description=one_line(
        """The training curve of one job as a PNG image, the picture plot_training_curve draws for it (a job
        without a result file yet is drawn from its metrics events and checkpoints)."""
    ),
    mime_type="image/png",
    read=_curve_png,
    needs_matplotlib=True,
)
"""Not `needs_result_file`: like plot_training_curve, it draws a running job from its events and checkpoints."""

TEMPLATES: tuple[ResourceSpec, ...] = (JOB, CHECKPOINTS, METRICS_CSV, CURVE_PNG)
"""Every resource template, in the order resources/templates/list shows them. Adding one: a reader and one entry."""


def job_links(job_id: str, *, has_result_file: bool) -> list[ResourceLink]:
    """Links to the job's linked resources: those that need a result file only when it has one, and the picture only
    where matplotlib is installed (a link whose every read fails would only send the client astray)."""
    return [
        spec.link(job_id)
        for spec in TEMPLATES
        if spec.linked
        and (has_result_file or not spec.needs_result_file)
        and (not spec.needs_matplotlib or matplotlib_installed())
    ]


@functools.cache
def matplotlib_installed() -> bool:
    """Whether matplotlib can be found, without importing it (which takes a while)."""
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


def resource_function(spec: ResourceSpec) -> Callable[..., Awaitable[str | bytes]]:
    """The function the SDK registers for `spec`: its parameter is the URI's variable, checked before any request."""

    async def read(job_id: str, ctx: Context[AppState, Any]) -> str | bytes:
        return await spec.read(ctx, checked_job_id(job_id))

    read.__name__ = spec.name
    return read
