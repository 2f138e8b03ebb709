"""The toolsets: the tool families ``--toolsets`` (or ``OPENAI_CHECKPOINTS_MCP_TOOLSETS``) chooses among, and what
each tells the assistant in the server's instructions.

Names only, no imports: the settings check them and the instructions are written from them at start-up, before
any tool module is imported. Every tool of `server.tool_table()` is in exactly one toolset (a test checks it); a
new family is one entry here.

How they combine with ``--allow-writes``: without ``--toolsets`` every read tool is served (and the write tools with
``--allow-writes``, as before); with it only the named families, ``all`` naming every one. The write tools still
need ``--allow-writes``: naming ``writes`` without it, or giving ``--allow-writes`` with a list that names neither
``writes`` nor ``all``, is a contradiction the command line refuses (`contradiction`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ALL = "all"
WRITES = "writes"


@dataclass(frozen=True)
class Toolset:
    tools: tuple[str, ...]
    guide: str
    """The sentence of the server's instructions about these tools (served tools only are ever mentioned)."""


TOOLSETS: dict[str, Toolset] = {
    "jobs": Toolset(
        ("list_jobs", "get_job"),
        "list_jobs finds jobs (newest first; a sweep's runs by suffix or metadata), get_job shows one job's settings.",
    ),
    "checkpoints": Toolset(
        ("list_checkpoints", "best_checkpoint"),
        "best_checkpoint(job_id) answers which checkpoint to deploy, with a rationale to quote; list_checkpoints "
        "shows every checkpoint with its metrics.",
    ),
    "sweeps": Toolset(
        ("compare_jobs",),
        "compare_jobs ranks the runs of a sweep (one suffix or metadata tag) and names the winner.",
    ),
    "curves": Toolset(
        ("training_metrics", "plot_training_curve"),
        "training_metrics reads a finished job's whole training curve (best step, overfitting); plot_training_curve "
        "draws it as an image (also the resource openai-ft://jobs/{job_id}/curve.png).",
    ),
    "events": Toolset(("list_events",), "list_events shows what a job did or is doing."),
    "models": Toolset(
        ("list_fine_tuned_models",),
        "list_fine_tuned_models lists the models the account can call, with their base model's shutdown date and "
        "days left.",
    ),
    "permissions": Toolset(
        ("list_checkpoint_permissions",),
        "list_checkpoint_permissions shows which projects a checkpoint is shared with (needs OPENAI_ADMIN_KEY).",
    ),
    WRITES: Toolset(("cancel_job", "pause_job", "resume_job"), ""),
}
"""Every toolset, in the order the instructions mention them."""

NAMES = (*TOOLSETS, ALL)
"""What ``--toolsets`` accepts."""


class ToolsetError(ValueError):
    """``--toolsets`` names an unknown toolset, or contradicts ``--allow-writes``; the message is one line."""


def parse(text: str) -> tuple[str, ...]:
    """``jobs,checkpoints`` as ``("jobs", "checkpoints")``: names checked, duplicates dropped, order kept.

    Raises:
        ToolsetError: an unknown or missing name, with the valid ones.
    """
    names = [part.strip().lower() for part in text.split(",")]
    unknown = [name for name in names if name not in NAMES]
    if unknown or not any(names):
        what = f"unknown toolset {', '.join(repr(n) for n in unknown if n) or 'name (empty)'}"
        raise ToolsetError(f"--toolsets: {what}; the toolsets are {', '.join(NAMES)}")
    return tuple(dict.fromkeys(names))


def contradiction(toolsets: Sequence[str] | None, *, allow_writes: bool, archive: bool = False) -> str | None:
    """Why `toolsets` cannot go with the write setting, in one line, or None when they agree."""
    if toolsets is None or ALL in toolsets:
        return None
    if WRITES in toolsets and archive:
        return "--toolsets writes does not apply to --archive: an archive is read-only"
    if WRITES in toolsets and not allow_writes:
        return (
            "--toolsets writes needs --allow-writes (or OPENAI_CHECKPOINTS_MCP_ALLOW_WRITES=1): the write tools "
            "change jobs for real"
        )
    if allow_writes and WRITES not in toolsets and not archive:
        return (
            f"--allow-writes with --toolsets {','.join(toolsets)} serves no write tool: add writes to --toolsets, or "
            "drop --allow-writes"
        )
    return None


def chosen(toolsets: Sequence[str] | None) -> list[str]:
    """The toolsets served (before --allow-writes decides on the write tools): all of them without a choice."""
    if toolsets is None or ALL in toolsets:
        return list(TOOLSETS)
    return [name for name in TOOLSETS if name in toolsets]


def tool_names(toolsets: Sequence[str] | None) -> set[str]:
    """The tools of the chosen toolsets."""
    return {tool for name in chosen(toolsets) for tool in TOOLSETS[name].tools}


def guides(names: Iterable[str]) -> list[str]:
    return [TOOLSETS[name].guide for name in names if TOOLSETS[name].guide]
