"""Where a workspace's database and artifacts are: the environment, else ``.devtrack/config.toml``
(``[database] url``, ``[artifacts] url``), else the folder itself."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtrack.errors import UsageError

DOT_DIR = ".devtrack"
CONFIG_FILENAME = "config.toml"  # in .devtrack/: the workspace's own settings, not committed
DATABASE_VARIABLE = "DEVTRACK_DATABASE_URL"
ARTIFACTS_VARIABLE = "DEVTRACK_ARTIFACTS_URL"
TABLES = ("alerts", "database", "artifacts")  # what config.toml may hold


@dataclass(frozen=True)
class Setting:
    """A configured value and where it came from (``$VARIABLE`` or the config file)."""

    value: str
    source: str


def config_path(root: Path) -> Path:
    """The workspace config file: ``.devtrack/config.toml``."""
    return root / DOT_DIR / CONFIG_FILENAME


def read_config(root: Path | None) -> dict[str, Any]:
    """The workspace config file's tables (empty when there is none); UsageError, one line,
    when it cannot be read or holds a table devtrack does not know."""
    if root is None:
        return {}
    path = config_path(root)
    try:
        text = path.read_bytes().decode("utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    unknown = sorted(set(data) - set(TABLES))
    if unknown:
        raise UsageError(f"{path}: {unknown[0]}: unknown table or key; this file holds "
                         f"{', '.join(f'[{t}]' for t in TABLES)} only")
    return data


def _configured(root: Path | None, table: str) -> Setting | None:
    path = config_path(root) if root is not None else None
    if path is None or not path.is_file():
        return None
    entry = read_config(root).get(table)
    if entry is None:
        return None
    if not isinstance(entry, dict) or set(entry) != {"url"} or not isinstance(entry["url"], str) \
            or not entry["url"].strip():
        raise UsageError(f"{path}: [{table}] must hold exactly one key, url = \"...\"")
    return Setting(entry["url"].strip(), f"{DOT_DIR}/{CONFIG_FILENAME}")


def _from_environment(variable: str) -> Setting | None:
    value = os.environ.get(variable, "").strip()
    return Setting(value, f"${variable}") if value else None


def database_setting(root: Path | None) -> Setting | None:
    """The PostgreSQL URL to use ($DEVTRACK_DATABASE_URL wins over the config file), or None
    for the workspace's own SQLite file."""
    return _from_environment(DATABASE_VARIABLE) or _configured(root, "database")


def artifacts_setting(root: Path | None) -> Setting | None:
    """Where artifacts are stored ($DEVTRACK_ARTIFACTS_URL wins over the config file), or None
    for the workspace's own ``.devtrack/artifacts``."""
    return _from_environment(ARTIFACTS_VARIABLE) or _configured(root, "artifacts")


def database_in_environment() -> bool:
    return _from_environment(DATABASE_VARIABLE) is not None


def record(root: Path, table: str, url: str) -> None:
    """Write ``[table] url = "..."`` into the config file (kept as it is otherwise); refuse
    to replace a different value already recorded there."""
    import json

    existing = _configured(root, table)
    if existing is not None:
        if existing.value == url:
            return
        raise UsageError(f"{config_path(root)} already records [{table}] url = "
                         f"{_masked(existing.value)}; edit that file to change it")
    path = config_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    before = path.read_text(encoding="utf-8") if path.is_file() else ""
    gap = "\n" if before and not before.endswith("\n\n") else ""
    if before and not before.endswith("\n"):
        gap = "\n\n"
    # A TOML basic string is a JSON string for every character a URL or a path holds.
    text = f"{before}{gap}[{table}]\nurl = {json.dumps(url, ensure_ascii=False)}\n"
    tmp = path.with_name(f".{CONFIG_FILENAME}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _masked(value: str) -> str:
    from devtrack.core.database_url import mask_password

    return mask_password(value)
