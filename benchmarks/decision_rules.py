"""Is the detection delay the decision rule's or the model's? The node's rule against a CUSUM.

Replays the detector's int8 score traces (every inference of every trigger, through the whole node
pipeline: evaluate.trace_record) through two families of decision rules:
- "consecutive" (the node's, firmware/detector.py): confirm_n consecutive scores >= on_q, a score
  below off_q resets, at most max_runs inferences per event (evaluate.simulate);
- "cusum": Page's CUSUM on the int8 score, S = max(0, S + q - k), confirm when S >= h: the
  sequential test that minimises the delay for a given false-alarm rate when scores are independent,
  so a strong score confirms at once and weak ones add up.
Each family's rule is chosen as `seismote model export` chooses it (evaluate.choose: at <= --target
false detections per hour of activity on the calibration recordings, the most real val records, then
the shortest delay within one standard error of the most synthetic quakes), then scored on the held-out
recordings of `seismote model evaluate` (same seeds and hours) and the real test events (OpenEEW /
Grillo, CC BY-SA 4.0). Prints one JSON line per family and target.

    python benchmarks/decision_rules.py [--model firmware/model] [--target 0.5 1.0] [--workers 2]

Tracing the 80 h of recordings takes about 25 min on 2 cores; the traces are kept in
build/bench/decision_rules/ under the model's hash and the recordings' hours, so a second run only replays them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seismote.model_export import evaluate as E  # noqa: E402
from seismote.model_export import real  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CUSUM_KS = range(-40, 100, 4)
CUSUM_HS = (1, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768)


def recordings(which: str) -> tuple[tuple, list[str]]:
    """Hours and real events of the calibration ("cal": its recordings and the real val events) or of
    the evaluation (its recordings and the real test events)."""
    if which == "cal":
        return (E.CAL_HOURS, E.CAL_HOURS), real.split_events(0)["val"]
    return (E.EVAL_HOURS, E.EVAL_HOURS, E.QUIET_HOURS), real.split_events(0)["test"]


def traces(model_dir: Path, which: str, workers: int) -> list[dict]:
    """Score traces (evaluate.trace_runs) of `recordings(which)`."""
    hours, events = recordings(which)
    # the ADXL355's recordings (E.SENSORS[0]): the headline sensor, whose rule is model.json's `decision`
    jobs = E.calibration_jobs(model_dir, *hours) if which == "cal" else E.evaluation_jobs(model_dir, *hours, sensors=E.SENSORS[:1])
    return E.trace_runs(jobs, events, model_dir, workers)


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
    """(rule, tie-break) pairs: the calibration's own grid of the node's rule, then the CUSUMs."""
    for n, mr, on_q, off_q, lb in E.consecutive_rules():
        yield {"family": "consecutive", "confirm_n": n, "max_runs": mr, "on_q": on_q, "off_q": off_q, "lookback": lb}, on_q
    for k in CUSUM_KS:
        for h in CUSUM_HS:
            for mr in (0, 40):
                yield {"family": "cusum", "k": k, "h": h, "max_runs": mr}, k


def detector(rule: dict):
    """Detection times of one run under `rule` (a rules() item, or a model.json decision: the node's rule)."""
    if rule.get("family") == "cusum":
        return lambda r: cusum(r["events"], rule["k"], rule["h"], r["min_pga_gal"], rule["max_runs"])
    return lambda r: E.simulate(r["events"], rule["on_q"], rule["off_q"], rule["confirm_n"], r["min_pga_gal"], rule["max_runs"],
                                lookback=rule.get("lookback", 0))


def rounded(m: dict) -> dict:
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in m.items()}


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
        # keyed by the recordings too: traces made before a change of CAL_HOURS are not the export's
        path = a.cache / ("%s-%s-%s.pkl" % (sha, which, "-".join("%g" % h for h in recordings(which)[0])))
        if path.exists():
            runs[which] = pickle.loads(path.read_bytes())
        else:
            runs[which] = traces(model_dir, which, a.workers)
            a.cache.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pickle.dumps(runs[which]))
        as_arrays(runs[which])
    table = [(rule, tie, E.rule_metrics(runs["cal"], detector(rule))) for rule, tie in rules()]
    for target in a.target:
        for family in ("consecutive", "cusum"):
            # the export's choice (evaluate.choose), within each family
            cal, _, rule = E.choose([(m, tie, rule) for rule, tie, m in table if rule["family"] == family], target)
            print(json.dumps({"target_fph": target, "rule": rule, "calibration": rounded(cal),
                              "held_out": rounded(E.rule_metrics(runs["eval"], detector(rule)))}), flush=True)


if __name__ == "__main__":
    main()
