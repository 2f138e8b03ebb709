"""Serve an ASGI app over real HTTP on a free local port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from starlette.types import ASGIApp

STARTUP_TIMEOUT = 10.0  # seconds to wait for the server to accept connections
SHUTDOWN_TIMEOUT = 5.0  # seconds to wait for the server thread to finish


@contextmanager
def running_server(
    app: ASGIApp, *, host: str = "127.0.0.1", base_path: str = "/v1", lifespan: Literal["on", "off"] = "off"
) -> Iterator[str]:
    """Serve `app` with uvicorn in a daemon thread and yield its base URL.

    The URL includes `base_path`, e.g. `http://127.0.0.1:54321/v1`. The socket is
    bound before the thread starts, so there is no race for the port; the context
    is entered only once uvicorn has started. On exit the server stops and the
    thread is joined. `lifespan="on"` runs the app's lifespan (an MCP HTTP app
    needs it). Uvicorn is imported here, so importing this module stays cheap.
    """
    import uvicorn

    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only then, and without it a small
    # response on a reused connection waits for the client's delayed ACK (about 40 ms on Linux).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"fake-api-{port}")
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the fake API server did not start on {host}:{port}")
            time.sleep(0.01)
        yield f"http://{host}:{port}{base_path.rstrip('/')}"
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT)
        sock.close()
