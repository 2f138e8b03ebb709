"""Builders of raw API objects (as the API sends them) for the end-to-end tests."""

from __future__ import annotations

import string
from typing import Any

ORG = "org-4fT9sLq2Vw8XyZ1aBcDeFgHi"
BASE = "gpt-4o-mini-2024-07-18"
_ALPHABET = string.ascii_letters + string.digits


def fake_id(prefix: str, n: int, width: int = 24) -> str:
    """A deterministic id such as ftckpt_ + 24 alphanumerics, distinct for each n."""
    chars = []
    value = n * 7919 + 12345
    for _ in range(width):
        value, rest = divmod(value * 31 + 17, len(_ALPHABET))
        chars.append(_ALPHABET[rest])
    return prefix + "".join(chars)


def job(
    job_id: str,
    *,
    status: str = "succeeded",
    created_at: int = 1754035200,
    validation: bool = True,
    method: str = "supervised",
    suffix: str | None = "support-bot",
    error: Any = None,
    metadata: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    succeeded = status == "succeeded"
    hyper = {"n_epochs": 3, "batch_size": 8, "learning_rate_multiplier": 1.8}
    body: dict[str, Any] = {
        "object": "fine_tuning.job",
        "id": job_id,
        "model": BASE,
        "created_at": created_at,
        "finished_at": created_at + 3800 if status in {"succeeded", "failed", "cancelled"} else None,
        "fine_tuned_model": f"ft:{BASE}:acme-labs:{suffix or ''}:Bx72KpQd" if succeeded else None,
        "organization_id": ORG,
        "result_files": ["file-7HnR3vTq9WxY2zLk5MpJcA"] if succeeded else [],
        "status": status,
        "validation_file": "file-Vd92LmQx7RtY3pKs8NwZaE" if validation else None,
        "training_file": "file-Tr41JkHs6GfD2qWe9XcVbN",
        "hyperparameters": hyper if method == "supervised" else None,
        "trained_tokens": 1284530 if succeeded else None,
        "integrations": [],
        "seed": 1928374650,
        "estimated_finish": None,
        "method": {"type": method, method: {"hyperparameters": hyper}},
        "metadata": metadata,
        "error": error,
        "user_provided_suffix": suffix,
    }
    body.update(extra)
    return body


def checkpoint(job_id: str, step: int, metrics: dict[str, Any], *, n: int | None = None) -> dict[str, Any]:
    short = fake_id("", step if n is None else n, 8)
    return {
        "object": "fine_tuning.job.checkpoint",
        "id": fake_id("ftckpt_", step if n is None else n),
        "created_at": 1754036000 + step,
        "fine_tuned_model_checkpoint": f"ft:{BASE}:acme-labs:support-bot:{short}:ckpt-step-{step}",
        "fine_tuning_job_id": job_id,
        "step_number": step,
        "metrics": {"step": float(step), **metrics},
    }
