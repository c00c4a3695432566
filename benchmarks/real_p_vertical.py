"""Why the detector scores real P waves low: the vertical, and the floor it rings.

For each clearly visible OpenEEW record (OpenEEW / Grillo, CC BY-SA 4.0) of the chosen events whose
P lies at least 10 s into the record and 3 s before its end: the best score (int8, the model in
--model) the node's detector gives within 3 s after P (evaluate.trace_record: the node pipeline,
ADXL355, TFLM kernels), for four versions of the record:
- real: the record as it is;
- horizontals: its vertical from P on replaced by its own noise before P (repeated);
- twin: its own noise before P (repeated, on every component) plus a synthetic quake at its
  magnitude and distance (synth_quake, 20 km deep), scaled to the record's P peak (first 3 s);
- twin_floor10: the same draws with a floor's vertical mode at 10 Hz, 10% damping (synth_quake
  floor=True), as a node on a floor would record the quake.
The closing line gives the median of each and of each minus real, and the real median minus the
decision's on_q (`real_margin`): models with different thresholds compare by that, since what
raises real P scores can raise every score. A model that took a ringing vertical for people scores
real and twin_floor10 far below horizontals and twin.

    python benchmarks/real_p_vertical.py [--model firmware/model] [--split all|train|val|test] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seismote.host_tools.waveforms import Segment  # noqa: E402
from seismote.model_export import evaluate as E  # noqa: E402
from seismote.model_export import real  # noqa: E402
from seismote.model_export.synth_quake import synth_quake  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
AFTER_P_S = 3.0
VERSIONS = ("real", "horizontals", "twin", "twin_floor10")


def best_score(rec, p_s: float, model_dir: Path) -> int | None:
    """Highest score of the node's inferences within AFTER_P_S after P (None: not triggered)."""
    tr = E.trace_record(rec, "adxl355", model_dir)
    q = [q for ev in tr["events"] for t, q, _ in ev["trace"] if p_s <= t < p_s + AFTER_P_S]
    return max(q) if q else None


def versions(ex: dict, seed: int) -> dict:
    """The record and its three variants (see the module docstring), each a Record. The twins' source,
    path and site (synth_quake.draw_parameters: a building under a quarter of them) are drawn per
    record, from the seed and the record's name, so that they vary as the training quakes' do."""
    rec = ex["record"]
    seg = rec.segments[0]
    d, fs = seg.data, rec.rate
    pi = int(round((ex["p_offset_s"] - seg.offset_s) * fs))
    pre = d[:pi - 10]
    noise = np.concatenate([pre] * (len(d) // len(pre) + 2))[:len(d)]
    first = slice(pi, pi + int(AFTER_P_S * fs))
    peak = np.abs(d[first] - noise[first]).max()  # the P wave's, the noise taken out as the twins add it

    def twin(**kw):
        q, _ = synth_quake(ex["mag"], ex["epi_km"], 20.0, rate=fs, duration_s=len(d) / fs, p_at_s=pi / fs,
                           rng=np.random.default_rng([seed, zlib.crc32(ex["file"].encode())]), **kw)
        q = q[:, :d.shape[1]]
        return noise + q * peak / max(np.abs(q[first]).max(), 1e-12)

    horizontals = d.copy()
    horizontals[pi:, 0] = noise[pi:, 0]
    data = {"real": d, "horizontals": horizontals, "twin": twin(), "twin_floor10": twin(floor=True, floor_f0=10.0, floor_zeta=0.1)}
    return {k: dataclasses.replace(rec, segments=[Segment(seg.offset_s, v)], gaps=[]) for k, v in data.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "firmware" / "model")
    ap.add_argument("--split", choices=("all", "train", "val", "test"), default="all")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    model_dir = a.model.resolve()
    splits = real.split_events(0)
    events = sorted(e for s, evs in splits.items() if a.split in ("all", s) for e in evs)
    rows = []
    for ex in real.openeew_examples(events=events):
        seg = ex["record"].segments[0]
        p_in_seg = ex["p_offset_s"] - seg.offset_s
        if not E.visible_real(ex) or p_in_seg < 10.0 or p_in_seg + AFTER_P_S > len(seg.data) / ex["record"].rate:
            continue
        row = {"record": ex["file"], "mag": ex["mag"], "epi_km": round(ex["epi_km"], 1)}
        row.update({k: best_score(r, ex["p_offset_s"], model_dir) for k, r in versions(ex, a.seed).items()})
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary: dict = {"records": len(rows)}
    for k in VERSIONS:
        v = [r[k] for r in rows if r[k] is not None]
        summary[k] = {"scored": len(v), "median": float(np.median(v)) if v else None}
        if k != "real":
            dv = [r[k] - r["real"] for r in rows if r[k] is not None and r["real"] is not None]
            summary[k]["median_minus_real"] = float(np.median(dv)) if dv else None
    on_q = json.loads((model_dir / "model.json").read_text())["decision"]["on_q"]
    real_median = summary["real"]["median"]
    summary["on_q"] = on_q
    summary["real_margin"] = None if real_median is None else real_median - on_q
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
