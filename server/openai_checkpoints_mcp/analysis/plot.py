"""Draw training curves as a PNG: pure, no I/O besides producing the bytes.

Input is plain data (`FigureSpec`: per job a parsed result file, the metrics to draw, the kept checkpoints, the best
checkpoint and the best validation step as the rest of `analysis` found them); output is a `RenderedPlot`. Drawing
uses matplotlib's object API on the Agg canvas (never pyplot: no global figure state, no GUI backend), imported only
by `load_matplotlib` and `render`: matplotlib is the optional ``[plot]`` extra, and importing it costs start-up time
that no other tool should pay. matplotlib is not thread-safe, so renders are serialised by a lock; callers run
`render` in a worker thread.

One job's figure: each train metric as a light line of every step with a smoothed line over it; each validation
metric as points joined by a thin line; the values the API reported for the kept checkpoints, as diamonds, for the
metric they were ranked by when the result file lacks it (``full_valid_loss`` of an OpenAI SFT job); each kept
checkpoint as a dashed vertical line labelled with its step, the best one (as `best_checkpoint` ranks them) solid
green with a star; the best validation step circled in red when no checkpoint was kept there. Accuracies and rewards
(higher is better) get a right-hand axis when losses share the figure; the loss axis is logarithmic when its values
span a factor of `LOG_SPAN`. Several jobs (a sweep) share the axes, one colour each: validation as points and line,
train smoothed and dashed, kept checkpoints as squares and the best as a star labelled with its step.

The PNG has a palette of `PALETTE` colours (lines on white need no more): about a quarter of matplotlib's RGBA file,
some 15-35 KB at 900 x 500.
"""

from __future__ import annotations

import io
import math
import statistics
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from .diagnostics import Plateau, SpikeReport
from .metrics import Goal
from .result_file import ResultTable
from .training import BestValidation, metric_goal

if TYPE_CHECKING:
    from matplotlib.axes import Axes

WIDTH, HEIGHT, DPI = 900, 500, 100
"""The picture's size in pixels, readable at the sizes chat clients show images (600-900 px wide)."""

LOG_SPAN = 10.0
"""The loss axis is logarithmic when its largest value is at least this many times its smallest."""

PALETTE = 128
"""Colours of the quantised PNG."""

MAX_JOBS = 8
JOB_COLOURS: tuple[str, ...] = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
"""One colour per job of a sweep (matplotlib's tab10 colours)."""

TRAIN_COLOUR = "#1f77b4"
VALIDATION_COLOUR = "#e6550d"
OTHER_COLOURS: tuple[str, ...] = ("#7f7f7f", "#9467bd", "#17becf", "#8c564b", "#bcbd22", "#e377c2")
"""Further metrics of one job (accuracies, other columns), in order."""
CHECKPOINT_VALUE_COLOUR = "#6a3d9a"
KEPT_COLOUR = "#555555"
BEST_COLOUR = "#2ca02c"
BEST_VALIDATION_COLOUR = "#d62728"
SPIKE_COLOUR = "#b2182b"
PLATEAU_COLOUR = "#9e9e9e"
PLATEAU_ALPHA = 0.09
"""The plateau is a faint grey band (about #f6f6f6 on white)."""

_LOCK = threading.Lock()


class PlottingUnavailable(ImportError):
    """matplotlib cannot be imported (the ``[plot]`` extra is not installed)."""


@dataclass(frozen=True)
class CheckpointMark:
    """The checkpoint to highlight: its step, and the metric it was ranked by with its value there."""

    step: int
    metric: str | None = None
    value: float | None = None


@dataclass(frozen=True)
class JobCurve:
    """One job on the figure."""

    job_id: str
    label: str
    """How the legend names the job (in a figure of several jobs)."""
    table: ResultTable
    metrics: tuple[str, ...]
    """Columns of `table` to draw, in order; a metric the table lacks is drawn from `checkpoint_values`."""
    retained_steps: tuple[int, ...] = ()
    best_checkpoint: CheckpointMark | None = None
    best_validation: BestValidation | None = None
    checkpoint_values: dict[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)
    """Metric -> (step, value) at the kept checkpoints, as the API reported them."""
    spikes: tuple[SpikeReport, ...] = ()
    """Marked as small triangles on their metric (one job's figure only)."""
    plateau: Plateau | None = None
    """Shaded from its start to the last step when detected (one job's figure only)."""


@dataclass(frozen=True)
class FigureSpec:
    title: str
    subtitle: str = ""
    jobs: tuple[JobCurve, ...] = ()
    last_step: int | None = None
    """Extend the step axis to here (a running job's total steps), when beyond the data."""
    width: int = WIDTH
    height: int = HEIGHT
    mask_text: Callable[[str], str] | None = field(default=None, compare=False)
    """Applied to every text drawn (titles, legend, axis labels, checkpoint labels) before it becomes pixels: the
    server passes its `Redactor`'s mask, since a job's model name and suffix and a result file's column names come
    from the API, which may echo the key."""


@dataclass(frozen=True)
class RenderedPlot:
    png: bytes
    width: int
    height: int
    log_scale: bool
    """Whether the left (loss) axis is logarithmic."""
    colours: tuple[str, ...]
    """Each job's colour (for one job: the colour of its train line)."""
    texts: tuple[str, ...] = ()
    """Every text drawn into the picture, as drawn (masked), besides the axes' numbers."""


def load_matplotlib() -> None:
    """Import matplotlib (slow the first time: call it in a worker thread).

    Raises:
        PlottingUnavailable: it is not installed, or cannot be imported.
    """
    try:
        import matplotlib.backends.backend_agg
        import matplotlib.figure  # noqa: F401
        import PIL.Image  # noqa: F401  (a dependency of matplotlib: the PNG writer)
    except ImportError as exc:
        raise PlottingUnavailable(str(exc)) from exc


def render(spec: FigureSpec) -> RenderedPlot:
    """The figure as a PNG of `spec.width` x `spec.height` pixels.

    Raises:
        PlottingUnavailable: matplotlib cannot be imported.
        ValueError: no job, more than `MAX_JOBS`, or a job with nothing to draw.
    """
    if not spec.jobs or len(spec.jobs) > MAX_JOBS:
        raise ValueError(f"a figure has 1 to {MAX_JOBS} jobs, not {len(spec.jobs)}")
    for job in spec.jobs:
        if not any(_points(job, metric) for metric in job.metrics):
            raise ValueError(f"job {job.job_id} has no values of {', '.join(job.metrics) or 'any metric'}")
    load_matplotlib()
    with _LOCK:
        return _Drawing(spec).draw()


# --- small pure helpers ----------------------------------------------------------------------------------------------


def is_validation(metric: str) -> bool:
    return metric.startswith(("valid_", "full_valid_", "validation_", "full_validation_"))


def higher_is_better(metric: str) -> bool:
    return metric_goal(metric) is Goal.MAX


def smoothed(values: Sequence[float], window: int) -> list[float]:
    """A centred moving average over `window` points (odd), the window shrinking symmetrically at both ends: unlike
    an exponential average it does not lag behind a falling loss."""
    half = max(0, window // 2)
    prefix = [0.0]
    for value in values:
        prefix.append(prefix[-1] + value)
    n = len(values)
    result = []
    for i in range(n):
        reach = min(half, i, n - 1 - i)
        result.append((prefix[i + reach + 1] - prefix[i - reach]) / (2 * reach + 1))
    return result


def smoothing_window(points: int) -> int:
    """About a twentieth of the run, odd, at least 5 points."""
    return max(5, points // 20) | 1


SMOOTH_FROM = 40
"""Train metrics with fewer values than this are drawn as one line, not a raw and a smoothed one."""


def wants_log(values: Sequence[float]) -> bool:
    """A log axis when every value is positive and they span a factor of `LOG_SPAN` or more."""
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) >= LOG_SPAN


def axis_label(metrics: Sequence[str]) -> str:
    """``loss``, ``mean reward`` or ``mean token accuracy`` when every metric is one; else their names."""
    words = [set(m.lower().split("_")) for m in metrics]
    for word, label in (("loss", "loss"), ("reward", "mean reward"), ("accuracy", "mean token accuracy")):
        if words and all(word in w for w in words):
            return label
    shown = ", ".join(metrics)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def typical_interval(steps: Sequence[int]) -> int | None:
    """The usual number of steps between two values of a sparse column."""
    gaps = [b - a for a, b in pairwise(steps)]
    return int(statistics.median(gaps)) if gaps else None


def label_rows(positions: Sequence[float], widths: Sequence[float], *, gap: float = 6.0, rows: int = 3) -> list[int]:
    """For labels centred at `positions` (pixels, ascending) of `widths`, the row each goes on (0: the top) so that
    no two on one row overlap; crowded labels share the last row."""
    last_end = [-math.inf] * rows
    chosen = []
    for x, width in zip(positions, widths, strict=True):
        row = next((r for r in range(rows) if x - width / 2 >= last_end[r] + gap), rows - 1)
        last_end[row] = x + width / 2
        chosen.append(row)
    return chosen


def legend_columns(lengths: Sequence[int], room: float, *, most: int = 5) -> int:
    """The most columns (at most `most`) in which legend labels of these lengths (characters, filled column by
    column as matplotlib does) fit across `room` pixels: about 6.4 px a character at font size 9 (DejaVu Sans),
    55 px of handle and spacing per column."""
    for columns in range(min(most, len(lengths)), 1, -1):
        rows, longer = divmod(len(lengths), columns)  # the first `longer` columns hold one entry more
        start, widths = 0, []
        for column in range(columns):
            end = start + rows + (column < longer)
            widths.append(6.4 * max(lengths[start:end], default=0) + 55)
            start = end
        if sum(widths) <= room:
            return columns
    return 1


def short(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _points(job: JobCurve, metric: str) -> list[tuple[int, float]]:
    return job.table.values(metric) or list(job.checkpoint_values.get(metric, ()))


# --- the drawing ------------------------------------------------------------------------------------------------------


class _Drawing:
    """One render: the figure, its axes, and the legend entries gathered while drawing."""

    def __init__(self, spec: FigureSpec) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.spec = spec
        self.single = len(spec.jobs) == 1
        self.figure = Figure(figsize=(spec.width / DPI, spec.height / DPI), dpi=DPI, layout="constrained")
        self.canvas = FigureCanvasAgg(self.figure)
        self.left: Axes = self.figure.add_subplot()
        self.right: Axes | None = None
        self.right_metrics: set[str] = set()
        self.handles: list[Any] = []
        self.labels: list[str] = []
        self.texts: list[str] = []
        self.log_scale = False

    def _text(self, text: str) -> str:
        """`text` as it is drawn: masked by the spec's `mask_text`, and recorded in `texts`."""
        mask = self.spec.mask_text
        shown = mask(text) if mask is not None else text
        self.texts.append(shown)
        return shown

    def draw(self) -> RenderedPlot:
        spec = self.spec
        metrics = list(dict.fromkeys(m for job in spec.jobs for m in self._drawn(job)))
        lower = [m for m in metrics if not higher_is_better(m)]
        higher = [m for m in metrics if higher_is_better(m)]
        if lower and higher:
            self.right_metrics = set(higher)
        left_metrics = [m for m in metrics if m not in self.right_metrics]
        left_values = [
            v for job in spec.jobs for m in self._drawn(job) if m in left_metrics for _, v in _points(job, m)
        ]
        self.log_scale = wants_log(left_values)
        if self.log_scale:
            self._log_axis(self.left)
        colours = []
        for index, job in enumerate(spec.jobs):
            colour = TRAIN_COLOUR if self.single else JOB_COLOURS[index % len(JOB_COLOURS)]
            colours.append(colour)
            if self.single:
                self._one_job(job)
            else:
                self._sweep_job(job, colour)
        self._frame(left_metrics, [m for m in metrics if m in self.right_metrics])
        return RenderedPlot(
            png=self._png(),
            width=spec.width,
            height=spec.height,
            log_scale=self.log_scale,
            colours=tuple(colours),
            texts=tuple(self.texts),
        )

    def _png(self) -> bytes:
        """The figure as a palette PNG: the `PALETTE` most frequent colours exactly (the background, the text, each
        line's own colour), every other pixel (anti-aliasing) mapped to the nearest of them."""
        import numpy as np
        from PIL import Image

        self.canvas.draw()  # type: ignore[no-untyped-call]
        rgba = np.asarray(self.canvas.buffer_rgba())  # type: ignore[no-untyped-call]
        rgb = rgba[:, :, :3].astype(np.int32)
        keys = (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]
        colours, inverse, counts = np.unique(keys.ravel(), return_inverse=True, return_counts=True)
        kept = colours[np.argsort(-counts, kind="stable")[:PALETTE]]
        channels = np.stack([(colours >> shift) & 255 for shift in (16, 8, 0)], axis=1)
        palette = np.stack([(kept >> shift) & 255 for shift in (16, 8, 0)], axis=1)
        distance = ((channels[:, None, :] - palette[None, :, :]) ** 2).sum(axis=2)
        nearest = distance.argmin(axis=1).astype(np.uint8)
        indexed = nearest[inverse].reshape(keys.shape)
        image = Image.fromarray(indexed, mode="P")
        image.putpalette(palette.astype(np.uint8).ravel().tolist())
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
        return out.getvalue()

    # --- what is drawn where --------------------------------------------------------------------------------------

    @staticmethod
    def _drawn(job: JobCurve) -> list[str]:
        """The job's metrics, and the one its checkpoints were ranked by when only the checkpoints have it."""
        drawn = [m for m in job.metrics if _points(job, m)]
        best = job.best_checkpoint
        if best and best.metric and best.metric not in drawn and best.metric in job.checkpoint_values:
            drawn.append(best.metric)
        return drawn

    def axes_for(self, metric: str) -> Axes:
        if metric not in self.right_metrics:
            return self.left
        if self.right is None:
            self.right = self.left.twinx()
            if self.log_scale:
                self.right.set_yscale("linear")
        return self.right

    def _dense(self, job: JobCurve, metric: str) -> bool:
        """A column with a value at most steps (train metrics), as opposed to one evaluated now and then."""
        return not is_validation(metric) and len(job.table.values(metric)) > 0.5 * len(job.table.steps)

    def _marks_at(self, job: JobCurve) -> tuple[str, dict[int, float]] | None:
        """Where checkpoint marks sit: on the values of the metric they were ranked by, else on the first drawn
        validation metric, else on the first drawn metric."""
        best = job.best_checkpoint
        drawn = self._drawn(job)
        ordered = ([best.metric] if best and best.metric in drawn else []) + [m for m in drawn if is_validation(m)]
        for metric in [*ordered, *drawn]:
            at = dict(_points(job, metric))
            if best and best.metric == metric and best.value is not None:
                at[best.step] = best.value
            if at:
                return metric, at
        return None

    # --- one job --------------------------------------------------------------------------------------------------

    def _one_job(self, job: JobCurve) -> None:
        others: Iterator[str] = iter(OTHER_COLOURS)
        train_done = validation_done = False
        drawn = self._drawn(job)
        sparse = [m for m in drawn if job.table.values(m) and not self._dense(job, m)]
        main = max(sparse, key=lambda m: len(job.table.values(m)), default=None)  # gets the validation colour
        for metric in drawn:
            axes = self.axes_for(metric)
            points = job.table.values(metric)
            if not points:
                self._checkpoint_values(axes, metric, list(job.checkpoint_values[metric]))
            elif self._dense(job, metric):
                colour = TRAIN_COLOUR if not train_done else next(others, "#7f7f7f")
                train_done = True
                self._train_line(axes, metric, points, colour)
            elif metric != main and metric.startswith("full_valid") and any(m.startswith("valid_") for m in sparse):
                self._validation_line(axes, metric, points, CHECKPOINT_VALUE_COLOUR, marker="D")
            else:
                colour = VALIDATION_COLOUR if metric == main and not validation_done else next(others, "#7f7f7f")
                validation_done = validation_done or metric == main
                self._validation_line(axes, metric, points, colour)
        self._kept_lines(job)
        self._best_star(job)
        self._best_validation_ring(job)
        self._spikes(job)
        self._plateau(job)

    def _spikes(self, job: JobCurve) -> None:
        """Small open triangles just above the spikes of each drawn metric."""
        from matplotlib.transforms import ScaledTranslation

        drawn = self._drawn(job)
        entered = False
        for report in job.spikes:
            if report.metric not in drawn or not report.spikes:
                continue
            axes = self.axes_for(report.metric)
            above = axes.transData + ScaledTranslation(0, 7 / 72, self.figure.dpi_scale_trans)
            (marks,) = axes.plot(
                [spike.step for spike in report.spikes],
                [spike.value for spike in report.spikes],
                linestyle="none",
                marker="v",
                markersize=6,
                markerfacecolor="none",
                markeredgecolor=SPIKE_COLOUR,
                markeredgewidth=1.2,
                transform=above,
                zorder=5,
            )
            if not entered:
                self._entry(marks, f"spikes ({sum(r.count for r in job.spikes)})")
                entered = True

    def _plateau(self, job: JobCurve) -> None:
        """A faint band from where the curve stopped improving to the last step."""
        plateau = job.plateau
        if plateau is None or not plateau.detected:
            return
        band = self.left.axvspan(
            plateau.start_step, plateau.last_step, color=PLATEAU_COLOUR, alpha=PLATEAU_ALPHA, linewidth=0, zorder=0
        )
        self._entry(band, f"plateau: {plateau.metric} from step {plateau.start_step}")

    def _train_line(self, axes: Axes, metric: str, points: list[tuple[int, float]], colour: str) -> None:
        steps = [s for s, _ in points]
        values = [v for _, v in points]
        every = typical_interval(steps)
        how = "every step" if every in (None, 1) else f"every {every} steps"
        if len(values) < SMOOTH_FROM:
            (line,) = axes.plot(steps, values, color=colour, linewidth=2.0, zorder=3)
            self._entry(line, f"{metric}, {how}")
            return
        (raw,) = axes.plot(steps, values, color=colour, alpha=0.28, linewidth=0.9, zorder=2)
        (line,) = axes.plot(
            steps, smoothed(values, smoothing_window(len(values))), color=colour, linewidth=2.2, zorder=3
        )
        self._entry(raw, f"{metric}, {how}")
        self._entry(line, f"{metric}, smoothed")

    def _validation_line(
        self, axes: Axes, metric: str, points: list[tuple[int, float]], colour: str, marker: str = "o"
    ) -> None:
        steps = [s for s, _ in points]
        (line,) = axes.plot(
            steps,
            [v for _, v in points],
            color=colour,
            linewidth=1.3,
            marker=marker,
            markersize=(4 if len(points) > 40 else 5) if marker == "o" else 7,
            markeredgecolor="white" if marker == "D" else colour,
            zorder=4 if marker == "o" else 6,
        )
        every = typical_interval(steps)
        self._entry(line, f"{metric}, every {every} steps" if every and every > 1 else metric)

    def _checkpoint_values(self, axes: Axes, metric: str, points: list[tuple[int, float]]) -> None:
        (marks,) = axes.plot(
            [s for s, _ in points],
            [v for _, v in points],
            linestyle="none",
            marker="D",
            markersize=7,
            markerfacecolor=CHECKPOINT_VALUE_COLOUR,
            markeredgecolor="white",
            zorder=6,
        )
        self._entry(marks, f"{metric}, kept checkpoints")

    def _kept_lines(self, job: JobCurve) -> None:
        """A vertical line per kept checkpoint, labelled with its step along the top (staggered when crowded)."""
        from matplotlib.transforms import blended_transform_factory

        steps = sorted(set(job.retained_steps))
        if not steps:
            return
        best = job.best_checkpoint.step if job.best_checkpoint else None
        top = blended_transform_factory(self.left.transData, self.left.transAxes)
        texts = [f"best: step {s}" if s == best else f"step {s}" for s in steps]
        lo, hi = self._step_range(job)
        scale = 0.86 * self.spec.width / max(hi - lo, 1)
        positions = [(s - lo) * scale for s in steps]
        rows = label_rows(positions, [7.0 * len(t) + 8 for t in texts])
        width = (hi - lo) * scale
        entered = False
        for step, text, row, x in zip(steps, texts, rows, positions, strict=True):
            is_best = step == best
            align = "right" if x > 0.94 * width else "left" if x < 0.06 * width else "center"
            line = self.left.axvline(
                step,
                color=BEST_COLOUR if is_best else KEPT_COLOUR,
                linestyle="-" if is_best else "--",
                linewidth=1.8 if is_best else 1.0,
                alpha=0.9 if is_best else 0.65,
                zorder=1,
            )
            self.left.text(
                step,
                0.985 - 0.06 * row,
                self._text(text),
                transform=top,
                ha=align,
                va="top",
                fontsize=9,
                color=BEST_COLOUR if is_best else "#333333",
                fontweight="bold" if is_best else "normal",
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
                zorder=7,
            )
            if not is_best and not entered:
                self._entry(line, "kept checkpoint")
                entered = True

    def _step_range(self, job: JobCurve) -> tuple[int, int]:
        steps = list(job.table.steps) + list(job.retained_steps)
        hi = max(steps) if steps else 1
        if self.spec.last_step is not None:
            hi = max(hi, self.spec.last_step)
        return (min(steps) if steps else 0), hi

    def _best_star(self, job: JobCurve) -> None:
        best = job.best_checkpoint
        at = self._marks_at(job)
        if best is None or at is None or best.step not in at[1]:
            return
        metric, values = at
        (star,) = self.axes_for(metric).plot(
            [best.step],
            [values[best.step]],
            marker="*",
            markersize=18,
            markerfacecolor=BEST_COLOUR,
            markeredgecolor="white",
            markeredgewidth=0.8,
            linestyle="none",
            zorder=8,
        )
        ranked = f", {best.metric} {short(best.value)}" if best.metric and best.value is not None else ""
        self._entry(star, f"best checkpoint: step {best.step}{ranked}")

    def _best_validation_ring(self, job: JobCurve, colour: str = BEST_VALIDATION_COLOUR) -> None:
        found = job.best_validation
        if found is None or found.retained or found.metric not in self._drawn(job):
            return
        (ring,) = self.axes_for(found.metric).plot(
            [found.step],
            [found.value],
            marker="o",
            markersize=14 if self.single else 11,
            markerfacecolor="none",
            markeredgecolor=colour,
            markeredgewidth=2.0 if self.single else 1.4,
            linestyle="none",
            zorder=9,
        )
        if self.single:
            self._entry(ring, f"best {found.metric}: step {found.step} ({short(found.value)}), not kept")

    # --- several jobs ---------------------------------------------------------------------------------------------

    def _sweep_job(self, job: JobCurve, colour: str) -> None:
        from matplotlib.lines import Line2D

        for metric in self._drawn(job):
            points = job.table.values(metric)
            if not points:
                continue  # checkpoint values only: the squares and the star below carry them
            axes = self.axes_for(metric)
            steps = [s for s, _ in points]
            values = [v for _, v in points]
            if self._dense(job, metric):
                axes.plot(
                    steps,
                    smoothed(values, smoothing_window(len(values))) if len(values) >= SMOOTH_FROM else values,
                    color=colour,
                    linewidth=1.3,
                    linestyle="--",
                    alpha=0.8,
                    zorder=3,
                )
            else:
                axes.plot(steps, values, color=colour, linewidth=1.8, marker="o", markersize=3.5, zorder=4)
        self._sweep_checkpoints(job, colour)
        self._best_validation_ring(job, colour)
        best = job.best_checkpoint
        label = f"{job.label}: best step {best.step}" if best is not None else job.label
        self._entry(Line2D([], [], color=colour, linewidth=2.6), label)

    def _sweep_checkpoints(self, job: JobCurve, colour: str) -> None:
        at = self._marks_at(job)
        if at is None:
            return
        metric, values = at
        axes = self.axes_for(metric)
        best = job.best_checkpoint
        kept = [(s, values[s]) for s in job.retained_steps if s in values and (best is None or s != best.step)]
        if kept:
            axes.plot(
                [s for s, _ in kept],
                [v for _, v in kept],
                linestyle="none",
                marker="s",
                markersize=6.5,
                markerfacecolor="white",
                markeredgecolor=colour,
                markeredgewidth=1.6,
                zorder=7,
            )
        if best is not None and best.step in values:
            axes.plot(
                [best.step],
                [values[best.step]],
                marker="*",
                markersize=16,
                markerfacecolor=colour,
                markeredgecolor="black",
                markeredgewidth=0.7,
                linestyle="none",
                zorder=8,
            )

    def _sweep_styles(self) -> list[tuple[dict[str, Any], str]]:
        """What the marks and line styles mean, in a figure of several jobs."""
        jobs = self.spec.jobs
        validation = list(
            dict.fromkeys(m for j in jobs for m in self._drawn(j) if j.table.values(m) and not self._dense(j, m))
        )
        train = list(dict.fromkeys(m for j in jobs for m in self._drawn(j) if j.table.values(m) and self._dense(j, m)))
        ranked = list(
            dict.fromkeys(j.best_checkpoint.metric for j in jobs if j.best_checkpoint and j.best_checkpoint.metric)
        )
        entries: list[tuple[dict[str, Any], str]] = []
        if validation:
            entries.append(({"linestyle": "-", "marker": "o", "markersize": 4}, ", ".join(validation)))
        if train:
            entries.append(({"linestyle": "--"}, ", ".join(train) + ", smoothed"))
        at = f" ({ranked[0]})" if len(ranked) == 1 else ""
        entries.append(({"linestyle": "none", "marker": "*", "markersize": 12}, f"best checkpoint{at}"))
        if any(len(j.retained_steps) > 1 for j in jobs):
            entries.append(
                (
                    {"linestyle": "none", "marker": "s", "markerfacecolor": "white", "markersize": 6.5},
                    "other kept checkpoints",
                )
            )
        if any(j.best_validation and not j.best_validation.retained for j in jobs):
            entries.append(
                (
                    {"linestyle": "none", "marker": "o", "markerfacecolor": "none", "markersize": 10},
                    "best validation, not kept",
                )
            )
        return entries

    # --- axes, titles, legend -------------------------------------------------------------------------------------

    def _entry(self, handle: Any, label: str) -> None:
        self.handles.append(handle)
        self.labels.append(self._text(label))

    @staticmethod
    def _log_axis(axes: Axes) -> None:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        axes.set_yscale("log")
        axes.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes.yaxis.set_minor_formatter(NullFormatter())

    @staticmethod
    def _headroom(axes: Axes, fraction: float) -> None:
        """Room above the data for the checkpoint labels."""
        low, high = axes.get_ylim()
        if axes.get_yscale() == "log":
            span = math.log10(high) - math.log10(low)
            axes.set_ylim(low, 10 ** (math.log10(high) + fraction * span))
        else:
            axes.set_ylim(low, high + fraction * (high - low))

    def _frame(self, left_metrics: Sequence[str], right_metrics: Sequence[str]) -> None:
        from matplotlib.lines import Line2D

        spec, left = self.spec, self.left
        left.set_xlabel(self._text("step"), fontsize=11)
        left.set_ylabel(self._text(axis_label(left_metrics) + (" (log scale)" if self.log_scale else "")), fontsize=11)
        left.tick_params(labelsize=10)
        if self.right is not None:
            self.right.set_ylabel(self._text(axis_label(right_metrics)), fontsize=11)
            self.right.tick_params(labelsize=10)
        left.grid(True, which="major", color="#e0e0e0", linewidth=0.7)
        left.set_axisbelow(True)
        lo = min(min(j.table.steps, default=0) for j in spec.jobs)
        hi = max(self._step_range(j)[1] for j in spec.jobs)
        pad = max(1.0, 0.015 * (hi - lo))
        left.set_xlim(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
        headroom = 0.16 if self.single and any(j.retained_steps for j in spec.jobs) else 0.06
        for axes in (left, self.right):
            if axes is not None:
                self._headroom(axes, headroom)
        self.figure.suptitle(self._text(spec.title), fontsize=13, fontweight="bold")
        if spec.subtitle:
            left.set_title(self._text(spec.subtitle), fontsize=10, color="#444444")
        handles, labels = list(self.handles), list(self.labels)
        if not self.single:
            for style, label in self._sweep_styles():
                handles.append(Line2D([], [], color="#555555", **style))
                labels.append(self._text(label))
        if handles:
            columns = legend_columns([len(label) for label in labels], 0.97 * spec.width)
            self.figure.legend(handles, labels, loc="outside lower center", ncols=columns, fontsize=9, frameon=False)
