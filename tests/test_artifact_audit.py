"""``audit verify`` and the stored bytes: every referenced artifact and dataset file rehashed,
unreferenced files and leftovers of interrupted writes listed (devtrack/artifact_audit.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from devtrack.workspace import DOT_DIR, open_workspace
from tests.conftest import CliResult, WorkspaceFactory, raw_sql

pytestmark = pytest.mark.both_backends


@pytest.fixture(scope="module")
def files_template(tmp_path_factory: pytest.TempPathFactory, mlp_onnx: Path,
                   mlp_onnx_b: Path, module_workspaces: WorkspaceFactory) -> Path:
    """Two releases sharing one artifact, a third with its own, and a dataset; by the CLI."""
    from devtrack.cli import main

    base = tmp_path_factory.mktemp("store-audit")
    x = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
    np.savez(base / "digits.npz", input=x, labels=np.arange(8) % 4)
    root = module_workspaces.init(base / "ws")
    for step in (["dataset", "add", base / "digits.npz", "--name", "digits", "-w", root],
                 ["register", mlp_onnx, "-m", "kws", "-v", "1.0", "-w", root],
                 ["register", mlp_onnx, "-m", "kws", "-v", "1.1", "-w", root],
                 ["register", mlp_onnx_b, "-m", "kws", "-v", "1.2", "-w", root]):
        assert main([str(a) for a in step]) == 0, step
    return root


@pytest.fixture
def root(files_template: Path, tmp_path: Path, workspaces: WorkspaceFactory) -> Path:
    return workspaces.copy(files_template, tmp_path / "ws")


def stored(root: Path, what: str) -> Path:
    """The store file of kws@VERSION or of dataset NAME, made writable as an intruder would."""
    with open_workspace(root) as ws:
        if "@" in what:
            row = ws.store.one("SELECT artifact_sha256 AS sha FROM releases WHERE version = ?",
                               (what.partition("@")[2],))
        else:
            row = ws.store.one("SELECT sha256 AS sha FROM datasets WHERE name = ?", (what,))
        assert row is not None
        path = ws.artifacts.path_for(row["sha"])
    path.chmod(0o644)
    return path


def relative(root: Path, path: Path) -> str:
    return str(path.relative_to(root))


def append_byte(path: Path) -> None:
    with path.open("ab") as fh:
        fh.write(b"\0")


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def swap_in_other_release(path: Path) -> None:
    other = next(p for p in path.parent.parent.rglob("*") if p.is_file() and p != path
                 and p.stat().st_size != path.stat().st_size and p.suffix == "")
    path.write_bytes(other.read_bytes())


CASES: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "artifact edited": ("kws@1.0", append_byte, "of releases kws@1.0, kws@1.1 was modified"),
    "artifact bytes flipped": ("kws@1.2", flip_last_byte, "of release kws@1.2 was modified"),
    "artifact swapped": ("kws@1.2", swap_in_other_release, "of release kws@1.2 was modified"),
    "artifact deleted": ("kws@1.0", Path.unlink, "of releases kws@1.0, kws@1.1 is missing"),
    "dataset edited": ("digits", flip_last_byte, "of dataset digits was modified"),
    "dataset deleted": ("digits", Path.unlink, "of dataset digits is missing"),
}


def test_a_clean_store_verifies_and_says_what_it_read(root: Path, run_cli) -> None:
    result: CliResult = run_cli("audit", "verify", "-w", root)
    assert result.exit_code == 0, result.err
    assert "Files: 3 stored files rehashed" in result.out
    assert " read in " in result.out and "all intact" in result.out
    assert result.err == ""  # no progress line when stderr is not a terminal
    report = json.loads(run_cli("audit", "verify", "--json", "-w", root).out)["files"]
    assert report["files"] == 3 and report["quick"] is False
    assert report["bytes_read"] == sum(
        p.stat().st_size for p in (root / DOT_DIR / "artifacts").rglob("*") if p.is_file())


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_altered_or_missing_file_is_named_with_exit_1(root: Path, run_cli,
                                                         name: str) -> None:
    what, damage, expected = CASES[name]
    path = stored(root, what)
    damage(path)
    result: CliResult = run_cli("audit", "verify", "-w", root)
    assert result.exit_code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: stored file "), lines
    assert relative(root, path) in lines[0] and expected in lines[0], lines
    # The database itself is intact: verify says so, and --json carries the file.
    assert "every table agrees with it" in result.out
    report = json.loads(run_cli("audit", "verify", "--json", "-w", root).out)
    assert report["ok"] is False and report["state_problems"] == []
    (problem,) = report["files"]["problems"]
    assert problem["path"] == relative(root, path) and expected in problem["message"]


@pytest.mark.parametrize(("damage", "quick_finds"), [
    (flip_last_byte, False),  # same size: only reading the bytes shows it
    (append_byte, True),
    (Path.unlink, True),
])
def test_quick_checks_presence_and_size_without_reading(root: Path, run_cli,
                                                        damage: Callable[[Path], None],
                                                        quick_finds: bool) -> None:
    damage(stored(root, "kws@1.2"))
    quick: CliResult = run_cli("audit", "verify", "--quick", "-w", root)
    assert "bytes not read (--quick" in quick.out
    assert quick.exit_code == (1 if quick_finds else 0), quick.err
    report = json.loads(run_cli("audit", "verify", "--quick", "--json", "-w", root).out)
    assert report["files"]["quick"] is True and report["files"]["bytes_read"] == 0
    assert run_cli("audit", "verify", "-w", root).exit_code == 1


def test_unreferenced_files_and_leftovers_are_noted_not_failed(root: Path, run_cli) -> None:
    shard = stored(root, "kws@1.0").parent
    (shard / ".incoming-k2j3h4").write_bytes(b"x" * 5000)  # a register killed mid-copy
    stray = root / DOT_DIR / "artifacts" / "sha256" / "ff" / ("f" * 64)
    stray.parent.mkdir()
    stray.write_bytes(b"old")
    result: CliResult = run_cli("audit", "verify", "-w", root)
    assert result.exit_code == 0, result.err
    notes = [line for line in result.out.splitlines() if line.startswith("note: ")]
    assert len(notes) == 2, result.out
    assert "not referenced by any row" in notes[0] and relative(root, stray) in notes[0]
    assert "left by an interrupted write" in notes[1] and ".incoming-k2j3h4" in notes[1]
    files = json.loads(run_cli("audit", "verify", "--json", "-w", root).out)["files"]
    assert files["unreferenced"] == [{"path": relative(root, stray), "size_bytes": 3}]
    assert files["leftovers"][0]["size_bytes"] == 5000


def _verify_as_nobody(root: Path) -> tuple[int, str]:
    """`audit verify` in a forked child that dropped root for the user nobody (root reads
    any file; CI runs as root). The child runs code the parent has already imported (the
    interpreter's own files may not be readable by nobody): exit code and stderr back."""
    import io
    import pwd
    from contextlib import redirect_stderr, redirect_stdout

    from devtrack.cli import main

    main(["audit", "verify", "-w", str(root)])  # as root: imports all verify needs
    nobody = pwd.getpwnam("nobody")
    for path in (root, *root.rglob("*")):
        os.chown(path, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
    for parent in root.parents:  # pytest's tmp folders are 0700: let nobody walk in
        if parent == Path("/tmp"):
            break
        parent.chmod(parent.stat().st_mode | 0o111)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 3
        try:
            os.close(read_fd)
            passfile = os.environ.get("PGPASSFILE")
            if passfile and os.path.isfile(passfile):  # nobody's own password, as PGPASSWORD
                line = Path(passfile).read_text().strip()
                os.environ["PGPASSWORD"] = line.rsplit(":", 1)[1]
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            err = io.StringIO()
            with redirect_stdout(io.StringIO()), redirect_stderr(err):
                code = main(["audit", "verify", "-w", str(root)])
            os.write(write_fd, err.getvalue().encode())
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        err_text = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err_text


def test_an_unreadable_file_is_named(root: Path, run_cli) -> None:
    path = stored(root, "digits")
    path.chmod(0)
    if os.geteuid() == 0:  # as in CI: measured as an unprivileged user
        code, err = _verify_as_nobody(root)
    else:
        result: CliResult = run_cli("audit", "verify", "-w", root)
        code, err = result.exit_code, result.err
    assert code == 1 and "cannot be read by this user" in err, err


@pytest.mark.parametrize("args", [("--quick", "extra"), ("--quick=yes",), ("--fast",)])
def test_bad_options_get_one_line_and_exit_2(root: Path, run_cli, args: tuple[str, ...]) -> None:
    result: CliResult = run_cli("audit", "verify", *args, "-w", root)
    assert result.exit_code == 2
    assert len(result.err.strip().splitlines()) == 1 and result.err.startswith("error: ")


class _Terminal:
    """stderr as a terminal sees it."""

    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def test_hashing_shows_one_progress_line_on_a_terminal_and_clears_it(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from devtrack.auditing import verify_audit
    from devtrack.cli.lifecycle_cmds import TerminalProgress

    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setattr(TerminalProgress, "DELAY_S", 0.0)
    monkeypatch.setattr("devtrack.artifact_audit.CHUNK", 256)  # many updates on small files
    progress = TerminalProgress()
    with open_workspace(root) as ws:
        assert verify_audit(ws, progress=progress).ok
    progress.close()
    assert "\rrehashing stored files: " in terminal.text and "%)" in terminal.text
    assert "\n" not in terminal.text and terminal.text.endswith("\r\033[K")


def test_a_row_naming_no_valid_sha256_is_named_and_nothing_outside_is_read(
        root: Path, run_cli) -> None:
    raw_sql(root, "UPDATE datasets SET sha256 = '../../../../etc/hostname'")
    result: CliResult = run_cli("audit", "verify", "-w", root)
    assert result.exit_code == 1
    assert ("error: dataset digits names no stored file: '../../../../etc/hostname' is not a "
            "sha256") in result.err
