"""The detector model's node budgets and its inference time in the host TFLM kernels.

Prints ONE JSON line for the artifact in firmware/model (or --model DIR):
- model_bytes:        size of model.tflite (budget 16 KB);
- arena_bytes:        smallest TFLM arena the model allocates and runs in, measured on the host
                      (tflm.probe_arena: binary search, each try in a subprocess; 64-bit host, so an
                      upper bound for the 32-bit ESP32) and the value model.json configures (budget 16 KB);
- macs:               multiply-accumulates per inference, counted from the graph (budget 100k);
- ops:                the builtin operators of the graph;
- invoke_us:          mean time of one TFLM invoke() on this host (tflite-micro package, reference
                      kernels), best of 3 runs of 200;
- detector_infer_us:  one firmware Detector.infer() over the microlite API shim (600 setValue
                      calls in the input callback + invoke + output callback), best of 3 runs of 50;
- golden:             TFLM vs LiteRT on the golden vectors (bit-identical expected).
Figures, not pass/fail. The ESP32's time is not measured here (no board): ESP-NN kernels at 240 MHz
run ~100k int8 MACs in a few ms; the MicroPython input loop adds a few ms per inference.

    python benchmarks/model_budgets.py [--model DIR] [--no-probe]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seismote.firmware import detector as fwdetector  # noqa: E402
from seismote.model_export import tflm  # noqa: E402
from seismote.model_export.export import read_golden_bin  # noqa: E402

MODEL = Path(__file__).resolve().parents[1] / "firmware" / "model"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--no-probe", action="store_true", help="skip the arena binary search (~10 s)")
    a = ap.parse_args()
    blob = (a.model / "model.tflite").read_bytes()
    meta = json.loads((a.model / "model.json").read_text())
    out: dict = {"model": str(a.model), "model_bytes": len(blob), "arena_configured_bytes": meta["arena_bytes"]}
    if not a.no_probe:
        probe = tflm.probe_arena(blob)
        out["arena_bytes"] = probe["arena_bytes"]
        out["arena_recorded"] = probe["recorded"]
    mac = tflm.count_macs(blob)
    out["macs"] = mac["macs"]
    out["ops"] = sorted(set(tflm.graph_ops(blob)))

    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(blob, arena_size=meta["arena_bytes"])
    x = np.random.default_rng(0).integers(-127, 128, (1, 200, 3), dtype=np.int8)
    best = 1e9
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(200):
            it.set_input(x, 0)
            it.invoke()
        best = min(best, (time.perf_counter() - t) / 200)
    out["invoke_us"] = round(best * 1e6, 1)

    det = fwdetector.load(tflm.microlite, meta, str(a.model / "model.tflite"))
    best = 1e9
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(50):
            det.infer()
        best = min(best, (time.perf_counter() - t) / 50)
    out["detector_infer_us"] = round(best * 1e6, 1)

    xg, yg = read_golden_bin(a.model / "golden.bin")
    out["golden"] = tflm.cross_check(blob, xg, yg)
    n, bad = fwdetector.selftest(det, str(a.model / "golden.bin"))
    out["golden"]["detector_selftest"] = {"vectors": n, "mismatches": bad}
    out["budgets_met"] = {"model<=16KB": len(blob) <= 16384, "arena<=16KB": out.get("arena_bytes", meta["arena_bytes"]) <= 16384,
                          "macs<=100k": mac["macs"] <= 100_000}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
