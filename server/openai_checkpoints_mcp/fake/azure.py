"""Azure-looking data for the fake's Azure flavours (`FakeOpenAI(data, flavour="azure")`).

Azure OpenAI names things differently from OpenAI: job ids are ``ftjob-`` + 32 hex digits, checkpoint ids
``ftchkpt-`` + 32 hex, file ids ``file-`` + 32 hex, fine-tuned models ``<base>.ft-<32 hex>`` (no ``ft:``
prefix) and checkpoint models ``<base>.ft-<32 hex>:ckpt-step-<N>``; jobs carry ``suffix`` and a null
``organization_id``, and the results file has 7 columns (`AZURE_RESULT_COLUMNS`). Every id here is derived
from a seed string, so the same seed always gives the same data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from .app import FakeData, FakeFile, azure_error_body
from .curves import result_csv

__all__ = [
    "AZURE_RESULT_COLUMNS",
    "azure_checkpoint",
    "azure_dataset",
    "azure_error_body",
    "azure_event",
    "azure_hex",
    "azure_job",
    "azure_results_csv",
    "azure_results_file",
]

AZURE_BASE_MODEL = "gpt-4o-mini-2024-07-18"
AZURE_RESULT_COLUMNS = (
    "step",
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "validation_mean_token_accuracy",
    "full_valid_loss",
    "full_valid_mean_token_accuracy",
)
"""The columns of Azure's ``results.csv`` (note ``validation_mean_token_accuracy``, not OpenAI's name)."""


def azure_hex(seed: str) -> str:
    """32 lower-case hex digits derived from `seed`, the shape of Azure's ids."""
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def azure_job(
    seed: str,
    *,
    base_model: str = AZURE_BASE_MODEL,
    status: str = "succeeded",
    created_at: int = 1754035200,
    validation: bool = True,
    suffix: str | None = None,
    result_file: str | None = None,
    error: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``fine_tuning.job`` as Azure's legacy API sends it: ``ftjob-<32 hex>``, a ``<base>.ft-<32 hex>`` model
    once succeeded, ``suffix`` (at most 18 characters on Azure), a null ``organization_id``, and ``result_files``
    null until the job has finished. `extra` overrides or adds fields."""
    finished = status in {"succeeded", "failed", "cancelled"}
    hyper = {"n_epochs": 3, "batch_size": 8, "learning_rate_multiplier": 1.0}
    body: dict[str, Any] = {
        "object": "fine_tuning.job",
        "id": f"ftjob-{azure_hex(seed)}",
        "model": base_model,
        "created_at": created_at,
        "finished_at": created_at + 5400 if finished else None,
        "fine_tuned_model": f"{base_model}.ft-{azure_hex(seed + '/model')}" if status == "succeeded" else None,
        "organization_id": None,
        "result_files": [result_file or f"file-{azure_hex(seed + '/results')}"] if status == "succeeded" else None,
        "status": status,
        "training_file": f"file-{azure_hex(seed + '/train')}",
        "validation_file": f"file-{azure_hex(seed + '/valid')}" if validation else None,
        "hyperparameters": hyper,
        "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
        "trained_tokens": 962_040 if status == "succeeded" else None,
        "seed": 105_279_221,
        "suffix": suffix,
        "estimated_finish": None,
        "integrations": None,
        "error": error,
    }
    body.update(extra)
    return body


def azure_checkpoint(job: Mapping[str, Any], step: int, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint of `job` at `step`: ``ftchkpt-<32 hex>``, model ``<base>.ft-<hex>:ckpt-step-<step>``."""
    job_id = str(job["id"])
    model = job.get("fine_tuned_model") or f"{job.get('model')}.ft-{azure_hex(job_id + '/model')}"
    return {
        "object": "fine_tuning.job.checkpoint",
        "id": f"ftchkpt-{azure_hex(f'{job_id}/{step}')}",
        "created_at": int(job.get("created_at") or 0) + 60 * step,
        "fine_tuned_model_checkpoint": f"{model}:ckpt-step-{step}",
        "fine_tuning_job_id": job_id,
        "step_number": step,
        "metrics": {"step": float(step), **metrics},
    }


def azure_event(
    job_id: str,
    n: int,
    message: str,
    *,
    created_at: int,
    level: str = "info",
    kind: str = "message",
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``fine_tuning.job.event`` (``ftevent-<32 hex>``); `kind` is ``message`` or ``metrics``."""
    return {
        "object": "fine_tuning.job.event",
        "id": f"ftevent-{azure_hex(f'{job_id}/event/{n}')}",
        "created_at": created_at,
        "level": level,
        "message": message,
        "type": kind,
        "data": dict(data) if data is not None else None,
    }


def azure_results_csv(rows: Iterable[Mapping[str, float | int | None]]) -> bytes:
    """Azure's 7-column results CSV; a missing or None value is an empty cell, numbers at 5 decimals."""
    return result_csv([dict(row) for row in rows], [(column, column) for column in AZURE_RESULT_COLUMNS])


def azure_results_file(file_id: str, content: bytes, *, created_at: int) -> FakeFile:
    """A ``fine-tune-results`` file as Azure lists it (``results.csv``)."""
    meta = {
        "object": "file",
        "id": file_id,
        "bytes": len(content),
        "created_at": created_at,
        "filename": "results.csv",
        "purpose": "fine-tune-results",
        "status": "processed",
        "status_details": None,
    }
    return FakeFile(meta=meta, content=content)


def azure_dataset(seed: str = "azure-demo") -> FakeData:
    """A small Azure-looking dataset: a succeeded supervised job whose best checkpoint (by ``full_valid_loss``)
    is step 20, not the final step 30, with events (metrics events included) and a 7-column results file; a
    failed job; and a running job. Ids follow from `seed`."""
    done = azure_job(f"{seed}/sft", created_at=1754035200, suffix="contoso-bot")
    curve = {
        10: (0.61, 0.83, 0.64, 0.82, 0.6512, 0.8187),
        20: (0.38, 0.89, 0.45, 0.87, 0.4433, 0.8702),
        30: (0.22, 0.94, 0.52, 0.86, 0.5077, 0.8615),
    }
    rows: list[dict[str, float | int | None]] = []
    for step in range(1, 31):
        train = 1.2 - 0.033 * step
        rows.append({"step": step, "train_loss": train, "train_mean_token_accuracy": 0.6 + 0.011 * step})
    for step, (tl, ta, vl, va, fl, fa) in curve.items():
        rows[step - 1] |= {
            "train_loss": tl,
            "train_mean_token_accuracy": ta,
            "valid_loss": vl,
            "validation_mean_token_accuracy": va,
            "full_valid_loss": fl,
            "full_valid_mean_token_accuracy": fa,
        }
    checkpoints = [
        azure_checkpoint(
            done,
            step,
            {
                "train_loss": tl,
                "train_mean_token_accuracy": ta,
                "valid_loss": vl,
                "valid_mean_token_accuracy": va,
                "full_valid_loss": fl,
                "full_valid_mean_token_accuracy": fa,
            },
        )
        for step, (tl, ta, vl, va, fl, fa) in curve.items()
    ]
    start = int(done["created_at"])
    events = [azure_event(done["id"], 0, "Job enqueued. Waiting for jobs ahead to complete.", created_at=start)]
    events += [
        azure_event(
            done["id"],
            step,
            f"Step {step}/30: training loss={tl:.2f}",
            created_at=start + 60 * step,
            kind="metrics",
            data={"step": step, "train_loss": tl, "train_mean_token_accuracy": ta},
        )
        for step, (tl, ta, *_) in curve.items()
    ]
    events.append(azure_event(done["id"], 99, "Job succeeded.", created_at=int(done["finished_at"])))
    result_id = done["result_files"][0]
    failed = azure_job(
        f"{seed}/failed",
        status="failed",
        created_at=1754121600,
        error={
            "code": "invalid_training_file",
            "message": "The training file has too few examples.",
            "param": "training_file",
        },
    )
    running = azure_job(f"{seed}/running", status="running", created_at=1754208000, suffix="contoso-v2")
    return FakeData(
        jobs=[done, failed, running],
        checkpoints={done["id"]: checkpoints},
        events={done["id"]: events},
        files={result_id: azure_results_file(result_id, azure_results_csv(rows), created_at=int(done["finished_at"]))},
    )
