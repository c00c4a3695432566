"""Speed and memory of the network simulator: one JSON line.

    python benchmarks/simulator_scale.py --nodes 100000          # a full scenario
    python benchmarks/simulator_scale.py --nodes 10000 --false-year

A full scenario: the 2017 Mw 7.1 Puebla earthquake under N nodes placed at random over the OpenEEW
Mexico area (engine.OPENEEW_BBOX: 15-20 N, 93.5-102.5 W, ~530,000 km^2) with the default node
behaviour (5 % down, false triggers, Wi-Fi latency and loss, clock errors) and the dense-network
policy defaults; targets are the node sites plus Mexico City. `seconds` times engine.run_scenario +
metrics.score (physics, detection, telemetry, association, alert, scoring of the target sites);
building the layout is timed apart (`layout_seconds`). `cpu_seconds`: the same in CPU time (what
a busy machine does not inflate). `peak_mb` is the process's peak resident memory (ru_maxrss),
layout included.

`--false-year`: `metrics.false_alerts_per_year` over `--years` (default 1) with the same layout and
policy. Aims (one core): 10^5 nodes <= 0.5 s, 10^6 nodes <= 5 s and <= 2 GB; a year of false
triggers at 10^4 nodes <= 15 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import replace

from seismote.simulator import engine, metrics
from seismote.simulator.policy import PolicyConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--false-year", action="store_true", help="time a long run of false triggers instead")
    ap.add_argument("--years", type=float, default=1.0)
    a = ap.parse_args()
    if a.nodes < 1:
        ap.error("--nodes must be >= 1")
    cfg = replace(engine.ScenarioConfig(), policy=PolicyConfig())
    t = time.perf_counter()
    layout = engine.build_layout(cfg, a.nodes)
    t_layout = time.perf_counter() - t
    out: dict = {"nodes": a.nodes}
    t = time.perf_counter()
    cpu = time.process_time()
    if a.false_year:
        r = metrics.false_alerts_per_year(layout, cfg, a.years, a.seed)
        out.update({"mode": "false_year", "years": a.years, "seconds": round(time.perf_counter() - t, 3),
                    "cpu_seconds": round(time.process_time() - cpu, 3),
                    "false_triggers": r["false_triggers"], "events_per_year": r["events_per_year"],
                    "alerting_events_per_year": r["alerting_events_per_year"]})
    else:
        res = engine.run_scenario(layout, engine.build_quake(cfg), cfg, a.seed)
        sc = metrics.score(res)
        out.update({"mode": "scenario", "seconds": round(time.perf_counter() - t, 3),
                    "cpu_seconds": round(time.process_time() - cpu, 3),
                    "first_alert_after_origin_s": sc["first_alert_after_origin_s"],
                    "messages": sc["counts"]["messages"], "aggregator_cycles": sc["counts"]["aggregator_cycles"],
                    "split_s": {k: round(v, 3) for k, v in res.timings.items()}})
    out["layout_seconds"] = round(t_layout, 3)
    out["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024.0 if sys.platform != "darwin" else 1024.0 ** 2), 1)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
