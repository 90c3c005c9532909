"""The content-addressed artifact store: ``artifacts/sha256/ab/abcdef…``, written atomically."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from devtrack.errors import DevtrackError

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactStore:
    """Files stored under their sha256; the same bytes are stored once."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def put(self, source: Path, sha256: str) -> bool:
        """Copy ``source`` into the store atomically. Returns True when the file was new."""
        dest = self.path_for(sha256)
        if dest.is_file():
            return False
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                shutil.copyfileobj(src, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            if sha256_file(tmp) != sha256:
                raise DevtrackError(f"{source} changed while it was being copied; try again")
            os.chmod(tmp, 0o444)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return True

    def remove(self, sha256: str) -> None:
        """Remove a stored file (used to undo a put whose database write failed)."""
        self.path_for(sha256).unlink(missing_ok=True)

    def verify(self, sha256: str) -> Path:
        """Return the stored file's path after checking its bytes still hash to ``sha256``."""
        path = self.path_for(sha256)
        if not path.is_file():
            raise DevtrackError(
                f"artifact {sha256[:12]} is missing from the store; restore it by copying the "
                f"original file (sha256 {sha256}) to {path}"
            )
        actual = sha256_file(path)
        if actual != sha256:
            raise DevtrackError(
                f"artifact {sha256[:12]} in the store was modified (now hashes to {actual[:12]}); "
                "refusing to benchmark it"
            )
        return path
