"""What the benchmark scripts share: their error, and the venv each installs the package it compares against into."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


class BenchError(Exception):
    """The benchmark cannot go on (a call errored, or a server did not answer properly); the message says why."""


def imports(module: str) -> Callable[[Path], bool]:
    """An `installed` check for `venv_python`: the venv's python exists and can import `module`."""

    def check(python: Path) -> bool:
        return (
            python.exists()
            and subprocess.run([str(python), "-c", f"import {module}"], capture_output=True).returncode == 0
        )

    return check


def venv_python(venv_dir: Path, package_spec: str, given: str | None, *, installed: Callable[[Path], bool]) -> str:
    """An interpreter that has `package_spec`: `given` if set, else `venv_dir`'s python, the venv created and the
    package pip-installed into it (a message on stderr) unless `installed(python)` says it is there already."""
    if given is not None:
        return given
    python = venv_dir / "bin" / "python"
    if not installed(python):
        print(f"installing {package_spec} into {venv_dir} (once) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv_dir)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", package_spec], check=True)
    return str(python)
