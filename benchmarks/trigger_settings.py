"""How much of the detector's delay after P is the trigger's: the node's STA/LTA settings, each with
the decision rule calibration would pick for it, on the calibration recordings.

For each trigger setting (the node's default first, then `--set` overrides of trigger fields), traces
the detector's scores through the node pipeline on the calibration recordings (evaluate.calibration_jobs:
every scenario from CAL_SEED, plus the visible OpenEEW records of the real val events, OpenEEW / Grillo,
CC BY-SA 4.0) and prints one JSON line with:
- trigger_median_s: the node's first trigger at or after P - 2 s, median over the synthetic quakes it
  reaches (trigger_reached of them);
- bundled_rule: the figures of the model.json decision rule (calibrated with the default trigger);
- calibrated: the rule calibration picks with this trigger (evaluate.choose_consecutive, <= TARGET_FPH
  false detections per hour of activity), with its figures;
- with --held-out, held_out: that rule's figures on the evaluation's held-out recordings (ADXL355,
  evaluate.evaluation_jobs, and the real test events) traced with the same trigger; detected_visible
  and median_delay_visible_s are the report's headline share and delay (about 4 min a setting more).
The model stays the same: a setting that shortens the trigger's delay but not the detector's says the
delay is the model's (it needs that much of the P wave), not the trigger's. The bundled model, each
setting with its calibrated rule, held out: the node's 0.5 s STA 97.4% of the clearly visible
quakes, a median 0.97 s after P, 0.53 false/h of activity, 0.75 per quiet day, 16 of 18 real
records; the 1 s STA of its training windows 97.4%, 1.08 s, 0.53/h, 0.25/day, 15 of 18 (11 min).

    python benchmarks/trigger_settings.py [--model firmware/model] [--hours 6] [--set '{"sta_s": 1.0}' ...] [--held-out]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seismote.model_export import evaluate as E  # noqa: E402
from seismote.model_export import real  # noqa: E402

from decision_rules import detector, rounded  # noqa: E402  (benchmarks/ is this script's sys.path[0])

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SETS = ('{"sta_s": 1.0}', '{"on": 2.0}')  # the training windows' trigger; a lower on level


def trigger_delays(runs: list[dict]) -> list[float]:
    """The first trigger's delay after P of each synthetic quake the trigger reaches (evaluate.match)."""
    out: list[float] = []
    for r in runs:
        if r["group"] != "real":
            onsets = [ev["onset_t"] for ev in r["events"]]
            out += [d for d in E.match(onsets, r["quakes"], r["activities"])["delays"] if d is not None]
    return out


def setting_row(model_dir: Path, trigger: dict, hours: float, workers: int, held_out: bool = False) -> dict:
    """The figures of one trigger setting (the module docstring's JSON line)."""
    t0 = time.time()
    runs = E.trace_runs(E.calibration_jobs(model_dir, hours, hours), real.split_events(0)["val"], model_dir, workers,
                        trigger=trigger)
    rule = json.loads((model_dir / "model.json").read_text())["decision"]
    bundled = E.rule_metrics(runs, detector(rule))
    trig = trigger_delays(runs)
    chosen = E.choose_consecutive(runs, E.TARGET_FPH, E.consecutive_rules())["chosen"]
    row = {"trigger": trigger, "trigger_median_s": round(float(np.median(trig)), 2) if trig else None,
           "trigger_reached": len(trig), "quakes": bundled["quakes"], "bundled_rule": rounded(bundled), "calibrated": chosen}
    if held_out:
        jobs = E.evaluation_jobs(model_dir, E.EVAL_HOURS, E.EVAL_HOURS, sensors=E.SENSORS[:1])
        test = E.trace_runs(jobs, real.split_events(0)["test"], model_dir, workers, stage="held-out recordings", trigger=trigger)
        row["held_out"] = rounded(E.rule_metrics(test, detector(chosen)))
    return dict(row, seconds=round(time.time() - t0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "firmware" / "model")
    ap.add_argument("--hours", type=float, default=E.CAL_HOURS, help="hours per scenario (the export's: %g)" % E.CAL_HOURS)
    ap.add_argument("--set", dest="sets", nargs="*", default=list(DEFAULT_SETS),
                    help="trigger overrides as JSON objects, e.g. '{\"sta_s\": 0.5}'")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--held-out", action="store_true", help="also score each calibrated rule on the held-out recordings")
    a = ap.parse_args()
    for trig in [{}] + [json.loads(s) for s in a.sets]:
        print(json.dumps(setting_row(a.model.resolve(), trig, a.hours, a.workers, a.held_out)), flush=True)


if __name__ == "__main__":
    main()
