"""The bundled demo dataset: eleven fine-tuning jobs that show what the server can tell you.

It holds an overfitting supervised run whose best checkpoint is not the final model, a run
without a validation file, DPO and reinforcement (RFT) runs, a failed, a running, a paused
and a cancelled job, and a three-run learning-rate sweep. Every number comes from fixed
curves plus seeded noise, so the data is identical on every call; `now` only shifts the
timestamps. Result-file CSVs, checkpoint metrics and metrics events are cut from the same
per-step rows, so they agree with each other.
"""

from __future__ import annotations

import csv
import io
import math
import random
import string
from dataclasses import dataclass
from typing import Any

from .app import FakeData, FakeFile

DEMO_NOW = 1_795_176_000  # 2026-11-20T12:00:00Z
ORG_ID = "org-Owjssptn7LWpQ8iDtcTqK9qT"
ORG_SLUG = "lumen-labs"

DEMO_JOB_IDS: dict[str, str] = {
    "support_bot": "ftjob-gwWyK948n1pM2hPOLsgL0KTm",
    "no_validation": "ftjob-QUBROv8P4wvqUW8yLg4oTcYK",
    "dpo": "ftjob-kmmdCarNkKMkexxpt7xgvUPe",
    "reinforcement": "ftjob-IkQc9kLYXhSiwCOtxw6T4YCM",
    "failed": "ftjob-jloH3BR66q3XNnmWUDcQg6yW",
    "running": "ftjob-WHnLQrH9e0PC3S65SygDUENH",
    "paused": "ftjob-fUVRnKWlZfePSK5PijjlBO5R",
    "cancelled": "ftjob-s5WubIkfTDx7c6bw7kfeuR4Y",
    "sweep_lr_0_5": "ftjob-nuWVkd2NfkNcVavIxuWWxafv",
    "sweep_lr_1_0": "ftjob-ccS2b15AflCI766w4438Qzg6",
    "sweep_lr_2_0": "ftjob-aaAYkq5l0aieLeAfCKEk4WQD",
}

GPT_4O_MINI = "gpt-4o-mini-2024-07-18"
GPT_41_MINI = "gpt-4.1-mini-2025-04-14"
GPT_4O = "gpt-4o-2024-08-06"
O4_MINI = "o4-mini-2025-04-16"

SWEEP = "lr-2026-11"
DAY = 86_400

Row = dict[str, Any]  # one training step: "step" plus API metric names

# Result-file columns: (CSV header, row key). OpenAI's SFT file says `train_accuracy`.
SFT_COLUMNS = [
    ("step", "step"),
    ("train_loss", "train_loss"),
    ("train_accuracy", "train_mean_token_accuracy"),
    ("valid_loss", "valid_loss"),
    ("valid_mean_token_accuracy", "valid_mean_token_accuracy"),
]
RFT_COLUMNS = [
    ("step", "step"),
    ("train_mean_reward", "train_mean_reward"),
    ("full_valid_mean_reward", "full_valid_mean_reward"),
]
RFT_GRADER = {
    "type": "string_check",
    "name": "label_match",
    "input": "{{sample.output_text}}",
    "reference": "{{item.label}}",
    "operation": "eq",
}


def _random_id(rng: random.Random, prefix: str, length: int = 24) -> str:
    """`prefix` + `length` random letters and digits, the shape of OpenAI's ids."""
    return prefix + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(length))


def _r5(value: float) -> float:
    return round(value, 5)


def _accuracy(loss: float) -> float:
    """Mean token accuracy that goes with a loss (monotone, so best loss = best accuracy)."""
    return min(0.999, math.exp(-0.3 * loss))


@dataclass(frozen=True)
class LossCurve:
    """Smooth train and validation loss for a supervised or DPO run.

    Train loss drops exponentially to `train_floor`, then keeps drifting down by
    `train_drift` over the run. Validation loss drops to `valid_floor` and, past
    `overfit_from`, rises by `overfit_rate` per step squared.
    """

    train_start: float
    train_floor: float
    train_tau: float
    train_drift: float
    valid_start: float = 0.0
    valid_floor: float = 0.0
    valid_tau: float = 1.0
    overfit_from: int = 0
    overfit_rate: float = 0.0
    noise: float = 0.05

    def train(self, step: int, total: int) -> float:
        decay = math.exp(-step / self.train_tau)
        return self.train_floor + (self.train_start - self.train_floor) * decay - self.train_drift * step / total

    def valid(self, step: int) -> float:
        decay = math.exp(-step / self.valid_tau)
        rise = self.overfit_rate * max(0, step - self.overfit_from) ** 2
        return self.valid_floor + (self.valid_start - self.valid_floor) * decay + rise


def loss_rows(curve: LossCurve, *, steps_per_epoch: int, n_epochs: int, validation: bool, seed: str) -> list[Row]:
    """Per-step rows: train metrics every step, a validation batch every 10 steps and on
    the last step, full-validation metrics at each epoch end (noise-free)."""
    rng = random.Random(seed)
    total = steps_per_epoch * n_epochs
    rows: list[Row] = []
    for step in range(1, total + 1):
        train = max(0.01, curve.train(step, total) * (1 + curve.noise * rng.gauss(0, 1)))
        row: Row = {"step": step, "train_loss": _r5(train), "train_mean_token_accuracy": _r5(_accuracy(train))}
        if validation and (step % 10 == 0 or step == total):
            valid = max(0.01, curve.valid(step) * (1 + curve.noise * rng.gauss(0, 1)))
            row |= {"valid_loss": _r5(valid), "valid_mean_token_accuracy": _r5(_accuracy(valid))}
        if validation and step % steps_per_epoch == 0:
            full = curve.valid(step)
            row |= {"full_valid_loss": _r5(full), "full_valid_mean_token_accuracy": _r5(_accuracy(full))}
        rows.append(row)
    return rows


@dataclass(frozen=True)
class RewardCurve:
    """Mean reward of an RFT run: rises towards `plateau`, declines after `decline_from`."""

    start: float
    plateau: float
    tau: float
    decline_from: int
    decline_rate: float

    def value(self, step: int) -> float:
        rise = (self.plateau - self.start) * (1 - math.exp(-step / self.tau))
        return self.start + rise - self.decline_rate * max(0, step - self.decline_from) ** 2


def reward_rows(curve: RewardCurve, *, total_steps: int, eval_interval: int, seed: str) -> list[Row]:
    """Per-step RFT rows; full-validation reward only on evaluation steps."""
    rng = random.Random(seed)
    rows: list[Row] = []
    for step in range(1, total_steps + 1):
        reasoning = 610 - 230 * (1 - math.exp(-step / 25)) + 12 * rng.gauss(0, 1)
        train = min(1.0, max(0.0, curve.value(step) + 0.03 + 0.04 * rng.gauss(0, 1)))
        row: Row = {
            "step": step,
            "train_mean_reward": _r5(train),
            "reasoning_tokens_mean": round(reasoning, 1),
            "completion_tokens_mean": round(reasoning + 140 + 6 * rng.gauss(0, 1), 1),
        }
        if step % eval_interval == 0:
            valid = min(1.0, max(0.0, curve.value(step) + 0.008 * rng.gauss(0, 1)))
            row |= {"full_valid_mean_reward": _r5(valid), "full_valid_mean_parse_error": 0.0 if step > 10 else 0.02}
        rows.append(row)
    return rows


def _cell(value: float | int | None) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.5f}"


def result_csv(rows: list[Row], columns: list[tuple[str, str]]) -> bytes:
    """The result file: one line per step, 5 decimals, empty cells where a value is absent."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([header for header, _ in columns])
    for row in rows:
        writer.writerow([_cell(row.get(key)) for _, key in columns])
    return buffer.getvalue().encode()


class JobBuilder:
    """Collects one demo job's events, checkpoints and result file.

    Ids are drawn from an RNG seeded with the job's name, so they never change.
    """

    def __init__(self, name: str, created_at: int, *, model: str, suffix: str | None) -> None:
        self.id = DEMO_JOB_IDS[name]
        self.created_at = created_at
        self.model = model
        self.suffix = suffix
        self.events: list[dict[str, Any]] = []
        self.checkpoints: list[dict[str, Any]] = []
        self.files: dict[str, FakeFile] = {}
        self._rng = random.Random(f"demo ids {name}")

    def new_id(self, prefix: str, length: int = 24) -> str:
        return _random_id(self._rng, prefix, length)

    def model_name(self) -> str:
        """`ft:<base>:<org>:<suffix>:<8 chars>`, with a fresh 8-char id each call."""
        return f"ft:{self.model}:{ORG_SLUG}:{self.suffix or ''}:{self.new_id('', 8)}"

    def event(self, at: int, message: str, *, level: str = "info", data: Any = None, kind: str = "message") -> None:
        self.events.append({
            "object": "fine_tuning.job.event",
            "id": self.new_id("ftevent-"),
            "created_at": at,
            "level": level,
            "message": message,
            "data": {} if data is None else data,
            "type": kind,
        })

    def prepare(self, training_file: str, validation_file: str | None) -> int:
        """Creation and file validation events; returns when training started."""
        self.event(self.created_at, f"Created fine-tuning job: {self.id}")
        checked = f"Validating training file: {training_file}"
        if validation_file:
            checked += f" and validation file: {validation_file}"
        self.event(self.created_at + 3, checked)
        self.event(self.created_at + 94, "Files validated, moving job to queued state")
        started = self.created_at + 380 + self._rng.randrange(60)
        self.event(started, "Fine-tuning job started")
        return started

    def train(
        self, rows: list[Row], *, total_steps: int, started: int, seconds_per_step: int,
        keep: set[int], metrics_every: int = 10,
    ) -> int:
        """Metrics events and retained checkpoints for `rows`; returns the time of the last step."""
        at = started
        for row in rows:
            step = row["step"]
            at = started + step * seconds_per_step
            if step % metrics_every == 0 or step == total_steps:
                data = {**_event_data(row), "total_steps": total_steps}
                self.event(at, _step_message(row, total_steps), data=data, kind="metrics")
            if step in keep:
                self.checkpoint(row, at + 9)
        return at

    def checkpoint(self, row: Row, at: int) -> None:
        """A retained checkpoint for `row`'s step, with its own model name, and its event."""
        step = row["step"]
        self.checkpoints.append({
            "object": "fine_tuning.job.checkpoint",
            "id": self.new_id("ftckpt_"),
            "created_at": at,
            "fine_tuned_model_checkpoint": f"{self.model_name()}:ckpt-step-{step}",
            "fine_tuning_job_id": self.id,
            "step_number": step,
            "metrics": _checkpoint_metrics(row),
        })
        self.event(at, f"Checkpoint created at step {step}")

    def finish(self, last_step_at: int, csv_bytes: bytes) -> tuple[str, str, int]:
        """Model, result file and completion events; returns (model, file id, finished_at)."""
        model = self.model_name()
        file_id = self.new_id("file-", 22)
        self.files[file_id] = FakeFile(
            meta={
                "object": "file", "id": file_id, "purpose": "fine-tune-results", "filename": "step_metrics.csv",
                "bytes": len(csv_bytes), "created_at": last_step_at + 41, "expires_at": None,
                "status": "processed", "status_details": None,
            },
            content=csv_bytes,
        )
        self.event(last_step_at + 47, "New fine-tuned model created")
        self.event(last_step_at + 52, "Evaluating model against our usage policies")
        self.event(last_step_at + 113, "Usage policy evaluations completed, model is now enabled for sampling")
        finished = last_step_at + 124
        self.event(finished, "The job has successfully completed")
        return model, file_id, finished

    def job(self, **fields: Any) -> dict[str, Any]:
        """The FineTuningJob object, keys in the order the API sends them."""
        job: dict[str, Any] = {
            "object": "fine_tuning.job", "id": self.id, "model": self.model, "created_at": self.created_at,
            "finished_at": None, "fine_tuned_model": None, "organization_id": ORG_ID, "result_files": [],
            "status": "succeeded", "validation_file": None, "training_file": None, "hyperparameters": None,
            "trained_tokens": None, "integrations": [], "seed": self._rng.randrange(10**8, 2**31),
            "estimated_finish": None, "method": None, "metadata": None, "error": None,
            "user_provided_suffix": self.suffix, "usage_metrics": None, "shared_with_openai": False,
        }
        job.update(fields)
        return job

    def add_to(self, data: FakeData, job: dict[str, Any]) -> None:
        """Store the job and everything collected for it in `data` (events newest first)."""
        data.jobs.append(job)
        data.checkpoints[self.id] = self.checkpoints
        data.events[self.id] = sorted(self.events, key=lambda e: e["created_at"], reverse=True)
        data.files.update(self.files)


def _step_message(row: Row, total: int) -> str:
    step = row["step"]
    if "train_mean_reward" in row:
        text = f"Step {step}/{total} , train mean reward={row['train_mean_reward']:.2f}"
        if "full_valid_mean_reward" in row:
            text += (f", full validation mean reward={row['full_valid_mean_reward']:.2f}"
                     f", full validation mean parse error={row['full_valid_mean_parse_error']:.2f}")
        return text
    parts = [f"training loss={row['train_loss']:.2f}"]
    if "valid_loss" in row:
        parts.append(f"validation loss={row['valid_loss']:.2f}")
    if "full_valid_loss" in row:
        parts.append(f"full validation loss={row['full_valid_loss']:.2f}")
    return f"Step {step}/{total}: " + ", ".join(parts)


def _scores(row: Row) -> dict[str, Any]:
    """The nested `scores` block of RFT metrics (per grader)."""
    grader: dict[str, Any] = {
        "name": RFT_GRADER["name"], "type": RFT_GRADER["type"], "train_reward_mean": row["train_mean_reward"]
    }
    scores: dict[str, Any] = {"train_reward_mean": row["train_mean_reward"], "graders": [grader]}
    if "full_valid_mean_reward" in row:
        grader["valid_reward_mean"] = scores["valid_reward_mean"] = row["full_valid_mean_reward"]
    return scores


def _event_data(row: Row) -> dict[str, Any]:
    if "train_mean_reward" not in row:
        return dict(row)
    return {**row, "mean_unresponsive_rewards": 0.0, "scores": _scores(row),
            "usage": {"samples": {"train_reasoning_tokens_mean": row["reasoning_tokens_mean"]}}}


def _checkpoint_metrics(row: Row) -> dict[str, Any]:
    metrics: dict[str, Any] = {**row, "step": float(row["step"])}
    if "train_mean_reward" in row:
        metrics["scores"] = _scores(row)
    return metrics


def _supervised(hyper: dict[str, Any]) -> dict[str, Any]:
    return {"type": "supervised", "supervised": {"hyperparameters": dict(hyper)}}


def _last_epochs(steps_per_epoch: int, n_epochs: int) -> set[int]:
    """SFT keeps the checkpoints of the last 3 epochs."""
    return {steps_per_epoch * epoch for epoch in range(max(1, n_epochs - 2), n_epochs + 1)}


def _succeeded_sft(
    data: FakeData, name: str, created_at: int, *, model: str, suffix: str | None, curve: LossCurve,
    steps_per_epoch: int, n_epochs: int, batch_size: int, lr: float, seconds_per_step: int,
    training_file: str, validation_file: str | None, metadata: dict[str, str] | None,
    tokens_per_example: int = 446, dpo_beta: float | None = None, **extra: Any,
) -> None:
    """A finished supervised (or, with `dpo_beta`, DPO) job with its checkpoints and CSV."""
    b = JobBuilder(name, created_at, model=model, suffix=suffix)
    rows = loss_rows(curve, steps_per_epoch=steps_per_epoch, n_epochs=n_epochs,
                     validation=validation_file is not None, seed=f"demo rows {name}")
    total = steps_per_epoch * n_epochs
    started = b.prepare(training_file, validation_file)
    last = b.train(rows, total_steps=total, started=started, seconds_per_step=seconds_per_step,
                   keep=_last_epochs(steps_per_epoch, n_epochs))
    model_name, file_id, finished = b.finish(last, result_csv(rows, SFT_COLUMNS))
    hyper: dict[str, Any] = {"n_epochs": n_epochs, "batch_size": batch_size, "learning_rate_multiplier": lr}
    if dpo_beta is None:
        method, top_level = _supervised(hyper), hyper
    else:
        method, top_level = {"type": "dpo", "dpo": {"hyperparameters": {"beta": dpo_beta, **hyper}}}, None
    job = b.job(
        finished_at=finished, fine_tuned_model=model_name, result_files=[file_id],
        validation_file=validation_file, training_file=training_file, hyperparameters=top_level,
        trained_tokens=total * batch_size * tokens_per_example, method=method, metadata=metadata,
    )
    job.update(extra)
    b.add_to(data, job)


def _reinforcement(data: FakeData, created_at: int) -> None:
    """An RFT job: eval every 5 steps, keeps the 3 checkpoints with the best validation reward."""
    b = JobBuilder("reinforcement", created_at, model=O4_MINI, suffix="ticket-triage")
    total, interval = 60, 5
    rows = reward_rows(RewardCurve(start=0.42, plateau=0.86, tau=16, decline_from=38, decline_rate=0.0003),
                       total_steps=total, eval_interval=interval, seed="demo rows reinforcement")
    evaluated = [row for row in rows if "full_valid_mean_reward" in row]
    keep = {row["step"] for row in sorted(evaluated, key=lambda r: r["full_valid_mean_reward"], reverse=True)[:3]}
    training_file, validation_file = b.new_id("file-", 22), b.new_id("file-", 22)
    started = b.prepare(training_file, validation_file)
    last = b.train(rows, total_steps=total, started=started, seconds_per_step=95, keep=keep, metrics_every=1)
    model_name, file_id, finished = b.finish(last, result_csv(rows, RFT_COLUMNS))
    hyper = {"n_epochs": 2, "batch_size": 16, "learning_rate_multiplier": 1.0, "reasoning_effort": "medium",
             "compute_multiplier": 1.0, "eval_interval": interval, "eval_samples": 2}
    method = {"type": "reinforcement",
              "reinforcement": {"grader": RFT_GRADER, "hyperparameters": hyper, "response_format": None}}
    b.add_to(data, b.job(
        finished_at=finished, fine_tuned_model=model_name, result_files=[file_id], validation_file=validation_file,
        training_file=training_file, trained_tokens=2_417_380, method=method,
        metadata={"team": "support-ops"}, eval_id=f"eval_{b._rng.getrandbits(128):032x}",
    ))


def _failed(data: FakeData, created_at: int) -> None:
    b = JobBuilder("failed", created_at, model=GPT_4O_MINI, suffix=None)
    training_file = b.new_id("file-", 22)
    b.event(created_at, f"Created fine-tuning job: {b.id}")
    b.event(created_at + 3, f"Validating training file: {training_file}")
    error = {"code": "invalid_n_examples",
             "message": "Training file has 7 example(s), but must have at least 10 examples",
             "param": "training_file"}
    b.event(created_at + 61, error["message"], level="error",
            data={"error_code": error["code"], "error_param": error["param"]})
    auto = {"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"}
    job = b.job(status="failed", finished_at=created_at + 61, training_file=training_file,
                hyperparameters=auto, method=_supervised(auto), error=error)
    del job["usage_metrics"], job["shared_with_openai"]
    b.add_to(data, job)


def _interrupted(
    data: FakeData, name: str, created_at: int, *, status: str, model: str, suffix: str, stop_at: int,
    steps_per_epoch: int, n_epochs: int, batch_size: int, lr: float, seconds_per_step: int,
    metadata: dict[str, str] | None, curve: LossCurve, now: int,
) -> None:
    """A supervised job stopped at `stop_at`: still running, paused or cancelled."""
    b = JobBuilder(name, created_at, model=model, suffix=suffix)
    training_file, validation_file = b.new_id("file-", 22), b.new_id("file-", 22)
    total = steps_per_epoch * n_epochs
    rows = loss_rows(curve, steps_per_epoch=steps_per_epoch, n_epochs=n_epochs, validation=True,
                     seed=f"demo rows {name}")[:stop_at]
    started = b.prepare(training_file, validation_file)
    last = b.train(rows, total_steps=total, started=started, seconds_per_step=seconds_per_step,
                   keep={steps_per_epoch * k for k in range(1, n_epochs + 1) if steps_per_epoch * k <= stop_at})
    hyper = {"n_epochs": n_epochs, "batch_size": batch_size, "learning_rate_multiplier": lr}
    fields: dict[str, Any] = {"status": status, "training_file": training_file, "validation_file": validation_file,
                              "hyperparameters": hyper, "method": _supervised(hyper), "metadata": metadata}
    if status == "running":
        fields |= {"estimated_finish": now + (total - stop_at) * seconds_per_step + 600,
                   "error": {"code": None, "message": None, "param": None}}
    elif status == "paused":
        b.event(last + 15, "Fine-tuning job paused")
    else:
        b.event(last + 15, "Fine-tuning job cancelled")
        fields["finished_at"] = last + 15
    b.add_to(data, b.job(**fields))


def _sweep(data: FakeData, created_at: int) -> None:
    """Three runs that differ only in learning-rate multiplier; 1.0 wins, 2.0 overfits."""
    files = random.Random("demo sweep files")
    training_file, validation_file = _random_id(files, "file-", 22), _random_id(files, "file-", 22)
    curves = {
        0.5: LossCurve(2.4, 0.55, 70, 0.12, valid_start=2.3, valid_floor=0.40, valid_tau=60),
        1.0: LossCurve(2.4, 0.38, 35, 0.15, valid_start=2.3, valid_floor=0.31, valid_tau=38),
        2.0: LossCurve(2.4, 0.30, 18, 0.25, valid_start=2.3, valid_floor=0.33, valid_tau=20,
                       overfit_from=100, overfit_rate=3e-6),
    }
    for i, (lr, curve) in enumerate(curves.items()):
        name = f"sweep_lr_{str(lr).replace('.', '_')}"
        _succeeded_sft(
            data, name, created_at + 150 * i, model=GPT_4O_MINI, suffix="lr-sweep", curve=curve,
            steps_per_epoch=120, n_epochs=3, batch_size=8, lr=lr, seconds_per_step=9,
            training_file=training_file, validation_file=validation_file,
            metadata={"sweep": SWEEP, "lr": str(lr)},
            integrations=[{"type": "wandb", "wandb": {"project": "lr-sweep", "entity": ORG_SLUG, "name": None,
                                                      "tags": [SWEEP], "run_id": DEMO_JOB_IDS[name]}}],
        )


def demo_data(now: int | None = None) -> FakeData:
    """The demo dataset; `now` (unix seconds) shifts every timestamp, nothing else."""
    now = DEMO_NOW if now is None else now
    data = FakeData()
    files = random.Random("demo files")

    def file_id() -> str:
        return _random_id(files, "file-", 22)

    _succeeded_sft(
        data, "support_bot", now - 21 * DAY - 3 * 3600, model=GPT_4O_MINI, suffix="support-bot",
        curve=LossCurve(2.4, 0.42, 35, 0.25, valid_start=2.2, valid_floor=0.33, valid_tau=40,
                        overfit_from=200, overfit_rate=2.7e-6),
        steps_per_epoch=120, n_epochs=3, batch_size=8, lr=1.8, seconds_per_step=10,
        training_file=file_id(), validation_file=file_id(), metadata={"team": "support", "experiment": "v7"},
    )
    _succeeded_sft(
        data, "no_validation", now - 18 * DAY, model=GPT_41_MINI, suffix=None,
        curve=LossCurve(2.1, 0.55, 40, 0.3), steps_per_epoch=76, n_epochs=4, batch_size=4, lr=2.0,
        seconds_per_step=7, training_file=file_id(), validation_file=None,
        metadata={"team": "docs", "experiment": ""},
    )
    _failed(data, now - 15 * DAY)
    _succeeded_sft(
        data, "dpo", now - 12 * DAY, model=GPT_41_MINI, suffix="tone-dpo",
        curve=LossCurve(0.6931, 0.18, 60, 0.05, valid_start=0.6931, valid_floor=0.30, valid_tau=70, noise=0.04),
        steps_per_epoch=90, n_epochs=3, batch_size=4, lr=0.8, seconds_per_step=14, dpo_beta=0.1,
        training_file=file_id(), validation_file=file_id(), metadata={"team": "support", "experiment": "v7-dpo"},
        error={},
    )
    _interrupted(
        data, "cancelled", now - 10 * DAY, status="cancelled", model=GPT_4O_MINI, suffix="support-bot",
        stop_at=40, steps_per_epoch=120, n_epochs=3, batch_size=8, lr=1.8, seconds_per_step=10,
        metadata={"team": "support", "experiment": "v7b"},
        curve=LossCurve(2.4, 0.42, 35, 0.25, valid_start=2.2, valid_floor=0.33, valid_tau=40), now=now,
    )
    _reinforcement(data, now - 7 * DAY)
    _sweep(data, now - 4 * DAY)
    _interrupted(
        data, "paused", now - 2 * DAY, status="paused", model=GPT_4O, suffix="contracts-ner", stop_at=163,
        steps_per_epoch=150, n_epochs=4, batch_size=16, lr=1.2, seconds_per_step=12, metadata={"team": "legal"},
        curve=LossCurve(1.9, 0.35, 45, 0.2, valid_start=1.8, valid_floor=0.30, valid_tau=50), now=now,
    )
    _interrupted(
        data, "running", now - 50 * 60, status="running", model=GPT_41_MINI, suffix="support-bot-v8",
        stop_at=140, steps_per_epoch=150, n_epochs=3, batch_size=8, lr=1.0, seconds_per_step=15,
        metadata={"team": "support", "experiment": "v8"},
        curve=LossCurve(2.3, 0.40, 40, 0.2, valid_start=2.2, valid_floor=0.32, valid_tau=45), now=now,
    )
    return data
