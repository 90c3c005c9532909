"""A small SSH server for the device-lab tests (asyncssh), run as its own process.

``python ssh_server_main.py PORT HOST_KEY AUTHORIZED_KEYS SESSIONS_DIR`` listens on 127.0.0.1,
accepts the one client key, and runs each command as sshd does: through ``/bin/sh -c`` in a
new session (process group), with the server's environment, stdin/stdout/stderr piped
through the channel. When the client goes away, the command's stdin is closed (it is not
killed), as with OpenSSH. Each running command is listed as ``SESSIONS_DIR/PID`` so a test
can kill a session's processes mid-run. Prints ``ready`` once it listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import asyncssh


async def _pump_in(channel_in: asyncssh.SSHReader[bytes], proc: asyncio.subprocess.Process
                   ) -> None:
    assert proc.stdin is not None
    try:
        while True:
            data = await channel_in.read(65536)
            if not data:
                break
            proc.stdin.write(data)
            await proc.stdin.drain()
    except (asyncssh.Error, OSError, BrokenPipeError, ConnectionError):
        pass
    finally:
        with contextlib.suppress(Exception):
            proc.stdin.close()


async def _pump_out(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
    try:
        while True:
            data = await source.read(65536)
            if not data:
                break
            sink.write(data)
    except (asyncssh.Error, OSError, ConnectionError):
        pass


def make_handler(sessions: Path):  # type: ignore[no-untyped-def]
    async def handle(process: asyncssh.SSHServerProcess[bytes]) -> None:
        command = process.command or "exec /bin/sh"
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True)
        marker = sessions / str(proc.pid)
        marker.write_text(command, encoding="utf-8")
        assert proc.stdout is not None and proc.stderr is not None
        feeder = asyncio.ensure_future(_pump_in(process.stdin, proc))
        await asyncio.gather(_pump_out(proc.stdout, process.stdout),
                             _pump_out(proc.stderr, process.stderr))
        code = await proc.wait()
        feeder.cancel()
        marker.unlink(missing_ok=True)
        try:
            if code < 0:
                process.exit_with_signal(signal.Signals(-code).name[3:])
            else:
                process.exit(code)
        except (asyncssh.Error, OSError):
            pass

    return handle


async def serve(port: int, host_key: str, authorized: str, sessions: Path) -> None:
    await asyncssh.create_server(
        lambda: asyncssh.SSHServer(), "127.0.0.1", port, server_host_keys=[host_key],
        authorized_client_keys=authorized, process_factory=make_handler(sessions),
        encoding=None, reuse_address=True)
    print("ready", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    port, host_key, authorized, sessions = sys.argv[1:5]
    os.makedirs(sessions, exist_ok=True)
    asyncio.run(serve(int(port), host_key, authorized, Path(sessions)))


if __name__ == "__main__":
    main()
