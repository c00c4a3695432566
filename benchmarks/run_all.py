"""Run the benchmarks (`make bench`): each script in its own process, its JSON lines passed through.

The quick ones run by default (minutes in all on 2 cores). Those that train or trace models for tens
of minutes run only with --all: decision_rules (about 25 min), trigger_settings (about 20 min),
real_windows (builds the data set if it is not cached), real_capacity (two trainings) and
seed_spread (a training per seed).

    python benchmarks/run_all.py [--all] [--only NAME ...]

Before each script's lines comes {"benchmark": NAME}; after them {"benchmark": NAME, "exit": CODE,
"seconds": S}. The exit status is 1 if any script failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICK = (
    ("model_budgets", []),
    ("node_pipeline_vm", []),
    ("replay_speed", []),
    ("trigger_openeew", []),
    ("real_delay", []),
    ("real_p_vertical", []),
    ("real_by_sensor", []),
    ("spectra_real_vs_synth", []),
    ("p_to_s_ratios", []),
    ("log_throughput", []),
    ("upload_vnode", []),
    ("simulator_scale", []),
    ("sweep_scaling", []),
)
LONG = (
    ("real_windows", []),
    ("decision_rules", []),
    ("trigger_settings", []),
    ("real_capacity", []),
    ("seed_spread", ["--name", "committed"]),
    ("train_speed", []),
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="also the benchmarks that train or trace models (hours)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="just these benchmarks")
    a = ap.parse_args()
    chosen = QUICK + (LONG if a.all or a.only else ())
    if a.only:
        unknown = set(a.only) - {name for name, _ in QUICK + LONG}
        if unknown:
            ap.error("no benchmark named %s" % ", ".join(sorted(unknown)))
        chosen = tuple(b for b in chosen if b[0] in a.only)
    failed = []
    for name, args in chosen:
        print(json.dumps({"benchmark": name}), flush=True)
        t0 = time.time()
        code = subprocess.call([sys.executable, str(HERE / (name + ".py")), *args])
        print(json.dumps({"benchmark": name, "exit": code, "seconds": round(time.time() - t0, 1)}), flush=True)
        if code:
            failed.append(name)
    if failed:
        print("failed: %s" % ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
