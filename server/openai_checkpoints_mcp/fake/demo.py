"""The bundled demo dataset: eleven fine-tuning jobs that show what the server can tell you.

It holds an overfitting supervised run whose best checkpoint is not the final model, a run
without a validation file, DPO and reinforcement (RFT) runs, a failed, a running, a paused
and a cancelled job, and a three-run learning-rate sweep. Every number comes from fixed
curves plus seeded noise, so the data is identical on every call; `now` only shifts the
timestamps. Result-file CSVs, checkpoint metrics and metrics events are cut from the same
per-step rows (`curves`), so they agree with each other; `builder` turns them into API objects.
"""

from __future__ import annotations

import random
from typing import Any

from .app import FakeData
from .builder import ORG_SLUG, RFT_GRADER, JobBuilder, random_id
from .curves import RFT_COLUMNS, SFT_COLUMNS, LossCurve, RewardCurve, loss_rows, result_csv, reward_rows

DEMO_NOW = 1_795_176_000  # 2026-11-20T12:00:00Z

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


def _builder(name: str, created_at: int, *, model: str, suffix: str | None) -> JobBuilder:
    return JobBuilder(DEMO_JOB_IDS[name], created_at, model=model, suffix=suffix, seed=f"demo ids {name}")


def _supervised(hyper: dict[str, Any]) -> dict[str, Any]:
    return {"type": "supervised", "supervised": {"hyperparameters": dict(hyper)}}


def _last_epochs(steps_per_epoch: int, n_epochs: int) -> set[int]:
    """SFT keeps the checkpoints of the last 3 epochs."""
    return {steps_per_epoch * epoch for epoch in range(max(1, n_epochs - 2), n_epochs + 1)}


def _succeeded_sft(
    data: FakeData,
    name: str,
    created_at: int,
    *,
    model: str,
    suffix: str | None,
    curve: LossCurve,
    steps_per_epoch: int,
    n_epochs: int,
    batch_size: int,
    lr: float,
    seconds_per_step: int,
    training_file: str,
    validation_file: str | None,
    metadata: dict[str, str] | None,
    tokens_per_example: int = 446,
    dpo_beta: float | None = None,
    **extra: Any,
) -> None:
    """A finished supervised (or, with `dpo_beta`, DPO) job with its checkpoints and CSV."""
    b = _builder(name, created_at, model=model, suffix=suffix)
    rows = loss_rows(
        curve,
        steps_per_epoch=steps_per_epoch,
        n_epochs=n_epochs,
        validation=validation_file is not None,
        seed=f"demo rows {name}",
    )
    total = steps_per_epoch * n_epochs
    started = b.prepare(training_file, validation_file)
    last = b.train(
        rows,
        total_steps=total,
        started=started,
        seconds_per_step=seconds_per_step,
        keep=_last_epochs(steps_per_epoch, n_epochs),
    )
    model_name, file_id, finished = b.finish(last, result_csv(rows, SFT_COLUMNS))
    hyper: dict[str, Any] = {"n_epochs": n_epochs, "batch_size": batch_size, "learning_rate_multiplier": lr}
    if dpo_beta is None:
        method, top_level = _supervised(hyper), hyper
    else:
        method, top_level = {"type": "dpo", "dpo": {"hyperparameters": {"beta": dpo_beta, **hyper}}}, None
    job = b.job(
        finished_at=finished,
        fine_tuned_model=model_name,
        result_files=[file_id],
        validation_file=validation_file,
        training_file=training_file,
        hyperparameters=top_level,
        trained_tokens=total * batch_size * tokens_per_example,
        method=method,
        metadata=metadata,
    )
    job.update(extra)
    b.add_to(data, job)


def _reinforcement(data: FakeData, created_at: int) -> None:
    """An RFT job: eval every 5 steps, keeps the 3 checkpoints with the best validation reward."""
    b = _builder("reinforcement", created_at, model=O4_MINI, suffix="ticket-triage")
    total, interval = 60, 5
    rows = reward_rows(
        RewardCurve(start=0.42, plateau=0.86, tau=16, decline_from=38, decline_rate=0.0003),
        total_steps=total,
        eval_interval=interval,
        seed="demo rows reinforcement",
    )
    evaluated = [row for row in rows if "full_valid_mean_reward" in row]
    keep = {row["step"] for row in sorted(evaluated, key=lambda r: r["full_valid_mean_reward"], reverse=True)[:3]}
    training_file, validation_file = b.new_id("file-", 22), b.new_id("file-", 22)
    started = b.prepare(training_file, validation_file)
    last = b.train(rows, total_steps=total, started=started, seconds_per_step=95, keep=keep, metrics_every=1)
    model_name, file_id, finished = b.finish(last, result_csv(rows, RFT_COLUMNS))
    hyper = {
        "n_epochs": 2,
        "batch_size": 16,
        "learning_rate_multiplier": 1.0,
        "reasoning_effort": "medium",
        "compute_multiplier": 1.0,
        "eval_interval": interval,
        "eval_samples": 2,
    }
    method = {
        "type": "reinforcement",
        "reinforcement": {"grader": RFT_GRADER, "hyperparameters": hyper, "response_format": None},
    }
    b.add_to(
        data,
        b.job(
            finished_at=finished,
            fine_tuned_model=model_name,
            result_files=[file_id],
            validation_file=validation_file,
            training_file=training_file,
            trained_tokens=2_417_380,
            method=method,
            metadata={"team": "support-ops"},
            eval_id=f"eval_{b.rng.getrandbits(128):032x}",
        ),
    )


def _failed(data: FakeData, created_at: int) -> None:
    b = _builder("failed", created_at, model=GPT_4O_MINI, suffix=None)
    training_file = b.new_id("file-", 22)
    b.event(created_at, f"Created fine-tuning job: {b.id}")
    b.event(created_at + 3, f"Validating training file: {training_file}")
    error = {
        "code": "invalid_n_examples",
        "message": "Training file has 7 example(s), but must have at least 10 examples",
        "param": "training_file",
    }
    b.event(
        created_at + 61,
        error["message"],
        level="error",
        data={"error_code": error["code"], "error_param": error["param"]},
    )
    auto = {"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"}
    job = b.job(
        status="failed",
        finished_at=created_at + 61,
        training_file=training_file,
        hyperparameters=auto,
        method=_supervised(auto),
        error=error,
    )
    del job["usage_metrics"], job["shared_with_openai"]
    b.add_to(data, job)


def _interrupted(
    data: FakeData,
    name: str,
    created_at: int,
    *,
    status: str,
    model: str,
    suffix: str,
    stop_at: int,
    steps_per_epoch: int,
    n_epochs: int,
    batch_size: int,
    lr: float,
    seconds_per_step: int,
    metadata: dict[str, str] | None,
    curve: LossCurve,
    now: int,
) -> None:
    """A supervised job stopped at `stop_at`: still running, paused or cancelled."""
    b = _builder(name, created_at, model=model, suffix=suffix)
    training_file, validation_file = b.new_id("file-", 22), b.new_id("file-", 22)
    total = steps_per_epoch * n_epochs
    rows = loss_rows(
        curve, steps_per_epoch=steps_per_epoch, n_epochs=n_epochs, validation=True, seed=f"demo rows {name}"
    )[:stop_at]
    started = b.prepare(training_file, validation_file)
    last = b.train(
        rows,
        total_steps=total,
        started=started,
        seconds_per_step=seconds_per_step,
        keep={steps_per_epoch * k for k in range(1, n_epochs + 1) if steps_per_epoch * k <= stop_at},
    )
    hyper = {"n_epochs": n_epochs, "batch_size": batch_size, "learning_rate_multiplier": lr}
    fields: dict[str, Any] = {
        "status": status,
        "training_file": training_file,
        "validation_file": validation_file,
        "hyperparameters": hyper,
        "method": _supervised(hyper),
        "metadata": metadata,
    }
    if status == "running":
        fields |= {
            "estimated_finish": now + (total - stop_at) * seconds_per_step + 600,
            "error": {"code": None, "message": None, "param": None},
        }
    elif status == "paused":
        b.event(last + 15, "Fine-tuning job paused")
    else:
        b.event(last + 15, "Fine-tuning job cancelled")
        fields["finished_at"] = last + 15
    b.add_to(data, b.job(**fields))


def _sweep(data: FakeData, created_at: int) -> None:
    """Three runs that differ only in learning-rate multiplier; 1.0 wins, 2.0 overfits."""
    files = random.Random("demo sweep files")
    training_file, validation_file = random_id(files, "file-", 22), random_id(files, "file-", 22)
    curves = {
        0.5: LossCurve(2.4, 0.55, 70, 0.12, valid_start=2.3, valid_floor=0.40, valid_tau=60),
        1.0: LossCurve(2.4, 0.38, 35, 0.15, valid_start=2.3, valid_floor=0.31, valid_tau=38),
        2.0: LossCurve(
            2.4, 0.30, 18, 0.25, valid_start=2.3, valid_floor=0.33, valid_tau=20, overfit_from=100, overfit_rate=3e-6
        ),
    }
    for i, (lr, curve) in enumerate(curves.items()):
        name = f"sweep_lr_{str(lr).replace('.', '_')}"
        _succeeded_sft(
            data,
            name,
            created_at + 150 * i,
            model=GPT_4O_MINI,
            suffix="lr-sweep",
            curve=curve,
            steps_per_epoch=120,
            n_epochs=3,
            batch_size=8,
            lr=lr,
            seconds_per_step=9,
            training_file=training_file,
            validation_file=validation_file,
            metadata={"sweep": SWEEP, "lr": str(lr)},
            integrations=[
                {
                    "type": "wandb",
                    "wandb": {
                        "project": "lr-sweep",
                        "entity": ORG_SLUG,
                        "name": None,
                        "tags": [SWEEP],
                        "run_id": DEMO_JOB_IDS[name],
                    },
                }
            ],
        )


def _permissions(data: FakeData) -> None:
    """The support bot's best checkpoint (step 240) is shared with three projects, its final model with one; the
    permissions are created a few hours after the job finished."""
    rng = random.Random("demo permissions")
    job = next(j for j in data.jobs if j["id"] == DEMO_JOB_IDS["support_bot"])
    best = next(c for c in data.checkpoints[job["id"]] if c["step_number"] == 240)
    projects = [random_id(rng, "proj_") for _ in range(3)]

    def permission(project: str, hours: int) -> dict[str, Any]:
        return {
            "object": "checkpoint.permission",
            "id": random_id(rng, "cp_"),
            "created_at": job["finished_at"] + hours * 3600,
            "project_id": project,
        }

    data.permissions[best["fine_tuned_model_checkpoint"]] = [
        permission(project, 2 + 24 * n) for n, project in enumerate(projects)
    ]
    data.permissions[job["fine_tuned_model"]] = [permission(projects[1], 1)]


def demo_data(now: int | None = None) -> FakeData:
    """The demo dataset; `now` (unix seconds) shifts every timestamp, nothing else."""
    now = DEMO_NOW if now is None else now
    data = FakeData()
    files = random.Random("demo files")

    def file_id() -> str:
        return random_id(files, "file-", 22)

    _succeeded_sft(
        data,
        "support_bot",
        now - 21 * DAY - 3 * 3600,
        model=GPT_4O_MINI,
        suffix="support-bot",
        curve=LossCurve(
            2.4, 0.42, 35, 0.25, valid_start=2.2, valid_floor=0.33, valid_tau=40, overfit_from=200, overfit_rate=2.7e-6
        ),
        steps_per_epoch=120,
        n_epochs=3,
        batch_size=8,
        lr=1.8,
        seconds_per_step=10,
        training_file=file_id(),
        validation_file=file_id(),
        metadata={"team": "support", "experiment": "v7"},
    )
    _succeeded_sft(
        data,
        "no_validation",
        now - 18 * DAY,
        model=GPT_41_MINI,
        suffix=None,
        curve=LossCurve(2.1, 0.55, 40, 0.3),
        steps_per_epoch=76,
        n_epochs=4,
        batch_size=4,
        lr=2.0,
        seconds_per_step=7,
        training_file=file_id(),
        validation_file=None,
        metadata={"team": "docs", "experiment": ""},
    )
    _failed(data, now - 15 * DAY)
    _succeeded_sft(
        data,
        "dpo",
        now - 12 * DAY,
        model=GPT_41_MINI,
        suffix="tone-dpo",
        curve=LossCurve(0.6931, 0.18, 60, 0.05, valid_start=0.6931, valid_floor=0.30, valid_tau=70, noise=0.04),
        steps_per_epoch=90,
        n_epochs=3,
        batch_size=4,
        lr=0.8,
        seconds_per_step=14,
        dpo_beta=0.1,
        training_file=file_id(),
        validation_file=file_id(),
        metadata={"team": "support", "experiment": "v7-dpo"},
        error={},
    )
    _interrupted(
        data,
        "cancelled",
        now - 10 * DAY,
        status="cancelled",
        model=GPT_4O_MINI,
        suffix="support-bot",
        stop_at=40,
        steps_per_epoch=120,
        n_epochs=3,
        batch_size=8,
        lr=1.8,
        seconds_per_step=10,
        metadata={"team": "support", "experiment": "v7b"},
        curve=LossCurve(2.4, 0.42, 35, 0.25, valid_start=2.2, valid_floor=0.33, valid_tau=40),
        now=now,
    )
    _reinforcement(data, now - 7 * DAY)
    _sweep(data, now - 4 * DAY)
    _interrupted(
        data,
        "paused",
        now - 2 * DAY,
        status="paused",
        model=GPT_4O,
        suffix="contracts-ner",
        stop_at=163,
        steps_per_epoch=150,
        n_epochs=4,
        batch_size=16,
        lr=1.2,
        seconds_per_step=12,
        metadata={"team": "legal"},
        curve=LossCurve(1.9, 0.35, 45, 0.2, valid_start=1.8, valid_floor=0.30, valid_tau=50),
        now=now,
    )
    _interrupted(
        data,
        "running",
        now - 50 * 60,
        status="running",
        model=GPT_41_MINI,
        suffix="support-bot-v8",
        stop_at=140,
        steps_per_epoch=150,
        n_epochs=3,
        batch_size=8,
        lr=1.0,
        seconds_per_step=15,
        metadata={"team": "support", "experiment": "v8"},
        curve=LossCurve(2.3, 0.40, 40, 0.2, valid_start=2.2, valid_floor=0.32, valid_tau=45),
        now=now,
    )
    _permissions(data)
    return data
