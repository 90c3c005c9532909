"""The demo's release history: four real builds of a digits classifier, trained here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from devtrack.demo.digits import Split
from devtrack.demo.train import Layers, accuracy, train_mlp

MODEL = "digits-mlp"


@dataclass(frozen=True)
class DemoBuild:
    """One build to register: its file and the provenance a real pipeline would record."""

    version: str
    file: Path
    parent: str | None
    notes: str
    data_version: str
    config: dict[str, object]
    run_id: str
    tags: dict[str, str] = field(default_factory=dict)
    holdout_accuracy: float | None = None  # from the numpy training code, for the summary


def _write_config(folder: Path, version: str, config: dict[str, object]) -> Path:
    path = folder / f"train-{version}.json"
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


def build_history(data: Split, folder: Path) -> list[DemoBuild]:
    """Train and export 1.0.0 float32 ONNX → 1.1.0 int8 → 1.2.0 TFLite → 1.3.0 regression."""
    from devtrack.builders.onnx_models import build_mlp, quantize_int8_dynamic
    from devtrack.builders.tflite_models import build_tflite_mlp

    folder.mkdir(parents=True, exist_ok=True)
    hidden = (512, 512)
    base_config: dict[str, object] = {
        "architecture": {"hidden": list(hidden), "activation": "relu"},
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "batch": 64},
        "epochs": 6, "seed": 0, "export": {"format": "onnx", "opset": 17},
    }
    good: Layers = train_mlp(data.x_train, data.y_train, hidden, epochs=6, seed=0, batch=64)
    good_acc = accuracy(good, data.x_test, data.y_test)

    v100 = folder / "digits-mlp-1.0.0.onnx"
    build_mlp(v100, in_features=64, hidden=hidden, classes=10, weights=good)
    v110 = folder / "digits-mlp-1.1.0-int8.onnx"
    quantize_int8_dynamic(v100, v110)
    v120 = folder / "digits-mlp-1.2.0.tflite"
    build_tflite_mlp(v120, in_features=64, hidden=hidden, classes=10, weights=good)

    wide = (1024, 1024)
    bad: Layers = train_mlp(data.x_train, data.y_train, wide, epochs=2, seed=1, batch=64,
                            label_noise=0.5)
    bad_acc = accuracy(bad, data.x_test, data.y_test)
    v130 = folder / "digits-mlp-1.3.0.onnx"
    build_mlp(v130, in_features=64, hidden=wide, classes=10, weights=bad)

    int8_config = {**base_config, "export": {"format": "onnx", "opset": 17,
                                             "quantization": "int8 dynamic (onnxruntime)"}}
    tflite_config = {**base_config, "export": {"format": "tflite", "weights": "float32"}}
    wide_config = {**base_config, "architecture": {"hidden": list(wide), "activation": "relu"},
                   "epochs": 2, "seed": 1}
    configs = {"1.0.0": base_config, "1.1.0": int8_config, "1.2.0": tflite_config,
               "1.3.0": wide_config}
    for version, config in configs.items():
        _write_config(folder, version, config)
    return [
        DemoBuild("1.0.0", v100, None,
                  "First production build: 64-512-512-10 MLP, float32 ONNX.",
                  "digits-2024-05", base_config, "run-0412",
                  {"owner": "vision-team", "target": "android"}, good_acc),
        DemoBuild("1.1.0", v110, "1.0.0",
                  "int8 dynamic quantization of 1.0.0: 4x smaller, faster on CPU, "
                  "expect a small accuracy cost.",
                  "digits-2024-05", int8_config, "run-0412",
                  {"owner": "vision-team", "target": "android"}, None),
        DemoBuild("1.2.0", v120, "1.0.0",
                  "The 1.0.0 network exported as TFLite for LiteRT devices.",
                  "digits-2024-05", tflite_config, "run-0412",
                  {"owner": "vision-team", "target": "iot"}, good_acc),
        DemoBuild("1.3.0", v130, "1.1.0",
                  "Wider 1024-1024 network retrained on the June data refresh. "
                  "[red]Known issue[/red]: the refresh mislabelled a share of the samples.",
                  "digits-2024-06", wide_config, "run-0533",
                  {"owner": "vision-team", "target": "android"}, bad_acc),
    ]


def config_path(build: DemoBuild) -> Path:
    return build.file.parent / f"train-{build.version}.json"


def eval_arrays(data: Split) -> dict[str, np.ndarray]:
    """The held-out split as a devtrack dataset: one array per model input, plus labels."""
    return {"input": data.x_test.astype(np.float32), "labels": data.y_test.astype(np.int64)}
