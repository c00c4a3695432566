"""Event log: format, rotation, recovery from torn writes and corruption (CPython and MicroPython)."""

import os
import struct

from seismote.firmware import eventlog
from seismote.firmware.crc32 import crc32, crc32_py
from seismote.firmware.errors import LogError, RecordError
from tests.firmware.support import raises, rmtree, tmpdir

EV = eventlog.T_EVENT
ST = eventlog.T_STATUS


def _seqs(log, since=0):
    return [r.seq for r in log.records(since)]


def _write_raw(path, data):
    f = open(path, "ab")
    f.write(data)
    f.close()


def _read_raw(path):
    f = open(path, "rb")
    data = f.read()
    f.close()
    return data


def _flip(path, offset):
    data = bytearray(_read_raw(path))
    data[offset] ^= 0x10
    os.remove(path)
    _write_raw(path, data)


def _lcg_bytes(n, seed):
    out = bytearray(n)
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (x >> 16) & 0xFF
    return bytes(out)


def test_crc32_matches_zlib_values():
    assert crc32(b"123456789") == 0xCBF43926
    assert crc32_py(b"123456789") == 0xCBF43926
    assert crc32(b"") == 0 and crc32_py(b"") == 0
    data = _lcg_bytes(300, 7)
    whole = crc32(data)
    assert crc32_py(data) == whole
    assert crc32(data[100:], crc32(data[:100])) == whole
    assert crc32_py(memoryview(data)[100:], crc32_py(bytearray(data[:100]))) == whole
    assert crc32(memoryview(data)) == whole


def test_encode_byte_layout():
    rec = eventlog.encode(eventlog.T_CONFIG, 0x01020304, 1700000000, b"{}")
    assert len(rec) == eventlog.OVERHEAD + 2
    assert rec[:2] == b"SM"
    assert struct.unpack_from("<BBHII", rec, 2) == (1, 4, 2, 0x01020304, 1700000000)
    assert rec[14:16] == b"{}"
    assert struct.unpack_from("<I", rec, 16)[0] == crc32(rec[:16])
    recs, bad = eventlog.decode_stream(rec + rec)
    assert bad == 0 and len(recs) == 2
    assert (recs[0].seq, recs[0].type, recs[0].time, recs[0].payload) == (0x01020304, 4, 1700000000, b"{}")


def test_round_trip_every_type_and_reopen():
    d = tmpdir("evlog")
    try:
        log = eventlog.EventLog(d)
        wf = eventlog.encode_waveform(123456, 100000, 3, [1, -2, 3, 2147483647, -2147483648, 0])
        s1 = log.append_json(EV, {"pga": 12, "onset": 1.5}, time=1700000000)
        s2 = log.append_json(ST, {"kind": "boot", "reset": 1})
        s3 = log.append(eventlog.T_WAVEFORM, wf, 1700000001)
        s4 = log.append(eventlog.T_CONFIG, b'{"trigger":{"on":4}}', 1700000002)
        assert [s1, s2, s3, s4] == [1, 2, 3, 4]
        for lg in (log, eventlog.EventLog(d)):
            recs = list(lg.records())
            assert [r.seq for r in recs] == [1, 2, 3, 4]
            assert [r.type for r in recs] == [1, 2, 3, 4]
            assert [r.time for r in recs] == [1700000000, 0, 1700000001, 1700000002]
            assert recs[0].json() == {"pga": 12, "onset": 1.5}
            assert recs[0].payload == b'{"pga":12,"onset":1.5}' or recs[0].payload == b'{"onset":1.5,"pga":12}'
            assert recs[1].json() == {"kind": "boot", "reset": 1}
            assert recs[2].payload == wf
            assert eventlog.decode_waveform(recs[2].payload) == (
                123456, 100000, 3, [1, -2, 3, 2147483647, -2147483648, 0])
            assert recs[3].json() == {"trigger": {"on": 4}}
        assert raises(RecordError, recs[2].json)
    finally:
        rmtree(d)


def test_waveform_payload_checks():
    assert raises(ValueError, eventlog.encode_waveform, 0, 100000, 3, [1, 2])
    assert raises(ValueError, eventlog.encode_waveform, 0, 100000, 1, [2 ** 31])
    assert raises(ValueError, eventlog.encode_waveform, 0, 100000, 1, [0] * 1022)
    assert len(eventlog.encode_waveform(0, 100000, 1, [0] * 1021)) == eventlog.MAX_PAYLOAD
    wf = eventlog.encode_waveform(5, 50000, 2, [7, 8])
    assert wf[:12] == struct.pack("<IIHBB", 5, 50000, 1, 2, 0)
    assert raises(RecordError, eventlog.decode_waveform, wf[:-1])
    assert raises(RecordError, eventlog.decode_waveform, wf[:5])
    assert raises(RecordError, eventlog.decode_waveform, wf[:11] + b"\x01" + wf[12:])


def test_seq_monotonic_across_reopen():
    d = tmpdir("evlog")
    try:
        log = eventlog.EventLog(d)
        for i in range(3):
            assert log.append(EV, b"x%d" % i) == i + 1
        for boot in range(3):
            log = eventlog.EventLog(d)
            assert log.recovered_bytes == 0
            assert log.stats()["next_seq"] == 4 + boot
            assert log.append(ST, b"boot") == 4 + boot
        assert _seqs(eventlog.EventLog(d)) == [1, 2, 3, 4, 5, 6]
    finally:
        rmtree(d)


def test_rotation_keeps_max_segments_and_seq():
    d = tmpdir("evlog")
    try:
        # 18 + 10 = 28-byte records, 3 per 100-byte segment.
        log = eventlog.EventLog(d, segment_bytes=100, max_segments=3)
        for i in range(1, 21):
            assert log.append(EV, b"%010d" % i) == i
            assert len(os.listdir(d)) <= 3
        names = sorted(os.listdir(d))
        assert names == ["ev00004.log", "ev00005.log", "ev00006.log"]  # oldest deleted
        for name in names:
            assert os.stat(d + "/" + name)[6] <= 100
        assert log.segment_paths() == [d + "/" + n for n in names]
        # Segments 4..6 hold records 13..15, 16..18, 19..20.
        assert _seqs(log) == list(range(13, 21))
        st = log.stats()
        assert (st["segments"], st["first_seq"], st["next_seq"], st["corrupt_skipped"]) == (3, 13, 21, 0)
        assert st["bytes"] == 8 * 28
        # Reboot: seq continues after rotation; more rotation keeps deleting the oldest.
        log = eventlog.EventLog(d, segment_bytes=100, max_segments=3)
        for i in range(21, 26):
            assert log.append(EV, b"%010d" % i) == i
        assert sorted(os.listdir(d)) == ["ev00006.log", "ev00007.log", "ev00008.log"]
        assert _seqs(log) == list(range(19, 26))
        for r in log.records():
            assert r.payload == b"%010d" % r.seq
    finally:
        rmtree(d)


def test_records_since_seq_resumes_exactly():
    d = tmpdir("evlog")
    try:
        log = eventlog.EventLog(d, segment_bytes=64, max_segments=3)
        for i in range(1, 11):
            log.append(EV, b"r%d" % i)  # 3 per segment: 1-3 | 4-6 | 7-9 | 10
        have = _seqs(log)
        assert have == list(range(4, 11))
        for since in range(0, 13):
            assert _seqs(log, since) == [s for s in have if s >= since]
        # The consumer's loop: remember next_seq, pull only what is new.
        nxt = log.stats()["next_seq"]
        assert _seqs(log, nxt) == []
        log.append(EV, b"new")
        got = list(log.records(nxt))
        assert [r.seq for r in got] == [11] and got[0].payload == b"new"
    finally:
        rmtree(d)


def _torn_case(k, full, n_good):
    d = tmpdir("evtorn")
    try:
        log = eventlog.EventLog(d)
        good = []
        for i in range(n_good):
            log.append(EV, b"g%d" % i, time=1000 + i)
            good.append((i + 1, b"g%d" % i, 1000 + i))
        # Power fails after the first k bytes of record n_good + 1 reached flash.
        _write_raw(log.segment_paths()[-1], full[:k])
        log = eventlog.EventLog(d)
        assert log.recovered_bytes == k, (k, log.recovered_bytes)
        recs = list(log.records())
        assert [(r.seq, r.payload, r.time) for r in recs[:n_good]] == good, k
        if k == 0:
            assert len(recs) == n_good
        else:
            # Only the recovery note follows: the torn record is never returned.
            assert len(recs) == n_good + 1, k
            assert recs[-1].type == ST and recs[-1].seq > n_good
            assert recs[-1].json() == {"kind": "log_recovered", "segment": "ev00000.log", "torn_bytes": k}
        seq = log.append(EV, b"after")
        assert seq == recs[-1].seq + 1 and seq > n_good
        if k == 0:
            assert seq == n_good + 1
        if k >= 10:  # the torn header carried seq n_good + 1: never handed out again
            assert seq > n_good + 2
        again = eventlog.EventLog(d)
        assert again.recovered_bytes == 0  # the new records went to a clean segment
        for lg in (log, again):
            recs2 = list(lg.records())
            assert recs2[:len(recs)] == recs and len(recs2) == len(recs) + 1
            assert recs2[-1].seq == seq and recs2[-1].payload == b"after"
    finally:
        rmtree(d)


def test_torn_write_at_every_byte_offset():
    n_good = 3
    full = eventlog.encode(EV, n_good + 1, 1234, b"torn")
    for k in range(len(full)):
        _torn_case(k, full, n_good)


def test_torn_write_heading_a_new_segment():
    d = tmpdir("evtorn")
    try:
        log = eventlog.EventLog(d, segment_bytes=40, max_segments=8)
        for i in range(4):
            log.append(EV, b"%02d" % i)  # 20-byte records, 2 per segment
        assert len(log.segment_paths()) == 2
        # The 5th record went into a new segment... but only 7 bytes of it.
        _write_raw(d + "/ev00002.log", eventlog.encode(EV, 5, 0, b"04")[:7])
        log = eventlog.EventLog(d, segment_bytes=40, max_segments=8)
        assert log.recovered_bytes == 7
        assert log.stats()["next_seq"] == 6  # from the older segment, then the recovery note
        seq = log.append(EV, b"ok")
        assert seq == 6
        recs = list(log.records())
        assert [r.seq for r in recs[:4]] == [1, 2, 3, 4]
        assert recs[-1].seq == seq and recs[-1].payload == b"ok"
        assert recs[-2].type == ST
        assert log.stats()["corrupt_skipped"] == 7
    finally:
        rmtree(d)


def test_bit_flip_mid_segment_skips_only_that_record():
    d = tmpdir("evflip")
    try:
        log = eventlog.EventLog(d)
        for i in range(1, 7):
            log.append(EV, b"payload-%d" % i)
        size = eventlog.OVERHEAD + 9
        # Flip one bit in record 3's payload, and in record 5's header length.
        _flip(log.segment_paths()[0], 2 * size + 16)
        _flip(log.segment_paths()[0], 4 * size + 4)
        log = eventlog.EventLog(d)
        assert log.recovered_bytes == 0
        recs = list(log.records())
        assert [r.seq for r in recs] == [1, 2, 4, 6]
        for r in recs:
            assert r.payload == b"payload-%d" % r.seq
        assert log.stats()["corrupt_skipped"] == 2 * size
        # Appends continue in the same segment (no torn tail) after the good records.
        assert log.append(EV, b"payload-7") == 7
        assert _seqs(log) == [1, 2, 4, 6, 7]
        assert len(log.segment_paths()) == 1
    finally:
        rmtree(d)


def test_large_segment_read_in_chunks():
    d = tmpdir("evbig")
    try:
        log = eventlog.EventLog(d)
        for i in range(1, 41):
            log.append(EV, (b"SM%04d" % i) * 170, time=i)  # 1038-byte records, ~41 KB
        rec = eventlog.OVERHEAD + 1020
        _flip(log.segment_paths()[0], 17 * rec + 500)  # inside record 18
        log = eventlog.EventLog(d)
        want = [i for i in range(1, 41) if i != 18]
        assert _seqs(log) == want
        for r in log.records(30):
            assert r.payload == (b"SM%04d" % r.seq) * 170 and r.time == r.seq
        assert log.stats()["corrupt_skipped"] == rec
        assert log.append(EV, b"end") == 41
    finally:
        rmtree(d)


def test_long_garbage_run_before_records():
    # Files are read through a window of 2 * MAX_RECORD bytes: with g = w - 1 or 2 * w - 1 a
    # magic is split across two reads.
    tail = b"".join(eventlog.encode(EV, s, 0, b"ok%d" % s) for s in range(1, 4))
    w = 2 * eventlog.MAX_RECORD
    for g in (4095, eventlog.MAX_RECORD, w - 1, w, 2 * w - 2, 2 * w - 1):
        d = tmpdir("evgarb")
        try:
            garbage = bytes(b if b != 0x53 else 0 for b in _lcg_bytes(g, g))
            _write_raw(d + "/ev00000.log", garbage + tail)
            log = eventlog.EventLog(d)
            assert log.recovered_bytes == 0, g
            assert _seqs(log) == [1, 2, 3], g
            assert log.stats()["corrupt_skipped"] == g
            assert eventlog.decode_stream(_read_raw(d + "/ev00000.log"))[1] == g
            assert log.append(EV, b"next") == 4
        finally:
            rmtree(d)


def test_corrupt_last_record_is_not_reused():
    d = tmpdir("evflip")
    try:
        log = eventlog.EventLog(d)
        for i in range(1, 4):
            log.append(EV, b"p%d" % i)
        _flip(log.segment_paths()[0], 3 * (eventlog.OVERHEAD + 2) - 1)  # CRC of record 3
        log = eventlog.EventLog(d)
        assert log.recovered_bytes == eventlog.OVERHEAD + 2
        # Record 3 may have been pulled by a host before the flip: its seq is never reused.
        assert log.append(EV, b"p4") > 4
        assert _seqs(log)[:2] == [1, 2] and 3 not in _seqs(log)
    finally:
        rmtree(d)


def test_decode_stream_garbage_and_truncation():
    good = b"".join(eventlog.encode(EV, s, s, b"SM" * s) for s in range(1, 5))
    assert eventlog.decode_stream(b"") == ([], 0)
    for data in (b"S", b"SM", b"SM\x01", _lcg_bytes(2000, 1), b"SM" * 500, b"\x00" * 100):
        recs, bad = eventlog.decode_stream(data)
        assert recs == [] and bad == len(data)
    # Every truncation yields exactly the complete records in front of the cut.
    ends = []
    pos = 0
    for s in range(1, 5):
        pos += eventlog.OVERHEAD + 2 * s
        ends.append(pos)
    for cut in range(len(good) + 1):
        recs, bad = eventlog.decode_stream(good[:cut])
        n = len([e for e in ends if e <= cut])
        assert [r.seq for r in recs] == list(range(1, n + 1)), cut
        assert bad == cut - (ends[n - 1] if n else 0)
    # Garbage around and between good records; a header claiming a huge length.
    huge = b"SM\x01\x01\xff\xff" + b"\x00" * 20
    mixed = _lcg_bytes(37, 2) + good[:ends[1]] + huge + b"SMSM" + good[ends[1]:]
    for data in (mixed, bytearray(mixed), memoryview(mixed)):
        recs, bad = eventlog.decode_stream(data)
        assert [r.seq for r in recs] == [1, 2, 3, 4]
        assert [r.payload for r in recs] == [b"SM" * s for s in range(1, 5)]
        assert bad == 37 + len(huge) + 4
    # A record from a future format version is skipped, not misread.
    v2 = bytearray(eventlog.encode(EV, 9, 0, b"x"))
    v2[2] = 2
    v2[-4:] = struct.pack("<I", crc32(v2[:-4]))
    assert eventlog.decode_stream(bytes(v2)) == ([], len(v2))


def test_payload_too_large_and_bad_arguments():
    d = tmpdir("evbig")
    try:
        log = eventlog.EventLog(d)
        assert raises(ValueError, log.append, EV, b"x" * (eventlog.MAX_PAYLOAD + 1))
        assert raises(ValueError, eventlog.encode, EV, 1, 0, b"x" * (eventlog.MAX_PAYLOAD + 1))
        assert raises(ValueError, log.append, 0, b"x")
        assert raises(ValueError, log.append, 9, b"x")
        assert raises(ValueError, log.append, EV, b"x", -1)
        assert raises(ValueError, log.append, EV, b"x", 2 ** 32)
        assert raises(ValueError, eventlog.EventLog, d, 65536, 1)
        assert log.stats()["next_seq"] == 1  # nothing consumed, nothing written
        assert log.append(EV, b"x" * eventlog.MAX_PAYLOAD) == 1
        assert list(log.records())[0].payload == b"x" * eventlog.MAX_PAYLOAD
    finally:
        rmtree(d)


def test_write_failure_raises_log_error_naming_file():
    d = tmpdir("evfail")
    log = eventlog.EventLog(d)
    rmtree(d)
    e = raises(LogError, log.append, EV, b"lost")
    assert d + "/ev00000.log" in str(e)
    assert isinstance(e, OSError)


def test_write_failure_keeps_written_records():
    d = tmpdir("evfail")
    try:
        log = eventlog.EventLog(d, segment_bytes=40, max_segments=4)
        assert log.append(EV, b"a1") == 1
        assert log.append(EV, b"a2") == 2  # segment 0 is now full (2 x 20 bytes)
        blocker = d + "/ev00001.log"
        os.mkdir(blocker)  # the next segment cannot be opened for writing
        e = raises(LogError, log.append, EV, b"a3")
        assert "ev00001.log" in str(e)
        os.rmdir(blocker)
        assert [r.payload for r in log.records()] == [b"a1", b"a2"]
        seq = log.append(EV, b"a4")
        assert seq == 4  # seq 3 is consumed by the failed append, never reused
        assert [(r.seq, r.payload) for r in eventlog.EventLog(d, 40, 4).records()] == [
            (1, b"a1"), (2, b"a2"), (4, b"a4")]
    finally:
        rmtree(d)


def test_stats_on_empty_and_filled_log():
    d = tmpdir("evstats")
    try:
        log = eventlog.EventLog(d + "/")  # trailing slash tolerated
        st = log.stats()
        assert st == {"segments": 0, "bytes": 0, "first_seq": None, "next_seq": 1,
                      "corrupt_skipped": 0, "recovered_bytes": 0}
        log.append_json(ST, {"kind": "heartbeat", "n": 1})
        st = log.stats()
        assert (st["segments"], st["first_seq"], st["next_seq"]) == (1, 1, 2)
        assert st["bytes"] == eventlog.OVERHEAD + len(b'{"kind":"heartbeat","n":1}') or st["bytes"] == (
            eventlog.OVERHEAD + len(b'{"n":1,"kind":"heartbeat"}'))
    finally:
        rmtree(d)
