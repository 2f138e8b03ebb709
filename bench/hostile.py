"""A hostile upstream against a real stdio server: what a bad result file or an unbounded body costs.

For each case it starts our stdio server (``openai-checkpoints-mcp``, its default bounds unless flags are given)
against the raw-socket hostile server of the tests (``tests/hostile.py``), calls one tool while sending a ``ping``
every 50 ms, and prints: the answer (its code, or ok) and its size, how long the call took, the slowest ping, the
body bytes the upstream got into the socket, and the server's peak resident memory (``VmHWM``).

    python bench/hostile.py                  # every case, --deadline 10
    python bench/hostile.py --case wide --deadline 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcp import Client, StdioServerParameters  # noqa: E402
from tests.helpers import TEST_KEY  # noqa: E402
from tests.hostile import Answer, Routes, canned_server, endless, gzip_bomb, result_file_routes  # noqa: E402

MIB = 1 << 20


def wide_csv(columns: int = 1_000_000, rows: int = 5) -> bytes:
    header = "step,train_loss,valid_loss," + ",".join(f"c{i}" for i in range(columns))
    cells = ",".join(["1"] * columns)
    lines = [header, *(f"{step * 10},{1 / step:.4f},{2 / step:.4f},{cells}" for step in range(1, rows + 1))]
    return ("\n".join(lines) + "\n").encode()


def long_csv(megabytes: int = 100) -> bytes:
    out, size, step = [b"step,train_loss,valid_loss,train_accuracy\n"], 0, 0
    while size < megabytes * MIB:
        step += 1
        line = f"{step},{1 / step:.6f},{2 / step:.6f},0.5\n".encode()
        out.append(line)
        size += len(line)
    return b"".join(out)


def file_answer(content: bytes, **headers: str) -> Answer:
    return Answer(lambda: [content], {"content-type": "text/csv", "content-length": str(len(content)), **headers})


def cases() -> dict[str, tuple[str, Routes, str, str]]:
    """name -> (what, routes, tool, job id)."""
    made: dict[str, tuple[str, Routes, str, str]] = {}
    made["wide"] = (
        "a 18 MB result file of a million columns",
        result_file_routes("ftjob-wide", "file-wide", file_answer(wide_csv())),
        "training_metrics",
        "ftjob-wide",
    )
    made["long"] = (
        "a 100 MB result file (3.4 million rows)",
        result_file_routes("ftjob-long", "file-long", file_answer(long_csv())),
        "training_metrics",
        "ftjob-long",
    )
    endless_file = Answer(endless(b"1,0.5\n" * 10_000, start=b"step,train_loss\n"), chunked=True)
    made["endless-file"] = (
        "an endless result file",
        result_file_routes("ftjob-endlessfile", "file-endless", endless_file),
        "training_metrics",
        "ftjob-endlessfile",
    )
    start = b'{"object": "fine_tuning.job", "id": "ftjob-endless", "x": "'
    made["endless-json"] = (
        "an endless JSON body",
        {"/v1/fine_tuning/jobs/ftjob-endless": Answer(endless(b"0" * 65536, start=start), chunked=True)},
        "get_job",
        "ftjob-endless",
    )
    bomb = gzip_bomb(1 << 30, start=b'{"object": "fine_tuning.job", "id": "ftjob-bomb", "x": "', end=b'"}')
    made["gzip-bomb"] = (
        f"a gzip body of {len(bomb) / MIB:.1f} MiB expanding to 1 GiB",
        {"/v1/fine_tuning/jobs/ftjob-bomb": file_answer(bomb, **{"content-encoding": "gzip"})},
        "get_job",
        "ftjob-bomb",
    )
    made["huge-length"] = (
        "a Content-Length of 2 GB over a small body",
        {"/v1/fine_tuning/jobs/ftjob-huge": Answer(lambda: [b"{}"], {"content-length": "2000000000"})},
        "get_job",
        "ftjob-huge",
    )
    return made


def _server_pids() -> list[int]:
    """Our stdio server processes that are children of this one."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "")
        if parent == str(os.getpid()) and b"openai" in cmdline:
            found.append(int(entry.name))
    return found


def _peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run_case(name: str, routes: Routes, tool: str, job_id: str, flags: list[str]) -> dict[str, Any]:
    script = shutil.which("openai-checkpoints-mcp") or str(Path(sys.executable).with_name("openai-checkpoints-mcp"))
    with canned_server(routes) as upstream, tempfile.TemporaryDirectory() as cache:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "OPENAI_API_KEY": TEST_KEY,
            "OPENAI_BASE_URL": upstream.base_url,
            "OPENAI_CHECKPOINTS_MCP_CACHE_DIR": cache,
        }
        args = ["--no-persistent-cache", "--max-retries", "0", "--log-level", "ERROR", *flags]
        params = StdioServerParameters(command=script, args=args, env=env)
        async with Client(params, mode="legacy", raise_exceptions=False) as client:
            pids = _server_pids()
            pings: list[float] = []
            result: list[Any] = []
            done = anyio.Event()

            async def call() -> None:
                result.append(await client.call_tool(tool, {"job_id": job_id}))
                done.set()

            started = time.monotonic()
            async with anyio.create_task_group() as group:
                group.start_soon(call)
                while not done.is_set():
                    sent = time.monotonic()
                    await client.send_ping()
                    pings.append(time.monotonic() - sent)
                    await anyio.sleep(0.05)
            took = time.monotonic() - started
            peak = max((_peak_mib(pid) for pid in pids), default=float("nan"))
        served = sum(upstream.written.values())
    answer = result[0]
    text = answer.content[0].text if answer.content else ""
    return {
        "case": name,
        "answer": text.split(":", 1)[0] if answer.is_error else "ok",
        "bytes": len(text),
        "seconds": took,
        "slowest_ping": max(pings, default=0.0),
        "served_mib": served / MIB,
        "peak_mib": peak,
    }


def main() -> None:
    warnings.filterwarnings("ignore", message="ping is removed")  # ping: legacy mode only, which the bench uses
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", action="append", choices=sorted(cases()), help="only these cases")
    parser.add_argument("--deadline", type=float, default=10.0)
    parser.add_argument("flags", nargs="*", help="more server flags, after --")
    args = parser.parse_args()
    known = cases()
    flags = ["--deadline", f"{args.deadline:g}", *args.flags]
    print(f"server flags: {' '.join(flags)}")
    print(f"{'case':<13} {'answer':<13} {'bytes':>8} {'seconds':>8} {'ping max':>9} {'served MiB':>11} {'peak MiB':>9}")
    for name in args.case or list(known):
        what, routes, tool, job_id = known[name]
        row = anyio.run(run_case, name, routes, tool, job_id, flags)
        print(
            f"{row['case']:<13} {row['answer']:<13} {row['bytes']:>8,} {row['seconds']:>8.2f} "
            f"{row['slowest_ping']:>9.3f} {row['served_mib']:>11.1f} {row['peak_mib']:>9.0f}   ({what})"
        )


if __name__ == "__main__":
    main()
