"""list_checkpoint_permissions end to end through the MCP client against the fake API on 127.0.0.1: every page
(counted at the fake), the project filter, the admin key (sent to this endpoint only, never shown), no admin key
(an error and no request), a 403 for an ordinary key, hostile checkpoint names refused before any request, demo
mode, and the path escaping."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from mcp import Client

from openai_checkpoints_mcp.api.client import path_segment
from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.fake import FakeData
from openai_checkpoints_mcp.fake.app import ADMIN_KEY
from openai_checkpoints_mcp.server import create_server

from .helpers import TEST_KEY, checkpoint, error_text, fake_id, job

pytestmark = pytest.mark.anyio

JOB = "ftjob-Perms00000000000000000001"
CKPT = checkpoint(JOB, 240, {"full_valid_loss": 0.3})["fine_tuned_model_checkpoint"]
MODEL = "ft:gpt-4o-mini-2024-07-18:acme-labs:support-bot:Bx72KpQd"


def data(permissions: int = 25) -> FakeData:
    """One job whose step-240 checkpoint is shared with `permissions` projects, one a minute."""
    shared = [
        {
            "object": "checkpoint.permission",
            "id": fake_id("cp_", n),
            "created_at": 1754040000 + 60 * n,
            "project_id": fake_id("proj_", n),
        }
        for n in range(permissions)
    ]
    return FakeData(
        jobs=[job(JOB)],
        checkpoints={JOB: [checkpoint(JOB, 240, {"full_valid_loss": 0.3})]},
        permissions={CKPT: shared},
    )


async def permissions_of(api: Any, name: str = CKPT, **arguments: Any) -> Any:
    overrides = {"admin_key": ADMIN_KEY, **arguments.pop("settings", {})}
    async with api.client(**overrides) as client:
        return await client.call_tool("list_checkpoint_permissions", {"fine_tuned_model_checkpoint": name, **arguments})


async def test_every_page_is_read_and_the_admin_key_goes_to_this_endpoint_only(serve_fake, caplog):
    caplog.set_level(logging.DEBUG)
    with serve_fake(data(25)) as api:
        async with api.client(admin_key=ADMIN_KEY, page_size=10) as client:
            result = await client.call_tool("list_checkpoint_permissions", {"fine_tuned_model_checkpoint": CKPT})
            other = await client.call_tool("best_checkpoint", {"job_id": JOB})
        pages = api.upstream_requests("/permissions")
        rest = [r for r in api.upstream_requests() if "/permissions" not in r.path]
    out = result.structured_content
    assert not result.is_error and not other.is_error
    assert out["count"] == 25 and len(out["permissions"]) == 25 and out["truncated"] is False
    assert [p["id"] for p in out["permissions"]] == [fake_id("cp_", n) for n in reversed(range(25))]  # newest first
    assert out["permissions"][0]["created_at"] == "2025-08-01T09:44:00Z"
    assert out["summary"].startswith(f"{CKPT} is shared with 25 projects: ") and out["summary"].endswith("20 more.")
    assert len(pages) == 3  # 10 + 10 + 5, following has_more with after = the previous page's last_id
    assert [r.query.get("after") for r in pages] == [None, [fake_id("cp_", 15)], [fake_id("cp_", 5)]]
    assert all(r.path.endswith(f"/fine_tuning/checkpoints/{CKPT}/permissions") for r in pages)  # colons as they are
    assert all(r.headers["authorization"] == f"Bearer {ADMIN_KEY}" for r in pages)
    assert rest and all(r.headers["authorization"] == f"Bearer {TEST_KEY}" for r in rest)
    assert ADMIN_KEY not in result.model_dump_json() + other.model_dump_json() + caplog.text


async def test_the_project_filter_asks_the_api_for_one_project(serve_fake):
    with serve_fake(data(25)) as api:
        shared = await permissions_of(api, project_id=fake_id("proj_", 7))
        unshared = await permissions_of(api, project_id=fake_id("proj_", 99))
        sent = [r.query.get("project_id") for r in api.upstream_requests("/permissions")]
    assert [p["project_id"] for p in shared.structured_content["permissions"]] == [fake_id("proj_", 7)]
    assert shared.structured_content["summary"] == f"{CKPT} is shared with project {fake_id('proj_', 7)}."
    assert unshared.structured_content["count"] == 0
    assert unshared.structured_content["summary"] == f"{CKPT} is not shared with project {fake_id('proj_', 99)}."
    assert sent == [[fake_id("proj_", 7)], [fake_id("proj_", 99)]]


async def test_a_plain_fine_tuned_model_name_is_accepted(serve_fake):
    with serve_fake(data(0)) as api:
        result = await permissions_of(api, MODEL)
    assert result.structured_content["count"] == 0
    assert result.structured_content["summary"] == f"{MODEL} is not shared with any other project."


async def test_without_an_admin_key_the_tool_says_so_and_makes_no_request(serve_fake):
    with serve_fake(data()) as api:
        result = await permissions_of(api, settings={"admin_key": None})
        assert api.upstream_requests("") == []
    text = error_text(result)
    assert text.startswith("permission_denied: ") and "needs an admin key: set OPENAI_ADMIN_KEY" in text


async def test_an_ordinary_key_gets_403_and_is_told_an_admin_key_is_needed(serve_fake, caplog):
    caplog.set_level(logging.DEBUG)
    with serve_fake(data()) as api:
        result = await permissions_of(api, settings={"admin_key": TEST_KEY})
        assert len(api.upstream_requests("/permissions")) == 1
    text = error_text(result)
    assert text.startswith("permission_denied: ") and "HTTP 403" in text
    assert "needs an admin key (sk-admin-...)" in text and "OPENAI_ADMIN_KEY" in text
    assert TEST_KEY not in text + caplog.text


async def test_a_wrong_admin_key_is_auth_failed_naming_the_admin_variable(serve_fake):
    with serve_fake(data()) as api:
        result = await permissions_of(api, settings={"admin_key": "sk-admin-wrong-0123456789"})
    text = error_text(result)
    assert text.startswith("auth_failed: The API rejected the admin key") and "OPENAI_ADMIN_KEY" in text
    assert "sk-admin-wrong-0123456789" not in text


async def test_an_unknown_checkpoint_is_not_found(serve_fake):
    with serve_fake(data()) as api:
        result = await permissions_of(api, CKPT.replace("ckpt-step-240", "ckpt-step-241"))
    assert error_text(result).startswith("not_found: ")


HOSTILE_NAMES = [
    "ft:x/../../jobs",
    "a?b",
    "a#b",
    "%2e%2e",
    "..",
    f"{CKPT}/../../../jobs",
    f"{CKPT}?after=x",
    f"{CKPT}#",
    f"{CKPT}%2F",
    f"{CKPT} ",
    "ft:gpt-4o:org:sfx:ab\ncd",
    "ftjob-abc",
    "ft:" + "a" * 300,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
async def test_a_hostile_checkpoint_name_is_refused_before_any_request(serve_fake, name):
    with serve_fake(data()) as api:
        result = await permissions_of(api, name)
        assert api.upstream_requests("") == []
    assert error_text(result).startswith("invalid_argument: fine_tuned_model_checkpoint ")


def test_the_path_segment_escapes_everything_but_colons():
    assert path_segment(CKPT) == CKPT
    assert path_segment("ft:a/b?c#d%e f") == "ft:a%2Fb%3Fc%23d%25e%20f"
    for dots in (".", "..", ""):
        with pytest.raises(ValueError):
            path_segment(dots)


async def test_demo_mode_shows_the_shared_checkpoint_without_an_admin_key():
    name = "ft:gpt-4o-mini-2024-07-18:lumen-labs:support-bot:BvIh4uj0:ckpt-step-240"
    async with Client(create_server(Settings.from_env({"OPENAI_ADMIN_KEY": "sk-admin-x"}, demo=True))) as client:
        result = await client.call_tool("list_checkpoint_permissions", {"fine_tuned_model_checkpoint": name})
    out = result.structured_content
    assert out["count"] == 3 and out["notice"].startswith("DEMO DATA")


def test_the_admin_key_is_never_printed_with_the_settings():
    settings = Settings.from_env({"OPENAI_API_KEY": TEST_KEY, "OPENAI_ADMIN_KEY": ADMIN_KEY})
    assert settings.admin_key == ADMIN_KEY
    shown = repr(settings) + str(settings)
    assert ADMIN_KEY not in shown and TEST_KEY not in shown and "admin_key=set (OPENAI_ADMIN_KEY)" in shown
    assert "admin_key=missing" in repr(Settings())
    assert Settings.from_env({"OPENAI_ADMIN_KEY": ADMIN_KEY}, demo=True).admin_key is None
