"""The node's append-only event log on flash: CRC-protected records in size-capped segment files.

The same source runs on the board (MicroPython) and on the host (CPython): the host pulls the raw
segment files and decodes them with `decode_stream`, the code the node uses.

Record format (version 1; a contract: host tools and other firmware parts depend on it)
--------------------------------------------------------------------------------------
All integers little-endian; 18 bytes of overhead per record::

    offset size field
    0      2    magic    b"SM"
    2      1    version  u8, 1
    3      1    type     u8, one of the T_* constants (0 is never valid)
    4      2    length   u16, payload bytes, 0..MAX_PAYLOAD (4096)
    6      4    seq      u32, record sequence number (see below)
    10     4    time     u32, node clock in unix seconds (1970 epoch), 0 while the clock is unset
    14     n    payload  `length` bytes
    14+n   4    crc32    u32, CRC-32 (IEEE, as zlib/binascii.crc32) of bytes 0 .. 14+n-1

Note on `time`: MicroPython ports whose `time.time()` counts from 2000 (ESP32 among them) must
add 946684800 before logging.

Types and payloads:

- T_EVENT = 1: a detection event, UTF-8 JSON object.
- T_STATUS = 2: node status, UTF-8 JSON object with a "kind" key (boot, sensor fault, reinit,
  overflow counts, heartbeat summary ...). The log itself writes
  {"kind": "log_recovered", "segment": "ev00003.log", "torn_bytes": 17} after a recovery.
- T_WAVEFORM = 3: a waveform snippet, binary (`encode_waveform` / `decode_waveform`)::

      0  u32 start     index of the first sample (frame) in the node's sample count
      4  u32 rate_mhz  sample rate in millihertz (100 Hz -> 100000)
      8  u16 n         frames (samples per channel)
      10 u8  channels  1..255
      11 u8  format    0 = int32 samples (nothing else defined yet)
      12 n*channels int32 samples, interleaved by frame (x0 y0 z0 x1 y1 z1 ...)

- T_CONFIG = 4: a configuration change, UTF-8 JSON object.

Sequence numbers start at 1 and grow by one per append. They are never reused: they survive
reboot and rotation because the next one is read back from the newest records on flash (so never
delete the newest segment by hand), and a failed or torn append still consumes its number. Seqs
may therefore have gaps; `records()` yields them strictly increasing.

Files
-----
Segments `ev00000.log`, `ev00001.log`, ... (5 or more digits, numbered in write order) in one
directory. A segment is closed when the next record would take it past `segment_bytes` (a record
larger than that gets a segment to itself). After a new segment is written, the oldest segments
are deleted until at most `max_segments` remain (size-capped rotation).

Recovery
--------
At open, the newest segment is scanned. Bytes after its last good record (a partial write at power
loss, a bad length or CRC) are a torn tail: never returned as data, counted in `recovered_bytes`
and in `corrupt_skipped`. Because MicroPython cannot truncate a file, appends then go to a fresh
segment (and a T_STATUS "log_recovered" record is written there), so no new record ever sits
behind torn bytes. If the torn record's header survived, its seq is skipped too (a host may
have read the record before it broke). Readers resynchronise after corrupt bytes on the next magic
whose header and CRC check out, so a bit flip costs only the record it hits.

API
---
    log = EventLog(dirpath, segment_bytes=65536, max_segments=8)   # max_segments >= 2
    seq = log.append(T_EVENT, payload, time=0)     # or log.append_json(T_STATUS, obj, time=0)
    for rec in log.records(since_seq=0): ...       # rec.seq >= since_seq; rec.json()
    log.stats()   # segments, bytes, first_seq, next_seq, corrupt_skipped, recovered_bytes
    encode(type, seq, time, payload) -> bytes; decode_stream(data) -> (records, bad_bytes)

To pull incrementally, keep `next_seq` from stats() (or the last seq seen + 1) and pass it as
`since_seq` next time.
"""

import os
import struct

from .compat import const
from .crc32 import crc32
from .errors import LogError, RecordError

VERSION = 1
T_EVENT = 1
T_STATUS = 2
T_WAVEFORM = 3
T_CONFIG = 4
TYPES = (T_EVENT, T_STATUS, T_WAVEFORM, T_CONFIG)
MAGIC = b"SM"
HEADER_SIZE = 14
OVERHEAD = 18  # header + CRC
MAX_PAYLOAD = 4096
MAX_RECORD = OVERHEAD + MAX_PAYLOAD

_HDR = const(14)
_OVERHEAD = const(18)
_MAX_PAYLOAD = const(4096)
_MAX_RECORD = const(4114)
_SEQ_JUMP = const(65536)  # a seq read from a torn header is believed only this far ahead
_WF_HDR = const(12)
_U32 = const(0xFFFFFFFF)


class Record:
    """One good record: `seq`, `type`, `time` (unix seconds, 0 = unset) and `payload` (bytes)."""

    def __init__(self, seq, type, time, payload):
        self.seq = seq
        self.type = type
        self.time = time
        self.payload = payload

    def json(self):
        """The payload decoded as JSON (T_EVENT, T_STATUS, T_CONFIG); RecordError if it is not."""
        import json

        try:
            return json.loads(self.payload)
        except ValueError as e:
            raise RecordError("record %d: payload is not JSON: %s" % (self.seq, e))

    def __eq__(self, other):
        return (
            isinstance(other, Record)
            and self.seq == other.seq
            and self.type == other.type
            and self.time == other.time
            and self.payload == other.payload
        )

    def __repr__(self):
        return "Record(seq=%d, type=%d, time=%d, payload=%d bytes)" % (
            self.seq,
            self.type,
            self.time,
            len(self.payload or b""),
        )


def encode(type, seq, time, payload):
    """One record as bytes. ValueError for a payload over MAX_PAYLOAD or a field out of range."""
    n = len(payload)
    if n > _MAX_PAYLOAD:
        raise ValueError("payload too large: %d bytes (max %d)" % (n, _MAX_PAYLOAD))
    # MicroPython's struct does not range-check, so check here.
    if not 0 < type <= 255:
        raise ValueError("Invalid record type: %r" % (type,))
    if not 0 <= seq <= _U32:
        raise ValueError("Invalid seq: %r" % (seq,))
    if not 0 <= time <= _U32:
        raise ValueError("Invalid time: %r" % (time,))
    end = _HDR + n
    rec = bytearray(end + 4)
    struct.pack_into("<2sBBHII", rec, 0, MAGIC, VERSION, type, n, seq, time)
    rec[_HDR:end] = payload
    struct.pack_into("<I", rec, end, crc32(memoryview(rec)[:end]))
    return bytes(rec)


def decode_stream(data):
    """Decode concatenated records (a whole segment, or any bytes) -> (records, bad_bytes).

    Corrupt or truncated bytes are skipped and counted, never returned and never raised on;
    decoding resynchronises on the next magic whose header and CRC check out.
    """
    if not isinstance(data, (bytes, bytearray)):
        data = bytes(data)  # memoryview: no find() on MicroPython
    sc = _Scanner(data)
    out = []  # type: list
    while True:
        rec = sc.next()
        if rec is None:
            return out, sc.bad
        out.append(rec)


def encode_waveform(start, rate_mhz, channels, samples):
    """A T_WAVEFORM payload: `samples` are ints interleaved by frame, len(samples) % channels == 0."""
    n = len(samples)
    if not 0 < channels <= 255 or n % channels:
        raise ValueError("Invalid channels: %r for %d samples" % (channels, n))
    if _WF_HDR + 4 * n > _MAX_PAYLOAD:
        raise ValueError("waveform too large: %d samples (max %d)" % (n, (_MAX_PAYLOAD - _WF_HDR) // 4))
    if not 0 <= start <= _U32:
        raise ValueError("Invalid start: %r" % (start,))
    if not 0 <= rate_mhz <= _U32:
        raise ValueError("Invalid rate_mhz: %r" % (rate_mhz,))
    buf = bytearray(_WF_HDR + 4 * n)
    struct.pack_into("<IIHBB", buf, 0, start, rate_mhz, n // channels, channels, 0)
    o = _WF_HDR
    for v in samples:
        if not -0x80000000 <= v <= 0x7FFFFFFF:
            raise ValueError("sample out of int32 range: %r" % (v,))
        struct.pack_into("<i", buf, o, v)
        o += 4
    return bytes(buf)


def decode_waveform(payload):
    """A T_WAVEFORM payload -> (start, rate_mhz, channels, samples list); RecordError if malformed."""
    if len(payload) < _WF_HDR:
        raise RecordError("waveform payload too short: %d bytes" % len(payload))
    start, rate_mhz, frames, channels, fmt = struct.unpack_from("<IIHBB", payload, 0)
    n = frames * channels
    if fmt != 0 or channels == 0 or len(payload) != _WF_HDR + 4 * n:
        raise RecordError(
            "bad waveform payload: format %d, %d frames x %d channels in %d bytes"
            % (fmt, frames, channels, len(payload))
        )
    return start, rate_mhz, channels, list(struct.unpack_from("<%di" % n, payload, _WF_HDR))


class _Scanner:
    """Pulls good records out of `data` (bytes in memory) or out of the file at `path`.

    A file is read through one window of 2 * MAX_RECORD bytes allocated per scan, refilled with
    readinto (the file is opened for each read, so no handle outlives a call and a generator
    abandoned half-way leaks nothing). After each `next()`: `bad` counts the bytes skipped so
    far, `end` is the stream offset just past the last good record, `top` the highest good seq,
    and `torn_seq` the highest seq in a plausible header (right magic, version and length) seen
    after the last good record (-1: none).
    """

    def __init__(self, data=None, path=None, payloads=True):
        self.payloads = payloads  # False: records come back with payload None (just scanning)
        if path is None:
            self.buf = data
            self.n = len(data)
            self.eof = True
        else:
            self.buf = bytearray(2 * _MAX_RECORD)
            self.n = 0
            self.eof = False
        self.path = path
        self.i = 0  # scan position in buf
        self.base = 0  # stream offset of buf[0]
        self.bad = 0
        self.end = 0
        self.top = 0
        self.torn_seq = -1
        self._rec_end = 0

    def size(self):
        """Stream bytes read so far (the file size once next() has returned None)."""
        return self.base + self.n

    def _fill(self):
        # Move the unread tail to the front of the window, then read after it.
        buf = self.buf
        i = self.i
        m = self.n - i
        mv = memoryview(buf)
        if m and i:
            if i >= m:
                mv[:m] = mv[i : self.n]
            else:  # overlapping move: go through a copy (only after a short read)
                buf[:m] = bytes(mv[i : self.n])
        self.base += i
        self.i = 0
        self.n = m
        path = self.path
        try:
            f = open(path, "rb")
        except OSError as e:
            if _exists(path):
                raise LogError("cannot read %s: %s" % (path, e))
            self.eof = True  # deleted by rotation meanwhile (or never written): no records
            return
        try:
            f.seek(self.base + m)
            got = f.readinto(mv[m:])
        except OSError as e:
            raise LogError("cannot read %s: %s" % (path, e))
        finally:
            f.close()
        if got:
            self.n = m + got
        else:
            self.eof = True

    def next(self):
        while True:
            i = self.i
            n = self.n
            if not self.eof and n - i < _MAX_RECORD:
                self._fill()
                continue
            if i >= n:
                return None
            buf = self.buf
            j = buf.find(MAGIC, i, n)
            if j < 0:
                # A trailing b"S" may be the first half of a magic split across reads.
                j = n - 1 if not self.eof and buf[n - 1] == 0x53 else n
            if j > i:
                self.bad += j - i
                self.i = j
                continue  # refill relative to the new position first
            rec = self._parse(buf, i, n)
            if rec is None:
                self.bad += 1
                self.i = i + 1
            else:
                self.i = self._rec_end
                self.end = self.base + self.i
                if rec.seq > self.top:
                    self.top = rec.seq
                self.torn_seq = -1
                return rec

    def _parse(self, buf, i, n):
        if n - i < 10:
            return None
        ver, typ, length, seq = struct.unpack_from("<BBHI", buf, i + 2)
        if ver != VERSION or typ == 0 or length > _MAX_PAYLOAD:
            return None
        if seq > self.torn_seq:
            self.torn_seq = seq
        end = i + _HDR + length
        if end + 4 > n:
            return None
        mv = memoryview(buf)
        if crc32(mv[i:end]) != struct.unpack_from("<I", buf, end)[0]:
            return None
        self._rec_end = end + 4
        payload = bytes(mv[i + _HDR : end]) if self.payloads else None
        return Record(seq, typ, struct.unpack_from("<I", buf, i + 10)[0], payload)


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _name(seg):
    return "ev%05d.log" % seg


def _dumps(obj):
    import json

    try:
        return json.dumps(obj, separators=(",", ":"))
    except TypeError:  # MicroPython before 1.20 has no `separators`
        return json.dumps(obj)


class EventLog:
    """Append-only record log in `dirpath` (created if missing, parent must exist).

    Opening runs `recover()`. Flash errors raise LogError naming the file; records already
    written are never touched by a failed append.
    """

    def __init__(self, dirpath, segment_bytes=65536, max_segments=8):
        if segment_bytes < 1:
            raise ValueError("Invalid segment_bytes: %r" % (segment_bytes,))
        if max_segments < 2:
            # Recovery and rotation open a new segment before dropping old ones; with one
            # segment that would discard every record at each rotation.
            raise ValueError("Invalid max_segments: %r (min 2)" % (max_segments,))
        while len(dirpath) > 1 and dirpath[-1] == "/":
            dirpath = dirpath[:-1]
        self.dirpath = dirpath
        self.segment_bytes = segment_bytes
        self.max_segments = max_segments
        self.recovered_bytes = 0  # torn tail found by the last recover()
        self.prune_errors = 0  # old segments that could not be deleted (retried later)
        self._segs = []  # segment numbers, oldest first
        self._info = {}  # segment number -> [first good seq or None, corrupt bytes] from a scan
        self._cur_size = 0  # bytes in the newest segment
        self._fresh = False  # the next append must start a new segment
        self._next_seq = 1
        if not _exists(dirpath):
            try:
                os.mkdir(dirpath)
            except OSError as e:
                raise LogError("cannot create log directory %s: %s" % (dirpath, e))
        self.recover()

    # -- files ----------------------------------------------------------------------------------

    def _path(self, seg):
        return "%s/%s" % (self.dirpath, _name(seg))

    def _list(self):
        try:
            names = os.listdir(self.dirpath)
        except OSError as e:
            raise LogError("cannot list log directory %s: %s" % (self.dirpath, e))
        segs = []
        for name in names:
            if name[:2] == "ev" and name[-4:] == ".log" and name[2:-4].isdigit():
                seg = int(name[2:-4])
                if _name(seg) == name:
                    segs.append(seg)
        segs.sort()
        return segs

    def _scan(self, seg):
        """Read a whole segment, cache its first seq and corrupt byte count; return the scanner."""
        sc = _Scanner(path=self._path(seg), payloads=False)
        first = None
        while True:
            rec = sc.next()
            if rec is None:
                break
            if first is None:
                first = rec.seq
        self._info[seg] = [first, sc.bad]
        return sc

    def _first_seq(self, seg):
        info = self._info.get(seg)
        if info is not None:
            return info[0]
        rec = _Scanner(path=self._path(seg), payloads=False).next()
        return None if rec is None else rec.seq

    def _prune(self):
        segs = self._segs
        while len(segs) > self.max_segments:
            path = self._path(segs[0])
            try:
                os.remove(path)
            except OSError:
                if _exists(path):
                    self.prune_errors += 1
                    return  # keep it listed; tried again after the next append
            self._info.pop(segs.pop(0), None)

    def segment_paths(self):
        """Paths of the segment files, oldest first (what a host pulls to read the raw log)."""
        return [self._path(seg) for seg in self._segs]

    # -- recovery -------------------------------------------------------------------------------

    def recover(self):
        """Scan the newest segment, find the next seq, isolate a torn tail; return its size.

        Called by __init__. If a torn tail is found, the next append starts a fresh segment and
        a T_STATUS "log_recovered" record is written there (if even that write fails, the error
        surfaces on the next append).
        """
        self._segs = segs = self._list()
        self._info = {}
        self._fresh = False
        self._cur_size = 0
        torn = 0
        top = 0
        if segs:
            sc = self._scan(segs[-1])
            self._cur_size = sc.size()
            torn = self._cur_size - sc.end
            top = sc.top
            hint = sc.torn_seq if torn else -1
            k = len(segs) - 2
            while top == 0 and k >= 0:  # the newest holds no good record: look further back
                top = self._scan(segs[k]).top
                k -= 1
            # A torn record whose header survived may already have been read by a host:
            # never hand its seq out again.
            if top < hint <= top + _SEQ_JUMP:
                top = hint
        self._next_seq = top + 1
        self.recovered_bytes = torn
        if torn:
            self._fresh = True
            try:
                self.append_json(
                    T_STATUS, {"kind": "log_recovered", "segment": _name(segs[-1]), "torn_bytes": torn}
                )
            except LogError:
                pass  # reported by recovered_bytes now and by the next append's LogError
        self._prune()
        return torn

    # -- writing --------------------------------------------------------------------------------

    def append(self, type, payload, time=0):
        """Write one record (one write() then flush()); return its seq.

        ValueError for an unknown type, a payload over MAX_PAYLOAD or a bad time; LogError
        naming the file when flash refuses the write.
        """
        if type not in TYPES:
            raise ValueError("Invalid record type: %r" % (type,))
        seq = self._next_seq
        if seq > _U32:
            raise LogError("sequence numbers exhausted in %s" % self.dirpath)
        rec = encode(type, seq, time, payload)
        segs = self._segs
        seg = segs[-1] if segs else 0
        size = self._cur_size
        if segs and (self._fresh or (size and size + len(rec) > self.segment_bytes)):
            seg += 1
            size = 0
        path = self._path(seg)
        # Consumed even if the write fails: a torn copy of it may have reached flash.
        self._next_seq = seq + 1
        err = None
        try:
            f = open(path, "ab")
            try:
                n = f.write(rec)
                f.flush()
            finally:
                f.close()
            if n is not None and n != len(rec):
                err = "short write, %d of %d bytes" % (n, len(rec))
        except OSError as e:
            err = str(e)
        if err is not None:
            try:
                st = os.stat(path)
                now = st[6] if st[0] & 0x8000 else size  # S_IFREG: bytes may have landed
            except OSError:
                now = size  # nothing there
            if now != size:  # part of the record reached flash: never append behind it
                if not segs or segs[-1] != seg:
                    segs.append(seg)
                self._cur_size = now
                self._fresh = True
            raise LogError("cannot append record %d to %s: %s" % (seq, path, err))
        if not segs or segs[-1] != seg:
            segs.append(seg)
            self._fresh = False
        self._cur_size = size + len(rec)
        info = self._info.get(seg)
        if info is None:
            self._info[seg] = [seq, 0]
        elif info[0] is None:
            info[0] = seq
        if len(segs) > self.max_segments:
            self._prune()
        return seq

    def append_json(self, type, obj, time=0):
        """Append `obj` as compact UTF-8 JSON; return the seq."""
        return self.append(type, _dumps(obj).encode(), time)

    # -- reading --------------------------------------------------------------------------------

    def records(self, since_seq=0):
        """Yield good Records with seq >= since_seq, oldest first, in strictly increasing seq.

        To resume, pass the `next_seq` from stats() (or the last seq you got + 1). Corrupt bytes
        are skipped and counted in stats()["corrupt_skipped"].
        """
        segs = list(self._segs)
        last = -1
        for k in range(len(segs)):
            seg = segs[k]
            if since_seq > 1 and k + 1 < len(segs):
                nxt = self._first_seq(segs[k + 1])
                if nxt is not None and nxt <= since_seq:
                    continue  # everything in this segment is older than since_seq
            sc = _Scanner(path=self._path(seg))
            first = None
            while True:
                rec = sc.next()
                if rec is None:
                    break
                if first is None:
                    first = rec.seq
                if rec.seq >= since_seq and rec.seq > last:
                    last = rec.seq
                    yield rec
            if seg in self._segs:
                self._info[seg] = [first, sc.bad]

    def stats(self):
        """dict: segments, bytes, first_seq (None if empty), next_seq, corrupt_skipped, recovered_bytes.

        corrupt_skipped counts bytes in the kept segments that are not part of a good record
        (segments not scanned since open are scanned once here).
        """
        total = 0
        bad = 0
        first = None
        for seg in self._segs:
            try:
                total += os.stat(self._path(seg))[6]
            except OSError:
                pass  # deleted meanwhile, or not yet written
            info = self._info.get(seg)
            if info is None:
                self._scan(seg)
                info = self._info[seg]
            bad += info[1]
            if first is None:
                first = info[0]
        return {
            "segments": len(self._segs),
            "bytes": total,
            "first_seq": first,
            "next_seq": self._next_seq,
            "corrupt_skipped": bad,
            "recovered_bytes": self.recovered_bytes,
        }
