"""`seismote logs` and `seismote monitor`: the binary stream (firmware/logserver.py) and the host
side (host_tools/logs.py, monitor.py, cli_logs.py).

- frames: COBS4 round trip for every byte value and random payloads; no 0x04 on the wire;
- fuzz: corrupted, truncated or padded streams never yield a corrupt record, stop with a clear
  error, keep everything good before the damage, and the next pull completes the copy;
- resume: transfers cut at random byte offsets (silent line or a port that goes away) and host
  crashes mid-write; the union of the pulls is exactly the node's records, each once;
- export: JSON Lines, CSV, miniSEED read back with ObsPy; the `logs show` table; the CLI;
- monitor: status frames of a running node (rate, overflows, STA/LTA, heap, detection, waveform);
- the node side on the real MicroPython VM gives the same frames as on CPython;
- end to end against the virtual node (the firmware on the VM behind a pty): pulls cut at random
  points (the port closed mid-transfer), corrupted bytes on the line, the pulling process killed,
  then resumed: exactly the node's records, each once; `logs pull --format mseed` and
  `monitor --once --json` through the CLI.

`LocalNode` stands in for a board in the fast tests: its exec runs the code on CPython against an
event log in a folder and plays the output back through a fake serial port, framed as the raw
REPL frames it.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import traceback
from pathlib import Path

import pytest
import serial
from click.testing import CliRunner

from seismote.firmware import eventlog, logserver
from seismote.host_tools import logs

NODE_ID = "MX-PIN01"


# ---------------------------------------------------------------------------------------------
# A node on CPython behind a fake serial port


class FakeSerial:
    """Plays back bytes; `cut` = offset in the current output after which the line goes silent
    (or, with raise_at_cut, the port goes away)."""

    def __init__(self):
        self.data = b""
        self.pos = 0
        self.timeout = None
        self.cut: int | None = None
        self.raise_at_cut = False
        self.written = bytearray()

    def load(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def in_waiting(self) -> int:
        end = len(self.data) if self.cut is None else min(self.cut, len(self.data))
        return max(0, end - self.pos)

    def read(self, n: int) -> bytes:
        if self.cut is not None and self.pos >= self.cut:
            if self.raise_at_cut:
                raise serial.SerialException("device reports readiness to read but returned no data")
            return b""
        end = self.pos + n if self.cut is None else min(self.pos + n, self.cut)
        out = self.data[self.pos : end]
        self.pos += len(out)
        return out

    def write(self, b: bytes) -> int:
        self.written += b
        return len(b)


class LocalNode:
    """The transport interface pull() uses, with the node's side run here on CPython."""

    def __init__(self, log_dir: str, mutate=None, namespace=None):
        self.log_dir = log_dir
        self.namespace = namespace or {}  # what the exec'd code sees (the monitor's node)
        self.serial = FakeSerial()
        self.in_raw_repl = False
        self.mutate = mutate  # bytes -> bytes, applied to the stream (fuzzing)
        self.cut: int | None = None  # see FakeSerial
        self.raise_at_cut = False
        self.calls: list[str] = []

    def enter_raw_repl(self, soft_reset: bool = False) -> None:
        self.in_raw_repl = True

    def exec_raw_no_follow(self, code: str) -> None:
        self.calls.append(code)
        out = io.BytesIO()
        err = b""
        stdout = io.TextIOWrapper(out, write_through=True)
        data_dir = logserver.DATA_DIR
        logserver.DATA_DIR = self.log_dir  # the node's /data
        try:
            with contextlib.redirect_stdout(stdout):
                exec(code, dict(self.namespace))
        except Exception:
            err = traceback.format_exc().encode()
        finally:
            logserver.DATA_DIR = data_dir
        stream = out.getvalue()
        if self.mutate is not None:
            stream = self.mutate(stream)
        self.serial.load(stream + b"\x04" + err + b"\x04>")
        self.serial.cut = self.cut
        self.serial.raise_at_cut = self.raise_at_cut

    def exit_raw_repl(self) -> None:
        self.in_raw_repl = False

    def close(self) -> None:
        pass


def make_log(d: Path, n: int = 120, seed: int = 3, segment_bytes: int = 8192) -> eventlog.EventLog:
    """A node's log: boots, detections and event ends, faults, overflows, waveform snippets."""
    rng = random.Random(seed)
    log = eventlog.EventLog(str(d), segment_bytes, 64)
    t = 1700000000
    log.append_json(eventlog.T_STATUS, {"kind": "boot", "reset_cause": "power_on", "board": "esp32-devkitc", "recovered_bytes": 0}, t)
    while log.stats()["next_seq"] <= n:
        t += rng.randint(1, 600)
        r = rng.random()
        if r < 0.25:
            pga = round(rng.uniform(1, 80), 3)
            ev = {"pga_gal": pga, "pgv_cms": round(pga / 20, 4), "cav_cms": round(pga / 3, 3), "duration_s": 4.2,
                  "onset_s": 30.1, "score": round(rng.uniform(2.5, 9), 2), "confirmed": True}
            log.append_json(eventlog.T_EVENT, dict(ev, final=False), t)
            log.append_json(eventlog.T_EVENT, dict(ev, final=True, duration_s=12.5), t + 12)
        elif r < 0.5:
            frames = rng.randint(50, 300)
            samples = [rng.randint(-2**31, 2**31 - 1) if rng.random() < 0.05 else rng.randint(-3000, 3000) for _ in range(3 * frames)]
            log.append(eventlog.T_WAVEFORM, eventlog.encode_waveform(rng.randint(0, 10**6), 50000, 3, samples), t)
        elif r < 0.6:
            log.append_json(eventlog.T_STATUS, {"kind": "boot", "reset_cause": rng.choice(["wdt", "power_on", "soft"]), "board": "esp32-devkitc", "recovered_bytes": 0}, t)
        elif r < 0.7:
            log.append_json(eventlog.T_STATUS, {"kind": "sensor_fault", "error": "no samples for 2100 ms", "retry_ms": 1000}, t)
        elif r < 0.8:
            log.append_json(eventlog.T_STATUS, {"kind": "fifo_overflow", "overflows": 2, "lost": 64}, 0)
        else:
            log.append(eventlog.T_STATUS, bytes(rng.randrange(256) for _ in range(rng.randint(0, 200))), t)
    return log


@pytest.fixture
def node(tmp_path, monkeypatch):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"node_id": NODE_ID}))
    monkeypatch.setattr(logserver, "CONFIG_PATH", str(cfg))
    log = make_log(tmp_path / "data")
    return LocalNode(str(tmp_path / "data")), log


def stream_of(log: eventlog.EventLog, since: int = 1, **kw) -> bytes:
    out = io.BytesIO()
    logserver.serve(since, log=log, out=out, node_id=NODE_ID, **kw)
    return out.getvalue()


def kept(out: Path) -> list[eventlog.Record]:
    return logs.load(out).records


# ---------------------------------------------------------------------------------------------
# Frames


def _frame(rec_bytes: bytes) -> bytes:
    buf = bytearray(logserver.encoded_size(len(rec_bytes)))
    return bytes(buf[: logserver.encode_into(rec_bytes, buf)])


def test_frames_round_trip_every_byte_value_and_hold_no_0x04():
    payloads = [b"", bytes(range(256)), bytes(range(256)) * 16, b"\x04" * 4096, b"\x00" * 4096, b"\xfb" * 4096]
    # Runs of every length around the 254-byte block edge, ending in 0x04 or not.
    payloads += [b"a" * k + tail for k in range(240, 270) for tail in (b"", b"\x04", b"\x04\x04")]
    for p in payloads:
        for rec in (eventlog.encode(eventlog.T_STATUS, 7, 1700000000, p[:4096]),):
            wire = _frame(rec)
            assert 4 not in wire
            assert len(wire) <= logserver.encoded_size(len(rec))
            assert logs.decode_frames(wire) == eventlog.decode_stream(rec)[0]


def test_frames_round_trip_any_payloads():
    # Random payloads, biased to the bytes that matter (0x04, the 0xFB full-block code, 0x00).
    rng = random.Random(31)
    for _ in range(300):
        payloads = []
        for _ in range(rng.randint(1, 6)):
            n = rng.choice([0, 1, 2, rng.randint(0, 600), rng.randint(240, 270)])
            alphabet = rng.choice([b"\x04", b"\x04\xfb\x00a", bytes(range(256))])
            payloads.append(bytes(rng.choice(alphabet) for _ in range(n)))
        seq = rng.randint(1, 2**32 - 1)
        recs = [eventlog.encode(eventlog.T_EVENT, (seq + i) % 2**32 or 1, i, p) for i, p in enumerate(payloads)]
        wire = b"".join(_frame(r) for r in recs)
        assert 4 not in wire
        assert [logs._raw(r) for r in logs.decode_frames(wire)] == recs


def test_stream_holds_the_log_between_greeting_and_end(node):
    _, log = node
    frames = logs.decode_frames(stream_of(log))
    hello, body, end = frames[0], frames[1:-1], frames[-1]
    assert hello.type == logserver.T_HELLO and hello.json()["node"] == NODE_ID
    assert hello.json()["next_seq"] == log.stats()["next_seq"] and hello.json()["first_seq"] == 1
    assert body == list(log.records())
    assert end.type == logserver.T_END
    assert end.json() == {"count": len(body), "bytes": sum(18 + len(r.payload) for r in body),
                          "next_seq": log.stats()["next_seq"], "more": False, "corrupt_skipped": 0}
    # since_seq and max_bytes
    part = logs.decode_frames(stream_of(log, 50, max_bytes=3000))
    assert part[1].seq == 50 and part[-1].json()["more"] is True
    assert part[-1].json()["next_seq"] == part[-2].seq + 1
    assert sum(18 + len(r.payload) for r in part[1:-1]) >= 3000


def test_encoding_overhead_is_below_half_a_percent(node):
    _, log = node
    data = stream_of(log)
    body = sum(18 + len(r.payload) for r in log.records())
    assert body / len(data) > 0.99


# ---------------------------------------------------------------------------------------------
# Pull, resume


def test_pull_keeps_every_record_once_and_resumes_from_the_next_seq(node, tmp_path):
    local, log = node
    out = tmp_path / "pulled"
    res = logs.pull(local, out)
    assert res.node == NODE_ID and res.kept == res.received == len(list(log.records())) and not res.duplicates
    assert kept(out) == list(log.records())
    state = json.loads((out / logs.STATE_FILE).read_text())
    assert state["node"] == NODE_ID and state["next_seq"] == log.stats()["next_seq"]
    # Nothing new: nothing sent. New records: only those.
    res = logs.pull(local, out)
    assert res.received == 0 and "logserver.serve(%d," % log.stats()["next_seq"] in local.calls[-1]
    log.append_json(eventlog.T_EVENT, {"pga_gal": 3.0, "score": 3.1, "final": False}, 1800000000)
    res = logs.pull(local, out)
    assert res.kept == 1 and kept(out) == list(log.records())
    # An explicit --since below what is kept: the repeats are dropped.
    res = logs.pull(local, out, since=1)
    assert res.duplicates == res.received > 100 and res.kept == 0
    assert kept(out) == list(log.records())


@pytest.mark.parametrize("raise_at_cut", [False, True], ids=["line-silent", "port-gone"])
def test_pull_cut_at_random_offsets_then_resumed_yields_each_record_once(node, tmp_path, raise_at_cut):
    local, log = node
    want = list(log.records())
    rng = random.Random(11 if raise_at_cut else 12)
    out = tmp_path / "pulled"
    pulls = 0
    done = False
    while not done:
        pulls += 1
        assert pulls < 100
        # Anywhere in what this pull will send, the raw REPL's closing bytes included.
        since = logs.load(out).next_seq if (out / logs.RECORDS_FILE).exists() else 1
        local.cut = rng.randrange(0, len(stream_of(log, since)) + 3)
        local.raise_at_cut = raise_at_cut
        try:
            logs.pull(local, out, idle_s=0.01)
            done = True
        except logs.LinkError as e:
            assert "records kept, the next pull resumes there" in str(e)
            assert e.result is not None
        got = kept(out)
        assert got == want[: len(got)]  # a prefix: nothing corrupt, nothing twice
        done = done or len(got) == len(want)
    local.cut = None
    res = logs.pull(local, out)
    assert kept(out) == want and res.received == 0
    assert pulls > 5


def test_a_host_crash_mid_write_is_cut_back_and_refetched(node, tmp_path):
    local, log = node
    want = list(log.records())
    out = tmp_path / "pulled"
    logs.pull(local, out)
    path = out / logs.RECORDS_FILE
    size = path.stat().st_size
    rng = random.Random(5)
    for _ in range(20):
        k = rng.randrange(0, size)
        path.write_bytes(path.read_bytes()[:k])  # the rest never reached the disk
        before = logs.load(out)
        assert before.records == want[: len(before.records)]
        res = logs.pull(local, out)
        assert kept(out) == want
        assert res.kept == len(want) - len(before.records)


def test_pull_refuses_another_nodes_directory_and_an_erased_log(node, tmp_path, monkeypatch):
    local, log = node
    out = tmp_path / "pulled"
    logs.pull(local, out)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"node_id": "MX-OTHER"}))
    monkeypatch.setattr(logserver, "CONFIG_PATH", str(other))
    with pytest.raises(logs.StoreError, match="holds the log of node MX-PIN01, but this is node MX-OTHER"):
        logs.pull(local, out)
    monkeypatch.setattr(logserver, "CONFIG_PATH", str(tmp_path / "config.json"))
    fresh = eventlog.EventLog(str(tmp_path / "fresh"), 8192, 4)
    fresh.append_json(eventlog.T_STATUS, {"kind": "boot"}, 0)
    with pytest.raises(logs.StoreError, match="erased"):
        logs.pull(LocalNode(str(tmp_path / "fresh")), out)
    assert kept(out) == list(log.records())


def test_pull_reports_records_rotated_out_before_they_were_pulled(tmp_path, monkeypatch):
    monkeypatch.setattr(logserver, "CONFIG_PATH", str(tmp_path / "none.json"))
    log = eventlog.EventLog(str(tmp_path / "data"), 4096, 2)
    for i in range(600):
        log.append(eventlog.T_STATUS, b'{"kind":"x","i":%d}' % i, 0)
    first = log.stats()["first_seq"]
    assert first > 1
    res = logs.pull(LocalNode(str(tmp_path / "data")), tmp_path / "pulled")
    assert res.rotated == (1, first - 1) and "rotated out" in res.notes[0]
    assert res.node is None
    assert [r.seq for r in kept(tmp_path / "pulled")] == list(range(first, 601))


def test_an_exception_on_the_node_is_reported_and_loses_nothing(node, tmp_path, monkeypatch):
    local, log = node
    want = list(log.records())
    real = eventlog.encode
    calls = [0]

    def failing(*a):
        calls[0] += 1
        if calls[0] == 40:
            raise OSError(5, "EIO")
        return real(*a)

    monkeypatch.setattr(eventlog, "encode", failing)
    with pytest.raises(logs.NodeError, match=r"the node stopped the transfer after record \d+: OSError: \[Errno 5\] EIO"):
        logs.pull(local, tmp_path / "pulled")
    got = kept(tmp_path / "pulled")
    assert 30 <= len(got) < 40 and got == want[: len(got)]
    monkeypatch.setattr(eventlog, "encode", real)
    logs.pull(local, tmp_path / "pulled")
    assert kept(tmp_path / "pulled") == want


def test_output_ending_inside_a_frame_is_reported_at_once(node, tmp_path):
    import time

    local, log = node
    s = stream_of(log)
    local.mutate = lambda b: b[: len(s) // 2]  # e.g. the node died in the middle of a write
    t0 = time.monotonic()
    with pytest.raises(logs.FrameError, match="corrupt stream after record \\d+: it ended inside a frame"):
        logs.pull(local, tmp_path / "pulled", idle_s=5)
    assert time.monotonic() - t0 < 1  # no waiting for bytes that cannot come
    got = kept(tmp_path / "pulled")
    assert got and got == list(log.records())[: len(got)]


# ---------------------------------------------------------------------------------------------
# Fuzz: corrupted frames


def _mutations(rng: random.Random, n: int):
    for _ in range(n):
        kind = rng.choice(["flip", "byte", "burst", "drop", "insert", "truncate", "eot"])

        def mutate(s: bytes, kind=kind, seed=rng.random()) -> bytes:
            r = random.Random(seed)
            b = bytearray(s)
            i = r.randrange(len(b))
            if kind == "flip":
                b[i] ^= 1 << r.randrange(8)
            elif kind == "byte":
                b[i] = r.randrange(256)
            elif kind == "burst":
                for k in range(i, min(len(b), i + r.randint(2, 40))):
                    b[k] = r.randrange(256)
            elif kind == "drop":
                del b[i : i + r.randint(1, 8)]
            elif kind == "insert":
                b[i:i] = bytes(r.randrange(256) for _ in range(r.randint(1, 8)))
            elif kind == "truncate":
                del b[i:]
            else:  # a 0x04 where none can be
                b[i] = 4
            return bytes(b)

        yield kind, mutate


def test_fuzzed_streams_never_yield_a_corrupt_record_and_lose_nothing(node, tmp_path):
    local, log = node
    want = {r.seq: r for r in log.records()}
    order = list(want.values())
    rng = random.Random(2024)
    errors = 0
    for k, (kind, mutate) in enumerate(_mutations(rng, 250)):
        out = tmp_path / ("pulled%d" % k)
        if k % 2:  # half of them resume a copy that is already part-way
            logs.pull(LocalNode(local.log_dir), out, since=None)
            (out / logs.RECORDS_FILE).write_bytes(b"".join(logs._raw(r) for r in order[: rng.randrange(len(order))]))
        bad = LocalNode(local.log_dir, mutate=mutate)
        try:
            logs.pull(bad, out, idle_s=0.01)
        except logs.PullError as e:
            errors += 1
            msg = str(e)
            assert isinstance(e, (logs.FrameError, logs.LinkError)), (kind, msg)
            assert ("corrupt" in msg or "transfer cut" in msg or "not a log stream" in msg), (kind, msg)
            assert "records kept" in msg or "not a log stream" in msg, msg
        got = kept(out)
        # Never a corrupt record, never one twice, never one out of order: a prefix of the log.
        assert got == order[: len(got)], kind
        assert all(want[r.seq] == r for r in got)
        logs.pull(LocalNode(local.log_dir), out)
        assert kept(out) == order, kind
    assert errors > 200  # nearly every mutation is caught (a few hit only the REPL's closing bytes)


def test_corrupt_frame_error_names_where_it_stopped(node, tmp_path):
    local, log = node
    s = stream_of(log)
    frames = logs.decode_frames(s)
    # Flip a byte in the middle of the 11th record's frame.
    pos = 0
    sizes = [len(_frame(logs._raw(f))) for f in frames]
    pos = sum(sizes[:11]) + sizes[11] // 2
    local.mutate = lambda b: b[:pos] + bytes([b[pos] ^ 0x40 if b[pos] ^ 0x40 != 4 else b[pos] ^ 0x20]) + b[pos + 1 :]
    with pytest.raises(logs.FrameError) as e:
        logs.pull(local, tmp_path / "pulled", idle_s=0.01)
    assert str(e.value).startswith("corrupt frame after record %d:" % frames[10].seq)
    assert "10 records kept, the next pull resumes there" in str(e.value)
    assert e.value.result.kept == 10
    assert local.serial.written.endswith(b"\x03")  # the node's serve() was interrupted


# ---------------------------------------------------------------------------------------------
# Export and show


def test_export_jsonl_one_object_per_record(node, tmp_path):
    local, log = node
    records = list(log.records())
    f = io.StringIO()
    assert logs.export(records, "jsonl", f) == len(records)
    lines = [json.loads(x) for x in f.getvalue().splitlines()]
    assert [x["seq"] for x in lines] == [r.seq for r in records]
    assert {x["type"] for x in lines} == {"event", "status", "waveform"}
    ev = next(x for x in lines if x["type"] == "event")
    assert ev["kind"] in ("detection", "event_end") and "pga_gal" in ev["fields"] and ev["time"].endswith("Z")
    wf = next(x for x in lines if x["type"] == "waveform")
    rec = next(r for r in records if r.seq == wf["seq"])
    _, _, ch, samples = eventlog.decode_waveform(rec.payload)
    assert wf["fields"]["samples"] == [samples[c::3] for c in range(3)] and wf["fields"]["rate_hz"] == 50
    boot = lines[0]
    assert boot["kind"] == "boot" and boot["fields"]["reset_cause"] == "power_on" and "kind" not in boot["fields"]
    assert any(x["time"] is None for x in lines)  # clock unset -> null
    assert any(x["kind"] == "unreadable" for x in lines)  # a status payload that is not JSON


def test_export_csv_one_row_per_event(node, tmp_path):
    import csv

    _, log = node
    records = list(log.records())
    path = tmp_path / "events.csv"
    n = logs.export(records, "csv", path)
    rows = list(csv.DictReader(path.open()))
    events = [r for r in records if r.type == eventlog.T_EVENT]
    assert n == len(rows) == len(events)
    assert list(rows[0])[:11] == list(logs.EVENT_COLUMNS)
    assert [int(r["seq"]) for r in rows] == [e.seq for e in events]
    assert [float(r["pga_gal"]) for r in rows] == [e.json()["pga_gal"] for e in events]
    assert {r["kind"] for r in rows} == {"detection", "event_end"}


def test_export_mseed_reads_back_with_obspy_equal_to_the_snippets(node, tmp_path):
    import obspy

    _, log = node
    records = list(log.records())
    path = tmp_path / "snippets.mseed"
    n = logs.export(records, "mseed", path, node_id=NODE_ID)
    snippets = [r for r in records if r.type == eventlog.T_WAVEFORM]
    assert n == 3 * len(snippets)
    st = obspy.read(str(path))
    assert len(st) == n
    for k, rec in enumerate(snippets):
        start, rate_mhz, ch, samples = eventlog.decode_waveform(rec.payload)
        for c, code in enumerate(("BNN", "BNE", "BNZ")):
            tr = [t for t in st if t.stats.channel == code][k]
            assert tr.id == "MX.PIN01..%s" % code
            assert tr.stats.sampling_rate == rate_mhz / 1000
            assert tr.data.tolist() == samples[c::3]
            assert abs(tr.stats.starttime.timestamp - (rec.time - len(samples) // 3 / 50)) < 1e-6


def test_export_mseed_compresses_sensor_counts_with_steim2(tmp_path):
    import obspy

    samples = [(-1) ** i * (i * 37 % 500000) for i in range(300)]  # 20-bit counts, one channel
    rec = eventlog.Record(5, eventlog.T_WAVEFORM, 0, eventlog.encode_waveform(1000, 100000, 1, samples))
    path = tmp_path / "one.mseed"
    assert logs.export([rec], "mseed", path, node_id="seismote-7") == 1
    tr = obspy.read(str(path))[0]
    assert tr.id == "XX.MOTE7..HNZ" and tr.stats.mseed.encoding == "STEIM2"
    assert tr.data.tolist() == samples and tr.stats.starttime.timestamp == 10.0  # clock unset: sample 1000 at 100 Hz


def test_seed_codes_and_channel_codes():
    assert logs.seed_codes("MX-PIN01") == ("MX", "PIN01")
    assert logs.seed_codes("seismote-0") == ("XX", "MOTE0")
    assert logs.seed_codes(None) == ("XX", "NODE")
    assert logs.channel_code(100, 2, 3) == "HNZ" and logs.channel_code(50, 0, 3) == "BNN"
    assert logs.channel_code(50, 0, 1) == "BNZ" and logs.channel_code(5, 1, 2) == "LN2"


def test_show_table_has_time_pga_score_status_gaps_and_resets(tmp_path):
    from rich.console import Console

    log = eventlog.EventLog(str(tmp_path / "d"), 65536, 4)
    log.append_json(eventlog.T_STATUS, {"kind": "boot", "reset_cause": "wdt", "board": "esp32-devkitc", "recovered_bytes": 0}, 1700000000)
    log.append_json(eventlog.T_EVENT, {"pga_gal": 12.345, "pgv_cms": 0.8, "cav_cms": 3.2, "duration_s": 6.5, "score": 4.25, "final": False}, 1700000100)
    log._next_seq += 3  # three records lost (torn writes)
    log.append_json(eventlog.T_STATUS, {"kind": "sensor_fault", "error": "no samples for 2100 ms", "retry_ms": 1000}, 1700000200)
    log.append_json(eventlog.T_STATUS, {"kind": "boot", "reset_cause": "power_on", "board": "esp32-devkitc", "recovered_bytes": 17}, 0)
    records = list(log.records())
    rows = logs.rows(records)
    assert [r["gap"] for r in rows] == [0, 0, 3, 0]
    assert [r["reset"] for r in rows] == ["wdt", None, None, "power_on"]
    assert rows[1]["pga_gal"] == 12.345 and rows[1]["score"] == 4.25 and rows[1]["kind"] == "detection"
    con = Console(file=io.StringIO(), width=160, color_system=None)
    logs.show(records, console=con)
    text = con.file.getvalue()
    for s in ("2023-11-14 22:13:20", "detection", "12.35", "4.25", "3 missing", "wdt", "power_on", "clock unset",
              "sensor_fault", "no samples for 2100 ms", "17 torn bytes recovered",
              "4 records (seq 1-7), 3 missing, 1 detections (max PGA 12.35 gal), 2 resets, 1 sensor faults"):
        assert s in text, s


# ---------------------------------------------------------------------------------------------
# CLI


def _cli():
    import click

    from seismote.host_tools import cli_logs

    @click.group()
    def cli():
        pass

    cli_logs.register(cli)
    return cli


def test_cli_logs_show_and_export(node, tmp_path):
    cli = _cli()
    local, log = node
    out = tmp_path / "pulled"
    logs.pull(local, out)
    r = CliRunner().invoke(cli, ["logs", "show", str(out)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "records (seq 1-%d)" % (log.stats()["next_seq"] - 1) in r.output
    r = CliRunner().invoke(cli, ["logs", "export", str(out), "--format", "jsonl"])
    assert r.exit_code == 0, r.output
    assert len(r.output.splitlines()) == len(list(log.records()))
    dest = tmp_path / "x.mseed"
    r = CliRunner().invoke(cli, ["logs", "export", str(out), "--format", "mseed", "-o", str(dest)])
    assert r.exit_code == 0 and dest.stat().st_size > 0, r.output
    r = CliRunner().invoke(cli, ["logs", "show", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "holds no pulled log" in r.output


def test_cli_logs_pull_resumes_after_a_cut_and_exports(node, tmp_path, monkeypatch):
    from seismote.host_tools import cli_logs

    local, log = node
    monkeypatch.setattr(cli_logs, "_connect", lambda port, baud: local)
    monkeypatch.setattr(logs.Wire, "__init__", _short_idle(logs.Wire.__init__))
    cli = _cli()
    out = tmp_path / "pulled"
    local.cut = len(stream_of(log)) // 2
    r = CliRunner().invoke(cli, ["logs", "pull", "--out", str(out)])
    assert r.exit_code == 1, r.output
    assert "seismote: transfer cut after record" in r.output and "hint: run the same command again to resume" in r.output
    assert local.serial.written.endswith(b"\x04")  # soft reboot: the node runs main.py again
    local.cut = None
    r = CliRunner().invoke(cli, ["logs", "pull", "--out", str(out), "--format", "csv", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output.splitlines()[0])
    assert res["node"] == NODE_ID and res["kept"] > 0 and res["duplicates"] == 0
    assert kept(out) == list(log.records())
    assert (out / "events.csv").read_text().startswith("seq,time,kind,")


def _short_idle(init):
    def wrapped(self, ser, idle_s=5.0):
        init(self, ser, min(idle_s, 0.01))

    return wrapped


# ---------------------------------------------------------------------------------------------
# The node side on the real MicroPython VM


@pytest.mark.micropython
def test_logserver_on_micropython_sends_the_same_frames(tmp_path):
    from seismote.host_tools import mpvm

    # A small log: mpvm.mjs can lose stdout beyond the pipe's buffer when it exits.
    log = make_log(tmp_path / "data", n=25)
    code = (
        "import binascii\n"
        "from seismote.firmware import logserver, eventlog\n"
        "log = eventlog.EventLog('/data', 8192, 64)\n"
        "f = open('/out.bin', 'wb')\n"
        "n = logserver.serve(1, 0, log=log, out=f, node_id=%r)\n"
        "f.close()\n"
        "f = open('/out.bin', 'rb')\n"
        "while True:\n"
        "    b = f.read(600)\n"
        "    if not b:\n"
        "        break\n"
        "    print(binascii.hexlify(b).decode())\n" % NODE_ID
    )
    try:
        proc = mpvm.run(code, mpvm.firmware_mounts({log.dirpath: "/data"}), heap=4 << 20)
    except mpvm.VMUnavailable as e:
        pytest.fail(str(e))
    assert proc.returncode == 0, proc.stderr
    data = bytes.fromhex("".join(proc.stdout.split()))
    assert 4 not in data
    frames = logs.decode_frames(data)
    assert frames[1:-1] == list(log.records()) and len(frames) == log.stats()["next_seq"] + 1
    assert frames[0].json() == logs.decode_frames(stream_of(log))[0].json()
    assert frames[-1].json() == logs.decode_frames(stream_of(log))[-1].json()


# ---------------------------------------------------------------------------------------------
# Monitor


class FeedingBoard:
    """HostBoard whose sleep_ms feeds the chip model at its rate: quiet, then a tap at 2 s."""

    def __new__(cls, chip, data_dir, rate=250):
        from seismote.firmware.board import HostBoard

        class _Board(HostBoard):
            def sleep_ms(self, ms):
                HostBoard.sleep_ms(self, ms)
                for _ in range(rate * ms // 1000):
                    k = self.k
                    self.k += 1
                    tap = 60000 if 2 * rate <= k < 2 * rate + 3 else 0
                    chip.push(37 + (k * 7919) % 61 - 30, -12 + (k * 104729) % 41 - 20, 256000 + tap + (k * 7) % 31 - 15)

        b = _Board(chip.spi, chip.cs, data_dir=data_dir, unix_time=1700000000)
        b.k = 0
        return b


def _monitor_node(tmp_path, frames=6, interval_ms=500):
    from seismote.firmware.chipmodels.adxl355 import ADXL355Model
    from seismote.firmware.node import Node

    tmp_path.mkdir(parents=True, exist_ok=True)
    chip = ADXL355Model()
    board = FeedingBoard(chip, str(tmp_path / "data"))
    make_log(tmp_path / "data", n=20)  # an earlier life: events in the log
    node = Node(board, {"node_id": NODE_ID, "telemetry": {"heartbeat_s": 10}})
    code = "from seismote.firmware import logserver\nlogserver.monitor(node, %d, frames=%d)\n" % (interval_ms, frames)
    return LocalNode(str(tmp_path / "data"), namespace={"node": node}), code


def test_monitor_json_reports_the_running_node(tmp_path):
    from seismote.host_tools import monitor

    local, code = _monitor_node(tmp_path)
    mon = monitor.Monitor(local, 0.5, idle_s=0.5, code=code)
    got = []
    with pytest.raises(monitor.MonitorError, match="the session ended"):
        with mon:
            for st in mon.statuses():
                got.append(st)
    assert len(got) == 6
    st = got[-1]
    assert st["node"] == NODE_ID and st["sensor"] == "ok" and st["rate_hz"] == 250.0
    assert st["overflows"] == 0 and st["lost"] == 0 and st["dropped"] == 0
    assert st["uptime_ms"] >= 3000 and st["t"] >= 1700000003 and st["free_heap"] is not None
    assert st["link"] == "none" and st["outbox"] >= 1 and st["outbox_dropped"] == 0
    assert st["last_event"]["seq"] > 1 and st["last_event"]["pga_gal"] > 0
    assert st["level_g"][2] == pytest.approx(1.0, abs=0.001) and abs(st["level_g"][0]) < 0.001
    assert 3 * 25 <= len(st["wave"]) <= 3 * 27 and st["wave_hz"] == 50  # ~0.5 s of conditioned x y z
    assert all(0 < n < 1 for n in st["noise_mg"])
    # The tap at 2 s shows on z in the frame that covers it, and lifts the STA/LTA ratio.
    tap = max(range(len(got)), key=lambda i: max(abs(v) for v in got[i]["wave"][2::3]))
    assert tap == 3 and got[tap]["noise_mg"][2] > 10 * got[tap]["noise_mg"][0]
    assert max(g["ratio"] for g in got) > 1.5
    assert local.serial.written.endswith(b"\x03")  # the session was interrupted at the end


def test_monitor_once_json_and_live_view(tmp_path):
    from rich.console import Console

    from seismote.host_tools import monitor

    local, code = _monitor_node(tmp_path)
    orig = monitor.session_code
    monitor.session_code = lambda ms: code
    try:
        out = io.StringIO()
        assert monitor.run(None, as_json=True, once=True, transport=local, out=out) == 1
        st = json.loads(out.getvalue())
        assert st["rate_hz"] == 250.0 and st["sensor"] == "ok"
        assert local.serial.written.endswith(b"\x03\x04")  # session interrupted, board soft-rebooted into main.py
        local2, _ = _monitor_node(tmp_path / "b")
        con = Console(file=io.StringIO(), width=140, color_system=None, force_terminal=False)
        assert monitor.run("/dev/ttyFAKE", transport=local2, console=con, seconds=0) == 1
        assert local2.serial.written.endswith(b"\x03\x04")
        text = con.file.getvalue()
        for s in ("sensor", "ok", "250.0 Hz", "overflows 0, lost 0, dropped 0", "STA/LTA", "free heap", "uptime",
                  "2023-11-14", "none (outbox", "last detection", "PGA", "z +1.000", "noise (mg rms)", "waveform"):
            assert s in text, s
    finally:
        monitor.session_code = orig


def test_sparkline_scales_to_the_peak():
    from seismote.host_tools import monitor

    line, scale = monitor.sparkline([0, 0, 10, 0, -5, 0, 0, 0], 4)
    assert scale == 10 and line == "▁█▄▁"
    assert monitor.sparkline([], 3) == ("   ", 0.0)
    assert monitor.sparkline([0.1, -0.1], 2, floor=1.0)[1] == 1.0
    assert monitor.sparkline([0, 4, 0, 0], 4, slots=8) == ("  █▁", 4)  # scrolls in from the right


@pytest.mark.micropython
def test_monitor_frames_on_micropython(tmp_path):
    from seismote.host_tools import mpvm

    code = (
        "import binascii\n"
        "from seismote.firmware import logserver\n"
        "from seismote.firmware.board import HostBoard\n"
        "from seismote.firmware.chipmodels.adxl355 import ADXL355Model\n"
        "from seismote.firmware.node import Node\n"
        "chip = ADXL355Model()\n"
        "class B(HostBoard):\n"
        "    k = 0\n"
        "    def sleep_ms(self, ms):\n"
        "        HostBoard.sleep_ms(self, ms)\n"
        "        for _ in range(250 * ms // 1000):\n"
        "            self.k += 1\n"
        "            chip.push(self.k % 50, -(self.k % 30), 256000 + self.k % 20)\n"
        "b = B(chip.spi, chip.cs, data_dir='/data', unix_time=1700000000)\n"
        "node = Node(b, {'node_id': 'VM-1', 'telemetry': {'heartbeat_s': 10}})\n"
        "f = open('/out.bin', 'wb')\n"
        "logserver.monitor(node, 500, out=f, frames=3)\n"
        "f.close()\n"
        "print(binascii.hexlify(open('/out.bin', 'rb').read()).decode())\n"
    )
    try:
        proc = mpvm.run(code, heap=4 << 20)
    except mpvm.VMUnavailable as e:
        pytest.fail(str(e))
    assert proc.returncode == 0, proc.stderr
    frames = logs.decode_frames(bytes.fromhex(proc.stdout.split()[-1]))
    assert [f.type for f in frames] == [logserver.T_MONITOR] * 3
    st = frames[-1].json()
    assert st["node"] == "VM-1" and st["rate_hz"] == 250.0 and st["sensor"] == "ok" and 75 <= len(st["wave"]) <= 81


# ---------------------------------------------------------------------------------------------
# End to end against the virtual node (the firmware on the MicroPython VM behind a pty)


def _vm_missing() -> str | None:
    from seismote.host_tools import mpvm

    try:
        mpvm.node_binary()
    except mpvm.VMUnavailable as e:
        return str(e)
    return None


vnode_test = pytest.mark.skipif(_vm_missing() is not None, reason=_vm_missing() or "")


class CutSerial:
    """A port that fails after `k` bytes: the cable is pulled (the port closes and reads raise),
    or with flip=True the k-th byte arrives corrupted and the line stays up."""

    def __init__(self, ser, k: int, flip: bool = False):
        object.__setattr__(self, "_ser", ser)
        object.__setattr__(self, "_k", k)
        object.__setattr__(self, "_n", 0)
        object.__setattr__(self, "_flip", flip)

    def read(self, n: int = 1) -> bytes:
        ser, k, got = self._ser, self._k, self._n
        if self._flip or got < k:
            b = ser.read(n if self._flip else min(n, k - got))
            if self._flip and got <= k < got + len(b):
                b = b[: k - got] + bytes([b[k - got] ^ 0x5A]) + b[k - got + 1 :]
            object.__setattr__(self, "_n", got + len(b))
            return b
        ser.close()
        raise serial.SerialException("device reports readiness to read but returned no data (cable pulled)")

    def __getattr__(self, name):
        return getattr(self._ser, name)

    def __setattr__(self, name, value):
        setattr(self._ser, name, value)


@pytest.fixture
def vnode_log(tmp_path):
    """A virtual node whose flash holds a log of ~150 records (events, faults, waveform snippets)."""
    from seismote.host_tools.transport import Transport
    from seismote.host_tools.virtual_node import VirtualNode

    log = make_log(tmp_path / "host-log", n=150, segment_bytes=16384)
    vn = VirtualNode()
    vn.start()
    try:
        with Transport.connect(vn.port, soft_reset=False) as t:
            for path in log.segment_paths():
                t.write_file("/data/" + Path(path).name, Path(path).read_bytes())
            t.reset()  # the node opens its log again, now with these records, and logs its boot
        yield vn, log
    finally:
        text = vn.log_text()
        vn.stop()
        print(text[-3000:])


def _connect(vn):
    from seismote.host_tools.transport import Transport

    return Transport.connect(vn.port, soft_reset=False)


def _reference(vn, tmp_path, name="reference") -> list[eventlog.Record]:
    """Every record on the node, by one clean pull."""
    t = _connect(vn)
    try:
        logs.pull(t, tmp_path / name)
    finally:
        t.close()
    return kept(tmp_path / name)


@vnode_test
@pytest.mark.micropython
def test_virtual_node_pull_cut_at_random_points_resumes_to_exactly_the_nodes_records(vnode_log, tmp_path):
    vn, log = vnode_log
    out = tmp_path / "pulled"
    rng = random.Random(7)
    cuts = 0
    for _ in range(40):
        since = logs.load(out).next_seq if (out / logs.RECORDS_FILE).exists() else 1
        left = len(stream_of(log, since)) + 200  # what this pull sends (the node's own records add a little)
        t = _connect(vn)
        st = t._st
        st.serial = CutSerial(st.serial, rng.randrange(0, left))
        try:
            logs.pull(t, out, idle_s=5)
            break
        except logs.LinkError as e:
            cuts += 1
            assert "records kept, the next pull resumes there" in str(e)
        finally:
            t.close()
        got = kept(out)
        assert [r.seq for r in got] == sorted({r.seq for r in got})  # each once, in order
    else:
        pytest.fail("40 pulls did not complete")
    ref = _reference(vn, tmp_path)
    assert kept(out) == ref  # exactly the node's records, each once
    assert cuts >= 3
    # ... and they are the records that were put on its flash, byte for byte, then its own.
    mine = list(log.records())
    assert ref[: len(mine)] == mine and ref[len(mine)].json()["kind"] == "boot"


@vnode_test
@pytest.mark.micropython
def test_virtual_node_corrupted_frames_stop_with_a_clear_error_and_lose_nothing(vnode_log, tmp_path):
    vn, log = vnode_log
    before = _reference(vn, tmp_path, "before")
    out = tmp_path / "pulled"
    rng = random.Random(8)
    sizes = []
    for _ in range(6):
        done = len(kept(out)) if (out / logs.RECORDS_FILE).exists() else 0
        t = _connect(vn)
        st = t._st
        k = rng.randrange(40, 20000)
        st.serial = CutSerial(st.serial, k, flip=True)
        try:
            logs.pull(t, out, idle_s=2)
        except logs.FrameError as e:
            assert str(e).startswith(("corrupt frame", "corrupt stream")), str(e)
            assert "records kept, the next pull resumes there" in str(e)
        else:
            pytest.fail("a corrupted byte at %d went unnoticed" % k)
        finally:
            t.close()
        got = kept(out)
        assert got == before[: len(got)]  # nothing corrupt, nothing lost before the damage
        sizes.append(len(got) - done)
    assert sum(sizes) > 0
    t = _connect(vn)
    try:
        logs.pull(t, out)
    finally:
        t.close()
    assert kept(out) == _reference(vn, tmp_path)


PULL_SCRIPT = """
import sys, time
from seismote.host_tools import logs
from seismote.host_tools.transport import Transport
t = Transport.connect(sys.argv[1], soft_reset=False)
print("go", flush=True)
logs.pull(t, sys.argv[2], progress=lambda r: time.sleep(0.01))
print("done", flush=True)
"""


@vnode_test
@pytest.mark.micropython
def test_virtual_node_pull_killed_mid_transfer_resumes(vnode_log, tmp_path):
    import subprocess
    import sys
    import time

    vn, log = vnode_log
    before = _reference(vn, tmp_path, "before")
    out = tmp_path / "pulled"
    rng = random.Random(9)
    kills = 0
    for _ in range(12):
        p = subprocess.Popen([sys.executable, "-c", PULL_SCRIPT, vn.port, str(out)], stdout=subprocess.PIPE, text=True,
                             cwd=str(Path(__file__).resolve().parents[1]))
        assert p.stdout.readline().strip() == "go"
        time.sleep(rng.uniform(0.0, 1.2))
        if p.poll() is None:
            p.kill()  # the host dies: mid-write of a record, maybe
            kills += 1
        p.wait()
        p.stdout.close()
        got = kept(out) if (out / logs.RECORDS_FILE).exists() else []
        assert got == before[: len(got)]
        if p.returncode == 0:
            break
    assert kills >= 2
    t = _connect(vn)
    try:
        logs.pull(t, out)
    finally:
        t.close()
    assert kept(out) == _reference(vn, tmp_path)


@vnode_test
@pytest.mark.micropython
def test_virtual_node_cli_pull_export_and_monitor(vnode_log, tmp_path):
    import obspy

    vn, log = vnode_log
    cli = _cli()
    out = tmp_path / "pulled"
    r = CliRunner().invoke(cli, ["logs", "pull", "--port", vn.port, "--out", str(out), "--format", "mseed"])
    assert r.exit_code == 0, r.output
    assert "new records" in r.output and "wrote" in r.output
    st = obspy.read(str(out / "snippets.mseed"))
    assert len(st) == 3 * sum(1 for x in log.records() if x.type == eventlog.T_WAVEFORM)
    assert {tr.stats.network + "." + tr.stats.station for tr in st} == {"XX.NODE0"}  # node vnode-0
    r = CliRunner().invoke(cli, ["monitor", "--port", vn.port, "--once", "--json"])
    assert r.exit_code == 0, r.output
    status = json.loads(r.output.strip().splitlines()[-1])
    assert status["node"] == "vnode-0" and status["sensor"] == "ok"
    assert 200 <= status["rate_hz"] <= 300  # 250 Hz, measured over one interval of node time
    for key in ("overflows", "ratio", "free_heap", "uptime_ms", "outbox", "outbox_dropped", "last_event", "wave", "level_g", "noise_mg"):
        assert key in status, key
    assert status["last_event"]["seq"] == max(x.seq for x in log.records() if x.type == eventlog.T_EVENT)
    assert len(status["wave"]) >= 3 and status["free_heap"] > 0
