"""How sure the detector is on real quake windows, against synthetic ones, split by split.

Scores the data set's windows (the node's conditioned, peak-scaled int8 windows; real ones from the
OpenEEW records, OpenEEW / Grillo, CC BY-SA 4.0) in the TFLM kernels with the artifact in
firmware/model (or --model DIR), and prints one JSON line per (split, group): the share of windows
at or above the decision's on_q, by time after P and, for the real quakes, by SNR. A model that
recognises real P waves scores the real quake windows of its own training events about as the
synthetic ones; the committed one scores them far lower, in every split, and reaches its real
records through the S wave and coda instead (the evaluation report's delays on real records).

    python benchmarks/real_windows.py [--model DIR] [--data DIR]

The data set is built into --data (build/model/data) if it is not cached there (a few minutes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seismote.model_export import tflm  # noqa: E402
from seismote.model_export.dataset import DatasetConfig, build_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BINS_S = ((0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 20.0), (20.0, 600.0))
SNR_BINS = ((4.0, 8.0), (8.0, 16.0), (16.0, 50.0), (50.0, np.inf))
NOISE = "real noise, pre-P, below noise"
GROUPS = {"real quake": ("real:quake",), "synthetic quake": ("quake",), NOISE: ("real:pre-p", "real:noise", "real:buried")}


def _share(q: np.ndarray, on_q: int) -> float | None:
    return round(float((q >= on_q).mean()), 3) if len(q) else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "firmware" / "model")
    ap.add_argument("--data", type=Path, default=ROOT / "build" / "model" / "data")
    ap.add_argument("--max", type=int, default=3000, help="windows scored per split and group at most")
    a = ap.parse_args()
    blob = (a.model / "model.tflite").read_bytes()
    on_q = int(json.loads((a.model / "model.json").read_text())["decision"]["on_q"])
    ds = build_dataset(DatasetConfig(seed=0), a.data)
    kind, split, meta = np.asarray(ds.kind), np.asarray(ds.split), ds.meta
    for sp in ("train", "val", "test"):
        for group, kinds in GROUPS.items():
            idx = np.flatnonzero((split == sp) & np.isin(kind, kinds))[:a.max]
            q = tflm.run_tflm(blob, ds.x[idx]).astype(int)
            t, snr = meta["t_after_p_s"][idx], meta["snr"][idx]
            row: dict = {"split": sp, "group": group, "on_q": on_q, "windows": len(idx), "at_or_above": _share(q, on_q)}
            if group != NOISE:
                row["by_time_after_p_s"] = {"%g-%g" % b: _share(q[(t >= b[0]) & (t < b[1])], on_q) for b in BINS_S}
            if group == "real quake":
                row["by_snr"] = {"%g-%g" % b: _share(q[(snr >= b[0]) & (snr < b[1])], on_q) for b in SNR_BINS}
            print(json.dumps(row))


if __name__ == "__main__":
    main()
