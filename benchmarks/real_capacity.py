"""Is the gap on real quakes the model's size or the data? Two float models, one training recipe.

Trains the detector's architecture (model.ModelSpec, within the node's budgets) and a wider one
(7x the MACs and 10x the parameters: far over the budgets) with the same TrainConfig on the same
data set, then scores the data set's quake windows that end within 3 s of P: the real ones (OpenEEW records, OpenEEW /
Grillo, CC BY-SA 4.0) split by event, and the synthetic ones. Each model's threshold is the score
that a given share (--fpr) of the val split's non-earthquake windows reach, so both are compared at
the same false-positive rate. If size were the limit, the wide model would recognise more real
windows in every split; if the data were, it would fit the training events better and the held-out
events no better. Prints one JSON line per model and FPR.

    python benchmarks/real_capacity.py [--epochs 20] [--out build/bench/real_capacity]

Each training takes 5-10 min on 2 cores (the data set and the node windows are read from the cache
in build/model/data, built there if missing). These are float Keras models, before the int8 export
(benchmarks/real_windows.py scores the TFLM artifact). Runs differ: the same wide model trained
alone gave 39/26/7% real windows (train/val/test) where this script's run gave 52/47/21%.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seismote.model_export.dataset import DatasetConfig, build_dataset  # noqa: E402
from seismote.model_export.model import ModelSpec, macs, to_input  # noqa: E402
from seismote.model_export.train import TrainConfig, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WIDE = ModelSpec(convs=((32, 7, 2), (64, 5, 2, "sep"), (96, 5, 2, "sep"), (96, 5, 2, "sep"), (96, 3, 2, "sep")), dense=64)
EARLY_S = 3.0  # windows ending within this long after P: what a warning is made of


def shares(model, ds, fpr: float) -> dict:
    kind, split, t = np.asarray(ds.kind).astype(str), np.asarray(ds.split), ds.meta["t_after_p_s"]

    def score(idx):
        return model.predict(to_input(ds.x[idx]), batch_size=4096, verbose=0).ravel()

    thr = float(np.quantile(score(np.flatnonzero((split == "val") & (ds.y == 0))), 1.0 - fpr))
    out = {}
    for sp in ("train", "val", "test"):
        for name, k in (("real", "real:quake"), ("synthetic", "quake")):
            idx = np.flatnonzero((split == sp) & (kind == k) & (t < EARLY_S))
            out["%s_%s" % (sp, name)] = round(float((score(idx) >= thr).mean()), 3) if len(idx) else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "build" / "model" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "real_capacity")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--fpr", type=float, nargs="+", default=[0.002, 0.01])
    a = ap.parse_args()
    import keras

    ds = build_dataset(DatasetConfig(seed=0), a.data)
    for name, spec in (("node", ModelSpec()), ("wide", WIDE)):
        cfg = TrainConfig(seed=0, epochs=a.epochs, spec=spec)
        res = train(ds, cfg, a.out / name, cache_dir=a.data)
        model = keras.models.load_model(a.out / name / "model.keras")
        for fpr in a.fpr:
            print(json.dumps({"model": name, "macs": macs(spec), "params": res["params"], "best_epoch": res["best_epoch"],
                              "fpr": fpr, "share_at_threshold": shares(model, ds, fpr)}), flush=True)


if __name__ == "__main__":
    main()
