"""Read a node's event log over serial, keep it on disk, and export or show it.

    pull(transport, out_dir, since=None)    resumable download (the node runs firmware/logserver.py)
    load(out_dir) -> Pulled                 what a pull kept: node id and records
    export(records, fmt, out, node_id)      "jsonl" | "csv" | "mseed"
    show(records, console=None)             the technician's table

The transfer is binary: the node streams COBS4-encoded frames, each one record in the event-log
format with its own CRC (the frame format is documented in firmware/logserver.py); the host
checks every frame with the firmware's own decoder (eventlog.decode_stream) before keeping it.

The local copy in `out_dir`:

    records.bin   the records, byte for byte as on the node's flash, append-only, in seq order
    state.json    node id and the next seq to ask for (written after each pull)

Each record is appended and flushed as soon as its frame checks out, so a transfer cut anywhere
(cable pulled, node reset, a corrupt frame) keeps every record before the cut and the next pull
asks for the seq after the last one kept. `records.bin` is the truth: a tail torn by a host crash
is cut back to its last good record when the directory is opened, and the resume point is read
from it, not from state.json. Records already kept are dropped if sent again.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable

from ..firmware import eventlog
from ..firmware import logserver
from ..firmware.eventlog import Record

RECORDS_FILE = "records.bin"
STATE_FILE = "state.json"
FORMATS = ("jsonl", "csv", "mseed")
TYPE_NAMES = {eventlog.T_EVENT: "event", eventlog.T_STATUS: "status", eventlog.T_WAVEFORM: "waveform", eventlog.T_CONFIG: "config"}
_EOT = 4  # the raw REPL's end-of-output byte, the one byte the stream never holds
_FULL = 255
_UTC = _dt.timezone.utc


class PullError(Exception):
    """A pull that stopped early; `result` says what was kept. The next pull resumes."""

    def __init__(self, message: str, result: "PullResult | None" = None):
        super().__init__(message)
        self.result = result


class FrameError(PullError):
    """A frame failed its checks (bad header, CRC mismatch, truncated, unexpected bytes)."""


class LinkError(PullError):
    """The connection went quiet or away in mid-transfer."""


class NodeError(PullError):
    """The node could not serve its log (the exec raised; `args[0]` carries its traceback)."""


class StoreError(PullError):
    """The output directory holds another node's log, or a log the node no longer has."""


class StreamEnded(Exception):
    """The raw REPL's end-of-output byte arrived where a frame byte was due."""


# ---------------------------------------------------------------------------------------------
# The wire: bytes from a pyserial-like object, and COBS4 frames out of them


class Wire:
    """Reads from `ser` (pyserial-like: read(n) returning up to n bytes) with an idle timeout.

    Reads only the bytes asked for, never ahead: after a pull the raw REPL's closing prompt is
    still unread, where mpremote's next exec expects it. Counts every byte read in `bytes_read`.
    `ser.timeout` should be short (pull() sets it).
    """

    def __init__(self, ser, idle_s: float = 5.0):
        self.ser = ser
        self.idle_s = idle_s
        self.buf = bytearray()
        self.pos = 0
        self.bytes_read = 0

    def _fill(self, n: int) -> None:
        """Read until `n` unread bytes are buffered or a 0x04 arrives (LinkError after idle_s
        without a byte)."""
        if self.pos and self.pos == len(self.buf):
            self.buf = bytearray()
            self.pos = 0
        deadline = time.monotonic() + self.idle_s
        while len(self.buf) - self.pos < n:
            try:
                chunk = self.ser.read(n - (len(self.buf) - self.pos))
            except Exception as e:  # pyserial: SerialException (an OSError) when the port goes away
                raise LinkError("connection lost: %s" % (e,)) from None
            if chunk:
                self.buf += chunk
                self.bytes_read += len(chunk)
                deadline = time.monotonic() + self.idle_s
                if _EOT in chunk:
                    return  # the output ended: no more stream bytes will come (block() says so)
            elif time.monotonic() >= deadline:
                raise LinkError("the node sent nothing for %g s" % self.idle_s)

    @property
    def offset(self) -> int:
        """Stream offset of the next unread byte."""
        return self.bytes_read - (len(self.buf) - self.pos)

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            self._fill(1)
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def block(self, n: int) -> bytes:
        """The next n bytes; StreamEnded (positioned at the 0x04) if one of them is 0x04."""
        self._fill(n)
        k = self.buf.find(_EOT, self.pos, self.pos + n)
        if k >= 0:
            self.pos = k
            raise StreamEnded()
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def until(self, end: int, limit: int = 1 << 16) -> bytes:
        """Bytes up to and including the byte `end`, read one by one (LinkError after `limit`)."""
        out = bytearray()
        while len(out) < limit:
            b = self.byte()
            out.append(b)
            if b == end:
                return bytes(out)
        raise LinkError("no %r in %d bytes from the node" % (bytes([end]), limit))


def read_frame(wire: Wire) -> Record:
    """Decode one COBS4 frame and check it; the Record (FrameError, StreamEnded, LinkError)."""
    out = bytearray()
    need = -1
    while need < 0 or len(out) < need:
        b = wire.byte()
        if b == _EOT:
            wire.pos -= 1
            raise StreamEnded()
        code = b ^ _EOT
        if code > 1:
            out += wire.block(code - 1)
        if need < 0 and len(out) >= eventlog.HEADER_SIZE:
            magic, version, _type, length = struct.unpack_from("<2sBBH", out, 0)
            if magic != eventlog.MAGIC or version != eventlog.VERSION or length > eventlog.MAX_PAYLOAD:
                raise FrameError("bad frame header %s" % bytes(out[:6]).hex())
            need = eventlog.OVERHEAD + length
        if code != _FULL and (need < 0 or len(out) < need):
            out.append(_EOT)
    if len(out) != need:
        raise FrameError("frame overruns its length (%d bytes for %d)" % (len(out), need))
    recs, bad = eventlog.decode_stream(bytes(out))
    if bad or len(recs) != 1:
        seq = struct.unpack_from("<I", out, 6)[0]
        raise FrameError("CRC mismatch in the frame of record %d" % seq)
    return recs[0]


def decode_frames(data: bytes) -> list[Record]:
    """Every frame in a captured stream (tests and tools); FrameError at the first bad one."""

    class _Bytes:
        def __init__(self, b: bytes):
            self.b = io.BytesIO(b)

        def read(self, n: int) -> bytes:
            return self.b.read(n)

    wire = Wire(_Bytes(data + bytes([_EOT])), idle_s=0)
    out = []
    while True:
        try:
            out.append(read_frame(wire))
        except LinkError:  # defensive: the appended 0x04 ends every frame read first
            raise FrameError("stream ends inside a frame") from None
        except StreamEnded:
            if wire.offset != len(data):
                raise FrameError("stream ends inside a frame at byte %d" % wire.offset) from None
            return out


# ---------------------------------------------------------------------------------------------
# The local copy


def _raw(rec: Record) -> bytes:
    return eventlog.encode(rec.type, rec.seq, rec.time, rec.payload)


@dataclass
class Pulled:
    """What an output directory holds."""

    node: str | None
    records: list[Record]
    torn_bytes: int = 0  # cut from the end of records.bin when it was opened (a host crash)
    corrupt_bytes: int = 0  # bad bytes inside records.bin (skipped, kept on disk)

    @property
    def next_seq(self) -> int:
        return self.records[-1].seq + 1 if self.records else 1


class Store:
    """records.bin + state.json in `out_dir`; opening repairs a torn tail."""

    def __init__(self, out_dir: str | os.PathLike):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / RECORDS_FILE
        self.state_path = self.dir / STATE_FILE
        state = {}
        if self.state_path.exists():
            try:
                state = json.loads(self.state_path.read_text())
            except (OSError, ValueError) as e:
                raise StoreError("%s is unreadable (%s); move it away to start afresh" % (self.state_path, e))
        self.node = state.get("node")
        data = self.path.read_bytes() if self.path.exists() else b""
        records, good_end, corrupt = _scan_store(data)
        self.torn = len(data) - good_end
        if self.torn:
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
        self.records = records
        self.corrupt = corrupt
        self.last_seq = records[-1].seq if records else 0
        self._f: IO[bytes] | None = None

    def append(self, rec: Record) -> bool:
        """Keep `rec` (True) unless its seq is already kept (False)."""
        if rec.seq <= self.last_seq:
            return False
        if self._f is None:
            self._f = open(self.path, "ab")
        self._f.write(_raw(rec))
        self._f.flush()  # in the OS's hands now: a host crash after this loses nothing
        self.records.append(rec)
        self.last_seq = rec.seq
        return True

    def save_state(self, node: str | None) -> None:
        if self._f is not None:
            os.fsync(self._f.fileno())
        self.node = node
        doc = {"node": node, "next_seq": self.last_seq + 1, "records": len(self.records),
               "updated": _dt.datetime.now(_UTC).isoformat(timespec="seconds")}
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        os.replace(tmp, self.state_path)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _scan_store(data: bytes) -> tuple[list[Record], int, int]:
    """Good records of records.bin, the end of the last one, and corrupt bytes before it."""
    records: list[Record] = []
    pos = 0
    good_end = 0
    corrupt = 0
    n = len(data)
    while pos < n:
        length = struct.unpack_from("<H", data, pos + 4)[0] if pos + 6 <= n else 0
        end = pos + eventlog.OVERHEAD + length
        recs, bad = eventlog.decode_stream(data[pos:end]) if end <= n and data[pos : pos + 2] == eventlog.MAGIC else ([], 1)
        if len(recs) == 1 and not bad and (not records or recs[0].seq > records[-1].seq):
            records.append(recs[0])
            if pos > good_end:
                corrupt += pos - good_end
            pos = good_end = end
        else:
            nxt = data.find(eventlog.MAGIC, pos + 1)
            pos = n if nxt < 0 else nxt
    return records, good_end, corrupt


def load(out_dir: str | os.PathLike) -> Pulled:
    """The node id and records kept in `out_dir` (repairing a torn tail, as a pull would)."""
    d = Path(out_dir)
    if not (d / RECORDS_FILE).exists():
        raise StoreError("%s holds no pulled log (no %s)" % (d, RECORDS_FILE))
    st = Store(d)
    return Pulled(st.node, st.records, st.torn, st.corrupt)


# ---------------------------------------------------------------------------------------------
# Pull


@dataclass
class PullResult:
    node: str | None = None
    since: int = 1
    received: int = 0  # good record frames
    kept: int = 0  # new records appended
    duplicates: int = 0  # already kept, dropped
    record_bytes: int = 0  # size of the records received
    wire_bytes: int = 0  # bytes read for the stream (frames and the raw REPL's end bytes)
    seconds: float = 0.0
    next_seq: int = 1  # where the next pull starts
    node_next_seq: int | None = None
    rotated: tuple[int, int] | None = None  # seqs rotated out of the node's log before they were pulled
    more: bool = False  # max_bytes stopped the node early: pull again for the rest
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["rotated"] = list(self.rotated) if self.rotated else None
        return d


def serve_call(since: int, max_bytes: int = 0, wdt_ms: int = 0, log_dir: str | None = None) -> str:
    """The Python the node executes for a pull."""
    args = "%d, %d, wdt_ms=%d" % (since, max_bytes, wdt_ms)
    if log_dir is not None:
        args += ", log_dir=%r" % log_dir
    return "from seismote.firmware import logserver\nlogserver.serve(%s)\n" % args


def raw_transport(transport):
    """The mpremote transport under host_tools.transport.Transport (or `transport` itself)."""
    return getattr(transport, "_st", transport)


def pull(transport, out_dir: str | os.PathLike, since: int | None = None, max_bytes: int = 0,
         idle_s: float = 5.0, wdt_ms: int = 30000, log_dir: str | None = None, progress=None) -> PullResult:
    """Download the node's records after the last one kept in `out_dir` (or from seq `since`).

    `transport`: a host_tools.transport.Transport, an mpremote SerialTransport, or anything with
    in_raw_repl, enter_raw_repl(soft_reset), exec_raw_no_follow(code) and a pyserial-like
    `.serial`. Entering the raw REPL stops a running main.py (see `finish`).
    Returns a PullResult. If the transfer stops early, raises a PullError subclass whose `.result`
    says what was kept: everything received before the failure; the next pull resumes there.
    `progress(result)` is called after each record.
    """
    store = Store(out_dir)
    res = PullResult(node=store.node)
    start = store.last_seq + 1 if since is None else max(1, since)
    res.since = start
    if store.torn:
        res.notes.append("cut %d torn bytes from the end of %s (an earlier host crash)" % (store.torn, store.path))
    st = raw_transport(transport)
    ser = st.serial
    old_timeout = ser.timeout
    wire = Wire(ser, idle_s)
    t0 = time.monotonic()
    try:
        try:
            if not st.in_raw_repl:
                st.enter_raw_repl(soft_reset=False)
            st.exec_raw_no_follow(serve_call(start, max_bytes, wdt_ms, log_dir))
            ser.timeout = 0.05  # after mpremote's handshake, which reads with the port's own timeout
        except Exception as e:  # mpremote's TransportError, pyserial's SerialException
            raise LinkError("could not start the transfer: %s" % (e,)) from None
        _receive(wire, store, res, start, progress)
    except PullError as e:
        e.result = res
        if not isinstance(e, NodeError):
            abandon(ser)
        raise
    finally:
        res.seconds = time.monotonic() - t0
        res.wire_bytes = wire.bytes_read
        res.next_seq = store.last_seq + 1
        try:
            store.save_state(res.node)
        finally:
            store.close()
            try:
                ser.timeout = old_timeout
            except Exception:
                pass  # the port is gone
    return res


def _receive(wire: Wire, store: Store, res: PullResult, start: int, progress) -> None:
    last = 0

    def where() -> str:
        return ("after record %d" % last) if last else "before the first record"

    try:
        try:
            hello = read_frame(wire)
        except FrameError as e:
            raise FrameError("the node's answer is not a log stream (%s): is the seismote firmware installed?" % e) from None
        if hello.type != logserver.T_HELLO:
            raise FrameError("the stream does not start with the node's greeting")
        info = hello.json()
        if info.get("v") != logserver.STREAM_VERSION:
            raise FrameError("the node speaks log stream version %r; this host reads %d" % (info.get("v"), logserver.STREAM_VERSION))
        node = info.get("node")
        if store.node is not None and node is not None and node != store.node:
            raise StoreError("%s holds the log of node %s, but this is node %s: pull into another directory" % (store.dir, store.node, node))
        if node is not None:
            res.node = node
        res.node_next_seq = nxt = info.get("next_seq")
        if store.last_seq and nxt is not None and nxt <= store.last_seq:
            raise StoreError(
                "the node's log ends before seq %d, but %s already holds records up to seq %d: the node's log was "
                "erased or this is another node; pull into another directory" % (nxt, store.dir, store.last_seq))
        first = info.get("first_seq")
        if first is not None and first > start:
            res.rotated = (start, first - 1)
            res.notes.append("seqs %d-%d were rotated out of the node's log before they were pulled" % (start, first - 1))
        while True:
            rec = read_frame(wire)
            if rec.type == logserver.T_END:
                end = rec.json()
                if end.get("count") != res.received:
                    raise FrameError("the node says it sent %r records, %d arrived" % (end.get("count"), res.received))
                res.more = bool(end.get("more"))
                if end.get("corrupt_skipped"):
                    res.notes.append("the node's flash holds %d corrupt bytes (skipped there)" % end["corrupt_skipped"])
                break
            if rec.type == logserver.T_HELLO or rec.seq <= last or rec.seq < start:
                raise FrameError("record %d arrived out of order (after %d)" % (rec.seq, last))
            last = rec.seq
            res.received += 1
            res.record_bytes += eventlog.OVERHEAD + len(rec.payload)
            if store.append(rec):
                res.kept += 1
            else:
                res.duplicates += 1
            if progress is not None:
                progress(res)
        if wire.byte() != _EOT:
            raise FrameError("unexpected bytes after the end frame")
        err = wire.until(_EOT)[:-1]  # the raw REPL's error output; its prompt stays unread
        if err:
            raise NodeError("the node reported after the transfer: %s" % last_line(err))
    except StreamEnded:
        # The output ended inside the stream: the node raised (Ctrl-C, a flash error), or a
        # corrupted byte became the end-of-output byte.
        try:
            wire.byte()
            err = wire.until(_EOT)[:-1]
        except LinkError:
            err = b""
        if b"Traceback" in err or b"Error" in err:
            raise NodeError("the node stopped the transfer %s: %s; %d records kept, the next pull resumes there"
                            % (where(), last_line(err), res.kept)) from None
        raise FrameError("corrupt stream %s: it ended inside a frame; %d records kept, the next pull resumes there"
                         % (where(), res.kept)) from None
    except FrameError as e:
        raise FrameError("corrupt frame %s: %s; %d records kept, the next pull resumes there" % (where(), e, res.kept)) from None
    except LinkError as e:
        raise LinkError("transfer cut %s: %s; %d records kept, the next pull resumes there" % (where(), e, res.kept)) from None


def last_line(err: bytes) -> str:
    lines = [ln.strip() for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def abandon(ser) -> None:
    """Best effort after a failed transfer: interrupt the node's serve() and drain its output, so
    that the port is left at the raw REPL's prompt (or closed, if the cable is gone)."""
    try:
        ser.write(b"\x03")  # Ctrl-C: KeyboardInterrupt in serve()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if not ser.read(4096):
                break
    except Exception:
        pass


_PROBE = ("try:\n import seismote_vnode as _v\n print('live' if _v.node is not None else 'stopped: %s' % _v.error)\n"
          "except ImportError:\n print('board')\n")


def run_code(transport, code: str, idle_s: float = 10.0) -> tuple[bytes, bytes]:
    """Execute `code` in the raw REPL (entered if needed); (stdout, stderr) as raw bytes.

    The output is read as the log stream is (nothing read ahead), so binary frames pass intact.
    """
    st = raw_transport(transport)
    ser = st.serial
    old = ser.timeout
    try:
        if not st.in_raw_repl:
            st.enter_raw_repl(soft_reset=False)
        st.exec_raw_no_follow(code)
        ser.timeout = 0.05
        wire = Wire(ser, idle_s)
        out = wire.until(_EOT, limit=1 << 20)[:-1]
        err = wire.until(_EOT, limit=1 << 20)[:-1]
    finally:
        ser.timeout = old
    return out, err


def node_runs_between_commands(transport) -> bool:
    """True for a node that keeps running while the REPL is in use (the virtual node: its board
    steps the node between commands); False for a board, where the REPL only answers once
    main.py has been stopped. NodeError if the virtual node's node has stopped."""
    out, err = run_code(transport, _PROBE)
    text = out.decode("utf-8", "replace").strip()
    if err or not text:
        raise NodeError("the node did not answer the probe: %s" % (last_line(err) or "no output"))
    if text.startswith("stopped"):
        raise NodeError("the virtual node's node is not running (%s)" % text[len("stopped: "):])
    return text == "live"


def finish(transport, restart: bool = True) -> None:
    """Leave the raw REPL; with `restart`, soft-reboot from the friendly REPL so that the board's
    main.py (the node) runs again. Closes the transport."""
    st = raw_transport(transport)
    try:
        if st.in_raw_repl:
            st.exit_raw_repl()
        if restart:
            time.sleep(0.05)
            st.serial.write(b"\x04")
            time.sleep(0.1)
    except Exception:
        pass  # the port may be gone
    finally:
        transport.close()


# ---------------------------------------------------------------------------------------------
# Reading records


def iso(t: int) -> str | None:
    """A record time (unix seconds, 0 = clock unset) as ISO 8601 UTC, or None."""
    if not t:
        return None
    return _dt.datetime.fromtimestamp(t, tz=_UTC).isoformat().replace("+00:00", "Z")


def describe(rec: Record) -> tuple[str, dict]:
    """(kind, fields) of a record: events are "detection" or "event_end", status records their
    "kind", snippets "waveform" (fields with samples per channel)."""
    if rec.type == eventlog.T_WAVEFORM:
        start, rate_mhz, channels, samples = eventlog.decode_waveform(rec.payload)
        return "waveform", {
            "start": start, "rate_hz": rate_mhz / 1000, "channels": channels,
            "frames": len(samples) // channels, "samples": [samples[c::channels] for c in range(channels)],
        }
    if rec.type in (eventlog.T_EVENT, eventlog.T_STATUS, eventlog.T_CONFIG):
        try:
            obj = rec.json()
        except ValueError as e:
            return "unreadable", {"error": str(e)}
        if not isinstance(obj, dict):
            return "unreadable", {"value": obj}
        if rec.type == eventlog.T_EVENT:
            return ("event_end" if obj.get("final") else "detection"), obj
        if rec.type == eventlog.T_STATUS:
            obj = dict(obj)
            return str(obj.pop("kind", "status")), obj
        return "config", obj
    return "type_%d" % rec.type, {"payload_hex": rec.payload.hex()}


# ---------------------------------------------------------------------------------------------
# Export

EVENT_COLUMNS = ("seq", "time", "kind", "onset_s", "pga_gal", "pgv_cms", "cav_cms", "duration_s", "score", "confirmed", "final")


def export(records: Iterable[Record], fmt: str, out: str | os.PathLike | IO, node_id: str | None = None,
           network: str | None = None, station: str | None = None) -> int:
    """Write `records` as `fmt` to `out` (a path or, for jsonl/csv, a text stream); return the
    number of items written (lines, rows or traces).

    jsonl: one object per record {seq, type, time (ISO UTC or null), kind, fields}.
    csv:   one row per event record (EVENT_COLUMNS, then any other event keys).
    mseed: one trace per channel of each waveform snippet, int32 counts (ObsPy).
    """
    records = list(records)
    if fmt == "mseed":
        return _export_mseed(records, out, node_id, network, station)
    if fmt not in ("jsonl", "csv"):
        raise ValueError("Invalid format: %r (one of %s)" % (fmt, ", ".join(FORMATS)))
    if isinstance(out, (str, os.PathLike)):
        with open(out, "w", newline="") as f:
            return export(records, fmt, f, node_id, network, station)
    if fmt == "jsonl":
        for rec in records:
            kind, fields = describe(rec)
            out.write(json.dumps({"seq": rec.seq, "type": TYPE_NAMES.get(rec.type, "type_%d" % rec.type),
                                  "time": iso(rec.time), "kind": kind, "fields": fields}) + "\n")
        return len(records)
    rows = []
    extra: list[str] = []
    for rec in records:
        if rec.type != eventlog.T_EVENT:
            continue
        kind, fields = describe(rec)
        row = {"seq": rec.seq, "time": iso(rec.time) or "", "kind": kind}
        for k, v in fields.items():
            row[k] = v
            if k not in EVENT_COLUMNS and k not in extra:
                extra.append(k)
        rows.append(row)
    w = csv.DictWriter(out, fieldnames=list(EVENT_COLUMNS) + sorted(extra), restval="", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return len(rows)


def seed_codes(node_id: str | None) -> tuple[str, str]:
    """(network, station) for a node id: "NN-STA"/"NN.STA"/"NN_STA" as written when it fits SEED
    (2 + 5 characters), else network "XX" and the id's last 5 letters and digits."""
    import re

    nid = node_id or "node"
    m = re.fullmatch(r"([A-Za-z0-9]{1,2})[-_.]([A-Za-z0-9]{1,5})", nid)
    if m:
        return m.group(1).upper(), m.group(2).upper()
    alnum = re.sub(r"[^A-Za-z0-9]", "", nid).upper() or "NODE"
    return "XX", alnum[-5:]


def channel_code(rate_hz: float, index: int, channels: int) -> str:
    """SEED channel code: band by rate (H >= 80 Hz, B >= 10 Hz, L below), N (accelerometer),
    orientation: x -> N, y -> E, z -> Z (installation.md: X points north, Z up); Z for a single
    channel; 1, 2, ... otherwise."""
    band = "H" if rate_hz >= 80 else "B" if rate_hz >= 10 else "L"
    if channels == 3:
        orient = "NEZ"[index]
    elif channels == 1:
        orient = "Z"
    else:
        orient = str(index + 1)
    return band + "N" + orient


def snippet_start(rec: Record, start: int, frames: int, rate_hz: float):
    """UTCDateTime of a snippet's first sample: the record's time (node clock, 1 s resolution) less
    the snippet's length (the node writes a snippet when its last sample is in); with the clock
    unset, the node's sample count `start` / rate after 1970-01-01."""
    from obspy import UTCDateTime

    if rec.time:
        return UTCDateTime(rec.time) - frames / rate_hz
    return UTCDateTime(start / rate_hz)


def _export_mseed(records: list[Record], out, node_id, network, station) -> int:
    import numpy as np
    from obspy import Stream, Trace

    net, sta = seed_codes(node_id)
    net = network or net
    sta = station or sta
    st = Stream()
    steim = True  # Steim-2 (compressed) holds sample differences up to 30 bits: any sensor's counts
    for rec in records:
        if rec.type != eventlog.T_WAVEFORM:
            continue
        start, rate_mhz, channels, samples = eventlog.decode_waveform(rec.payload)
        if not rate_mhz:
            continue
        rate = rate_mhz / 1000
        data = np.asarray(samples, dtype=np.int32).reshape(-1, channels)
        t0 = snippet_start(rec, start, data.shape[0], rate)
        for c in range(channels):
            col = np.ascontiguousarray(data[:, c])
            tr = Trace(col)
            if len(col) > 1 and int(np.abs(np.diff(col.astype(np.int64))).max()) >= 1 << 29:
                steim = False
            tr.stats.network = net
            tr.stats.station = sta
            tr.stats.location = ""
            tr.stats.channel = channel_code(rate, c, channels)
            tr.stats.sampling_rate = rate
            tr.stats.starttime = t0
            st.append(tr)
    if len(st):
        st.write(out, format="MSEED", encoding="STEIM2" if steim else "INT32", reclen=512)
    elif isinstance(out, (str, os.PathLike)):
        Path(out).write_bytes(b"")
    return len(st)


# ---------------------------------------------------------------------------------------------
# Show


def rows(records: Iterable[Record]) -> list[dict]:
    """The table `show` prints, as dicts: seq, time, kind, pga_gal, score, status, gap, reset."""
    out = []
    last = None
    for rec in records:
        gap = rec.seq - last - 1 if last is not None and rec.seq > last + 1 else 0
        last = rec.seq
        kind, f = describe(rec)
        row = {"seq": rec.seq, "time": iso(rec.time), "kind": kind, "pga_gal": None, "score": None,
               "status": "", "gap": gap, "reset": None}
        if rec.type == eventlog.T_EVENT:
            row["pga_gal"] = f.get("pga_gal")
            row["score"] = f.get("score")
            bits = []
            if "pgv_cms" in f:
                bits.append("PGV %s cm/s" % f["pgv_cms"])
            if "cav_cms" in f:
                bits.append("CAV %s cm/s" % f["cav_cms"])
            if "duration_s" in f:
                bits.append("%s s" % f["duration_s"])
            row["status"] = ", ".join(bits)
        elif kind == "boot":
            row["reset"] = f.get("reset_cause", "?")
            row["status"] = "board %s" % f.get("board", "?")
            if f.get("recovered_bytes"):
                row["status"] += ", %d torn bytes recovered" % f["recovered_bytes"]
        elif kind == "waveform":
            row["status"] = "%d ch x %d @ %g Hz" % (f["channels"], f["frames"], f["rate_hz"])
        elif kind == "sensor_fault":
            row["status"] = "%s (retry in %s ms)" % (f.get("error", "?"), f.get("retry_ms", "?"))
        elif kind == "fifo_overflow":
            row["status"] = "%s overflows, %s samples lost" % (f.get("overflows", "?"), f.get("lost", "?"))
        elif kind == "log_recovered":
            row["status"] = "%s torn bytes in %s" % (f.get("torn_bytes", "?"), f.get("segment", "?"))
        else:
            row["status"] = ", ".join("%s=%s" % (k, v) for k, v in f.items() if k != "samples")
        out.append(row)
    return out


def summary(records: list[Record]) -> dict:
    r = rows(records)
    return {
        "records": len(records),
        "first_seq": records[0].seq if records else None,
        "last_seq": records[-1].seq if records else None,
        "missing": sum(x["gap"] for x in r),
        "detections": sum(1 for x in r if x["kind"] == "detection"),
        "resets": sum(1 for x in r if x["reset"] is not None),
        "faults": sum(1 for x in r if x["kind"] == "sensor_fault"),
        "max_pga_gal": max((x["pga_gal"] for x in r if x["pga_gal"] is not None), default=None),
    }


def show(records: Iterable[Record], console=None, title: str | None = None, last: int | None = None) -> None:
    """Print the technician's table (rich): time, kind, PGA, score, status, gaps, resets."""
    from rich.console import Console
    from rich.table import Table

    records = list(records)
    console = console or Console()
    all_rows = rows(records)
    shown = all_rows[-last:] if last else all_rows
    s = summary(records)
    t = Table(title=title, title_justify="left", header_style="bold")
    for name, just in (("seq", "right"), ("time (UTC)", "left"), ("kind", "left"), ("PGA gal", "right"),
                       ("score", "right"), ("status", "left"), ("gap", "right"), ("reset", "left")):
        t.add_column(name, justify=just)  # type: ignore[arg-type]
    for r in shown:
        style = None
        if r["reset"] is not None:
            style = "yellow"
        elif r["kind"] in ("detection", "event_end"):
            style = "bold red" if r["kind"] == "detection" else "red"
        elif r["kind"] in ("sensor_fault", "fifo_overflow", "log_recovered"):
            style = "magenta"
        t.add_row(
            str(r["seq"]),
            (r["time"] or "clock unset").replace("T", " ").replace("Z", ""),
            r["kind"],
            "" if r["pga_gal"] is None else "%.2f" % r["pga_gal"],
            "" if r["score"] is None else "%.2f" % r["score"],
            r["status"],
            ("[red]%d missing[/]" % r["gap"]) if r["gap"] else "",
            r["reset"] or "",
            style=style,
        )
    console.print(t)
    console.print(
        "%d records (seq %s-%s), %d missing, %d detections (max PGA %s gal), %d resets, %d sensor faults"
        % (s["records"], s["first_seq"], s["last_seq"], s["missing"], s["detections"],
           "-" if s["max_pga_gal"] is None else "%.2f" % s["max_pga_gal"], s["resets"], s["faults"])
    )
