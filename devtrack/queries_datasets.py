"""The dataset registry's questions to the database (``datasets.py``), over either backend:
every dataset as records, the model lines' default datasets (one dataset by name is
``queries.dataset``, which bundles use too)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from devtrack.store_contract import StoreBackend

if TYPE_CHECKING:
    from devtrack.records import Dataset

# records.py is imported by the functions that build records (as in queries.py): it costs
# ~10 ms to create its dataclasses, paid only by commands that read whole rows.


def datasets(store: StoreBackend) -> list[Dataset]:
    """Every registered dataset, whole, by name."""
    from devtrack.records import Dataset, from_row

    return [from_row(Dataset, row)
            for row in store.query("SELECT * FROM datasets ORDER BY name")]


def defaults_by_model(store: StoreBackend) -> list[tuple[str, str]]:
    """(model line, its default dataset) of every model line that has one, by model name."""
    return [(str(row["name"]), str(row["default_dataset"])) for row in store.query(
        "SELECT name, default_dataset FROM models WHERE default_dataset IS NOT NULL "
        "ORDER BY name")]


def default_of_model(store: StoreBackend, model: str) -> str | None:
    """The name of model line ``model``'s default dataset (None: none set, or no such line)."""
    row = store.one("SELECT default_dataset FROM models WHERE name = ?", (model,))
    return str(row["default_dataset"]) if row is not None and row["default_dataset"] else None


def set_default_of_model(store: StoreBackend, model: str, name: str | None) -> int:
    """Make ``name`` model line ``model``'s default dataset (None clears it); the number of
    model lines changed. Call inside a write transaction, with the event that records it."""
    return store.execute("UPDATE models SET default_dataset = ? WHERE name = ?", (name, model))
