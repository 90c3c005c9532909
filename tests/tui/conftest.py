"""Fixtures for the review app: seeded and empty workspaces, an app factory, async tests."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tui_seed import empty_workspace, seed_workspace

from devtrack.tui.app import DevtrackApp, create_app


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests with asyncio (Pilot needs a loop; no plugin required)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


@pytest.fixture
def seeded(tmp_path: Path, workspaces: Any) -> Path:
    """Two model lines with runs, accuracy, statuses, deployments and events (fixed values),
    on the test's backend."""
    return seed_workspace(tmp_path / "ws", workspaces=workspaces)


@pytest.fixture
def empty(tmp_path: Path, workspaces: Any) -> Path:
    return empty_workspace(tmp_path / "ws", workspaces)


@pytest.fixture
def make_app() -> Callable[..., DevtrackApp]:
    """The same factory the CLI uses."""

    def make(root: Path, **kwargs: Any) -> DevtrackApp:
        return create_app(root, **kwargs)

    return make
