"""The model-line list on the left of the releases screen."""

from __future__ import annotations

import contextlib
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from devtrack.overview import ModelOverview


class ModelList(OptionList):
    """One option per model line: its name, then its release count and live deployments."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def set_models(self, models: list[ModelOverview], selected: str | None) -> None:
        self.clear_options()
        for model in models:
            prompt = Text(model.name, style="bold", overflow="ellipsis", no_wrap=True)
            detail = f"\n{model.releases} rel"
            if model.live_deployments:
                detail += f" · {model.live_deployments} live"
            prompt.append(detail, style="dim")
            self.add_option(Option(prompt, id=model.name))
        if selected is not None:
            self.select_model(selected)

    def select_model(self, name: str) -> None:
        with contextlib.suppress(Exception):  # an unknown name leaves the highlight alone
            self.highlighted = self.get_option_index(name)

    @property
    def current(self) -> str | None:
        if self.highlighted is None or self.option_count == 0:
            return None
        return self.get_option_at_index(self.highlighted).id
