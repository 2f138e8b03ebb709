"""The permissions tool: list_checkpoint_permissions (which projects a fine-tuned checkpoint is shared with).

Read with the admin key (``OPENAI_ADMIN_KEY``), the only request of the server that sends it; without one the tool
answers ``permission_denied`` before any request. Not archived: offline it answers ``not_found``.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from ..api.models import Permission
from ..api.pagination import Collected
from ..state import AppState
from .arguments import FineTunedModelCheckpoint, ProjectId
from .common import ToolResult, finish, iso, page_progress, store_of, tool

SUMMARY_PROJECTS = 5
"""Project ids the summary names before it says how many more."""


class PermissionInfo(BaseModel):
    id: str = Field(description="The permission id (cp_...).")
    project_id: str | None = Field(description="The project the checkpoint is shared with (proj_...).")
    created_at: str | None = Field(description="When it was shared, ISO 8601 UTC.")


class CheckpointPermissions(ToolResult):
    fine_tuned_model_checkpoint: str
    project_id: str | None = Field(description="The project filter, when one was given.")
    permissions: list[PermissionInfo] = Field(description="Newest first, as the API lists them.")
    count: int
    truncated: bool = Field(description="More permissions exist than one call collects (--max-items).")
    summary: str = Field(description="One sentence to quote.")


def summarise(checkpoint: str, project_id: str | None, collected: Collected[Permission]) -> str:
    """Who the checkpoint is shared with, in one sentence."""
    projects = list(dict.fromkeys(p.project_id or p.id for p in collected.items))
    if project_id is not None:
        shared = "is shared with" if projects else "is not shared with"
        return f"{checkpoint} {shared} project {project_id}."
    if not projects:
        return f"{checkpoint} is not shared with any other project."
    named = ", ".join(projects[:SUMMARY_PROJECTS])
    if len(projects) > SUMMARY_PROJECTS:
        named += f" and {len(projects) - SUMMARY_PROJECTS} more"
    more = " (at least: the listing stopped at --max-items)" if collected.truncated else ""
    return f"{checkpoint} is shared with {len(projects)} project{'s' if len(projects) != 1 else ''}{more}: {named}."


LIST_CHECKPOINT_PERMISSIONS = """Answer "which projects is this checkpoint (or fine-tuned model) shared with?": every
permission of fine_tuned_model_checkpoint (all pages), each with its project_id and when it was shared, a count and a
one-line summary; project_id narrows it to one project. Needs an admin key (OPENAI_ADMIN_KEY, sk-admin-...), sent to
this endpoint only: without one the answer is permission_denied and no request is made. Never cached; not available
offline (--archive)."""


@tool(title="List a checkpoint's permissions", description=LIST_CHECKPOINT_PERMISSIONS)
async def list_checkpoint_permissions(
    ctx: Context[AppState],
    fine_tuned_model_checkpoint: FineTunedModelCheckpoint,
    project_id: Annotated[
        ProjectId | None, Field(description="Only this project's permission: is the checkpoint shared with it?")
    ] = None,
) -> CheckpointPermissions:
    collected = await store_of(ctx).checkpoint_permissions(
        fine_tuned_model_checkpoint,
        project_id=project_id,
        on_page=page_progress(ctx.report_progress, "permissions"),
    )
    result = CheckpointPermissions(
        fine_tuned_model_checkpoint=fine_tuned_model_checkpoint,
        project_id=project_id,
        permissions=[
            PermissionInfo(id=p.id, project_id=p.project_id, created_at=iso(p.created_at)) for p in collected.items
        ],
        count=len(collected.items),
        truncated=collected.truncated,
        summary=summarise(fine_tuned_model_checkpoint, project_id, collected),
    )
    return finish(ctx, result)
