"""Reading a training/export config file (JSON, TOML or YAML) into plain JSON data."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from devtrack.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def _json_safe(value: Any) -> Any:
    """TOML and YAML allow dates and other types JSON lacks; store them as strings."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def load_config(path: Path) -> dict[str, Any]:
    """Parse ``path`` by its extension (.json, .toml, .yaml/.yml); a mapping is required."""
    if not path.is_file():
        state = "is a folder" if path.is_dir() else "does not exist"
        raise UsageError(f"config file {path} {state}; give a .json, .toml or .yaml file")
    text = path.read_text(encoding="utf-8", errors="replace")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise UsageError(
                f"config file {path}: unknown extension {suffix or '(none)'!r}; "
                "use .json, .toml, .yaml or .yml"
            )
    except UsageError:
        raise
    except Exception as exc:
        detail = " ".join(str(exc).split())
        raise UsageError(f"config file {path} does not parse: {detail}") from None
    if not isinstance(data, dict):
        raise UsageError(
            f"config file {path} must hold a mapping of keys to values, not {type(data).__name__}"
        )
    return _json_safe(data)


def read_text_file(path: Path, what: str) -> str:
    """A UTF-8 text file given by the user (release notes, ...); binary data is refused."""
    if not path.is_file():
        state = "is a folder" if path.is_dir() else "does not exist"
        raise UsageError(f"{what} {path} {state}; give a text file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {path} is not UTF-8 text (byte {exc.start}); give a text "
                         "file") from None
    if "\x00" in text:
        raise UsageError(f"{what} {path} contains NUL bytes: it looks binary; give a text file")
    return text
