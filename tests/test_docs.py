"""The documentation is checked against the code, so it cannot drift.

* Every example in docs/tools.md (a ``$ openai-checkpoints-mcp --demo call TOOL key=value ...`` line followed by a
  ```json block) is run against the demo server through the real MCP client, and the block must equal the real
  result, elisions aside. The two elisions:

  - an object with a ``"..."`` key leaves out its other keys (the value of ``"..."`` is free text);
  - a list whose last element is ``"..."`` shows only a prefix of the real list.

  Everything else is exact: every key of an object without ``"..."``, every element of a list without it.
* The flags, their defaults and the environment variables of docs/configuration.md and docs/http.md, the tool
  tables of the README and docs/tools.md, and every ``openai-checkpoints-mcp`` command line in the README and docs/
  are parsed from the text and checked against the argparse parser, the settings' defaults, the variables the
  package reads and the tools the server serves.
* server.json, manifest.json and the README's ``mcp-name`` marker agree with pyproject.toml and with each other.

After a change to the demo data or a result: ``UPDATE_DOCS=1 python -m pytest tests/test_docs.py`` rewrites the
JSON blocks of docs/tools.md from real results, keeping each block's elisions; review the diff and commit it.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import os
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from openai_checkpoints_mcp import cli
from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.server import create_server
from openai_checkpoints_mcp.transport.http import HttpOptions

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
TOOLS_DOC = DOCS / "tools.md"
PACKAGE = ROOT / "server" / "openai_checkpoints_mcp"
ELIDED = "..."
PROG = "openai-checkpoints-mcp"

pytestmark = pytest.mark.anyio


def updating_docs() -> bool:
    """Whether to rewrite the examples (``UPDATE_DOCS=1``); an error under CI, where it would check nothing."""
    if os.environ.get("UPDATE_DOCS") != "1":
        return False
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail("UPDATE_DOCS=1 under CI would compare every example with itself; regenerate locally.")
    return True


# --- the examples of docs/tools.md ------------------------------------------------------------------------------

EXAMPLE = re.compile(
    r"^```console\n\$ (?P<command>openai-checkpoints-mcp [^\n]*? call [^\n]*)\n```\n```json\n(?P<json>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)


@dataclass
class Example:
    command: str
    documented: Any
    start: int
    end: int
    """Character offsets of the JSON text in docs/tools.md."""

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.command)[1:]


def examples(text: str) -> list[Example]:
    return [
        Example(m["command"], json.loads(m["json"]), m.start("json"), m.end("json")) for m in EXAMPLE.finditer(text)
    ]


async def run_example(example: Example) -> Any:
    """The example's command as the CLI runs it: parsed by the real parser, arguments typed by the tool's schema,
    called through the MCP client on a fresh demo server."""
    args = cli.build_parser().parse_args(example.argv)
    assert args.command == "call" and args.demo, f"examples call a tool in demo mode: {example.command}"
    settings = Settings.from_env({}, demo=True, allow_writes=args.allow_writes)
    async with Client(create_server(settings)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert args.tool in tools, f"{example.command}: no tool {args.tool}"
        arguments = cli.parse_arguments(args.arguments, tools[args.tool].input_schema)
        result = await client.call_tool(args.tool, arguments)
    assert not result.is_error, f"{example.command}: {result.content}"
    return result.structured_content


def mismatches(documented: Any, actual: Any, path: str = "$") -> Iterator[str]:
    """Where `documented` differs from `actual`, given the two elisions (see the module docstring)."""
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            yield f"{path}: documented an object, got {actual!r}"
            return
        shown = {k: v for k, v in documented.items() if k != ELIDED}
        if ELIDED not in documented and set(actual) != set(shown):
            yield f"{path}: keys differ: documented {sorted(shown)}, actual {sorted(actual)}"
        for key, value in shown.items():
            if key not in actual:
                yield f"{path}.{key}: documented but not in the result"
            else:
                yield from mismatches(value, actual[key], f"{path}.{key}")
    elif isinstance(documented, list):
        if not isinstance(actual, list):
            yield f"{path}: documented a list, got {actual!r}"
            return
        shown = documented[:-1] if documented and documented[-1] == ELIDED else documented
        if len(shown) > len(actual) or (shown is documented and len(shown) != len(actual)):
            yield f"{path}: documented {len(shown)} items, the result has {len(actual)}"
        for i, (value, real) in enumerate(zip(shown, actual, strict=False)):
            yield from mismatches(value, real, f"{path}[{i}]")
    elif documented != actual or type(documented) is not type(actual):
        yield f"{path}: documented {documented!r}, actual {actual!r}"


def regenerate(documented: Any, actual: Any) -> Any:
    """`actual`, shaped like `documented`: the same keys and list items left out (a null block: all of it)."""
    if isinstance(documented, dict) and isinstance(actual, dict):
        if ELIDED not in documented:
            return {k: regenerate(documented.get(k), v) for k, v in actual.items()}
        kept = {k: regenerate(v, actual[k]) for k, v in documented.items() if k != ELIDED and k in actual}
        return kept | {ELIDED: documented[ELIDED]}
    if isinstance(documented, list) and isinstance(actual, list):
        if documented and documented[-1] == ELIDED:
            return [regenerate(d, a) for d, a in zip(documented[:-1], actual, strict=False)] + [ELIDED]
        return [regenerate(documented[i] if i < len(documented) else None, a) for i, a in enumerate(actual)]
    return actual


def render(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def test_tools_doc_has_examples_of_every_read_tool():
    documented = {cli.build_parser().parse_args(e.argv).tool for e in examples(TOOLS_DOC.read_text())}
    assert documented == set(served_tool_names(allow_writes=False))


async def test_tools_doc_examples_are_real_results():
    text = TOOLS_DOC.read_text()
    found = examples(text)
    assert found, "docs/tools.md has no examples"
    if updating_docs():
        for example in reversed(found):  # from the end, so earlier offsets stay valid
            fresh = render(regenerate(example.documented, await run_example(example)))
            text = text[: example.start] + fresh + text[example.end :]
        TOOLS_DOC.write_text(text)
        found = examples(text)
    problems = [
        f"{example.command}\n  {problem}"
        for example in found
        for problem in mismatches(example.documented, await run_example(example))
    ]
    assert not problems, "docs/tools.md differs from the real results (UPDATE_DOCS=1 regenerates):\n" + "\n".join(
        problems
    )


def test_elision_rules():
    actual = {"a": 1, "b": [1, 2, 3], "c": {"d": 4, "e": 5}}
    assert not list(mismatches({"a": 1, "b": [1, ELIDED], "c": {"d": 4, ELIDED: "e left out"}}, actual))
    assert list(mismatches({"a": 1, "b": [1, 2, 3]}, actual))  # c left out without "..."
    assert list(mismatches({"a": 1, "b": [1, 2], "c": {"d": 4, "e": 5}}, actual))  # a shorter list without "..."
    assert list(mismatches({"a": 1.0, "b": [2, ELIDED], "c": {ELIDED: ""}}, actual))  # wrong prefix
    assert list(mismatches({"a": True, ELIDED: ""}, {"a": 1}))  # True is not 1
    assert regenerate({"a": 0, "b": [0, ELIDED], ELIDED: "x"}, actual) == {"a": 1, "b": [1, ELIDED], ELIDED: "x"}


# --- tables and facts -------------------------------------------------------------------------------------------


def served_tool_names(*, allow_writes: bool) -> list[str]:
    import anyio

    async def names() -> list[str]:
        async with Client(create_server(Settings.from_env({}, demo=True, allow_writes=allow_writes))) as client:
            return [t.name for t in (await client.list_tools()).tools]

    return anyio.run(names)


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the first Markdown table after the line `heading` (header and rule rows dropped)."""
    lines = text.splitlines()
    start = lines.index(heading)
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows.append([c.replace("\\|", "|") for c in cells])
    return rows[2:]


def code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_readme_tool_table_is_the_served_tools():
    rows = table_rows(README.read_text(), "## Tools")
    names = [code_spans(row[0])[0] for row in rows]
    assert names == served_tool_names(allow_writes=True)


SIGNATURE = re.compile(r"^(\w+)\((.*)\)$")


def test_tools_doc_signatures_match_the_input_schemas():
    import anyio

    async def schemas() -> dict[str, dict[str, Any]]:
        async with Client(create_server(Settings.from_env({}, demo=True, allow_writes=True))) as client:
            return {t.name: t.input_schema for t in (await client.list_tools()).tools}

    served = anyio.run(schemas)
    rows = table_rows(TOOLS_DOC.read_text(), "## The tools")
    seen = []
    for row in rows:
        match = SIGNATURE.match(code_spans(row[0])[0])
        assert match, row[0]
        name, params = match.groups()
        seen.append(name)
        schema = served[name]
        documented: dict[str, Any] = {}
        for param in filter(None, (p.strip() for p in params.split(","))):
            key, sep, default = param.partition("=")
            documented[key] = json.loads(default) if sep else "required"
        properties = schema.get("properties", {})
        assert list(documented) == list(properties), f"{name}: arguments"
        for key, default in documented.items():
            expected = "required" if key in schema.get("required", []) else properties[key].get("default")
            assert default == expected, f"{name}({key}=...): documented {default!r}, the schema says {expected!r}"
    assert seen == list(served)


def test_resources_doc_tables_are_the_templates_and_prompts():
    from openai_checkpoints_mcp.tools.prompts import PROMPTS
    from openai_checkpoints_mcp.tools.resources import TEMPLATES

    text = (DOCS / "resources.md").read_text()
    templates = [(code_spans(row[0])[0], code_spans(row[1])[0]) for row in table_rows(text, "## Resource templates")]
    assert templates == [(spec.uri_template, spec.mime_type) for spec in TEMPLATES]
    prompts = table_rows(text, "## Prompts")
    assert [code_spans(row[0])[0] for row in prompts] == [spec.name for spec in PROMPTS]
    for row, spec in zip(prompts, PROMPTS, strict=True):
        documented = [span for span in code_spans(row[1]) if "=" not in span]
        assert documented == list(inspect.signature(spec.fn).parameters), spec.name


def all_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every option string of the parser and of its subcommands, with its action (help and version left out)."""
    found: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= all_options(sub)
        elif not isinstance(action, argparse._HelpAction):
            found |= {option: action for option in action.option_strings}
    return found


def documented_flags() -> dict[str, str]:
    """Each flag of the flag tables in docs/configuration.md and docs/http.md, with its default cell."""
    flags: dict[str, str] = {}
    for path, heading in ((DOCS / "configuration.md", "## Flags"), (DOCS / "http.md", "## Flags")):
        for row in table_rows(path.read_text(), heading):
            flag = code_spans(row[0])[0].split()[0]
            flags[flag] = row[-1]
    return flags


def test_every_flag_is_documented_once_with_its_default():
    options = all_options(cli.build_parser())
    documented = documented_flags()
    assert set(documented) == set(options)
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    defaults |= {f.name: f.default for f in dataclasses.fields(HttpOptions)}
    for flag, cell in documented.items():
        action = options[flag]
        spans = code_spans(cell)
        if action.dest in defaults and not isinstance(defaults[action.dest], bool):
            expected = defaults[action.dest]
            shown = (spans[0] if spans else cell.split()[0]).replace(",", "")
            value = type(expected)(shown) if isinstance(expected, int | float) else shown
            assert value == expected, f"{flag}: documented default {cell!r}, the code's is {expected!r}"
        elif isinstance(action.default, str) and action.default != argparse.SUPPRESS:
            assert spans and spans[0] == action.default, f"{flag}: documented default {cell!r}, not {action.default}"


def test_flag_choices_are_documented():
    options = all_options(cli.build_parser())
    text = (DOCS / "configuration.md").read_text() + (DOCS / "http.md").read_text()
    for flag, action in options.items():
        for choice in action.choices or ():
            assert f"`{choice}`" in text, f"{flag}: choice {choice} is not documented"


def environment_variables_read_by_the_package() -> set[str]:
    """Every string constant in the package that names a variable of ours, of OpenAI's or of Azure's."""
    names: set[str] = set()
    pattern = re.compile(r"(OPENAI|AZURE_OPENAI|MCP)_[A-Z][A-Z0-9_]*")
    for path in PACKAGE.rglob("*.py"):
        if "fake" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and pattern.fullmatch(node.value):
                names.add(node.value)
    return names


def documented_variables() -> set[str]:
    rows = table_rows((DOCS / "configuration.md").read_text(), "## Environment variables")
    return {code_spans(row[0])[0] for row in rows}


def test_every_environment_variable_is_documented():
    assert documented_variables() == environment_variables_read_by_the_package()


def test_documented_command_lines_parse():
    """Every ``openai-checkpoints-mcp ...`` command line shown in a console block is accepted by the real parser."""
    parser = cli.build_parser()
    checked = 0
    for path in [README, *sorted(DOCS.glob("*.md"))]:
        for block in re.findall(r"```console\n(.*?)```", path.read_text(), re.DOTALL):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line.removeprefix("$ "), comments=True)
                at = [i for i, word in enumerate(words) if word.rsplit("/", 1)[-1] == PROG]
                if not at:
                    continue
                argv = words[at[0] + 1 :]
                argv = argv[: argv.index("&&")] if "&&" in argv else argv
                try:
                    args = parser.parse_args(argv)
                except SystemExit as exc:
                    if exc.code != 0:  # --help and --version exit 0
                        pytest.fail(f"{path.name}: {line!r} is refused by the parser")
                    continue
                if args.command == "call":
                    assert args.tool in served_tool_names(allow_writes=True), line
                checked += 1
    assert checked >= 5


# --- the README, packaging and registry metadata ----------------------------------------------------------------


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_readme_is_short_and_its_test_command_is_what_ci_runs():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    setup = re.search(r"^\$ python -m venv \.venv && .*&& \.venv/bin/python -m pytest$", text, re.MULTILINE)
    assert setup, "the README's one-line test set-up ends in the test command"
    ci_command = re.search(r"CI runs `(python -m pytest[^`]*)`", text)
    assert ci_command, "the README names the command CI runs"
    ci = (ROOT / ".ci" / "run").read_text()
    assert '"$py" -m pytest' + ci_command[1].removeprefix("python -m pytest") + " " in ci


def test_registry_metadata_agrees_with_pyproject():
    project = pyproject()["project"]
    server = json.loads((ROOT / "server.json").read_text())
    manifest = json.loads((ROOT / "manifest.json").read_text())
    marker = re.search(r"<!-- mcp-name: (\S+) -->", README.read_text())
    assert marker and marker[1] == server["name"]
    assert server["version"] == project["version"] == manifest["version"]
    (package,) = server["packages"]
    assert package["registryType"] == "pypi" and package["identifier"] == project["name"]
    assert package["version"] == project["version"]
    assert len(server["description"]) <= 100
    variables = environment_variables_read_by_the_package()
    assert {v["name"] for v in package["environmentVariables"]} <= variables
    assert set(manifest["server"]["mcp_config"].get("env", {})) <= variables
    assert [t["name"] for t in manifest["tools"]] == served_tool_names(allow_writes=False)
    assert project["urls"]["Repository"] == server["repository"]["url"] == manifest["repository"]["url"]


def test_every_module_in_the_development_layout_exists():
    text = (DOCS / "development.md").read_text()
    section = text[text.index("## Layout") : text.index("## Data flow")]
    layout = section[section.index("```") : section.rindex("```")]
    named = set(re.findall(r"\b([a-z_]+\.py)\b", layout))
    present = {path.name for path in (ROOT / "server").rglob("*.py")} | {p.name for p in (ROOT / "bench").glob("*.py")}
    assert named and named <= present, f"not in the tree: {sorted(named - present)}"
    modules = {p.name for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" and "fake" not in p.parts}
    assert modules <= named | {"__main__.py"}, f"not in the layout: {sorted(modules - named)}"
