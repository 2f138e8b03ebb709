"""The command line: flags and their defaults, the environment as openai-python names it, `call` and its typed
key=value arguments."""

from __future__ import annotations

import dataclasses
import subprocess

import pytest

from openai_checkpoints_mcp.api.cache import MAX_FILE_BYTES
from openai_checkpoints_mcp.cli import _settings, build_parser, main, parse_arguments
from openai_checkpoints_mcp.config import CACHE_DIR_ENV, DEFAULT_BASE_URL, DEMO_BASE_URL, Settings


def test_documented_defaults():
    """README, Configuration and Cache: listing reused 60 s, job objects 600 s, 16 requests in flight, result files
    at most 64 MiB, Azure's api-version 2024-10-21."""
    settings = Settings()
    assert (settings.listing_ttl, settings.cache_ttl, settings.concurrency) == (
        60,
        600,
        16,
    )
    assert MAX_FILE_BYTES == 64 * 1024 * 1024
    azure = Settings.from_env(
        {
            "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com",
            "AZURE_OPENAI_API_KEY": "k",
        }
    )
    assert azure.api_version == "2024-10-21"


SCHEMA = {
    "properties": {
        "job_id": {"type": "string"},
        "after": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "top_k": {"type": "integer"},
        "metadata": {"anyOf": [{"type": "object"}, {"type": "null"}]},
        "goal": {"anyOf": [{"enum": ["min", "max"], "type": "string"}, {"type": "null"}]},
    }
}


@pytest.mark.parametrize(
    "argv",
    [
        ["--demo", "--timeout", "5", "call", "list_jobs"],
        ["call", "list_jobs", "--demo", "--timeout", "5"],
        ["--timeout", "9", "call", "list_jobs", "--demo", "--timeout", "5"],
    ],
)
def test_flags_work_before_and_after_call(argv, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    args = build_parser().parse_args(argv)
    settings = _settings(args)
    assert args.command == "call" and settings.demo is True and settings.timeout == 5
    assert settings.base_url == DEMO_BASE_URL and settings.api_key is None


def test_server_flags_and_defaults(monkeypatch):
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(CACHE_DIR_ENV)
    defaults = _settings(build_parser().parse_args([]))
    assert defaults == dataclasses.replace(Settings(), persistent_cache=True)  # the command line keeps the cache
    flagged = _settings(build_parser().parse_args(["--max-retries", "0", "--deadline", "10", "--max-items", "50"]))
    assert (flagged.max_retries, flagged.deadline, flagged.max_items, flagged.demo) == (
        0,
        10,
        50,
        False,
    )


@pytest.mark.parametrize(
    "argv",
    [["--timeout", "0"], ["--max-retries", "11"], ["--max-items", "0"], ["call"]],
)
def test_bad_flags_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2 and "error:" in capsys.readouterr().err


def test_environment_is_read_as_openai_python_names_it():
    env = {
        "OPENAI_API_KEY": " sk-x ",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "OPENAI_ORG_ID": "org-a",
        "OPENAI_PROJECT_ID": "",
    }
    settings = Settings.from_env(env, timeout=3.0, max_retries=None)
    assert settings.api_key == "sk-x" and settings.base_url == "http://127.0.0.1:9/v1"
    assert settings.organization == "org-a" and settings.project is None
    assert settings.timeout == 3.0 and settings.max_retries == 2
    assert Settings.from_env({}).base_url == DEFAULT_BASE_URL
    assert "sk-x" not in repr(settings) and "sk-x" not in str(settings)


def test_the_demo_start_up_line_does_not_say_the_key_is_missing():
    """Hardening issue, item 9: demo mode's start-up line said ``api_key=missing``; the demo needs none."""
    shown = repr(Settings.from_env({}, demo=True))
    assert "missing" not in shown and "api_key=none needed (demo)" in shown
    assert "api_key=missing (OPENAI_API_KEY)" in repr(Settings.from_env({}))


def test_demo_ignores_a_real_key_and_base_url():
    settings = Settings.from_env({"OPENAI_API_KEY": "sk-real", "OPENAI_BASE_URL": "https://x/v1"}, demo=True)
    assert settings.api_key is None and settings.base_url == DEMO_BASE_URL


def test_key_value_arguments_are_typed_by_the_schema():
    arguments = parse_arguments(
        [
            "job_id=ftjob-123",
            "after=ftckpt_1",
            "top_k=5",
            'metadata={"team": "nlp"}',
            "goal=min",
        ],
        SCHEMA,
    )
    assert arguments == {
        "job_id": "ftjob-123",
        "after": "ftckpt_1",
        "top_k": 5,
        "metadata": {"team": "nlp"},
        "goal": "min",
    }
    assert parse_arguments(["job_id=42"], SCHEMA) == {"job_id": "42"}  # a string argument stays text


def test_bad_json_and_a_bare_list_item_are_told_as_such():
    """Hardening issue, item 9: bad JSON was reported as a type error; ``job_ids=ftjob-x`` got no hint of the list
    syntax."""
    schema = {"properties": {**SCHEMA["properties"], "job_ids": {"type": "array", "items": {"type": "string"}}}}
    with pytest.raises(ValueError) as bad:
        parse_arguments(['metadata={"team": nlp}'], schema)
    assert str(bad.value) == (
        "metadata: the value is JSON that failed to parse (Expecting value at position 9): '{\"team\": nlp}'"
    )
    with pytest.raises(ValueError) as bare:
        parse_arguments(["job_ids=ftjob-x"], schema)
    assert str(bare.value) == """job_ids is a list: give it as JSON, e.g. job_ids='["ftjob-x"]'"""
    assert parse_arguments(['job_ids=["ftjob-x"]'], schema) == {"job_ids": ["ftjob-x"]}


def test_call_without_a_tool_and_call_version():
    """Hardening issue, item 9: ``call`` alone said key=value is required (it is not); ``call --version`` was
    refused."""
    from .helpers import console_script

    alone = subprocess.run([console_script(), "call"], capture_output=True, text=True, timeout=60)
    last = alone.stderr.splitlines()[-1]
    assert alone.returncode == 2 and "required" not in alone.stderr
    assert (
        last == "openai-checkpoints-mcp: error: call needs a tool name: call TOOL [key=value ...] (e.g. call list_jobs)"
    )
    version = subprocess.run([console_script(), "call", "list_jobs", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("openai-checkpoints-mcp ")
    assert " call " not in version.stdout


def test_a_repeated_key_value_argument_is_refused():
    """Hardening issue, item 9: ``top_k=1 top_k=2`` silently kept the last."""
    with pytest.raises(ValueError, match=r"^top_k is given more than once; give each argument once$"):
        parse_arguments(["top_k=1", "top_k=2"], SCHEMA)


@pytest.mark.parametrize(("pair", "message"), [("top_k", "key=value"), ("nope=1", "not an argument")])
def test_bad_key_value_arguments(pair, message):
    with pytest.raises(ValueError, match=message):
        parse_arguments([pair], SCHEMA)


def test_call_into_a_pipe_closed_early_exits_0_without_a_traceback():
    """``call ... | head -1``: the reader left before the JSON was written (here: at once); not a failure."""
    import shlex

    from .helpers import DEMO_JOB, console_script

    command = f"{shlex.quote(console_script())} --demo call list_checkpoints job_id={DEMO_JOB} | true"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr
