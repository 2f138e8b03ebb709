"""The CI helper (.ci/mcp_checks.py) fails on a bad tools list, a bad tool result, a conformance warning or
nothing run."""

from __future__ import annotations

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
