"""plot_training_curve: a job's training curve (or a sweep's, up to 8 jobs on one figure) as a PNG, with the numbers
beside it; `draw` also serves the resource template openai-ft://jobs/{job_id}/curve.png (`resources.CURVE_PNG`), the
same one-job picture.

The numbers are training_metrics' own: the same reading of the result file (`curves.load_curve`) and the same
analysis (best validation step, overfitting), and the highlighted checkpoint is the one best_checkpoint names (the
same ranking). A job without a result file yet (running, paused, cancelled) is drawn from what is known: its metrics
events (the most recent 1,000) and its kept checkpoints. The drawing is `analysis.plot`, with matplotlib, the
optional ``[plot]`` extra: imported only when a picture is asked for (never at start-up), and run in a worker thread
so that the event loop is never blocked.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Literal

import anyio
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ImageContent, TextContent
from pydantic import BaseModel, Field, StringConstraints

from ..analysis import plot
from ..analysis.metrics import finite_number
from ..analysis.ranking import AUTO, choose_metric, numeric_keys, rank
from ..analysis.result_file import ResultTable, table_from_rows
from ..analysis.training import TRAIN_PARTNER, TrainingAnalysis, analyse
from ..api.models import Checkpoint, Event, Job
from ..api.pagination import Page, collect_pages
from ..api.store import JobStore
from ..errors import CheckpointsError, ErrorCode, invalid_argument
from ..state import AppState
from .arguments import METRIC_PATTERN, JobId
from .checkpoints import candidates_of
from .common import Progress, ToolResult, finish, off_loop, store_of, tool
from .curves import (
    BestValidationInfo,
    Diagnostics,
    LoadedCurve,
    OverfittingInfo,
    RetainedCheckpoint,
    load_curve,
    no_result_file,
)
from .resources import CURVE_PNG
from .sweeps import SweepHyperparameters

INSTALL = "pip install 'openai-checkpoints-mcp[plot]'"
MAX_JOBS = plot.MAX_JOBS
MAX_METRICS = 4
EVENTS_PAGE_SIZE = 100
EVENTS_MAX_PAGES = 10
"""A job without a result file is drawn from at most this many pages of its newest events."""

Source = Literal["result_file", "events", "checkpoints"]


# --- the result ---------------------------------------------------------------------------------------------------


class PlotImage(BaseModel):
    mime_type: Literal["image/png"] = "image/png"
    width: int = Field(description="Pixels.")
    height: int = Field(description="Pixels.")
    bytes: int = Field(description="Size of the PNG.")
    log_scale: bool = Field(description="Whether the loss axis is logarithmic (its values span a factor of 10).")
    resource: str | None = Field(
        default=None, description="For one job: the resource URI that serves the same picture (resources/read)."
    )


class HighlightedCheckpoint(BaseModel):
    step_number: int
    metric: str | None = Field(description="The metric it was ranked by, as best_checkpoint ranks (metric='auto').")
    value: float | None = Field(description="Its value of that metric, as the API reported it for the checkpoint.")
    fine_tuned_model_checkpoint: str | None = Field(description="The model name to deploy it by.")


class PlottedJob(BaseModel):
    job_id: str
    label: str = Field(description="How the legend names the job (its suffix, and what differs in a sweep).")
    colour: str | None = Field(description="Its colour on the figure (hex); null when it is not drawn.")
    status: str | None
    model: str | None = Field(description="Base model.")
    suffix: str | None
    drawn: bool
    source: Source | None = Field(
        description="Where the curve comes from: result_file (every step of a finished job), events (a job "
        "without a result file yet: its newest metrics events) or checkpoints (only the kept checkpoints' metrics)."
    )
    reason: str | None = Field(description="Why the job is not drawn, or what its picture lacks.")
    metrics: list[str] = Field(description="The metrics drawn.")
    steps: int = Field(description="Steps with values (rows of the result file, or of the metrics events).")
    last_step: int | None
    total_steps: int | None = Field(default=None, description="For a job still going: the steps it will run.")
    best_validation: BestValidationInfo | None = Field(description="As training_metrics gives it.")
    overfitting: OverfittingInfo | None = Field(description="As training_metrics gives it.")
    diagnostics: Diagnostics | None = Field(
        default=None,
        description="As training_metrics gives it: spikes (drawn as small red triangles), the plateau (a faint grey "
        "band from its start) and coverage.",
    )
    best_checkpoint: HighlightedCheckpoint | None = Field(description="The checkpoint highlighted (the star).")
    retained_checkpoints: list[RetainedCheckpoint] = Field(description="The checkpoints the API kept.")


class PlotResult(ToolResult):
    title: str
    caption: str = Field(description="What the picture shows, in words (for clients that do not display images).")
    image: PlotImage
    jobs: list[PlottedJob] = Field(description="In the order asked, drawn or not.")
    upstream_requests: int = Field(description="API requests this call made (0 when everything came from the cache).")


# --- reading --------------------------------------------------------------------------------------------------------


@dataclass
class _Curve:
    """One job's curve as read: the loaded job, the table drawn (from the result file, or built from metrics events)
    and the analysis of it."""

    job_id: str
    loaded: LoadedCurve | None = None
    table: ResultTable | None = None
    source: Source | None = None
    analysis: TrainingAnalysis | None = None
    total_steps: int | None = None
    events_truncated: bool = False
    error: CheckpointsError | None = None
    requests: int = 0
    checkpoint_values: dict[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)

    @property
    def job(self) -> Job | None:
        return self.loaded.job if self.loaded else None


def _step(event: Event) -> int | None:
    step = finite_number((event.data or {}).get("step"))
    return int(step) if step is not None and step >= 0 and step.is_integer() else None


async def _metrics_events(store: JobStore, job_id: str) -> tuple[dict[int, dict[str, float]], int | None, bool]:
    """The job's newest metrics events as step -> {metric: value}, the total steps they announce, and whether older
    events were left unread."""

    async def fetch(cursor: str | None) -> Page[Event]:
        return await store.events_page(job_id, limit=EVENTS_PAGE_SIZE, after=cursor)

    collected = await collect_pages(
        fetch,
        max_items=EVENTS_PAGE_SIZE * EVENTS_MAX_PAGES,
        what=f"events of job {job_id}",
        keep=lambda event: _step(event) is not None,
        max_pages=EVENTS_MAX_PAGES,
    )
    rows: dict[int, dict[str, float]] = {}
    total: int | None = None
    for event in collected.items:
        step = _step(event)
        assert step is not None
        data = event.data or {}
        values = {
            key: number
            for key, value in data.items()
            if key not in ("step", "total_steps") and (number := finite_number(value)) is not None
        }
        rows.setdefault(step, values)  # newest first: the first event of a step is its latest word
        announced = finite_number(data.get("total_steps"))
        if announced is not None and announced.is_integer() and total is None:
            total = int(announced)
    return rows, total, collected.truncated


def _checkpoint_values(checkpoints: Sequence[Checkpoint]) -> dict[str, tuple[tuple[int, float], ...]]:
    values: dict[str, list[tuple[int, float]]] = {}
    for checkpoint in checkpoints:
        if checkpoint.step is None:
            continue
        for key, value in checkpoint.numeric_metrics.items():
            if key != "step":
                values.setdefault(key, []).append((checkpoint.step, value))
    return {key: tuple(points) for key, points in values.items()}


async def _read(store: JobStore, job_id: str) -> _Curve:
    """One job's curve: the result file when there is one, else its metrics events, else its checkpoints."""
    curve = _Curve(job_id)
    with store.count_requests() as requests:
        loaded = await load_curve(store, job_id)
        curve.loaded = loaded
        curve.checkpoint_values = _checkpoint_values(loaded.checkpoints)
        if loaded.table is not None:
            curve.table, curve.source = loaded.table, "result_file"
        else:
            rows, curve.total_steps, curve.events_truncated = await _metrics_events(store, job_id)
            if rows:
                curve.table, curve.source = table_from_rows(rows), "events"
            elif curve.checkpoint_values:
                curve.table, curve.source = table_from_rows({}), "checkpoints"
    curve.requests = loaded.requests + requests[0]  # load_curve counts its own
    if curve.table is not None and curve.table.steps:
        curve.analysis = await off_loop(analyse, curve.table, loaded.retained_steps)
    return curve


async def _read_all(store: JobStore, job_ids: Sequence[str], progress: Progress | None) -> list[_Curve]:
    """Every job, concurrently; with several, a job that cannot be read keeps its error instead of failing all."""
    if len(job_ids) == 1:
        return [await _read(store, job_ids[0])]
    curves: list[_Curve] = [_Curve(job_id) for job_id in job_ids]
    done = 0

    async def read(index: int) -> None:
        nonlocal done
        try:
            curves[index] = await _read(store, job_ids[index])
        except CheckpointsError as exc:
            curves[index].error = exc
        done += 1
        if progress is not None:
            await progress(done, len(job_ids) + 1, f"read {done} of {len(job_ids)} jobs")

    async with anyio.create_task_group() as group:
        for index in range(len(job_ids)):
            group.start_soon(read, index)
    return curves


# --- what to draw ----------------------------------------------------------------------------------------------------


def default_metrics(table: ResultTable, checkpoint_metrics: Sequence[str]) -> tuple[str, ...]:
    """The train metric (every step) and the validation losses (else the validation reward) the table has; from the
    checkpoints when the table has none of them."""
    losses = [m for m in ("full_valid_loss", "valid_loss") if table.values(m)]
    validation = losses or [m for m in ("full_valid_mean_reward",) if table.values(m)]
    train = TRAIN_PARTNER[validation[0]] if validation else None
    if train is None or not table.values(train):
        train = next((m for m in ("train_loss", "train_mean_reward") if table.values(m)), None)
    chosen = ([train] if train else []) + validation
    if not chosen:
        known = ("train_loss", "full_valid_loss", "valid_loss", "train_mean_reward", "full_valid_mean_reward")
        chosen = [m for m in known if m in checkpoint_metrics][:2]
    if not chosen:
        chosen = [name for name in table.columns if table.values(name)][:1]
    return tuple(chosen)


def _available(curve: _Curve) -> set[str]:
    table = curve.table
    present = {name for name in table.columns if table.values(name)} if table is not None else set()
    return present | set(curve.checkpoint_values)


def _best_mark(job: Job, checkpoints: Sequence[Checkpoint]) -> tuple[plot.CheckpointMark, Checkpoint] | None:
    """The checkpoint best_checkpoint(metric='auto') names: the same choice of metric, the same ranking."""
    candidates = candidates_of(list(checkpoints))
    choice = choose_metric(AUTO, None, method_type=job.method_type, present=numeric_keys(candidates))
    if choice is None:
        return None
    best = rank(candidates, choice).best
    if best is None or best.step is None:
        return None
    checkpoint = next(c for c in checkpoints if c.id == best.id)
    value = finite_number(best.metrics.get(choice.metric))
    return plot.CheckpointMark(step=best.step, metric=choice.metric, value=value), checkpoint


def legend_labels(jobs: Sequence[Job]) -> list[str]:
    """Each job by its suffix (or id); jobs that share a suffix also by the hyperparameters that differ among them
    (``lr-sweep, lr 0.5``), failing that by their id."""
    labels = [job.suffix or job.id for job in jobs]
    groups: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(label, []).append(index)
    for members in groups.values():
        if len(members) < 2:
            continue
        hyper = {i: SweepHyperparameters.from_job(jobs[i]) for i in members}
        for key, shown in (
            ("learning_rate_multiplier", "lr {}"),
            ("n_epochs", "{} epochs"),
            ("batch_size", "batch {}"),
            ("beta", "beta {}"),
        ):
            values = {i: getattr(hyper[i], key) for i in members}
            if len({str(v) for v in values.values()}) > 1:
                for i in members:
                    labels[i] += ", " + shown.format("?" if values[i] is None else values[i])
        if len({labels[i] for i in members}) < len(members):
            for i in members:
                labels[i] += f" ({jobs[i].id})"
    return labels


def _common(values: Sequence[str | None]) -> str | None:
    distinct = set(values)
    return values[0] if len(distinct) == 1 else None


def _overfitting_words(analysis: TrainingAnalysis | None) -> str | None:
    signal = analysis.overfitting if analysis else None
    if signal is None:
        return None
    if not signal.detected:
        return "no sign of overfitting"
    worse = abs(signal.validation_change) / (abs(signal.best_validation_value) or 1.0)
    rose, fell = ("rose", "fell") if signal.validation_change >= 0 else ("fell", "rose")
    return (
        f"overfitting: {signal.validation_metric} {rose} {worse:.1%} from its best while {signal.train_metric} {fell}"
    )


def _steps_words(curve: _Curve) -> str:
    table = curve.table
    if curve.source == "result_file" and table is not None:
        return f"{len(table.steps)} steps"
    if curve.source == "events" and table is not None:
        last = table.steps[-1]
        of = f" of {curve.total_steps}" if curve.total_steps else ""
        return f"step {last}{of}, from metrics events (no result file yet)"
    return "kept checkpoints only (no result file, no metrics events)"


# --- the figure ----------------------------------------------------------------------------------------------------


@dataclass
class _Plan:
    spec: plot.FigureSpec
    jobs: list[PlottedJob]
    drawn: list[int]
    """Indexes into `jobs` of the jobs on the figure, in figure order."""


def _plan(curves: list[_Curve], requested: Sequence[str] | None) -> _Plan:
    """What to draw for each job, the figure's title, and each job's summary (colours filled in after rendering)."""
    readable = [c for c in curves if c.job is not None]
    if requested:
        everywhere = set().union(*(_available(c) for c in readable)) if readable else set()
        unknown = [m for m in requested if m not in everywhere]
        if unknown and readable:
            raise invalid_argument(
                f"metrics: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} in no result file or "
                f"checkpoint of {'this job' if len(curves) == 1 else 'these jobs'}; available: "
                f"{', '.join(sorted(everywhere)) or 'none'}."
            )
    labels = dict(zip((c.job_id for c in readable), legend_labels([c.job for c in readable if c.job]), strict=True))
    jobs: list[PlottedJob] = []
    figure_jobs: list[plot.JobCurve] = []
    drawn: list[int] = []
    for curve in curves:
        job = curve.job
        if job is None or curve.loaded is None:
            error = curve.error
            jobs.append(_not_drawn(curve.job_id, error.text if error else "The job could not be read."))
            continue
        loaded = curve.loaded
        marked = _best_mark(job, loaded.checkpoints)
        mark, best_checkpoint = marked if marked else (None, None)
        table = curve.table
        analysis = curve.analysis
        best = analysis.best_validation if analysis else None
        metrics: tuple[str, ...] = ()
        reason: str | None = None
        if table is None:
            reason = no_result_file(job).replace(
                "Meanwhile list_events shows the per-step metrics events and list_checkpoints the checkpoints saved "
                "so far.",
                "It has no metrics events or checkpoints with metrics yet, so there is nothing to plot.",
            )
        else:
            available = _available(curve)
            metrics = (
                tuple(m for m in requested if m in available)
                if requested
                else default_metrics(table, sorted(curve.checkpoint_values))
            )
            if not metrics:
                reason = f"None of {', '.join(requested or ())} is in this job's result file or checkpoints."
            elif curve.source == "events":
                reason = "No result file yet: drawn from its metrics events" + (
                    f" (the newest {EVENTS_PAGE_SIZE * EVENTS_MAX_PAGES:,} events only)."
                    if curve.events_truncated
                    else "."
                )
            elif curve.source == "checkpoints":
                reason = "No result file and no metrics events: only the kept checkpoints' metrics are drawn."
        is_drawn = table is not None and bool(metrics)
        jobs.append(
            PlottedJob(
                job_id=job.id,
                label=labels[curve.job_id],
                colour=None,
                status=job.status,
                model=job.model,
                suffix=job.suffix,
                drawn=is_drawn,
                source=curve.source,
                reason=reason,
                metrics=list(metrics) if is_drawn else [],
                steps=len(table.steps) if table is not None else 0,
                last_step=table.steps[-1] if table is not None and table.steps else None,
                total_steps=curve.total_steps if not job.is_finished else None,
                best_validation=BestValidationInfo.of(best) if best else None,
                overfitting=OverfittingInfo.of(analysis.overfitting) if analysis and analysis.overfitting else None,
                diagnostics=Diagnostics.of(analysis) if analysis else None,
                best_checkpoint=HighlightedCheckpoint(
                    step_number=mark.step,
                    metric=mark.metric,
                    value=mark.value,
                    fine_tuned_model_checkpoint=best_checkpoint.fine_tuned_model_checkpoint,
                )
                if mark and best_checkpoint
                else None,
                retained_checkpoints=loaded.retained(),
            )
        )
        if is_drawn and table is not None:
            drawn.append(len(jobs) - 1)
            figure_jobs.append(
                plot.JobCurve(
                    job_id=job.id,
                    label=labels[curve.job_id],
                    table=table,
                    metrics=metrics,
                    retained_steps=tuple(loaded.retained_steps),
                    best_checkpoint=mark,
                    best_validation=best,
                    checkpoint_values=curve.checkpoint_values,
                    spikes=analysis.spikes if analysis else (),
                    plateau=analysis.plateau if analysis else None,
                )
            )
    if not figure_jobs:
        raise _nothing_to_draw(curves, jobs)
    on_figure = [curves[i] for i in drawn]
    title, subtitle = _titles(on_figure, [jobs[i] for i in drawn])
    going = [c.total_steps for c in on_figure if c.total_steps and c.job and not c.job.is_finished]
    spec = plot.FigureSpec(
        title=title, subtitle=subtitle, jobs=tuple(figure_jobs), last_step=max(going) if going else None
    )
    return _Plan(spec=spec, jobs=jobs, drawn=drawn)


def _not_drawn(job_id: str, reason: str) -> PlottedJob:
    return PlottedJob(
        job_id=job_id,
        label=job_id,
        colour=None,
        status=None,
        model=None,
        suffix=None,
        drawn=False,
        source=None,
        reason=reason,
        metrics=[],
        steps=0,
        last_step=None,
        best_validation=None,
        overfitting=None,
        best_checkpoint=None,
        retained_checkpoints=[],
    )


def _nothing_to_draw(curves: list[_Curve], jobs: list[PlottedJob]) -> CheckpointsError:
    """Not one job can be drawn: the first job's own error if it had one (a 404, a missing key), else not_found."""
    first_error = next((c.error for c in curves if c.error is not None), None)
    if first_error is not None and all(c.job is None for c in curves):
        return first_error
    if len(jobs) == 1:
        return CheckpointsError(
            ErrorCode.NOT_FOUND,
            f"Job {jobs[0].job_id} ({jobs[0].status or 'status unknown'}) has no curve to plot: {jobs[0].reason} "
            "get_job and list_events say what it did.",
        )
    reasons = "; ".join(f"{j.job_id}: {j.reason}" for j in jobs)
    return CheckpointsError(ErrorCode.NOT_FOUND, f"None of the jobs has a curve to plot ({reasons}).")


def _titles(curves: list[_Curve], jobs: list[PlottedJob]) -> tuple[str, str]:
    if len(curves) == 1:
        curve, summary = curves[0], jobs[0]
        job = curve.job
        assert job is not None
        title = " · ".join(part for part in (job.id, job.model, job.suffix) if part)
        parts = [job.method_type, job.status or "status unknown", _steps_words(curve)]
        words = _overfitting_words(curve.analysis)
        if words:
            parts.append(words)
        elif summary.best_validation is None and curve.table is not None and curve.table.steps:
            parts.append("no validation metrics")
        return title, " · ".join(parts)
    found = [c.job for c in curves if c.job is not None]
    model = _common([j.model for j in found])
    suffix = _common([j.suffix for j in found])
    title = " · ".join(part for part in (f"{len(found)} jobs", model, suffix) if part)
    method = _common([j.method_type for j in found])
    parts = [method or "mixed methods"]
    if model is None:
        parts.append("base models: " + ", ".join(dict.fromkeys(j.model or "?" for j in found)))
    return title, " · ".join(parts)


def _caption(plan: _Plan, rendered: plot.RenderedPlot) -> str:
    """The picture in words."""
    sentences = [f"{plan.spec.title}."]
    single = len(plan.drawn) == 1
    for index in plan.drawn:
        job = plan.jobs[index]
        who = "" if single else f"{job.label} ({job.colour}): "
        what = ", ".join(job.metrics)
        kept = [c.step_number for c in job.retained_checkpoints if c.step_number is not None]
        text = f"{who}{what} against the step"
        if job.source == "events":
            text += " (from metrics events)"
        if kept:
            text += f"; kept checkpoints at steps {', '.join(map(str, kept))}"
        best = job.best_checkpoint
        if best is not None:
            value = f" ({best.metric} {best.value:.5g})" if best.metric and best.value is not None else ""
            text += f"; best checkpoint step {best.step_number}{value}"
        validation = job.best_validation
        if validation is not None and not validation.retained:
            text += f"; best {validation.metric} {validation.value:.5g} at step {validation.step} (not kept)"
        if job.overfitting is not None and job.overfitting.detected:
            text += "; overfitting detected"
        diagnostics = job.diagnostics
        if diagnostics is not None and single:  # drawn on one job's figure only
            for spikes in diagnostics.spikes:
                if spikes.count:
                    text += f"; {spikes.count} {spikes.metric} spike{'s' if spikes.count > 1 else ''}"
            plateau = diagnostics.plateau
            if plateau is not None and plateau.detected:
                text += f"; {plateau.metric} plateau from step {plateau.start_step}"
        sentences.append(text + ".")
    if single:
        key = (
            "Train metrics: light line every step, dark line smoothed; validation: points; dashed vertical lines: "
            "kept checkpoints; green star: the best checkpoint; red circle: the best validation step, not kept"
        )
        diagnostics = plan.jobs[plan.drawn[0]].diagnostics
        if diagnostics is not None and any(s.count for s in diagnostics.spikes):
            key += "; small red triangles: spikes"
        if diagnostics is not None and diagnostics.plateau is not None and diagnostics.plateau.detected:
            key += "; faint grey band: the plateau"
        sentences.append(key + ".")
    if rendered.log_scale:
        sentences.append("The loss axis is logarithmic.")
    return " ".join(sentences)


async def _render(spec: plot.FigureSpec) -> plot.RenderedPlot:
    """Render in a worker thread; a cancelled call (the deadline) stops waiting for it at once."""
    try:
        return await anyio.to_thread.run_sync(plot.render, spec, abandon_on_cancel=True)
    except plot.PlottingUnavailable as exc:
        raise missing_matplotlib(str(exc)) from None


def missing_matplotlib(detail: str) -> CheckpointsError:
    return CheckpointsError(
        ErrorCode.MISSING_DEPENDENCY,
        f"plot_training_curve draws with matplotlib, which this server cannot import ({detail}). Install the plot "
        f"extra where the server runs, {INSTALL}, and restart the server; training_metrics gives the same numbers "
        "without a picture.",
    )


async def require_matplotlib() -> None:
    """Before any request: import matplotlib (in a worker thread: the first import takes a while).

    Raises:
        CheckpointsError: ``missing_dependency`` when it cannot be imported.
    """
    try:
        await anyio.to_thread.run_sync(plot.load_matplotlib)
    except plot.PlottingUnavailable as exc:
        raise missing_matplotlib(str(exc)) from None


async def draw(
    store: JobStore,
    job_ids: Sequence[str],
    metrics: Sequence[str] | None,
    progress: Progress | None = None,
    *,
    mask_text: Callable[[str], str],
) -> tuple[PlotResult, bytes]:
    """The figure of `job_ids` and its summary. `mask_text` masks every text drawn (the server's `Redactor`): the
    picture is binary, which no exit masks, and its titles and legend quote what the API sent."""
    await require_matplotlib()
    curves = await _read_all(store, job_ids, progress)
    plan = _plan(curves, metrics)
    if progress is not None:
        await progress(len(job_ids), len(job_ids) + 1, "drawing")
    rendered = await _render(replace(plan.spec, mask_text=mask_text))
    for index, colour in zip(plan.drawn, rendered.colours, strict=True):
        plan.jobs[index].colour = colour
    single = len(job_ids) == 1
    result = PlotResult(
        title=plan.spec.title,
        caption=_caption(plan, rendered),
        image=PlotImage(
            width=rendered.width,
            height=rendered.height,
            bytes=len(rendered.png),
            log_scale=rendered.log_scale,
            resource=CURVE_PNG.uri(job_ids[0]) if single else None,
        ),
        jobs=plan.jobs,
        upstream_requests=sum(c.requests for c in curves),
    )
    return result, rendered.png


def _job_selection(job_id: str | None, job_ids: Sequence[str] | None) -> list[str]:
    """Exactly one of job_id and job_ids, checked before any request; job_ids distinct, in the order given."""
    if job_id is not None and job_ids:
        raise invalid_argument(f"give job_id (one job) or job_ids (up to {MAX_JOBS} jobs on one figure), not both.")
    if job_id is None and not job_ids:
        raise invalid_argument(f"job_id is required, or job_ids for up to {MAX_JOBS} jobs on one figure (a sweep).")
    return [job_id] if job_id is not None else list(dict.fromkeys(job_ids or ()))


PLOT_TRAINING_CURVE = f"""Draw a job's training curve as a PNG image (about 900x500), with the numbers beside it.
The picture: train loss (reward for reinforcement jobs) against the step, as a light line of every step and a
smoothed line; validation as points; each kept checkpoint as a dashed line labelled with its step; the best
checkpoint (as best_checkpoint ranks them) highlighted green with a star; the best validation step circled when no
checkpoint was kept there; spikes as small red triangles and a plateau as a faint grey band; a log loss axis
when the values span a factor of 10. job_ids draws up to {MAX_JOBS} jobs
(a sweep) on one figure, one colour each, named in the legend by suffix and the hyperparameters that differ. The
structured result has per job the same numbers as training_metrics (best validation step and value, overfitting,
kept checkpoints), the highlighted checkpoint, each job's colour and a caption. A job without a result file yet
(running, paused) is drawn from its metrics events and checkpoints. Needs the server's optional plot extra
(missing_dependency otherwise). Show the image to the user; quote the numbers from the structured result."""


@tool(title="Plot a training curve", description=PLOT_TRAINING_CURVE)
async def plot_training_curve(
    ctx: Context[AppState],
    job_id: Annotated[JobId | None, Field(description="The job to draw; or give job_ids.")] = None,
    job_ids: Annotated[
        list[JobId] | None,
        Field(
            description=f"Up to {MAX_JOBS} jobs on one figure (a sweep), one colour each; instead of job_id.",
            min_length=1,
            max_length=MAX_JOBS,
        ),
    ] = None,
    metrics: Annotated[
        list[Annotated[str, StringConstraints(pattern=METRIC_PATTERN, max_length=100)]] | None,
        Field(
            description="Metrics to draw (result-file columns or checkpoint metrics, e.g. train_loss, valid_loss, "
            "full_valid_loss, train_mean_token_accuracy, train_mean_reward; accuracies and rewards go on a right "
            "axis); omit for the train metric and the validation losses (rewards for reinforcement jobs). At most "
            f"{MAX_METRICS}.",
            min_length=1,
            max_length=MAX_METRICS,
        ),
    ] = None,
) -> Annotated[CallToolResult, PlotResult]:
    selected = _job_selection(job_id, job_ids)
    summary, png = await draw(
        store_of(ctx),
        selected,
        metrics and list(dict.fromkeys(metrics)),
        ctx.report_progress,
        mask_text=ctx.request_context.lifespan_context.settings.redactor.mask,
    )
    summary = finish(ctx, summary)
    structured = summary.model_dump(mode="json")
    return CallToolResult(
        content=[
            ImageContent(type="image", data=base64.b64encode(png).decode("ascii"), mime_type="image/png"),
            TextContent(type="text", text=summary.model_dump_json(indent=2)),
        ],
        structured_content=structured,
    )
