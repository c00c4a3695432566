"""Replay speed on CPython, in multiples of real time, for a 100 Hz 3-component record.

Writes a synthetic miniSEED record into a temporary directory (ObsPy): white noise of 0.2 gal on
HNZ/HNN/HNE at 100 Hz, in counts (gain 2e5 counts per m/s^2), with a 20-gal 5 Hz decaying quake
at 90 s and every 10 minutes after. Then times, with time.perf_counter, the functions `seismote replay` calls:

- read_s:      read_records (miniSEED -> Record in gal), once;
- resample_s:  Record.resampled to the node's sensor rate (the default node: 250 Hz), once;
- pipeline_s:  replay_record over the resampled record (counts, clipping, the conditioner's
               boxcar decimation to 50 Hz in NumPy, then
               seismote.firmware.pipeline.Pipeline.push for every 50 Hz sample), best of 3;
- total_s:     the whole library path end to end: read_records + replay_record (which
               resamples) + json.dumps of every event, as the CLI does; best of 3.

Module imports (ObsPy, SciPy) are done before timing; best of 3 because the timings jitter by
+-30% on a busy machine. x_realtime_* = record length / time.
Prints ONE JSON line (plus the detection count, a sanity check: one per synthetic quake).

    python benchmarks/replay_speed.py [--minutes 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seismote.firmware import config  # noqa: E402
from seismote.host_tools.replay import NodeModel, replay_record  # noqa: E402
from seismote.host_tools.waveforms import read_records  # noqa: E402

RATE_HZ = 100.0
GAIN = 2.0e5  # counts per m/s^2
QUAKE_EVERY_S = 600.0


def write_record(path: Path, seconds: float) -> None:
    import obspy

    n = int(seconds * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    rng = np.random.default_rng(0)
    data = rng.normal(0.0, 0.2, (3, n))  # gal
    for t0 in np.arange(90.0, seconds - 60.0, QUAKE_EVERY_S):
        d = np.maximum(t - t0, 0.0)
        q = np.where(t >= t0, 20.0 * np.clip(d / 0.2, 0, 1) * np.exp(-d / 4.0) * np.sin(2 * np.pi * 5.0 * d), 0.0)
        data += np.outer([1.0, 0.6, 0.4], q)
    start = obspy.UTCDateTime("2024-03-01T00:00:00")
    st = obspy.Stream([
        obspy.Trace(np.round(x / 100.0 * GAIN).astype(np.int32),
                    header=dict(network="XX", station="BENCH", channel=ch, sampling_rate=RATE_HZ, starttime=start))
        for ch, x in zip(("HNZ", "HNN", "HNE"), data)])
    st.write(str(path), format="MSEED")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="record length (default 60)")
    a = ap.parse_args()
    import scipy.signal  # noqa: F401  (imported by Record.resampled: keep its import time out)

    node = NodeModel(config.default("bench"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mseed"
        write_record(path, a.minutes * 60.0)

        t0 = time.perf_counter()
        rec = read_records([str(path)], gain=GAIN)[0]
        read_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        at_node_rate = rec.resampled(node.sensor_rate)
        resample_s = time.perf_counter() - t0

        pipeline_s = total_s = float("inf")
        for _ in range(3):  # interleaved, so that both see the same machine and heap state
            t0 = time.perf_counter()
            events = list(replay_record(at_node_rate, node))
            pipeline_s = min(pipeline_s, time.perf_counter() - t0)

            t0 = time.perf_counter()
            lines = [json.dumps(e) for r in read_records([str(path)], gain=GAIN) for e in replay_record(r, node)]
            total_s = min(total_s, time.perf_counter() - t0)

    record_s = rec.duration_s
    print(json.dumps({
        "record_s": round(record_s, 1),
        "rate_hz": int(RATE_HZ),
        "node_rate_hz": node.sensor_rate,
        "read_s": round(read_s, 3),
        "resample_s": round(resample_s, 3),
        "pipeline_s": round(pipeline_s, 3),
        "total_s": round(total_s, 3),
        "x_realtime_total": round(record_s / total_s),
        "x_realtime_pipeline": round(record_s / pipeline_s),
        "detections": sum(e["event"] == "detection" for e in events),
        "output_lines": len(lines),
    }))


if __name__ == "__main__":
    main()
