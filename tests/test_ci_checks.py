"""The CI helper (.ci/mcp_checks.py) fails on a bad tools list, a bad tool result, a conformance warning or
nothing run."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from openai_checkpoints_mcp.server import tool_table


def _helper(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(__file__).resolve().parents[1] / ".ci" / "mcp_checks.py"
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=60)


def _inspector_output(tmp_path: Path, result: dict[str, Any]) -> str:
    path = tmp_path / "out.json"
    path.write_text(json.dumps({"result": result}))
    return str(path)


def test_the_ci_helper_fails_on_a_bad_tools_list_or_tool_result(tmp_path):
    core = [{"name": spec.name} for spec in tool_table() if spec.read_only]
    assert _helper("tools-list", _inspector_output(tmp_path, {"tools": core})).returncode == 0
    missing = _helper("tools-list", _inspector_output(tmp_path, {"tools": core[1:]}))
    writes = _helper(
        "tools-list",
        _inspector_output(tmp_path, {"tools": [*core, {"name": "cancel_job"}]}),
    )
    error = _helper(
        "best-checkpoint",
        _inspector_output(tmp_path, {"isError": True, "content": []}),
        "ftjob-x",
    )
    not_json = tmp_path / "bad.json"
    not_json.write_text("Error: connection refused")
    garbage = _helper("tools-list", str(not_json))
    for run, needle in [
        (missing, "lacks ['list_jobs']"),
        (writes, "write tools ['cancel_job']"),
        (error, "returned an error"),
        (garbage, "is not JSON"),
    ]:
        assert run.returncode == 1 and needle in run.stderr, run.stderr


def test_the_ci_helper_fails_on_a_conformance_warning_or_nothing_run(tmp_path):
    def scenario(checks: list[dict[str, str]]) -> subprocess.CompletedProcess[str]:
        folder = tmp_path / "server-ping-2026"
        folder.mkdir(exist_ok=True)
        (folder / "checks.json").write_text(json.dumps(checks))
        return _helper("conformance", str(tmp_path), "ping")

    assert scenario([{"id": "ping", "status": "SUCCESS"}]).returncode == 0
    assert scenario([{"id": "ping", "status": "SUCCESS"}, {"id": "x", "status": "WARNING"}]).returncode == 1
    assert scenario([{"id": "ping", "status": "SKIPPED"}]).returncode == 1
    assert _helper("conformance", str(tmp_path), "tools-list").returncode == 1  # no checks.json at all
    assert _helper("no-such-command").returncode == 1


def test_the_ci_helper_checks_templates_prompts_and_reads_against_the_tables(tmp_path):
    from openai_checkpoints_mcp.tools.prompts import PROMPTS
    from openai_checkpoints_mcp.tools.resources import TEMPLATES

    templates = [
        {"uriTemplate": s.uri_template, "name": s.name, "mimeType": s.mime_type, "title": "t", "description": "d"}
        for s in TEMPLATES
    ]
    prompts = [{"name": s.name, "title": "t", "description": "d", "arguments": []} for s in PROMPTS]
    uri = "openai-ft://jobs/ftjob-x/metrics.csv"
    csv = {"contents": [{"uri": uri, "mimeType": "text/csv", "text": "step,train_loss\n1,0.5\n2,0.4\n"}]}
    prompt = {"messages": [{"role": "user", "content": {"type": "text", "text": "ftjob-x: call best_checkpoint"}}]}

    def run(command: str, result: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
        return _helper(command, _inspector_output(tmp_path, result), *args)

    assert run("templates-list", {"resourceTemplates": templates}).returncode == 0
    assert run("prompts-list", {"prompts": prompts}).returncode == 0
    assert run("prompt-get", prompt, "ftjob-x").returncode == 0
    assert run("resource-read", csv, uri, "text/csv").returncode == 0
    png_uri = "openai-ft://jobs/ftjob-x/curve.png"
    blob = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(16)).decode()
    png = {"contents": [{"uri": png_uri, "mimeType": "image/png", "blob": blob}]}
    assert run("resource-read", png, png_uri, "image/png").returncode == 0
    untitled = [{**templates[0], "title": ""}, *templates[1:]]
    undescribed = [{**prompts[0], "arguments": [{"name": "job_id"}]}, *prompts[1:]]
    for failed, needle in [
        (run("templates-list", {"resourceTemplates": templates[::-1]}), "resources/templates/list: expected"),
        (run("templates-list", {"resourceTemplates": untitled}), "lack a title or a description"),
        (run("prompts-list", {"prompts": prompts[1:]}), "prompts/list: expected"),
        (run("prompts-list", {"prompts": undescribed}), "choose_checkpoint.job_id"),
        (run("prompt-get", prompt, "ftjob-y"), "not a script for ftjob-y"),
        (run("resource-read", csv, uri, "application/json"), "expected one application/json content"),
        (run("resource-read", {"contents": [{**csv["contents"][0], "text": "<html>"}]}, uri, "text/csv"), "unexpected"),
        (
            run("resource-read", {"contents": [{**png["contents"][0], "blob": "PGh0bWw+"}]}, png_uri, "image/png"),
            "no PNG",
        ),
    ]:
        assert failed.returncode == 1 and needle in failed.stderr, failed.stderr
