"""Binary frames to the host over the raw REPL: the node's half of `seismote logs pull` (the event
log) and of `seismote monitor` (live status).

For a pull the host enters the raw REPL and executes one call:

    from seismote.firmware import logserver; logserver.serve(since_seq, max_bytes)

and reads the raw bytes the call writes to sys.stdout.buffer, between the raw REPL's b"OK" and the
b"\\x04" that ends the call's output. The stream never holds the byte 0x04, so that terminator is
unambiguous: a call that dies half-way (an exception, Ctrl-C) ends the stream where it stopped.

Stream (version 1)
------------------
    frame(HELLO)  frame(record) ...  frame(END)

A frame is one record in the event-log record format (eventlog.py: magic b"SM", version, type,
length, seq, time, payload, CRC-32), so each frame carries its own length and its own CRC, and the
host checks it with the log's own decoder. Log records go out byte for byte as on flash (re-encoded
from the checked record, which gives the same bytes). Two control types exist only on the wire,
never in a log; their payloads are JSON objects and their seq and time are 0:

    T_HELLO 0xF0  {"v": 1, "node": node_id or null, "since": since_seq,
                   "first_seq": oldest seq in the log or null, "next_seq": the log's next seq}
    T_END   0xF1  {"count": records sent, "bytes": their size, "next_seq": the seq to ask for next,
                   "more": true when max_bytes cut the stream short, "corrupt_skipped": bytes}

Records come in strictly increasing seq, all with seq >= since_seq. Seqs may have gaps (a record
lost to a torn write, or rotated out); `first_seq` > since_seq says rotation took records before
they were pulled.

Encoding: COBS with 0x04 as the excluded byte ("COBS4")
--------------------------------------------------------
Each frame's bytes are cut at every 0x04 byte into runs, and runs longer than 254 bytes into
254-byte blocks. Each block goes out as one code byte then its bytes unchanged:

    code = (block length + 1) XOR 0x04

code 255 (0xFB on the wire) marks a full 254-byte block followed by no 0x04; every other code means
a 0x04 followed the block in the frame (the last block's is implied, not part of the frame). Code
bytes are never 0x04 (the XOR maps 0x00, never used, to it) and block bytes contain none, so the
stream holds no 0x04. A decoder reads blocks until it has the frame length given by the frame's
header (its 14 first bytes). Cost: one byte per 254-byte run without 0x04, nothing for a run that
ends at a 0x04 (the code byte takes its place): at most 0.4 % (base64 would cost 33 %). The node
finds runs with bytes.find, so the per-byte work is C code.

The log is opened read-only (ReadOnlyLog): a pull never writes or deletes anything on flash; a
torn tail is skipped here and repaired by the node at its next boot, as EventLog documents.

Monitor frames (type T_MONITOR 0xF2, JSON payload: see Watch) use the same framing:
`run_monitored()` runs the node with the board's own main.py and writes one every interval (a
board, whose REPL is only free once main.py is stopped); `poll(node)` writes one for a node that
keeps running between REPL commands (the virtual node).

Memory: one output buffer of about MAX_RECORD bytes for the call, plus the log reader's window;
each record's payload and its re-encoded bytes are allocated per record and freed.
"""

import os
import sys

from . import eventlog
from .compat import const

T_HELLO = 0xF0
T_END = 0xF1
STREAM_VERSION = 1
DATA_DIR = "/data"  # where Esp32Board keeps the event log
CONFIG_PATH = "/config.json"

_BLOCK = const(254)
_FULL = const(255)
_X = const(4)  # the excluded byte, and the XOR applied to code bytes


def encoded_size(n):
    """The largest COBS4 encoding of n bytes."""
    return n + n // _BLOCK + 1


def encode_into(src, dst):
    """COBS4-encode the bytes `src` into the bytearray `dst` (>= encoded_size(len(src))); return
    the number of bytes written."""
    n = len(src)
    s = memoryview(src)
    d = memoryview(dst)
    i = 0
    o = 0
    while i < n:
        end = i + _BLOCK
        if end > n:
            end = n
        j = src.find(b"\x04", i, end)
        if j >= 0:
            code = j - i + 1
            nxt = j + 1  # the 0x04 is implied by the code
        elif end - i == _BLOCK:
            code = _FULL
            j = nxt = end
        else:
            code = n - i + 1
            j = nxt = n  # the last block: its implied 0x04 lies past the end
        d[o] = code ^ _X
        o += 1
        d[o : o + j - i] = s[i:j]
        o += j - i
        i = nxt
    return o


def _node_id(config_path):
    import json

    try:
        with open(config_path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    return doc.get("node_id") if isinstance(doc, dict) else None


class ReadOnlyLog(eventlog.EventLog):
    """The event log's reading side: opening never writes, never deletes.

    EventLog's own open repairs a torn tail (appending a status record) and rotates by its
    max_segments; a pull must not change the node's flash, so both are left to the node's next
    boot. records() and stats() are EventLog's.
    """

    def __init__(self, dirpath):
        try:
            os.stat(dirpath)
        except OSError:
            raise eventlog.LogError("no event log at %s" % dirpath)
        super().__init__(dirpath, 65536, 1 << 30)

    def recover(self):
        self._segs = segs = self._list()
        self._info = {}
        top = 0
        k = len(segs) - 1
        while top == 0 and k >= 0:  # the newest segment with a good record holds the top seq
            top = self._scan(segs[k]).top
            k -= 1
        self._next_seq = top + 1
        return 0

    def append(self, type, payload, time=0):
        raise eventlog.LogError("read-only log")


def _watchdog(wdt_ms):
    # The node's watchdog keeps running after Ctrl-C stopped main.py (an ESP32 task watchdog cannot
    # be stopped): feed it so that a long pull is not cut by a reset.
    if wdt_ms <= 0:
        return None
    try:
        from machine import WDT

        return WDT(timeout=wdt_ms)
    except (ImportError, AttributeError, OSError, ValueError):
        return None


class _Writer:
    def __init__(self, out):
        self.out = out
        self.buf = bytearray(encoded_size(eventlog.MAX_RECORD))

    def frame(self, rec_bytes):
        n = encode_into(rec_bytes, self.buf)
        self.out.write(memoryview(self.buf)[:n])

    def control(self, type, obj):
        import json

        self.frame(eventlog.encode(type, 0, 0, json.dumps(obj).encode()))


def serve(since_seq=1, max_bytes=0, log=None, out=None, log_dir=None, config_path=None, node_id=None, wdt_ms=0):
    """Write the stream for the records with seq >= since_seq; return the number sent.

    max_bytes > 0 stops after the record that brings the sent record bytes to max_bytes (END says
    "more"). `log` is an open EventLog (default: the one in DATA_DIR); `out` a binary stream
    (default: sys.stdout.buffer); `node_id` defaults to the one in CONFIG_PATH.
    """
    if config_path is None:
        config_path = CONFIG_PATH
    if log is None:
        log = ReadOnlyLog(log_dir or DATA_DIR)
    if out is None:
        out = sys.stdout.buffer
    if node_id is None:
        node_id = _node_id(config_path)
    if since_seq < 1:
        since_seq = 1
    wdt = _watchdog(wdt_ms)
    w = _Writer(out)
    st = log.stats()
    top = st["next_seq"]
    w.control(T_HELLO, {"v": STREAM_VERSION, "node": node_id, "since": since_seq, "first_seq": st["first_seq"], "next_seq": top})
    count = 0
    sent = 0
    nxt = since_seq
    more = False
    for rec in log.records(since_seq):
        if max_bytes > 0 and sent >= max_bytes:
            more = True
            break
        raw = eventlog.encode(rec.type, rec.seq, rec.time, rec.payload)
        w.frame(raw)
        count += 1
        sent += len(raw)
        nxt = rec.seq + 1
        if wdt is not None:
            wdt.feed()
    if not more and top > nxt:
        nxt = top
    bad = log.stats()["corrupt_skipped"]  # segments are scanned by now: cheap
    w.control(T_END, {"count": count, "bytes": sent, "next_seq": nxt, "more": more, "corrupt_skipped": bad})
    return count


# --- monitor -----------------------------------------------------------------------------------

T_MONITOR = 0xF2
_WAVE_MAX = const(100)  # conditioned samples per axis in one frame (2 s at 50 Hz; keeps it < 4 KB)


def _last_event(log):
    """{seq, time, pga_gal, score} of the newest event record in the log, or None (reads the log)."""
    last = None
    for rec in log.records():
        if rec.type == eventlog.T_EVENT:
            last = rec
    if last is None:
        return None
    try:
        ev = last.json()
    except ValueError:
        return None
    return {"seq": last.seq, "time": last.time, "pga_gal": ev.get("pga_gal"), "score": ev.get("score")}


class Watch:
    """What `seismote monitor` shows of a running node, as one dict per `frame()`.

    Frame (JSON): node.health() plus "v", "node", "t" (unix s or null), "uptime_ms", "rate_hz"
    (samples the sensor delivered per second since the last frame; null in the first),
    "outbox" (messages queued), "link" ("none" without a sender), "in_event", "last_event"
    ({seq, time, pga_gal, score}: the newest event record), "counts_per_g", "level" (the
    conditioner's gravity/DC estimate per axis, counts), "wave_hz" and "wave" (the conditioned
    samples since the last frame, counts, x y z interleaved, at most 100 per axis).
    """

    def __init__(self, node):
        from array import array

        self.node = node
        self.wave = array("i", [0] * (3 * _WAVE_MAX))
        self.last_event = _last_event(node.log)
        self.seen = node.last_detection
        self.t0 = node.board.ticks_ms()
        self.total = self._samples()
        self.pipe_n = node.pipe.n if node.pipe is not None else 0
        self.first = True

    def _samples(self):
        s = self.node.sampler
        return -1 if s is None else s.total + s.dropped

    def check(self):
        """Call after each node step: notes a new detection while its event is at hand."""
        node = self.node
        if node.last_detection != self.seen and node.pipe is not None:
            self.seen = node.last_detection
            ev = node.pipe.event()
            self.last_event = {"seq": self.seen, "time": node.board.unix_time(), "pga_gal": ev["pga_gal"], "score": ev["score"]}

    def frame(self):
        from .compat import ticks_diff

        self.check()
        node = self.node
        b = node.board
        now = b.ticks_ms()
        st = node.health()
        st["v"] = STREAM_VERSION
        st["node"] = node.node_id
        st["t"] = b.unix_time()
        st["uptime_ms"] = now
        total = self._samples()
        elapsed = ticks_diff(now, self.t0)
        rate = None
        if not self.first and elapsed > 0 and total >= self.total >= 0:
            rate = round((total - self.total) * 1000 / elapsed, 1)
        st["rate_hz"] = rate
        self.first = False
        self.t0 = now
        self.total = total
        st["outbox"] = len(node.outbox.items)
        st["link"] = "none" if node.send is None else ("backlog" if node.outbox.items else "ok")
        st["last_event"] = self.last_event
        pipe = node.pipe
        k = 0
        if pipe is not None:
            st["in_event"] = pipe.in_event
            st["counts_per_g"] = pipe.counts_per_g
            dc = pipe.cond._dc  # the conditioner's DC (gravity) estimate, << 7
            lv = [dc[0] >> 7, dc[1] >> 7, dc[2] >> 7]
            v = pipe.vaxis  # the pipeline keeps the vertical first: back to the sensor's x, y, z
            lv[0], lv[v] = lv[v], lv[0]
            st["level"] = lv
            st["wave_hz"] = pipe.rate
            k = pipe.n - self.pipe_n if pipe.n >= self.pipe_n else pipe.n  # the pipeline restarts after a fault
            if k > _WAVE_MAX:
                k = _WAVE_MAX
            pipe.window(self.wave, k)
            self.pipe_n = pipe.n
        wave = list(self.wave[: 3 * k])
        v = pipe.vaxis if pipe is not None else 0
        if v:
            for i in range(0, 3 * k, 3):
                wave[i], wave[i + v] = wave[i + v], wave[i]
        st["wave"] = wave
        return st


def monitor(node, interval_ms=500, out=None, poll_ms=40, frames=0):
    """Boot `node` and run its main loop (as Node.run does), writing a T_MONITOR frame (Watch) to
    `out` every `interval_ms`; return after `frames` frames (0: until interrupted)."""
    from .compat import ticks_diff

    w = _Writer(sys.stdout.buffer if out is None else out)
    node.boot()
    b = node.board
    watch = Watch(node)
    watch.first = False  # the session clock starts here: the first frame has a rate
    due = b.ticks_ms()
    sent = 0
    while True:
        node.step()
        watch.check()
        if ticks_diff(b.ticks_ms(), due) >= interval_ms:
            due = b.ticks_ms()
            w.control(T_MONITOR, watch.frame())
            sent += 1
            if frames and sent >= frames:
                return sent
        b.sleep_ms(poll_ms)


_watch = None  # poll()'s Watch, kept between REPL commands


def poll(node, out=None):
    """Write one T_MONITOR frame for a node that runs between REPL commands (the virtual node);
    the first call for a node starts its Watch (no rate, no waveform yet)."""
    global _watch
    if _watch is None or _watch.node is not node:
        _watch = Watch(node)
    _Writer(sys.stdout.buffer if out is None else out).control(T_MONITOR, _watch.frame())


def run_monitored(interval_ms=500):
    """Start the node with the board's own main.py, with monitor() as its main loop (the
    `seismote monitor` session; it runs until Ctrl-C, then the host soft-resets the board into
    main.py). main.py's main() builds the board and the Node and calls Node.run(), which is
    replaced here for this session only."""
    from . import node as _node

    try:
        import main as entry  # type: ignore[import-not-found]  # the board's /main.py
    except ImportError:
        from . import main as entry  # firmware/main.py, where no /main.py is installed

    def run(self, poll_ms=40):
        monitor(self, interval_ms, poll_ms=poll_ms)

    _node.Node.run = run  # type: ignore[method-assign]
    entry.main()
