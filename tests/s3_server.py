"""A real S3-API server on 127.0.0.1 for the tests: moto's standalone server, in a thread.

The code under test talks to it over HTTP with its ordinary client (nothing is patched). In
CI (env CI set) a server that cannot start fails the tests that need it; elsewhere they are
skipped with the reason.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

START_TIMEOUT_S = 15


@dataclass(frozen=True)
class S3Server:
    endpoint: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the S3 test server is needed in CI: {reason}")
    pytest.skip(f"no S3 test server: {reason}")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # moto[server] is in the test extra
        _unavailable(f"moto[server] is not installed ({exc})")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    starter = threading.Thread(target=server.start, daemon=True)
    starter.start()
    starter.join(START_TIMEOUT_S)  # start() waits without a bound: bound it here
    if starter.is_alive():
        _unavailable(f"it did not start within {START_TIMEOUT_S} s")
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()
