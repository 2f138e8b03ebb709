"""Builds one demo job: its events, retained checkpoints, result file and job object.

Ids come from an RNG seeded per job, so they never change between calls.
"""

from __future__ import annotations

import random
import string
from typing import Any

from .app import FakeData, FakeFile
from .curves import Row

ORG_ID = "org-Owjssptn7LWpQ8iDtcTqK9qT"
ORG_SLUG = "lumen-labs"

RFT_GRADER = {
    "type": "string_check",
    "name": "label_match",
    "input": "{{sample.output_text}}",
    "reference": "{{item.label}}",
    "operation": "eq",
}


def random_id(rng: random.Random, prefix: str, length: int = 24) -> str:
    """`prefix` + `length` random letters and digits, the shape of OpenAI's ids."""
    return prefix + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(length))


class JobBuilder:
    """Collects one demo job's events, checkpoints and result file.

    Ids are drawn from `rng`, seeded with `seed`, so they never change.
    """

    def __init__(self, job_id: str, created_at: int, *, model: str, suffix: str | None, seed: str) -> None:
        self.id = job_id
        self.created_at = created_at
        self.model = model
        self.suffix = suffix
        self.events: list[dict[str, Any]] = []
        self.checkpoints: list[dict[str, Any]] = []
        self.files: dict[str, FakeFile] = {}
        self.rng = random.Random(seed)

    def new_id(self, prefix: str, length: int = 24) -> str:
        return random_id(self.rng, prefix, length)

    def model_name(self) -> str:
        """`ft:<base>:<org>:<suffix>:<8 chars>`, with a fresh 8-char id each call."""
        return f"ft:{self.model}:{ORG_SLUG}:{self.suffix or ''}:{self.new_id('', 8)}"

    def event(self, at: int, message: str, *, level: str = "info", data: Any = None, kind: str = "message") -> None:
        self.events.append(
            {
                "object": "fine_tuning.job.event",
                "id": self.new_id("ftevent-"),
                "created_at": at,
                "level": level,
                "message": message,
                "data": {} if data is None else data,
                "type": kind,
            }
        )

    def prepare(self, training_file: str, validation_file: str | None) -> int:
        """Creation and file validation events; returns when training started."""
        self.event(self.created_at, f"Created fine-tuning job: {self.id}")
        checked = f"Validating training file: {training_file}"
        if validation_file:
            checked += f" and validation file: {validation_file}"
        self.event(self.created_at + 3, checked)
        self.event(self.created_at + 94, "Files validated, moving job to queued state")
        started = self.created_at + 380 + self.rng.randrange(60)
        self.event(started, "Fine-tuning job started")
        return started

    def train(
        self,
        rows: list[Row],
        *,
        total_steps: int,
        started: int,
        seconds_per_step: int,
        keep: set[int],
        metrics_every: int = 10,
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
        self.checkpoints.append(
            {
                "object": "fine_tuning.job.checkpoint",
                "id": self.new_id("ftckpt_"),
                "created_at": at,
                "fine_tuned_model_checkpoint": f"{self.model_name()}:ckpt-step-{step}",
                "fine_tuning_job_id": self.id,
                "step_number": step,
                "metrics": _checkpoint_metrics(row),
            }
        )
        self.event(at, f"Checkpoint created at step {step}")

    def finish(self, last_step_at: int, csv_bytes: bytes) -> tuple[str, str, int]:
        """Model, result file and completion events; returns (model, file id, finished_at)."""
        model = self.model_name()
        file_id = self.new_id("file-", 22)
        self.files[file_id] = FakeFile(
            meta={
                "object": "file",
                "id": file_id,
                "purpose": "fine-tune-results",
                "filename": "step_metrics.csv",
                "bytes": len(csv_bytes),
                "created_at": last_step_at + 41,
                "expires_at": None,
                "status": "processed",
                "status_details": None,
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
            "object": "fine_tuning.job",
            "id": self.id,
            "model": self.model,
            "created_at": self.created_at,
            "finished_at": None,
            "fine_tuned_model": None,
            "organization_id": ORG_ID,
            "result_files": [],
            "status": "succeeded",
            "validation_file": None,
            "training_file": None,
            "hyperparameters": None,
            "trained_tokens": None,
            "integrations": [],
            "seed": self.rng.randrange(10**8, 2**31),
            "estimated_finish": None,
            "method": None,
            "metadata": None,
            "error": None,
            "user_provided_suffix": self.suffix,
            "usage_metrics": None,
            "shared_with_openai": False,
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
            text += (
                f", full validation mean reward={row['full_valid_mean_reward']:.2f}"
                f", full validation mean parse error={row['full_valid_mean_parse_error']:.2f}"
            )
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
        "name": RFT_GRADER["name"],
        "type": RFT_GRADER["type"],
        "train_reward_mean": row["train_mean_reward"],
    }
    scores: dict[str, Any] = {"train_reward_mean": row["train_mean_reward"], "graders": [grader]}
    if "full_valid_mean_reward" in row:
        grader["valid_reward_mean"] = scores["valid_reward_mean"] = row["full_valid_mean_reward"]
    return scores


def _event_data(row: Row) -> dict[str, Any]:
    if "train_mean_reward" not in row:
        return dict(row)
    return {
        **row,
        "mean_unresponsive_rewards": 0.0,
        "scores": _scores(row),
        "usage": {"samples": {"train_reasoning_tokens_mean": row["reasoning_tokens_mean"]}},
    }


def _checkpoint_metrics(row: Row) -> dict[str, Any]:
    metrics: dict[str, Any] = {**row, "step": float(row["step"])}
    if "train_mean_reward" in row:
        metrics["scores"] = _scores(row)
    return metrics
