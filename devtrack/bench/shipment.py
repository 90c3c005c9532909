"""The measurement code devtrack ships to a device: a zipapp of the worker and what it imports.

The modules are found by following the ``import devtrack…`` statements (those inside
functions too) from the device-side entry points, so the zipapp holds exactly the worker,
its side-by-side and evaluation modes, the supervisor, and the core and runtime modules they
use: no database, workspace, CLI or app code. Its name carries devtrack's version and a hash
of its content, so a device caches one copy per build and is sent a new one only when the
code changes. Built in memory, byte for byte the same for the same sources.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import devtrack

ENTRY_MODULES = (
    "devtrack.bench.device_supervisor",
    "devtrack.bench.worker",
    "devtrack.bench.interleaved",
    "devtrack.bench.op_pair",
    "devtrack.bench.evaluation",
)
MAIN = "from devtrack.bench.device_supervisor import main\nmain()\n"
_EPOCH = (2020, 1, 1, 0, 0, 0)  # fixed member times: the same sources give the same bytes


@dataclass(frozen=True)
class Shipment:
    """The zipapp: its file name on the device, its bytes and their sha256."""

    name: str
    data: bytes
    sha256: str
    modules: tuple[str, ...]


def _package_root() -> Path:
    return Path(devtrack.__file__).resolve().parent


def _module_file(module: str, root: Path) -> Path | None:
    """The source file of ``devtrack.a.b`` under ``root`` (the package folder), if any."""
    parts = module.split(".")[1:]
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports_of(path: Path) -> set[str]:
    """Every devtrack module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "devtrack")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "devtrack":
                continue
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # maybe submodules
    return found


def module_closure(entries: tuple[str, ...] = ENTRY_MODULES) -> dict[str, Path]:
    """Module name → source file, for ``entries`` and every devtrack module they reach
    (with each package's ``__init__``)."""
    root = _package_root()
    found: dict[str, Path] = {}
    todo = list(entries)
    while todo:
        module = todo.pop()
        if module in found:
            continue
        path = _module_file(module, root)
        if path is None:
            continue  # a name imported from a module, not a module
        found[module] = path
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # the packages above
        todo.extend(_imports_of(path))
    return found


@functools.lru_cache(maxsize=1)
def build_shipment() -> Shipment:
    """The zipapp for this devtrack (cached for the process: the sources do not change)."""
    root = _package_root()
    files = module_closure()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for module in sorted(files):
            arcname = "devtrack/" + files[module].relative_to(root).as_posix()
            info = zipfile.ZipInfo(arcname, _EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[module].read_bytes())
        info = zipfile.ZipInfo("__main__.py", _EPOCH)
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, MAIN)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    name = f"devtrack-{devtrack.__version__}-{digest[:16]}.pyz"
    return Shipment(name=name, data=data, sha256=digest, modules=tuple(sorted(files)))
