"""Speed-up of a sweep on 2 Dask workers over 1: the same sweep (the 2017 Puebla earthquake over
10^5 random nodes per run, policy.k x Monte-Carlo runs) on a LocalCluster of 1 worker process, then
of 2, in one run. Each cluster is started and warmed (one small task per worker) before the clock
starts, so the figure is the sweep's, not the cluster's start-up. Also checks that both runs gave
the same table (same seed, same result, whatever the number of workers).

    python benchmarks/sweep_scaling.py [--nodes 100000] [--runs 6] [--ks 3 4 6 8]

Prints one JSON line: tasks, nodes per task, seconds on 1 and on 2 workers, speed-up, identical.
The speed-up needs 2 free cores (os.cpu_count() is printed too).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace


def sweep_config(nodes: int, runs: int, ks: list[int]):
    from seismote.simulator import sweep

    doc = {
        "name": "scaling",
        "seed": 7,
        "base": {"layout": {"source": "random", "n": nodes, "bbox": [16.0, 20.5, -101.5, -95.5]},
                 "policy": {"radius_km": 30.0, "window_s": 10.0}, "targets": {"points": []}},
        "grid": {"policy.k": ks},
        "montecarlo": {"runs": runs},
        "output": {"report": False},
    }
    return sweep.parse_sweep(doc, "scaling")


def timed(cfg, workers: int):
    from distributed import Client, LocalCluster

    from seismote.simulator import sweep

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        client.wait_for_workers(workers)
        small = replace(cfg, base=cfg.base.with_(layout={"n": 1000}), grid={}, runs=workers)
        sweep.run_sweep(small, client=client)  # imports and first-call costs, on every worker
        t0 = time.perf_counter()
        res = sweep.run_sweep(cfg, client=client)
        return time.perf_counter() - t0, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--ks", type=int, nargs="+", default=[3, 4, 6, 8])
    a = ap.parse_args()
    cfg = sweep_config(a.nodes, a.runs, a.ks)
    t1, r1 = timed(cfg, 1)
    t2, r2 = timed(cfg, 2)
    print(json.dumps({"benchmark": "sweep_scaling", "tasks": len(r1.rows), "nodes_per_task": a.nodes,
                      "cpus": os.cpu_count(), "seconds_1_worker": round(t1, 2), "seconds_2_workers": round(t2, 2),
                      "speedup": round(t1 / t2, 2), "identical": r1.rows == r2.rows}))


if __name__ == "__main__":
    main()
