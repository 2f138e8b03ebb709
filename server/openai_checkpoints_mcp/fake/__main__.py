"""Serve the demo dataset over HTTP: `python -m openai_checkpoints_mcp.fake [--port N] ...`.

For manual testing with a real client, e.g. `OPENAI_BASE_URL=http://127.0.0.1:8765/v1`.
Logs go to stderr.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys

from .app import FakeOpenAI
from .demo import DEMO_JOB_IDS, demo_data

logger = logging.getLogger("openai_checkpoints_mcp.fake")


def main(argv: list[str] | None = None) -> None:
    """Parse flags, then serve the demo dataset with uvicorn until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m openai_checkpoints_mcp.fake", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (default: %(default)s)")
    parser.add_argument("--api-key", default=None, help="require this bearer key (default: accept any request)")
    parser.add_argument(
        "--base64-results", action="store_true", help="serve result files base64-encoded, as OpenAI sometimes does"
    )
    args = parser.parse_args(argv)

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"  # uvicorn's default is stdout
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    app = FakeOpenAI(demo_data(), api_key=args.api_key, base64_results=args.base64_results)
    logger.info("fake OpenAI API on http://%s:%d/v1 (auth: %s)", args.host, args.port, "on" if args.api_key else "off")
    for name, job_id in DEMO_JOB_IDS.items():
        logger.info("  %-14s %s", name, job_id)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", log_config=log_config, lifespan="off")


if __name__ == "__main__":
    main()
