"""The examples in examples/ run: their quick (--small) versions, in-process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    """Import examples/<name>.py as a module (examples/ is not a package)."""
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"dendrax_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_network_classification_small_learns():
    example = load("network_classification")
    out = example.main(["--small", "--quiet"])
    history = out["history"]
    assert history.shape == (example.SMALL.epochs,)
    assert np.all(np.isfinite(history))
    # the loss fell clearly (cross-entropy of 2 classes: ln 2 = 0.69 is chance level) ...
    assert history[-1] < 0.75 * history[0], history
    assert history[-1] < 0.6, history
    # ... and the trained network classifies held-out samples well above chance (0.5)
    assert out["test_accuracy"] >= 0.85, out["test_accuracy"]
    assert out["train_accuracy"] >= 0.85, out["train_accuracy"]
    # the trained conductances stayed inside the sigmoid's bounds
    assert np.all((out["gS"] > 0) & (out["gS"] < example.SMALL.g_max))


def test_train_snn_small_learns():
    """A LIF network trained with surrogate gradients (examples/train_snn.py --small): the
    loss falls, test accuracy rises well above chance, and the input weights (behind the
    hidden spikes) are trained too."""
    out = load("train_snn").main(["--small"])
    assert np.mean(out["history"][-5:]) < 0.8 * out["history"][0]
    assert out["accuracy_before"] < 0.7 and out["accuracy_after"] >= 0.85
    assert out["input_weight_change"] > 0.05
