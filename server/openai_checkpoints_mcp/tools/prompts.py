"""The prompts: short scripts a user picks in their client, telling the assistant which tools to call and what to
conclude. `PROMPTS` is the registration table: one prompt is one entry.

Arguments are checked before the script is written (the server turns a bad one into ``-32602``); a prompt makes no
request itself.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from ..errors import invalid_argument
from .arguments import JobId
from .common import one_line

PromptFunction = Callable[..., Awaitable[str]]


@dataclass(frozen=True)
class PromptSpec:
    """One prompt as the server registers it: the function (its parameters are the prompt's arguments), the title and
    the description a user reads when picking it."""

    fn: PromptFunction
    title: str
    description: str
    tools: tuple[str, ...] = ()
    """The tools its script calls: the prompt is offered only when the server serves all of them (`--toolsets`)."""

    @property
    def name(self) -> str:
        return self.fn.__name__


def prompt(*, title: str, description: str, tools: tuple[str, ...]) -> Callable[[PromptFunction], PromptSpec]:
    """Declare a prompt: ``@prompt(title=..., description=..., tools=(...))`` over ``async def name(...) -> str``."""

    def declare(fn: PromptFunction) -> PromptSpec:
        return PromptSpec(fn=fn, title=title, description=one_line(description), tools=tools)

    return declare


def script(*lines: str) -> str:
    """The prompt's text: one paragraph per argument, each written wrapped in source."""
    return "\n\n".join(one_line(line) for line in lines)


@prompt(
    title="Choose the checkpoint to deploy",
    description="""Which checkpoint of one fine-tuning job to deploy, and why: the best checkpoint by the most
    trustworthy metric, checked against the whole training curve.""",
    tools=("best_checkpoint", "training_metrics"),
)
async def choose_checkpoint(job_id: JobId) -> str:
    return script(
        f"Help me choose which checkpoint of the fine-tuning job {job_id} to deploy.",
        f"""1. Call best_checkpoint with job_id="{job_id}". It ranks every checkpoint the API kept by the most
        trustworthy metric the job has and returns the best one, whether it is the job's final model, and a
        rationale.""",
        f"""2. Call training_metrics with job_id="{job_id}" for the whole training curve: the best validation step
        and whether a checkpoint was kept there (else the nearest kept one), an overfitting signal and the
        train-validation gap. Skip it if the job has not finished.""",
        """3. Conclude in a few sentences: the model name to deploy (best.fine_tuned_model_checkpoint), the metric it
        was ranked by and its value, whether to deploy it rather than the final model (best_is_final), and what the
        curve adds (overfitting, a better step whose checkpoint was not kept). If best is null, say why (the
        rationale) and what to do instead. Quote any notice (demo or archived data).""",
    )


SweepSuffix = Annotated[
    str | None,
    Field(
        description="The suffix the sweep's jobs share (e.g. lr-sweep); or give metadata instead.",
        min_length=1,
        max_length=64,
    ),
]
SweepMetadata = Annotated[
    str | None,
    Field(
        description="key=value: the metadata pair the sweep's jobs share (e.g. sweep=lr-2026-11); or give suffix "
        "instead.",
        max_length=600,
    ),
]


def _metadata_pair(text: str) -> dict[str, str]:
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or len(key) > 64 or "[" in key or "]" in key or len(value) > 512:
        raise invalid_argument(
            f"metadata must be key=value, a key of 1-64 characters without '[' or ']' and a value of at most 512 "
            f"characters (e.g. sweep=lr-2026-11); got {text[:80]!r}."
        )
    return {key: value.strip()}


@prompt(
    title="Review a sweep",
    description="""Which run of a sweep (jobs sharing a suffix or a metadata pair) won, with which checkpoint, and
    which hyperparameters made the difference.""",
    tools=("compare_jobs", "training_metrics"),
)
async def review_sweep(suffix: SweepSuffix = None, metadata: SweepMetadata = None) -> str:
    if (suffix is None) == (metadata is None):
        raise invalid_argument("review_sweep takes suffix or metadata (key=value), exactly one of them.")
    if suffix is not None:
        selection, arguments = f'with suffix "{suffix}"', f"suffix={json.dumps(suffix)}"
    else:
        pair = _metadata_pair(metadata or "")
        selection = f"with metadata {', '.join(f'{k}={v}' for k, v in pair.items())}"
        arguments = f"metadata={json.dumps(pair, ensure_ascii=False)}"
    return script(
        f"Review the sweep of fine-tuning jobs {selection}: which run won, and why?",
        f"""1. Call compare_jobs with {arguments}. It ranks the runs like with like (one metric, one method) and
        names the winner with its best checkpoint; jobs it could not rank or read are listed with the reason.""",
        """2. Call training_metrics with the winner's job_id to check its curve for overfitting and for a better
        step whose checkpoint was not kept.""",
        """3. Conclude: which run won, with which checkpoint (the model name to deploy), by which metric and by how
        much over the runner-up; which hyperparameters (learning_rate_multiplier, n_epochs, batch_size) made the
        difference; and which runs were ranked separately or not at all, and why. Quote the rationale and any
        notice.""",
    )


@prompt(
    title="Prepare for the shutdowns",
    description="""Before fine-tuning ends and base models shut down: every fine-tuned model with its days left, what
    to archive, and which checkpoint of each job to keep deploying.""",
    tools=("list_fine_tuned_models", "best_checkpoint"),
)
async def before_shutdown() -> str:
    return script(
        """Help me prepare for the end of OpenAI fine-tuning: new jobs can no longer be created, and each fine-tuned
        model stops answering when its base model shuts down.""",
        """1. Call list_fine_tuned_models. It lists every fine-tuned model the account can call, soonest shutdown
        first, with the job behind it, that job's best checkpoint, the shutdown date and days_left, and whether new
        jobs can still be created (new_jobs).""",
        """2. For each model, say which checkpoint of its job to keep deploying: best_checkpoint.model when
        best_checkpoint.is_final_model is false (an earlier checkpoint did better than the final model), else the
        model itself. For a model whose best_checkpoint is null but whose job is known, call best_checkpoint with
        that job_id.""",
        """3. Say what to archive: the command `openai-checkpoints-mcp archive FILE` keeps every job, its checkpoints,
        metrics and result file in a local file, which `openai-checkpoints-mcp --archive FILE` answers these tools
        from offline once the API no longer does. Name first the jobs whose models shut down soonest.""",
        """4. Conclude with a table: model, base model, shutdown date, days left, the checkpoint to keep deploying,
        and the action (switch to the better checkpoint, archive, migrate before the date, nothing). Quote the
        advice lines and any notice.""",
    )


PROMPTS: tuple[PromptSpec, ...] = (choose_checkpoint, review_sweep, before_shutdown)
"""Every prompt, in the order prompts/list shows them (those whose tools are all served)."""
