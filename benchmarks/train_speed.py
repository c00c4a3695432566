"""Where an epoch of training goes: making the inputs (augmentation, band limit, shuffle) and fitting.

`train._fit` makes the next epoch's inputs in a thread while the current one fits. This trains the
committed architecture for `--epochs` epochs on `--windows` windows of the data set's train split
(repeated if the split is smaller) three ways in one process, in turn for `--rounds` rounds: with
the inputs made in line (each epoch waits for its own), made ahead (as `train` does), and made ahead
with the network's time along the height of its 2-D view instead of the width (`train.TIME_ON`; the
exported graph's layout). It prints the fastest round's seconds per epoch of each, with the time
`train.epoch_inputs` alone takes. The weights of the three ways must be equal (checked), so the
differences are the time only. The full recipe trains about 290,000 windows for 50-60 epochs.

    python benchmarks/train_speed.py [--windows 290000] [--epochs 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seismote.model_export import train as T  # noqa: E402
from seismote.model_export.dataset import DatasetConfig, build_dataset  # noqa: E402
from seismote.model_export.model import to_input  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class InLine:
    """An executor that runs what it is given when it is given it, in the caller's thread."""

    def __init__(self, max_workers: int = 1):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def submit(self, fn, *args):
        done: Future = Future()
        done.set_result(fn(*args))
        return done


def run(cfg, x, y, sw, xva_f, yva, executor, time_on: str = "width") -> tuple[float, list]:
    """Seconds per epoch of _fit with `executor` making the inputs, and the final weights."""
    T.ThreadPoolExecutor = executor  # type: ignore[misc]
    T.TIME_ON = time_on
    T.configure_tensorflow(cfg.seed, cfg.threads)
    import keras

    keras.utils.set_random_seed(cfg.seed)
    t0 = time.perf_counter()
    model, _, history = T._fit(cfg, x, y, sw, xva_f, yva, cfg.learning_rate, time.time(), None)
    return (time.perf_counter() - t0) / len(history), model.get_weights()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=290_000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="times each way is run (the fastest counts)")
    a = ap.parse_args()
    ds = build_dataset(DatasetConfig(), ROOT / "build" / "model" / "data")
    xtr, ytr, _ = T._split(ds, "train")
    xva, yva, _ = T._split(ds, "val")
    reps = -(-a.windows // len(xtr))
    x, y = np.concatenate([xtr] * reps)[:a.windows], np.concatenate([ytr] * reps)[:a.windows]
    w = T.class_weights(y)
    sw = np.where(y == 1, w[1], w[0]).astype(np.float32)
    cfg = T.TrainConfig(epochs=a.epochs, patience=a.epochs + 1)
    t0 = time.perf_counter()
    T.epoch_inputs(cfg, x, 0)
    inputs_s = time.perf_counter() - t0
    threaded, xva_f = T.ThreadPoolExecutor, to_input(xva)
    ways = {"in_line": (InLine, "width"), "ahead": (threaded, "width"), "height": (threaded, "height")}
    secs: dict[str, list[float]] = {k: [] for k in ways}
    weights: dict[str, list] = {}
    for _ in range(a.rounds):  # the ways in turn, so that a slow spell of the machine hits each alike
        for k, (executor, time_on) in ways.items():
            s, weights[k] = run(cfg, x, y, sw, xva_f, yva, executor, time_on)
            secs[k].append(s)
    line_s, ahead_s, height_s = (min(secs[k]) for k in ways)
    w_line, w_ahead, w_height = (weights[k] for k in ways)
    print(json.dumps({"windows": len(x), "epochs": a.epochs, "inputs_s": round(inputs_s, 1),
                      "epoch_s_in_line": round(line_s, 1), "epoch_s_ahead": round(ahead_s, 1),
                      "ahead_over_in_line": round(ahead_s / line_s, 3), "epoch_s_time_on_height": round(height_s, 1),
                      "width_over_height": round(ahead_s / height_s, 3),
                      "same_weights": all(np.array_equal(p, q) for p, q in zip(w_line, w_ahead)),
                      "same_weights_layouts": all(np.array_equal(p, q.reshape(p.shape)) for p, q in zip(w_ahead, w_height))}))


if __name__ == "__main__":
    main()
