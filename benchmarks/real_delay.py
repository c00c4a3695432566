"""Where the detector's delay after P on real records comes from: the trigger, the PGA floor or the model.

Replays each clearly visible record of one split's real OpenEEW events (`--split`, test by default;
OpenEEW / Grillo, CC BY-SA 4.0) through the node pipeline with the detector scoring every
inference while the STA/LTA trigger is on (evaluate.trace_record), and prints one JSON line per
record with, in seconds after P:
- trigger_s: the first trigger of the node's STA/LTA at or after P - 2 s (nothing else can start
  the model);
- pga_s: the first inference at which the PGA reaches detector.min_pga_gal (the confirmation
  also needs it);
- score_s: the first score at or above the decision's on_q;
- detect_s: the confirmation (the decision rule, as the node applies it), within the window the
  evaluation counts (P - 2 s to P + REAL_AFTER_P_S);
- max_q_first_5s: the highest score within 5 s of P.
A last line counts the records the trigger reaches only after `--late` s, those the PGA floor holds
back, and those where the model confirms later than both, with the median delay of each group, and
the trigger's own median delay over all the records (never: infinite): the detector runs only while
the trigger is on, so no model behind it reaches a lower median.

    python benchmarks/real_delay.py [--model firmware/model] [--late 3] [--split test|val|train]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seismote.model_export import evaluate as E  # noqa: E402
from seismote.model_export import real  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def first(times: list[float]) -> float | None:
    return round(min(times), 2) if times else None


def record_row(ex: dict, model_dir: Path, decision: dict) -> dict:
    tr = E.trace_record(ex["record"], "adxl355", model_dir)
    p = ex["p_offset_s"]
    events = [ev for ev in tr["events"] if ev["onset_t"] >= p - E.BEFORE_P_S]
    points = [(t - p, q, pga) for ev in events for t, q, pga in ev["trace"]]
    det = E.simulate(events, decision["on_q"], decision["off_q"], decision["confirm_n"], tr["min_pga_gal"], decision.get("max_runs", 0),
                     lookback=decision.get("lookback", 0))
    early = [q for t, q, _ in points if t < 5.0]
    return {"record": ex["file"], "event": ex["event_id"], "mag": ex["mag"], "epi_km": round(ex["epi_km"], 1),
            "trigger_s": first([ev["onset_t"] - p for ev in events]),
            "pga_s": first([t for t, _, pga in points if pga >= tr["min_pga_gal"]]),
            "score_s": first([t for t, q, _ in points if q >= decision["on_q"]]),
            "detect_s": first([t - p for t in det if t - p <= E.REAL_AFTER_P_S]),
            "max_q_first_5s": max(early) if early else None}


def cause(row: dict, late: float) -> str:
    """What holds the detection back the longest: no trigger near P, the PGA floor, or the model."""
    if row["trigger_s"] is None or row["trigger_s"] > late:
        return "trigger late"
    score, pga = row["score_s"], row["pga_s"]
    if score is not None and pga is not None and score < pga and row["detect_s"] is not None and row["detect_s"] <= pga + 0.3:
        return "PGA floor"  # the model was sure before the motion reached the floor
    return "model"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "firmware" / "model")
    ap.add_argument("--late", type=float, default=3.0, help="a trigger this long after P counts as late (s)")
    ap.add_argument("--split", choices=("test", "val", "train"), default="test", help="which real events (split by event)")
    a = ap.parse_args()
    model_dir = a.model.resolve()
    decision = json.loads((model_dir / "model.json").read_text())["decision"]
    groups: dict[str, list] = {}
    triggers: list[float] = []
    for ev in real.split_events(0)[a.split]:
        for ex in real.openeew_examples(events=[ev]):
            if not E.visible_real(ex):
                continue
            row = record_row(ex, model_dir, decision)
            row["cause"] = cause(row, a.late)
            groups.setdefault(row["cause"], []).append(row["detect_s"])
            triggers.append(math.inf if row["trigger_s"] is None else max(row["trigger_s"], 0.0))
            print(json.dumps(row), flush=True)
    summary = {}
    for k, v in sorted(groups.items()):
        found = [d for d in v if d is not None]
        summary[k] = {"records": len(v), "detected": len(found), "median_detect_s": round(float(np.median(found)), 2) if found else None}
    # the detector runs only once the trigger is on: no model behind this trigger confirms sooner
    summary["trigger_bound"] = {"records": len(triggers), "median_s": round(float(np.median(triggers)), 2)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
