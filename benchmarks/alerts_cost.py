"""What alerts cost: Apprise's import and plugin load, one delivery, and the hang bound.

Side by side, in fresh processes (bytecode cached), medians of ``--repeat`` runs:

- ``python -c "import devtrack.cli"`` (what every command pays) vs the same plus
  ``import apprise`` vs plus loading Apprise's plugins (its first ``add``): the ratios show
  why devtrack imports Apprise only when a message is sent;
- one delivery to a json:// webhook on 127.0.0.1 through ``devtrack.delivery.deliver``, in
  process, after the first (which pays the import);
- a target that accepts the connection and never answers, with Apprise told to wait 30 s
  (``rto=30``): how long ``deliver`` takes with a 1 s and a 5 s timeout.

Run: python benchmarks/alerts_cost.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _fresh(code: str, repeat: int) -> float:
    """Median wall time (s) of ``python -c code`` in a fresh process."""
    subprocess.run([sys.executable, "-c", code], check=True)  # warm the bytecode cache
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    base = _fresh("import devtrack.cli", args.repeat)
    with_import = _fresh("import devtrack.cli, apprise", args.repeat)
    with_plugins = _fresh("import devtrack.cli, apprise; "
                          "apprise.Apprise().add('json://127.0.0.1:9/x')", args.repeat)
    print(f"import devtrack.cli                    {base * 1000:7.0f} ms   1.00x")
    print(f"  + import apprise                     {with_import * 1000:7.0f} ms   "
          f"{with_import / base:.2f}x  (+{(with_import - base) * 1000:.0f} ms)")
    print(f"  + load its plugins (first add)       {with_plugins * 1000:7.0f} ms   "
          f"{with_plugins / base:.2f}x  (+{(with_plugins - base) * 1000:.0f} ms)")

    from devtrack.delivery import deliver

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"json://127.0.0.1:{server.server_address[1]}/hook"
    started = time.perf_counter()
    first = deliver([url], "t", "b", "info", 5.0)
    first_s = time.perf_counter() - started
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        attempts = deliver([url], "t", "b", "info", 5.0)
        times.append(time.perf_counter() - started)
        assert attempts[0].delivered, attempts
    assert first[0].delivered, first
    print(f"deliver to a local json:// webhook: first {first_s * 1000:.0f} ms (imports), "
          f"then median {statistics.median(times) * 1000:.1f} ms")
    server.shutdown()

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []
    threading.Thread(target=lambda: [held.append(listener.accept()) for _ in range(64)],
                     daemon=True).start()
    hang = f"json://127.0.0.1:{listener.getsockname()[1]}/hook?rto=30"
    for timeout in (1.0, 5.0):
        started = time.perf_counter()
        [attempt] = deliver([hang], "t", "b", "info", timeout)
        took = time.perf_counter() - started
        print(f"hanging target (Apprise asked to wait 30 s), timeout {timeout:g} s: returned "
              f"after {took:.2f} s ({took / timeout:.2f}x the timeout): {attempt.error}")


if __name__ == "__main__":
    main()
