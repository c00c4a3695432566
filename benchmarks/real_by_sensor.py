"""The real test records as a cheap board would have recorded them: detection by sensor.

The evaluation's real records are ADXL355 recordings (OpenEEW / Grillo, CC BY-SA 4.0). Here each
clearly visible record of the real test events is also replayed as an MPU6050 and an ADXL345 node
would see it, with the transform the training set uses for real records (dataset._real_job): the
record at the pipeline rate plus that sensor's datasheet self-noise (synth_noise.sensor_noise),
then the node pipeline of a node with that sensor (its counts, full scale and decision rule). The
ADXL355 row replays the records unchanged, as `seismote model evaluate` does. A record counts as
visible on a sensor when its peak after P (DC removed as the node does) is >= VISIBLE_SNR x the rms
of the 30 s before P, the evaluation's rule for synthetic quakes: most of these records are a few
gal, under a cheap sensor's 2 gal rms of self-noise. Prints, per sensor and noise draw, the
records visible and detected (within P - 2 s .. P + 90 s), the visible ones detected, their median
delay after P, and the detections before P - 2 s (false); a last line per sensor sums the draws up.

    python benchmarks/real_by_sensor.py [--model firmware/model] [--draws 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seismote.model_export import evaluate as E  # noqa: E402
from seismote.model_export import real  # noqa: E402
from seismote.model_export.dataset import RATE  # noqa: E402
from seismote.model_export.synth_noise import sensor_noise  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def as_sensor(rec, sensor: str, rng: np.random.Generator):
    """`rec` at the pipeline rate with `sensor`'s self-noise added (as dataset._real_job does)."""
    rec = rec.resampled(RATE)
    segs = [dataclasses.replace(s, data=s.data + sensor_noise(sensor, len(s.data), RATE, rng)) for s in rec.segments]
    return dataclasses.replace(rec, segments=segs)


def score(dets: list[float], p_s: float) -> tuple[float | None, int]:
    """Delay after P of the first detection in P - 2 s .. P + 90 s (None: missed), and the detections before."""
    m = E.match(dets, [{"p_s": p_s, "end_s": p_s + E.REAL_AFTER_P_S}], [])
    return m["delays"][0], sum(1 for f in m["false"] if f["t"] < p_s - E.BEFORE_P_S)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "firmware" / "model")
    ap.add_argument("--draws", type=int, default=3, help="noise draws per cheap sensor")
    a = ap.parse_args()
    model_dir = a.model.resolve()
    examples = [ex for ev in real.split_events(0)["test"] for ex in real.openeew_examples(events=[ev])
                if E.visible_real(ex)]
    for sensor in E.SENSORS:
        draws = []
        for d in range(1 if sensor == E.SENSORS[0] else a.draws):
            delays, seen, false = [], [], 0
            for i, ex in enumerate(examples):
                rec = ex["record"] if sensor == E.SENSORS[0] else as_sensor(ex["record"], sensor, np.random.default_rng([d, i]))
                delay, f = score(E.node_detections(rec, sensor, model_dir)[0], ex["p_offset_s"])
                delays.append(delay)
                seen.append((E.snr_after_p(rec, ex["p_offset_s"], E.REAL_AFTER_P_S) or 0.0) >= E.VISIBLE_SNR)
                false += f
            hit = [x for x, v in zip(delays, seen) if v and x is not None]
            draws.append({"sensor": sensor, "draw": d, "records": len(delays), "detected": sum(x is not None for x in delays),
                          "visible": sum(seen), "visible_detected": len(hit),
                          "median_delay_s": round(float(np.median(hit)), 2) if hit else None, "false_before_p": false})
            print(json.dumps(draws[-1]), flush=True)
        print(json.dumps({"sensor": sensor, "draws": len(draws), "records": draws[0]["records"],
                          **{k: [r[k] for r in draws] for k in ("detected", "visible", "visible_detected", "median_delay_s")}}), flush=True)


if __name__ == "__main__":
    main()
