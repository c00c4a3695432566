"""Detection rate, delay after P and false detections of the node pipeline on the OpenEEW records.

Replays every file listed in ../shared/data/openeew/records.csv (real MEMS records from Mexico,
OpenEEW / Grillo, CC BY-SA 4.0) through the node pipeline, once per trigger setting, and prints
one JSON line per setting. A detection counts as a hit on an `earthquake_visible` file when it falls
between 3 s before the expected P and 60 s after the expected S (records.csv, +-2 s); any other
detection counts as false (this includes real aftershocks and other events, so it over-counts).

    python benchmarks/trigger_openeew.py [--data DIR] [--sweep]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seismote.firmware import config  # noqa: E402
from seismote.host_tools.replay import NodeModel, replay_record  # noqa: E402
from seismote.host_tools.waveforms import read_records  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "openeew"
UTC = dt.timezone.utc


def _job(args: tuple[Path, dict, dict]) -> tuple[str, float, list[float], int]:
    root, row, trig = args
    node = NodeModel(config.validate({"node_id": "bench", "trigger": trig}))
    rec = read_records([str(root / row["file"])])[0]
    start = dt.datetime.fromisoformat(row["start_utc"]).replace(tzinfo=UTC)
    p = start + dt.timedelta(seconds=float(row["expected_P_offset_s"]))
    s = start + dt.timedelta(seconds=float(row["expected_S_offset_s"]))
    hits, false = [], 0
    for e in replay_record(rec, node):
        if e["event"] != "detection":
            continue
        u = dt.datetime.fromisoformat(e["utc"])
        if row["label"] == "earthquake_visible" and p - dt.timedelta(seconds=3) <= u <= s + dt.timedelta(seconds=60):
            hits.append((u - p).total_seconds())
        else:
            false += 1
    return row["label"], rec.duration_s, hits, false


def evaluate(root: Path, trig: dict) -> dict:
    rows = list(csv.DictReader(open(root / "records.csv")))
    with ProcessPoolExecutor(2) as ex:
        res = list(ex.map(_job, [(root, r, trig) for r in rows]))
    vis = [r for r in res if r[0] == "earthquake_visible"]
    delays = [r[2][0] for r in vis if r[2]]
    hours = sum(r[1] for r in res) / 3600
    false = sum(r[3] for r in res)
    return {
        "trigger": config.validate({"node_id": "b", "trigger": trig})["trigger"],
        "visible_records": len(vis),
        "detected_fraction": round(len(delays) / len(vis), 3),
        "median_delay_after_P_s": round(float(np.median(delays)), 2) if delays else None,
        "false_detections": false,
        "hours_replayed": round(hours, 2),
        "false_per_hour": round(false / hours, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--sweep", action="store_true", help="also try other STA/LTA settings")
    a = ap.parse_args()
    settings = [{}]
    if a.sweep:
        settings += [{"sta_s": 0.5, "lta_s": 10, "on": 3, "off": 1.5}, {"sta_s": 0.5, "lta_s": 10, "on": 2, "off": 1.3},
                     {"sta_s": 0.5, "lta_s": 20, "on": 2.5, "off": 1.3}, {"sta_s": 1, "lta_s": 20, "on": 2, "off": 1.3}]
    for trig in settings:
        print(json.dumps(evaluate(a.data, trig)), flush=True)


if __name__ == "__main__":
    main()
