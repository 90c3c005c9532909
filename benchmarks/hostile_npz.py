"""What reading a hostile ``.npz`` costs: devtrack's header-first reader vs ``numpy.load``.

Builds, in a temporary folder, the two files of issue 10 — a 244-byte zip whose header
declares (10^12, 16) float32 (64 TB) and a ~2 MB zip bomb that inflates to 2 GiB — plus an
honest 64 MiB dataset. Each file is read in a fresh child process, side by side, once by
``devtrack.npzfile.read_npz`` (default 1 GiB limit) and once by ``numpy.load`` the way
devtrack read datasets before (``allow_pickle=False``, every array materialised), best of 5
(1 for the bomb). Each child reports its outcome, wall time and peak RSS (``VmHWM``, Linux);
the script prints both and the ratios. The numpy child of the bomb really takes ~2 GiB of
memory for ~25 s.

Run: python benchmarks/hostile_npz.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile_files import huge_shape_npz, zip_bomb_npz  # noqa: E402

CHILD = """
import sys, time
path, how, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
import numpy as np
from numpy.lib import format
from devtrack.npzfile import read_npz
seconds = float("inf")
for _ in range(repeat):  # best of `repeat`: this machine is shared
    start = time.perf_counter()
    try:
        if how == "devtrack":
            arrays = read_npz(__import__("pathlib").Path(path))
        else:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: np.asarray(data[k]) for k in data.files}
        outcome = "loaded " + "+".join(str(a.nbytes) for a in arrays.values()) + " B"
    except Exception as exc:
        outcome = "refused: " + type(exc).__name__ + ": " + str(exc)[:70]
    seconds = min(seconds, time.perf_counter() - start)
    arrays = {}
status = open("/proc/self/status").read()  # VmHWM: this process's own peak (ru_maxrss
peak = int(status.split("VmHWM:")[1].split()[0])  # can carry the parent's over a fork)
print(f"{seconds:.4f} {peak} {outcome}")
"""


def measure(path: Path, how: str, repeat: int) -> tuple[float, float, str]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), how, str(repeat)],
                          capture_output=True,
                          text=True, timeout=600, cwd=ROOT, check=True)
    seconds, peak_kib, outcome = done.stdout.strip().split(" ", 2)
    return float(seconds), int(peak_kib) / 1024, outcome


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {
            "header declares 64 TB": huge_shape_npz(folder / "huge.npz"),
            "zip bomb, 2 GiB inflated": zip_bomb_npz(folder / "bomb.npz"),
        }
        honest = folder / "honest.npz"
        np.savez(honest, input=np.ones((65536, 256), np.float32))
        files["honest 64 MiB dataset"] = honest
        for label, path in files.items():
            print(f"{label} ({path.stat().st_size:,} bytes on disk)")
            repeat = 1 if "bomb" in label else 5  # numpy.load of the bomb takes ~25 s
            ours = measure(path, "devtrack", repeat)
            theirs = measure(path, "numpy", repeat)
            for name, (seconds, peak, outcome) in (("devtrack", ours), ("np.load", theirs)):
                print(f"  {name:9} {seconds * 1000:9.1f} ms  peak RSS {peak:8.1f} MB  {outcome}")
            print(f"  ratio devtrack/np.load: time {ours[0] / theirs[0]:.3f}, "
                  f"peak RSS {ours[1] / theirs[1]:.3f}")


if __name__ == "__main__":
    main()
