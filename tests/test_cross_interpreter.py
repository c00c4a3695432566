"""The same input gives identical triggers and detections on CPython and on MicroPython.

The node pipeline is integer arithmetic by design; this checks that the design holds: a real
OpenEEW earthquake record (converted to sensor counts on the host) and a synthetic record run
through `Pipeline.push` on both interpreters and must produce the same events at the same samples
with the same features.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from seismote.host_tools import mpvm

HERE = Path(__file__).parent
ROOT = HERE.parent

RUNNER = r"""
import json, struct
from seismote.firmware import config, pipeline
def run(path, cfg_text, counts_per_g, rate):
    cfg = config.loads(cfg_text)
    p = pipeline.Pipeline(cfg, counts_per_g, rate)
    out = []
    with open(path, "rb") as f:
        data = f.read()
    n = len(data) // 12
    for i in range(n):
        x, y, z = struct.unpack_from("<iii", data, 12 * i)
        s = p.push(x, y, z)
        if s:
            f = p.feat
            # Integer state only: float formatting may differ between interpreters, the state must not.
            out.append([s, p.n, f.pga_counts(), list(f.vpeak), list(f.cav_lo), list(f.cav_hi), p.peak_ratio, p.trig.ratio])
    return out
print("RESULT " + json.dumps(run(PATH, CFG, CPG, RATE)))
"""


def _cases(tmp_path: Path) -> list[tuple[Path, int, int]]:
    from seismote.host_tools.cli import DEMO_RECORD
    from seismote.host_tools.replay import NodeModel
    from seismote.firmware import config
    from seismote.host_tools.waveforms import read_records

    node = NodeModel(config.default())
    rec = read_records([str(p) for p in DEMO_RECORD])[0].resampled(node.sensor_rate)
    counts = np.concatenate([node.to_counts(s.data) for s in rec.segments]).astype("<i4")
    real = tmp_path / "real.bin"
    real.write_bytes(counts.tobytes())
    rng = np.random.default_rng(3)
    syn = rng.normal(0, 40, (100 * 120, 3))
    syn[6000:, :] += 3000 * np.sin(2 * np.pi * 4 * np.arange(6000) / 100)[:, None] * np.exp(-np.arange(6000) / 800)[:, None]
    syn[:, 2] += 16384
    synp = tmp_path / "syn.bin"
    synp.write_bytes(np.rint(syn).astype("<i4").tobytes())
    return [(real, node.counts_per_g, node.sensor_rate), (synp, 16384, 100)]


def test_identical_events_on_cpython_and_micropython(tmp_path: Path) -> None:
    cfg_mpu = json.dumps({"node_id": "x", "sensor": {"type": "mpu6050", "odr_hz": 100}})
    cfg_adxl = json.dumps({"node_id": "x"})
    for path, cpg, rate in _cases(tmp_path):
        cfg = cfg_adxl if rate == 250 else cfg_mpu
        script = RUNNER.replace("PATH, CFG, CPG, RATE", "%r, %r, %d, %d" % ("/data/" + path.name, cfg, cpg, rate))
        cpy = subprocess.run([sys.executable, "-c", script.replace("/data/", str(tmp_path) + "/")], capture_output=True, text=True, cwd=ROOT)
        assert cpy.returncode == 0, cpy.stderr
        vm = mpvm.run(script, mpvm.firmware_mounts({str(tmp_path): "/data"}), heap=4 << 20)
        assert vm.returncode == 0, vm.stderr
        a = json.loads(cpy.stdout.split("RESULT ")[1])
        b = json.loads(vm.stdout.split("RESULT ")[1])
        assert a, "no events: the comparison would prove nothing"
        assert 2 in [e[0] for e in a], "expected a detection in %s" % path.name
        assert a == b
