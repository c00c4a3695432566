"""Benchmark (a): cost of 1 s of 100 Hz 3-axis data through the node pipeline on the MicroPython VM.

Runs on the real MicroPython VM (WebAssembly port under Node.js). The pipeline's time is reported
as a ratio to a reference loop timed in the same run (a plain loop that reads and sums the same
samples), because absolute times on a shared machine, and between the VM and an ESP32, differ.
Timed path: FIFO bursts of 32 samples -> sampler ring -> conditioner -> STA/LTA -> event features.
Prints one JSON line.

    python benchmarks/node_pipeline_vm.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seismote.host_tools import mpvm  # noqa: E402

CODE = r"""
import gc, time, json
from array import array
from seismote.firmware import config, pipeline
from seismote.firmware.sampler import Sampler
from tests.firmware.support import ArraySensor, synthetic_counts

SECONDS = %(seconds)d
RATE = 100
data = array("i", synthetic_counts(SECONDS * RATE, RATE, quake_at=SECONDS * RATE // 2, quake_amp=3000))
cfg = config.validate({"node_id": "bench", "sensor": {"type": "mpu6050", "odr_hz": 100}})

REPS = 10  # each timed run repeats its work so the VM's millisecond clock resolves it

def reference():
    for _ in range(REPS):
        acc = 0
        for i in range(len(data)):
            acc += data[i]
    return acc

p = pipeline.Pipeline(cfg, 16384, RATE)

def node_path():
    for _ in range(REPS):
        p.reset()
        s = Sampler(ArraySensor(data, burst=32, odr_hz=RATE))
        while s.poll():
            while s.drain(p):
                pass

best = {}
for name, fn in (("reference", reference), ("pipeline", node_path)):
    runs = []
    for _ in range(3):
        gc.collect()
        t0 = time.ticks_us()
        fn()
        runs.append(time.ticks_diff(time.ticks_us(), t0))
    best[name] = min(runs)
print(json.dumps({"seconds_of_data": SECONDS, "reference_us": best["reference"] / REPS, "pipeline_us": best["pipeline"] / REPS,
                  "pipeline_us_per_data_second": best["pipeline"] / REPS / SECONDS,
                  "ratio_to_reference": best["pipeline"] / best["reference"]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    a = ap.parse_args()
    tests = Path(__file__).resolve().parents[1] / "tests" / "firmware"
    code = "open('/lib/tests/__init__.py', 'a').close()\n" + CODE % {"seconds": a.seconds}
    proc = mpvm.run(code, mpvm.firmware_mounts({str(tests): "/lib/tests/firmware"}), heap=16 << 20)
    if proc.returncode:
        sys.exit("benchmark failed on the VM:\n" + proc.stderr)
    line = proc.stdout.strip().splitlines()[-1]
    out = json.loads(line)
    out["vm"] = "micropython 1.27 webassembly"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
