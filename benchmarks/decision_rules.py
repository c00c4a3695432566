"""Is the detection delay the decision rule's or the model's? The node's rule against a CUSUM.

Replays the detector's int8 score traces (every inference of every trigger, through the whole node
pipeline: evaluate.trace_record) through two families of decision rules:
- "consecutive" (the node's, firmware/detector.py): confirm_n consecutive scores >= on_q, a score
  below off_q resets, at most max_runs inferences per event (evaluate.simulate);
- "cusum": Page's CUSUM on the int8 score, S = max(0, S + q - k), confirm when S >= h: the
  sequential test that minimises the delay for a given false-alarm rate when scores are independent,
  so a strong score confirms at once and weak ones add up.
Each family's rule is chosen as `seismote model export` chooses it (evaluate.calibrate_decision:
most quakes detected, synthetic and the real val events, at <= --target false detections per hour
of activity on the calibration recordings; ties to the shorter delay), then scored on the held-out
recordings of `seismote model evaluate` (same seeds and hours) and the real test events (OpenEEW /
Grillo, CC BY-SA 4.0). Prints one JSON line per family and target.

    python benchmarks/decision_rules.py [--model firmware/model] [--target 0.5 1.0] [--workers 2]

Tracing the 85 h of recordings takes about 25 min on 2 cores; the traces are kept in
build/bench/decision_rules/ under the model's hash, so a second run only replays them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seismote.model_export import evaluate as E  # noqa: E402
from seismote.model_export import real  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CAL_HOURS = 2.0  # the CLI's --cal-hours default


def traces(model_dir: Path, which: str, workers: int) -> list[dict]:
    if which == "cal":
        jobs = [(sc, E.CAL_SEED + i, CAL_HOURS, 4.0, model_dir, "activity") for i, sc in enumerate(E._scenarios())]
        jobs += [(sc, E.CAL_SEED + 100 + i, CAL_HOURS, 40.0, model_dir, "quakes") for i, sc in enumerate(("quiet", "home", "office", "street"))]
        events = real.split_events(0)["val"]
    else:
        jobs = sorted(((sc, seed, h, qph, model_dir, g) for sc, seed, h, qph, g in E.plan(3.0, 3.0, E.QUIET_HOURS)), key=lambda j: -j[2])
        events = real.split_events(0)["test"]
    runs: list[dict] = []
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as ex:
        futs = [ex.submit(E._trace_job, j) for j in jobs] + [ex.submit(E._real_trace_job, (e, model_dir)) for e in events]
        for f in futs:
            r = f.result()
            runs.extend(r if isinstance(r, list) else [r])
    return runs


def as_arrays(runs: list[dict]) -> list[dict]:
    """Each event's trace as arrays t, q, pga (for the CUSUM's closed form)."""
    for r in runs:
        for ev in r["events"]:
            tr = np.array(ev["trace"], dtype=float).reshape(-1, 3)
            ev["t"], ev["q"], ev["pga"] = tr[:, 0], tr[:, 1].astype(int), tr[:, 2]
    return runs


def cusum(events: list[dict], k: int, h: int, min_pga_gal: float, max_runs: int = 0) -> list[float]:
    """Detection times of the CUSUM rule (with the pipeline's PGA rule, as evaluate.simulate)."""
    out = []
    for ev in events:
        if not len(ev["q"]):
            continue
        c = np.cumsum(ev["q"] - k)
        s = c - np.minimum(0, np.minimum.accumulate(c))  # Lindley's recursion, max(0, S + x), in closed form
        hit = np.flatnonzero(s >= h)
        if not len(hit) or (max_runs and hit[0] >= max_runs):
            continue
        ok = np.flatnonzero(ev["pga"][hit[0]:] >= min_pga_gal)
        if len(ok):
            out.append(float(ev["t"][hit[0] + ok[0]]))
    return out


def rules():
    for n in (1, 2, 3, 4, 6, 8):
        for mr in (0, 40):
            for on in range(-128, 128, 4):
                for hyst in (0, 32, 256):
                    if not (mr and mr < n):
                        yield {"family": "consecutive", "confirm_n": n, "max_runs": mr, "on_q": on, "off_q": max(-128, on - hyst)}
    for k in range(-40, 100, 4):
        for h in (1, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768):
            for mr in (0, 40):
                yield {"family": "cusum", "k": k, "h": h, "max_runs": mr}


def detections(rule: dict, run: dict) -> list[float]:
    if rule["family"] == "cusum":
        return cusum(run["events"], rule["k"], rule["h"], run["min_pga_gal"], rule["max_runs"])
    return E.simulate(run["events"], rule["on_q"], rule["off_q"], rule["confirm_n"], run["min_pga_gal"], rule["max_runs"])


def score(runs: list[dict], rule: dict) -> dict:
    n_syn = sum(len(r["quakes"]) for r in runs if r["group"] != "real")
    n_real = sum(len(r["quakes"]) for r in runs if r["group"] == "real")
    act_h = sum(r["duration_s"] for r in runs if r["group"] == "activity" and r["scenario"] != "quiet") / 3600
    quiet_h = sum(r["duration_s"] for r in runs if r["group"] == "quiet") / 3600
    hits = {"syn": 0, "real": 0}
    delays: list[float] = []
    syn_delays: list[float] = []
    false = quiet_false = 0
    for r in runs:
        m = E.match(detections(rule, r), r["quakes"], r["activities"])
        d = [x for x in m["delays"] if x is not None]
        hits["real" if r["group"] == "real" else "syn"] += len(d)
        delays += d
        syn_delays += d if r["group"] != "real" else []
        false += len(m["false"]) if r["group"] == "activity" and r["scenario"] != "quiet" else 0
        quiet_false += len(m["false"]) if r["group"] == "quiet" else 0
    return {"detected_synthetic": round(hits["syn"] / max(1, n_syn), 3), "detected_real": round(hits["real"] / n_real, 3) if n_real else None,
            "false_per_hour_activity": round(false / act_h, 2) if act_h else None,
            "false_per_day_quiet": round(24 * quiet_false / quiet_h, 2) if quiet_h else None,
            "median_delay_s": round(float(np.median(delays)), 2) if delays else None,
            "median_delay_synthetic_s": round(float(np.median(syn_delays)), 2) if syn_delays else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "firmware" / "model")
    ap.add_argument("--target", type=float, nargs="+", default=[E.TARGET_FPH, 1.0], help="false detections per hour allowed in calibration")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=ROOT / "build" / "bench" / "decision_rules")
    a = ap.parse_args()
    model_dir = a.model.resolve()
    sha = hashlib.sha256((model_dir / "model.tflite").read_bytes()).hexdigest()[:12]
    runs = {}
    for which in ("cal", "eval"):
        path = a.cache / ("%s-%s.pkl" % (sha, which))
        if path.exists():
            runs[which] = pickle.loads(path.read_bytes())
        else:
            runs[which] = traces(model_dir, which, a.workers)
            a.cache.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pickle.dumps(runs[which]))
        as_arrays(runs[which])
    table = [(rule, score(runs["cal"], rule)) for rule in rules()]
    for target in a.target:
        for family in ("consecutive", "cusum"):
            ok = [(r, s) for r, s in table if r["family"] == family and s["false_per_hour_activity"] <= target]
            if not ok:
                continue
            # calibrate_decision's choice: most detected (synthetic + real), then the shorter delay
            rule, cal = max(ok, key=lambda rs: (rs[1]["detected_synthetic"] + (rs[1]["detected_real"] or 0.0), -(rs[1]["median_delay_s"] or 99.0)))
            print(json.dumps({"target_fph": target, "rule": rule, "calibration": cal, "held_out": score(runs["eval"], rule)}), flush=True)


if __name__ == "__main__":
    main()
