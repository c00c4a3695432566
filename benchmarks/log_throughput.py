"""Log download throughput: what fraction of a 115200-baud line carries log data.

    python benchmarks/log_throughput.py [--kb 200] [--no-vm] [--no-virtual]

Builds a bulk event log (about 200 KB of records: mostly waveform snippets, the rest events and
status records) and measures:

- wire efficiency: record bytes / bytes on the wire for one pull (COBS4 frames, greeting and end
  frames, the raw REPL's end bytes). The node streams without pauses, so at 115200 baud (8N1:
  11520 bytes/s) the log arrives at efficiency x 11520 B/s whenever the node can produce bytes
  that fast; the same for payload bytes (records less their 18-byte headers). For comparison the
  efficiency the same log would get as base64 text lines (the usual REPL dump);
- host side: frames decoded, CRC-checked and stored per second (CPython);
- node side on the real MicroPython VM (WebAssembly port): bytes per second serve() produces into
  a file. Pessimistic for the ESP32 in one respect: this port's binascii.crc32 is pure Python;
- against the virtual node (if host_tools/virtual_node.py exists): a real pull over its pty (no
  baud limit there), bytes per second end to end.

Prints one JSON line. fraction_of_line_rate_115200 = min(1, node B/s / 11520) x efficiency, with
the node's rate from the VM measurement (the VM stands in for the board's CPU, not its speed).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from seismote.firmware import eventlog, logserver  # noqa: E402
from seismote.host_tools import logs  # noqa: E402

LINE_RATE = 115200 / 10  # bytes/s, 8N1


def build_log(d: Path, kb: int, seed: int = 1) -> eventlog.EventLog:
    """~kb KB of records: 4 s 3-axis 50 Hz snippets of noise with a quake, events, status."""
    rng = random.Random(seed)
    log = eventlog.EventLog(str(d), 65536, 64)
    t = 1700000000
    start = 0
    while log.stats()["bytes"] < kb * 1024:
        t += rng.randint(10, 3600)
        r = rng.random()
        if r < 0.6:
            frames = 200
            amp = rng.choice([30, 300, 3000, 30000])
            samples = [int(rng.gauss(0, amp)) for _ in range(3 * frames)]
            log.append(eventlog.T_WAVEFORM, eventlog.encode_waveform(start, 50000, 3, samples), t)
            start += frames
        elif r < 0.8:
            pga = round(rng.uniform(1, 80), 3)
            log.append_json(eventlog.T_EVENT, {"pga_gal": pga, "pgv_cms": round(pga / 20, 4), "cav_cms": round(pga / 3, 3),
                                               "duration_s": 6.2, "onset_s": 30.12, "score": 4.31, "confirmed": True, "final": True}, t)
        else:
            log.append_json(eventlog.T_STATUS, {"kind": "fifo_overflow", "overflows": rng.randint(1, 9), "lost": 32}, t)
    return log


class _Serial:
    """The bytes a node sends for one pull, as a port would deliver them."""

    def __init__(self, data: bytes):
        self.b = io.BytesIO(data)
        self.timeout = None

    def read(self, n: int) -> bytes:
        return self.b.read(n)

    def write(self, b: bytes) -> int:
        return len(b)


class _Replay:
    def __init__(self, data: bytes):
        self.serial = _Serial(data)
        self.in_raw_repl = True

    def exec_raw_no_follow(self, code: str) -> None:
        pass


def vm_serve_rate(log_dir: str) -> float | None:
    from seismote.host_tools import mpvm

    code = [
        "from seismote.firmware import logserver\nimport time\n"
        "class Null:\n    n = 0\n    def write(self, b):\n        self.n += len(b)\n"
        "out = Null()\nt = time.ticks_ms()\nlogserver.serve(1, 0, out=out, log_dir='/data')\n"
        "print('RESULT', out.n, time.ticks_diff(time.ticks_ms(), t))\n"
    ]
    try:
        proc = mpvm.run(code, mpvm.firmware_mounts({log_dir: "/data"}), heap=8 << 20)
    except mpvm.VMUnavailable:
        return None
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            _, n, ms = line.split()
            return int(n) / (max(1, int(ms)) / 1000)
    raise RuntimeError("VM run failed: %s" % proc.stderr[-2000:])


def virtual_pull(log: eventlog.EventLog) -> dict | None:
    """Pull `log` from the virtual node's flash over its pty (best of 3 pulls)."""
    try:
        from seismote.host_tools.virtual_node import VirtualNode
        from seismote.host_tools import mpvm

        mpvm.node_binary()
    except (ImportError, RuntimeError):
        return None
    from seismote.host_tools.transport import Transport

    best = None
    with VirtualNode() as vn:
        with Transport.connect(vn.port, soft_reset=False) as t:
            for path in log.segment_paths():  # the bulk log onto the node's flash
                t.write_file("/data/" + Path(path).name, Path(path).read_bytes())
            t.reset()  # the node opens it
            for _ in range(3):
                with tempfile.TemporaryDirectory() as out:
                    res = logs.pull(t, out)
                if best is None or res.seconds < best.seconds:
                    best = res
    assert best is not None
    return {"records": best.received, "record_bytes": best.record_bytes, "wire_bytes": best.wire_bytes,
            "seconds": round(best.seconds, 3), "record_Bps": round(best.record_bytes / best.seconds),
            "efficiency": round(best.record_bytes / best.wire_bytes, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kb", type=int, default=200)
    ap.add_argument("--no-vm", action="store_true")
    ap.add_argument("--no-virtual", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = build_log(Path(tmp) / "data", args.kb)
        records = list(log.records())
        record_bytes = sum(eventlog.OVERHEAD + len(r.payload) for r in records)
        payload_bytes = sum(len(r.payload) for r in records)
        out = io.BytesIO()
        logserver.serve(1, log=log, out=out, node_id="BENCH-1")
        stream = out.getvalue() + b"\x04\x04"  # the raw REPL's end of output and of (empty) errors
        wire = len(stream)
        # base64 text lines of 57 raw bytes (76 characters + newline), as REPL dumps do
        raw = b"".join(eventlog.encode(r.type, r.seq, r.time, r.payload) for r in records)
        b64 = sum(len(base64.b64encode(raw[i:i + 57])) + 2 for i in range(0, len(raw), 57))
        # Host side: decode, check and store the stream.
        t0 = time.perf_counter()
        res = logs.pull(_Replay(stream), Path(tmp) / "pulled", wdt_ms=0)
        host_s = time.perf_counter() - t0
        assert res.received == len(records) and logs.load(Path(tmp) / "pulled").records == records
        vm = None if args.no_vm else vm_serve_rate(str(Path(tmp) / "data"))
        virt = None if args.no_virtual else virtual_pull(log)
    eff = record_bytes / wire
    node_rate = vm if vm is not None else float("inf")
    out_doc = {
        "bench": "log_throughput",
        "records": len(records),
        "record_bytes": record_bytes,
        "payload_bytes": payload_bytes,
        "wire_bytes": wire,
        "efficiency": round(eff, 4),
        "payload_efficiency": round(payload_bytes / wire, 4),
        "base64_efficiency": round(record_bytes / b64, 4),
        "line_rate_Bps_115200": LINE_RATE,
        "expected_record_Bps_115200": round(eff * LINE_RATE),
        "host_decode_Bps": round(wire / host_s),
        "vm_serve_Bps": None if vm is None else round(vm),
        "fraction_of_line_rate_115200": round(min(1.0, node_rate / LINE_RATE) * eff, 4),
        "virtual_node": virt,
    }
    print(json.dumps(out_doc))


if __name__ == "__main__":
    main()
