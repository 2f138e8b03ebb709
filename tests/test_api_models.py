"""Unit tests of api.models: the lenient parsing of jobs, checkpoints, events and list pages, on reference samples."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from openai_checkpoints_mcp.api.models import Checkpoint, Event, Job, ListPage

SAMPLES = Path(__file__).parent / "data" / "samples"
"""Copies of the reference sample bodies (a job, a failed job, a running DPO job, and a page each of jobs, checkpoints
and events), so these tests run in any checkout."""


MODEL_BY_OBJECT: dict[str, type[Job | Checkpoint | Event]] = {
    "fine_tuning.job": Job,
    "fine_tuning.job.checkpoint": Checkpoint,
    "fine_tuning.job.event": Event,
}


def load(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def sample_objects() -> list[tuple[str, dict[str, Any]]]:
    """(label, body) for every job, checkpoint and event in the samples, inside list pages too."""
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(SAMPLES.glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(body, dict):
            continue
        if body.get("object") in MODEL_BY_OBJECT:
            found.append((path.name, body))
        elif body.get("object") == "list":
            for index, item in enumerate(body.get("data") or []):
                if isinstance(item, dict) and item.get("object") in MODEL_BY_OBJECT:
                    found.append((f"{path.name}[{index}]", item))
    return found


def job(**fields: Any) -> Job:
    return Job.model_validate({"id": "ftjob-abc", **fields})


def checkpoint(metrics: Any = None, **fields: Any) -> Checkpoint:
    return Checkpoint.model_validate({"id": "ftckpt_abc", "metrics": metrics, **fields})


def test_samples_hold_jobs_checkpoints_and_events() -> None:
    objects = sample_objects()
    kinds = {body["object"] for _, body in objects}
    assert kinds == set(MODEL_BY_OBJECT)
    assert len(objects) == 15  # 3 jobs, 3 in the jobs page, 3 checkpoints, 6 events: none silently missing


@pytest.mark.parametrize("body", [pytest.param(body, id=label) for label, body in sample_objects()])
def test_every_sample_object_parses(body: dict[str, Any]) -> None:
    model = MODEL_BY_OBJECT[body["object"]]
    parsed = model.model_validate(body)
    assert parsed.id == body["id"]
    assert parsed.created_at == body["created_at"]


@pytest.mark.parametrize("name", ["jobs_page.json", "checkpoints_page.json", "events_page.json"])
def test_sample_list_pages_parse(name: str) -> None:
    page = ListPage.model_validate(load(name))
    assert page.has_more is load(name)["has_more"]
    assert len(page.data) == len(load(name)["data"])


def test_succeeded_sample_job() -> None:
    parsed = Job.model_validate(load("job.json"))
    assert parsed.status == "succeeded"
    assert parsed.method_type == "supervised"
    assert parsed.effective_hyperparameters == {
        "n_epochs": 3,
        "batch_size": 8,
        "learning_rate_multiplier": 1.8,
    }
    assert parsed.error_info is None
    assert parsed.suffix == "support-bot"
    assert parsed.has_validation_file is True
    assert parsed.metadata == {"team": "support", "experiment": "v7"}
    assert parsed.result_files == ["file-7HnR3vTq9WxY2zLk5MpJcA"]
    assert parsed.model_extra is not None and parsed.model_extra["shared_with_openai"] is False


def test_running_dpo_sample_job() -> None:
    parsed = Job.model_validate(load("job_running_dpo.json"))
    assert parsed.hyperparameters is None
    assert parsed.method_type == "dpo"
    assert parsed.effective_hyperparameters == {
        "beta": 0.1,
        "batch_size": "auto",
        "learning_rate_multiplier": "auto",
        "n_epochs": "auto",
    }
    assert parsed.error is not None
    assert parsed.error_info is None
    assert parsed.suffix is None
    assert parsed.has_validation_file is False


def test_failed_sample_job() -> None:
    parsed = Job.model_validate(load("job_failed.json"))
    assert parsed.error_info is not None
    assert parsed.error_info.code == "invalid_n_examples"
    assert parsed.error_info.param == "training_file"
    assert parsed.metadata is None


def test_sample_checkpoint_metrics() -> None:
    first = Checkpoint.model_validate(load("checkpoints_page.json")["data"][0])
    assert first.step == 360
    assert first.numeric_metrics["full_valid_loss"] == 0.3521
    assert "step" not in first.numeric_metrics
    assert len(first.numeric_metrics) == 6


def test_paused_status_is_kept() -> None:
    assert job(status="paused").status == "paused"


@pytest.mark.parametrize("method_type", ["dpo", "reinforcement"])
def test_null_hyperparameters_come_from_the_method_section(method_type: str) -> None:
    hyper = {"n_epochs": 2, "batch_size": "auto", "learning_rate_multiplier": 0.5}
    parsed = job(
        hyperparameters=None,
        method={"type": method_type, method_type: {"hyperparameters": hyper}},
    )
    assert parsed.hyperparameters is None
    assert parsed.method_type == method_type
    assert parsed.effective_hyperparameters == hyper


def test_method_section_wins_over_top_level_hyperparameters() -> None:
    parsed = job(
        hyperparameters={"n_epochs": "auto", "batch_size": 4},
        method={
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": 3}},
        },
    )
    assert parsed.effective_hyperparameters == {"n_epochs": 3, "batch_size": 4}


def test_no_hyperparameters_anywhere_is_an_empty_dict() -> None:
    assert job().effective_hyperparameters == {}
    assert job(method={"type": "dpo", "dpo": None}).effective_hyperparameters == {}


@pytest.mark.parametrize("method", [None, {}, {"type": None}, {"type": 3}, "supervised"])
def test_method_type_defaults_to_supervised(method: Any) -> None:
    assert job(method=method).method_type == "supervised"


@pytest.mark.parametrize(
    "error",
    [
        None,
        {},
        {"code": None, "message": None, "param": None},
        {"code": "", "message": ""},
        "oops",
        [],
    ],
)
def test_empty_error_shapes_mean_no_error(error: Any) -> None:
    assert job(error=error).error_info is None


def test_real_error_is_reported() -> None:
    parsed = job(
        status="failed",
        error={"code": "invalid_file", "message": "Bad JSONL on line 3", "param": None},
    )
    assert parsed.error_info is not None
    assert parsed.error_info.code == "invalid_file"
    assert parsed.error_info.message == "Bad JSONL on line 3"
    assert parsed.error_info.param is None


def test_error_with_only_a_message_is_an_error() -> None:
    parsed = job(error={"code": None, "message": "Internal failure", "param": None})
    assert parsed.error_info is not None
    assert parsed.error_info.message == "Internal failure"


def test_unknown_fields_are_kept() -> None:
    parsed = job(
        status="succeeded",
        eval_id="eval_123",
        usage_metrics=None,
        shared_with_openai=True,
    )
    assert parsed.model_extra == {
        "eval_id": "eval_123",
        "usage_metrics": None,
        "shared_with_openai": True,
    }


def test_unknown_checkpoint_and_event_fields_are_kept() -> None:
    assert checkpoint(object="fine_tuning.job.checkpoint", brand_new=1).model_extra == {
        "object": "fine_tuning.job.checkpoint",
        "brand_new": 1,
    }
    assert Event.model_validate({"id": "ftevent-1", "extra": [1]}).model_extra == {"extra": [1]}


@pytest.mark.parametrize(
    ("fields", "attribute"),
    [
        ({"created_at": "soon"}, "created_at"),
        ({"created_at": True}, "created_at"),
        ({"finished_at": 12.5}, "finished_at"),
        ({"trained_tokens": 1.5}, "trained_tokens"),
        ({"trained_tokens": "lots"}, "trained_tokens"),
        ({"seed": [1]}, "seed"),
        ({"metadata": "team=nlp"}, "metadata"),
        ({"metadata": ["team", "nlp"]}, "metadata"),
        ({"status": 3}, "status"),
        ({"model": {"name": "x"}}, "model"),
        ({"hyperparameters": "auto"}, "hyperparameters"),
        ({"method": ["supervised"]}, "method"),
        ({"integrations": {"type": "wandb"}}, "integrations"),
        ({"validation_file": 0}, "validation_file"),
    ],
)
def test_wrong_typed_job_fields_become_none(fields: dict[str, Any], attribute: str) -> None:
    assert getattr(job(**fields), attribute) is None


def test_integral_numbers_in_other_forms_are_accepted() -> None:
    parsed = job(created_at=1754035200.0, trained_tokens="1284530")
    assert parsed.created_at == 1754035200
    assert parsed.trained_tokens == 1284530


@pytest.mark.parametrize("value", [None, "file-1", 3, {"a": 1}])
def test_result_files_are_always_a_list_of_strings(value: Any) -> None:
    assert job(result_files=value).result_files == []


def test_result_files_drop_non_strings() -> None:
    assert job(result_files=["file-1", None, 2, "file-2"]).result_files == [
        "file-1",
        "file-2",
    ]


def test_metadata_values_become_strings() -> None:
    assert job(metadata={"team": "nlp", "run": 7}).metadata == {
        "team": "nlp",
        "run": "7",
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {
                "user_provided_suffix": "weather",
                "fine_tuned_model": "ft:gpt-4o-mini-2024-07-18:acme:other:Ab12Cd34",
            },
            "weather",
        ),
        (
            {"fine_tuned_model": "ft:gpt-4o-mini-2024-07-18:acme:support-bot:Bx72KpQd"},
            "support-bot",
        ),
        ({"fine_tuned_model": "ft:gpt-4o-mini-2024-07-18:acme::Bx72KpQd"}, None),
        (
            {"fine_tuned_model": "gpt-4.1-2025-04-14.ft-0123456789abcdef0123456789abcdef"},
            None,
        ),
        ({"fine_tuned_model": "ft:gpt-4o-mini-2024-07-18:acme"}, None),
        ({"fine_tuned_model": None}, None),
        (
            {
                "user_provided_suffix": "",
                "fine_tuned_model": "ft:gpt-4o-mini-2024-07-18:personal:drone:9atiPjeC",
            },
            "drone",
        ),
    ],
)
def test_suffix(fields: dict[str, Any], expected: str | None) -> None:
    assert job(**fields).suffix == expected


@pytest.mark.parametrize("body", [{}, {"id": ""}, {"id": None}, {"status": "running"}])
def test_job_without_an_id_fails_validation(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Job.model_validate(body)


def test_checkpoint_and_event_without_an_id_fail_validation() -> None:
    with pytest.raises(ValidationError):
        Checkpoint.model_validate({"step_number": 3})
    with pytest.raises(ValidationError):
        Event.model_validate({"message": "hi"})


def test_numeric_metrics_keep_unknown_numbers_and_drop_everything_else() -> None:
    parsed = checkpoint(
        {
            "step": 120.0,
            "train_loss": 0.52,
            "full_valid_mean_reward": 0.68,
            "completion_tokens_mean": 412,
            "negative": -1.5,
            "flag": True,
            "off": False,
            "not_a_number": math.nan,
            "too_big": math.inf,
            "too_small": -math.inf,
            "text": "0.5",
            "nested": {"train_reward_mean": 0.4},
            "listed": [0.1],
            "missing": None,
        }
    )
    assert parsed.numeric_metrics == {
        "train_loss": 0.52,
        "full_valid_mean_reward": 0.68,
        "completion_tokens_mean": 412.0,
        "negative": -1.5,
    }
    assert isinstance(parsed.numeric_metrics["completion_tokens_mean"], float)


def test_integer_metric_too_large_for_a_float_is_dropped() -> None:
    # JSON numbers may have any number of digits; json.loads turns this one into an int of 401 digits.
    body = json.loads('{"id": "ftckpt_big", "metrics": {"train_loss": 1' + "0" * 400 + ', "valid_loss": 0.3}}')
    assert Checkpoint.model_validate(body).numeric_metrics == {"valid_loss": 0.3}


@pytest.mark.parametrize("metrics", [None, {}, "loss=0.1", [0.1]])
def test_no_usable_metrics(metrics: Any) -> None:
    assert checkpoint(metrics).numeric_metrics == {}


def test_step_number_wins_over_the_step_metric() -> None:
    assert checkpoint({"step": 99.0}, step_number=100).step == 100


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ({"step": 88.0}, 88),
        ({"step": 88}, 88),
        ({"step": 88.5}, None),
        ({"step": True}, None),
        ({}, None),
        (None, None),
    ],
)
def test_step_falls_back_to_the_step_metric(metrics: Any, expected: int | None) -> None:
    assert checkpoint(metrics).step == expected


def test_wrong_typed_step_number_falls_back_to_the_step_metric() -> None:
    parsed = checkpoint({"step": 40.0}, step_number="forty")
    assert parsed.step_number is None
    assert parsed.step == 40


@pytest.mark.parametrize(
    ("data", "expected"),
    [(None, None), ({}, {}), ("x", None), ({"step": 3}, {"step": 3})],
)
def test_event_data(data: Any, expected: Any) -> None:
    assert Event.model_validate({"id": "ftevent-1", "level": "warn", "data": data}).data == expected


def test_list_page_without_has_more() -> None:
    page = ListPage.model_validate({"object": "list", "data": [{"id": "a"}]})
    assert page.has_more is None
    assert page.data == [{"id": "a"}]


def test_list_page_needs_data() -> None:
    with pytest.raises(ValidationError):
        ListPage.model_validate({"object": "list", "has_more": False})
