"""Tests for seismote.host_tools.waveforms: the waveform readers behind `seismote replay`.

Fixtures are written into tmp_path at test time; the real OpenEEW records (CC BY-SA 4.0,
OpenEEW / Grillo) are read from the shared data folder and the tests skip when it is absent.
"""

import datetime as dt
import json
import random
from pathlib import Path

import numpy as np
import pytest

from seismote.host_tools.waveforms import Record, Segment, WaveformError, read_record, read_records

OPENEEW = Path(__file__).resolve().parents[2] / "shared" / "data" / "openeew"
needs_openeew = pytest.mark.skipif(not OPENEEW.is_dir(), reason="OpenEEW data folder not present")
UTC = dt.timezone.utc
GAIN = 2.0e5  # counts per m/s^2


def packets_of(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def stack(rec):
    """All samples of a record as one (n, ncomp) array."""
    return np.concatenate([s.data for s in rec.segments])


# ---------------------------------------------------------------------------------------------
# OpenEEW, real records


@needs_openeew
def test_openeew_two_buckets_join_into_one_record():
    a, b = OPENEEW / "2018_2_16" / "006" / "35.jsonl", OPENEEW / "2018_2_16" / "006" / "40.jsonl"
    recs = read_records([a, b])
    assert len(recs) == 1
    rec = recs[0]
    assert isinstance(rec, Record)
    assert rec.source == "%s+%s" % (a, b)
    # 2018 nodes deliver 32 samples per ~1.064 s of device_t: timed at ~30.06 Hz, not the nominal 31.25.
    assert 29.9 < rec.rate < 30.2
    assert rec.components == ("Z", "N", "E")
    assert rec.units == "gal"
    assert 590 < rec.duration_s < 610  # two 5-min buckets, on the node's clock
    assert rec.start_utc.tzinfo is not None
    assert dt.datetime(2018, 2, 16, 23, 34, 50, tzinfo=UTC) < rec.start_utc < dt.datetime(2018, 2, 16, 23, 35, 10, tzinfo=UTC)
    assert len(rec.gaps) == len(rec.segments) - 1
    for offset, duration in rec.gaps:
        assert 0 < offset < rec.duration_s and duration > 0.1
    # Both files together hold what each holds alone, and the Z column is the packets' x.
    alone = [read_record(a), read_record(b)]
    assert 0 <= sum(r.n_samples for r in alone) - rec.n_samples <= 2  # at most a sample of overlap at the join
    packets = sorted(packets_of(a) + packets_of(b), key=lambda p: (p["cloud_t"], p["device_t"]))
    if not rec.gaps and not any("filled" in n or "overlapping" in n for n in rec.notes):
        np.testing.assert_array_equal(stack(rec)[:, 0], np.concatenate([p["x"] for p in packets]))
        np.testing.assert_array_equal(stack(rec)[:, 2], np.concatenate([p["z"] for p in packets]))
    # The strong motion of the Mw 7.2 Pinotepa earthquake is there (device 006 is 66 km away).
    assert np.abs(stack(rec)).max() > 50


@needs_openeew
def test_openeew_clock_drift_is_noted():
    rec = read_record(OPENEEW / "2018_2_16" / "006" / "40.jsonl")
    assert any("device_t spans" in n for n in rec.notes)
    assert any("orientation" in n and "not document" in n for n in rec.notes)


@needs_openeew
def test_openeew_shuffled_packets_give_the_same_record(tmp_path):
    src = [OPENEEW / "2018_2_16" / "011" / name for name in ("35.jsonl", "40.jsonl")]
    ref = read_records(src)[0]
    shuffled = []
    for i, path in enumerate(src):
        lines = path.read_text().splitlines()
        random.Random(i).shuffle(lines)
        out = tmp_path / path.name
        out.write_text("\n".join(lines) + "\n")
        shuffled.append(out)
    rec = read_records(shuffled[::-1])[0]  # files in the wrong order too
    assert rec.start_utc == ref.start_utc
    assert rec.gaps == ref.gaps
    assert [s.offset_s for s in rec.segments] == [s.offset_s for s in ref.segments]
    np.testing.assert_array_equal(stack(rec), stack(ref))


@needs_openeew
def test_openeew_corrupt_line_is_skipped_and_noted(tmp_path):
    src = OPENEEW / "2018_2_16" / "009" / "35.jsonl"
    lines = src.read_text().splitlines()
    ref = read_record(src)
    lines[9] = lines[9][: len(lines[9]) // 2]  # a torn line 10
    lines.insert(20, "not json at all")  # line 21
    bad = tmp_path / "35.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    rec = read_record(bad)
    assert any("line 10: not a packet" in n for n in rec.notes)
    assert any("line 21: not a packet" in n for n in rec.notes)
    assert rec.n_samples == ref.n_samples - 32  # only the torn packet is lost
    assert len(rec.gaps) == len(ref.gaps) + 1  # and it leaves a 1-s gap


def test_openeew_file_without_packets_is_an_error(tmp_path):
    bad = tmp_path / "5.jsonl"
    bad.write_text('{"device_id": "001"}\nnot json\n')
    with pytest.raises(WaveformError, match=r"5\.jsonl.*no valid OpenEEW packet"):
        read_record(bad)


# ---------------------------------------------------------------------------------------------
# OpenEEW, synthetic packets


def write_openeew(path, packets):
    path.write_text("".join(json.dumps(p) + "\n" for p in packets))
    return path


def synthetic_packets(device="777", n_packets=40, sr=31.25, n=32, t0=1.6e9, skip=(), dup=(), short=()):
    """Packets of a ramp signal: sample i holds i (x), -i (y), 2i (z); time stamps exact."""
    out, i = [], 0
    for k in range(n_packets):
        if k in short:
            i += 2  # two samples lost before this packet
        idx = np.arange(i, i + n)
        i += n
        if k in skip:
            continue
        p = {"device_id": device, "x": idx.tolist(), "y": (-idx).tolist(), "z": (2 * idx).tolist(),
             "device_t": t0 + idx[-1] / sr, "cloud_t": t0 + idx[-1] / sr + 0.3, "sr": sr}
        out.append(p)
        if k in dup:
            out.append(dict(p, cloud_t=p["cloud_t"] + 0.01))
    return out


def test_openeew_gaps_duplicates_and_short_gaps(tmp_path):
    pk = synthetic_packets(skip={10, 11}, dup={20}, short={30})
    rec = read_record(write_openeew(tmp_path / "a.jsonl", pk))
    assert rec.rate == 31.25 and rec.units == "gal"
    assert len(rec.segments) == 2
    assert rec.gaps == [(320 / 31.25, 64 / 31.25)]
    assert rec.segments[1].offset_s == 384 / 31.25
    data = stack(rec)
    # After the gap the ramp continues, with the two lost samples before packet 30 interpolated.
    z = np.concatenate([np.arange(0, 320), np.arange(384, 40 * 32 + 2)])
    np.testing.assert_allclose(data[:, 0], z)
    np.testing.assert_allclose(data[:, 1], -z)
    np.testing.assert_allclose(data[:, 2], 2 * z)
    assert any("duplicate" in n for n in rec.notes)
    assert any("filled 1 short gap" in n for n in rec.notes)
    assert rec.start_utc == dt.datetime.fromtimestamp(1.6e9, tz=UTC)


def test_openeew_overlapping_packet_keeps_only_new_samples(tmp_path):
    pk = synthetic_packets(n_packets=5)
    late = dict(pk[2])  # packet 2 resent shifted by 8 samples: 24 old, 8 new samples
    idx = np.arange(2 * 32 + 8, 3 * 32 + 8)
    late.update(x=idx.tolist(), y=(-idx).tolist(), z=(2 * idx).tolist(), device_t=1.6e9 + idx[-1] / 31.25)
    pk.insert(3, late)
    for p in pk[4:]:  # the following packets come after it
        p["cloud_t"] += 1
    rec = read_record(write_openeew(tmp_path / "o.jsonl", pk))
    np.testing.assert_allclose(stack(rec)[:, 0], np.arange(160))
    assert any("overlapping" in n for n in rec.notes)


def test_read_records_keeps_devices_and_other_files_apart(tmp_path):
    a1 = write_openeew(tmp_path / "a1.jsonl", synthetic_packets("A", n_packets=10))
    b = write_openeew(tmp_path / "b.jsonl", synthetic_packets("B", n_packets=10))
    a2 = write_openeew(tmp_path / "a2.jsonl", synthetic_packets("A", n_packets=10, t0=1.6e9 + 320 / 31.25))
    npz = tmp_path / "c.npz"
    np.savez(npz, z=np.zeros(500), rate=100.0)
    recs = read_records([a1, b, npz, a2])
    assert [r.source for r in recs] == ["%s+%s" % (a1, a2), str(b), str(npz)]
    assert recs[0].n_samples == 640 and not recs[0].gaps
    assert recs[1].n_samples == 320


def test_openeew_mixed_rates_are_an_error(tmp_path):
    pk = synthetic_packets(n_packets=4)
    pk[2]["sr"] = 125
    with pytest.raises(WaveformError, match=r"m\.jsonl.*mixed sample rates"):
        read_record(write_openeew(tmp_path / "m.jsonl", pk))


# ---------------------------------------------------------------------------------------------
# ObsPy formats


def trace(channel, data, start, rate=100.0, station="SM01", network="XX"):
    import obspy

    tr = obspy.Trace(np.asarray(data, dtype=np.int32))
    tr.stats.update(dict(network=network, station=station, channel=channel, sampling_rate=rate,
                         starttime=obspy.UTCDateTime(start)))
    return tr


T0 = dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_miniseed_three_channels_gaps_and_gain(tmp_path):
    import obspy

    n = 3000  # 30 s at 100 Hz
    i = np.arange(n)
    z = 1000 + i  # a ramp: linear interpolation restores it exactly
    north = 5 * i
    east = -3 * i
    t0 = obspy.UTCDateTime(T0)
    st = obspy.Stream([
        trace("HNE", east[:1500], t0),                       # 0.03 s (3 samples) lost at 15 s
        trace("HNE", east[1503:], t0 + 15.03),
        trace("HNZ", z, t0),
        trace("HNN", north[:1000], t0),                      # 2 s lost at 10 s
        trace("HNN", north[1200:], t0 + 12.0),
    ])
    path = tmp_path / "rec.mseed"
    st.write(str(path), format="MSEED")
    rec = read_record(path, gain=GAIN)
    assert rec.rate == 100.0
    assert rec.components == ("Z", "N", "E")
    assert rec.start_utc == T0
    assert [s.offset_s for s in rec.segments] == [0.0, 12.0]
    assert rec.gaps == [(10.0, 2.0)]
    assert [len(s.data) for s in rec.segments] == [1000, 1800]
    gal = 100.0 / GAIN
    keep = np.r_[0:1000, 1200:3000]
    np.testing.assert_allclose(stack(rec), np.column_stack([z, north, east])[keep] * gal)
    assert any("filled 1 short gap (3 samples" in n for n in rec.notes)
    assert any("only some components" in n for n in rec.notes)
    assert any("gain" in n for n in rec.notes)


def test_miniseed_counts_without_gain_names_the_file(tmp_path):
    import obspy

    path = tmp_path / "nogain.mseed"
    obspy.Stream([trace("HNZ", np.zeros(500), T0)]).write(str(path), format="MSEED")
    with pytest.raises(WaveformError, match=r"nogain\.mseed.*counts.*--gain") as err:
        read_record(path)
    assert "--units" in str(err.value)
    rec = read_record(path, units="m/s2")  # the file already holds acceleration
    assert rec.n_samples == 500


def test_miniseed_overlap_is_dropped_and_noted(tmp_path):
    import obspy

    i = np.arange(1000)
    t0 = obspy.UTCDateTime(T0)
    st = obspy.Stream([trace("HNZ", i[:600], t0), trace("HNZ", i[500:] + 10**6 * 0, t0 + 5.0)])
    st[1].data[:100] = -1  # the overlapping copy differs: the first copy wins
    path = tmp_path / "ov.mseed"
    st.write(str(path), format="MSEED")
    rec = read_record(path, gain=100.0)  # 100 counts per m/s^2: 1 count = 1 gal
    assert len(rec.segments) == 1
    np.testing.assert_allclose(stack(rec)[:, 0], i)
    assert any("overlapping" in n for n in rec.notes)


def test_miniseed_several_stations_is_an_error(tmp_path):
    import obspy

    st = obspy.Stream([trace("HNZ", np.zeros(100), T0, station="AAA"),
                       trace("HNZ", np.zeros(100), T0, station="BBB")])
    path = tmp_path / "two.mseed"
    st.write(str(path), format="MSEED")
    with pytest.raises(WaveformError, match=r"two\.mseed.*several stations.*AAA.*BBB"):
        read_record(path, gain=1.0)


def test_miniseed_mixed_rates_is_an_error(tmp_path):
    import obspy

    st = obspy.Stream([trace("HNZ", np.zeros(100), T0), trace("HNN", np.zeros(100), T0, rate=50.0),
                       trace("HNE", np.zeros(100), T0)])
    path = tmp_path / "mixed.mseed"
    st.write(str(path), format="MSEED")
    with pytest.raises(WaveformError, match=r"mixed\.mseed.*mixed sample rates"):
        read_record(path, gain=1.0)


def test_sac_single_component(tmp_path):
    data = (np.sin(np.arange(2000) / 10) * 1e4).astype(np.int32)
    path = tmp_path / "one.sac"
    trace("HNZ", data, T0, rate=200.0).write(str(path), format="SAC")
    rec = read_record(path, gain=1e4)
    assert rec.components == ("Z",)
    assert rec.rate == 200.0
    assert rec.start_utc == T0
    assert stack(rec).shape == (2000, 1)
    np.testing.assert_allclose(stack(rec)[:, 0], data * 100.0 / 1e4)


def test_channels_1_2_z_are_ordered_vertical_first(tmp_path):
    import obspy

    st = obspy.Stream([trace(c, np.full(300, k), T0) for k, c in enumerate(("HN2", "HN1", "HNZ"))])
    path = tmp_path / "z12.mseed"
    st.write(str(path), format="MSEED")
    rec = read_record(path, gain=100.0)
    assert rec.components == ("Z", "1", "2")
    np.testing.assert_array_equal(stack(rec)[0], [2, 1, 0])


# ---------------------------------------------------------------------------------------------
# NPZ and CSV


def test_npz_components_rate_start_and_units(tmp_path):
    path = tmp_path / "rec.npz"
    n = np.arange(1000, dtype=float)
    np.savez(path, e=n * 0.001, n=n * 0.002, z=n * 0.003, sampling_rate=np.array(100.0),
             start_utc=np.array("2024-03-01T12:00:00Z"), units=np.array("g"))
    rec = read_record(path)
    assert rec.components == ("Z", "N", "E") and rec.rate == 100.0 and rec.start_utc == T0
    np.testing.assert_allclose(stack(rec), np.column_stack([n * 0.003, n * 0.002, n * 0.001]) * 980.665)
    assert any("from the file" in note for note in rec.notes)


def test_npz_nan_runs_are_gaps(tmp_path):
    data = np.ones((2000, 3))
    data[500:505, 1] = np.nan  # 0.05 s: filled
    data[1000:1050, :] = np.nan  # 0.5 s: splits
    path = tmp_path / "nan.npz"
    np.savez(path, data=data, rate=100.0)
    rec = read_record(path)
    assert rec.start_utc is None
    assert rec.gaps == [(10.0, 0.5)]
    assert [len(s.data) for s in rec.segments] == [1000, 950]
    assert np.isfinite(stack(rec)).all()


def test_npz_rate_missing_and_given(tmp_path):
    path = tmp_path / "norate.npz"
    np.savez(path, z=np.zeros(100))
    with pytest.raises(WaveformError, match=r"norate\.npz.*rate is missing"):
        read_record(path)
    assert read_record(path, rate=50.0).rate == 50.0
    np.savez(tmp_path / "r.npz", z=np.zeros(100), rate=100.0)
    with pytest.raises(WaveformError, match=r"r\.npz.*100 Hz.*50 Hz"):
        read_record(tmp_path / "r.npz", rate=50.0)


def test_csv_time_column_units_comment_and_gap(tmp_path):
    t = np.arange(0, 20, 0.01)
    keep = (t < 5) | (t > 6.005)  # ~1 s missing at 5 s
    rows = ["# units: g", "time,HNE,HNN,HNZ"]
    rows += ["%.2f,%g,%g,%g" % (ti, 0.1, 0.2, 0.3) for ti in t[keep]]
    path = tmp_path / "rec.csv"
    path.write_text("\n".join(rows) + "\n")
    rec = read_record(path)
    assert rec.rate == 100.0 and rec.components == ("Z", "N", "E")
    assert len(rec.segments) == 2
    assert rec.gaps[0] == pytest.approx((5.0, 1.01))
    np.testing.assert_allclose(stack(rec)[0], np.array([0.3, 0.2, 0.1]) * 980.665)


def test_csv_iso_times(tmp_path):
    start = np.datetime64("2024-03-01T12:00:00")
    times = start + np.arange(400) * np.timedelta64(20, "ms")  # 50 Hz
    rows = ["t,z"] + ["%sZ,%d" % (ti, k) for k, ti in enumerate(times)]
    path = tmp_path / "iso.csv"
    path.write_text("\n".join(rows) + "\n")
    rec = read_record(path)
    assert rec.rate == 50.0 and rec.start_utc == T0 and rec.components == ("Z",)
    np.testing.assert_allclose(stack(rec)[:, 0], np.arange(400))


def test_csv_offsets_semicolons_and_empty_fields(tmp_path):
    rows = ["time;acc_e;acc_n;acc_z"]
    for k in range(300):  # 100 Hz, stamped in UTC+02:00, one empty field at row 100
        stamp = (T0 + dt.timedelta(hours=2, milliseconds=10 * k)).replace(tzinfo=None).isoformat(timespec="milliseconds")
        rows.append("%s+02:00;%s;%d;%d" % (stamp, "" if k == 100 else k, 2 * k, 3 * k))
    path = tmp_path / "semi.csv"
    path.write_text("\n".join(rows) + "\n")
    rec = read_record(path)
    assert rec.rate == 100.0 and rec.start_utc == T0 and rec.components == ("Z", "N", "E")
    np.testing.assert_allclose(stack(rec), np.column_stack([3 * np.arange(300), 2 * np.arange(300), np.arange(300)]))
    assert any("filled 1 short gap (1 sample," in n for n in rec.notes)


def test_fmt_overrides_detection(tmp_path):
    path = tmp_path / "table.dat"
    path.write_text("t z\n" + "".join("%g %d\n" % (k / 50, k) for k in range(100)))
    with pytest.raises(WaveformError, match=r"table\.dat.*unknown format"):
        read_record(path)
    rec = read_record(path, fmt="csv")
    assert rec.rate == 50.0 and rec.n_samples == 100


def test_gain_needs_counts(tmp_path):
    path = tmp_path / "g.npz"
    np.savez(path, z=np.zeros(100), rate=100.0, units="g")
    with pytest.raises(WaveformError, match=r"g\.npz.*--gain applies to data in counts"):
        read_record(path, gain=1000.0)
    np.testing.assert_allclose(stack(read_record(path, units="counts", gain=1000.0)), 0.0)


def test_csv_without_time_column_needs_a_rate(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("acc\n" + "\n".join(str(v) for v in range(300)) + "\n")
    with pytest.raises(WaveformError, match=r"plain\.csv.*rate is missing"):
        read_record(path)
    assert read_record(path, rate=100.0).n_samples == 300
    path.write_text("# rate: 200\nacc\n" + "\n".join(str(v) for v in range(300)) + "\n")
    rec = read_record(path)
    assert rec.rate == 200.0 and rec.components == ("acc",)


def test_csv_bad_value_names_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("# rate: 100\nz\n1\n2\nthree\n4\n")
    with pytest.raises(WaveformError, match=r"bad\.csv: line 5: 'three' is not a number"):
        read_record(path)


# ---------------------------------------------------------------------------------------------
# Resampling


def sine_record(rate, seconds=20.0, freq=2.0, amp=10.0):
    t = np.arange(int(seconds * rate)) / rate
    data = (amp * np.sin(2 * np.pi * freq * t))[:, None]
    return Record(source="sine", rate=rate, start_utc=None, components=("Z",), units="gal",
                  segments=[Segment(0.0, data), Segment(seconds + 5.0, data.copy())],
                  gaps=[(seconds, 5.0)], notes=[])


@pytest.mark.parametrize("rate,target", [(31.25, 100.0), (100.0, 250.0)])
def test_resampling_keeps_a_2hz_sine(rate, target):
    rec = sine_record(rate).resampled(target)
    assert rec.rate == target
    assert [s.offset_s for s in rec.segments] == [0.0, 25.0] and rec.gaps == [(20.0, 5.0)]
    for seg in rec.segments:
        assert len(seg.data) == pytest.approx(20.0 * target, abs=2)
        middle = seg.data[int(2 * target):-int(2 * target), 0]
        assert np.abs(middle).max() == pytest.approx(10.0, rel=0.01)
        t = np.arange(len(seg.data)) / target
        np.testing.assert_allclose(middle, 10 * np.sin(2 * np.pi * 2.0 * t[int(2 * target):-int(2 * target)]), atol=0.1)
    assert any("resampled" in n for n in rec.notes)


def test_resampling_below_20_hz_is_rejected():
    with pytest.raises(WaveformError, match=r"sine: 10 Hz is below the 20 Hz minimum"):
        sine_record(10.0).resampled(100.0)


# ---------------------------------------------------------------------------------------------
# Errors name the file


def test_unknown_format_names_the_file(tmp_path):
    path = tmp_path / "mystery.bin"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(WaveformError, match=r"mystery\.bin.*unknown format"):
        read_record(path)


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.mseed", "empty.csv", "empty.npz"])
def test_empty_file_names_the_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(WaveformError, match=name.replace(".", r"\.") + ".*empty"):
        read_record(path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(WaveformError, match=r"nothere\.mseed.*no such file"):
        read_record(tmp_path / "nothere.mseed")


def test_errors_are_value_errors():
    assert issubclass(WaveformError, ValueError)


@needs_openeew
def test_openeew_node_clock_far_off_is_replaced_by_the_server_clock():
    # Device 012's device_t ran ~30 min behind cloud_t during the 2018 Pinotepa event.
    rec = read_record(OPENEEW / "2018_2_16" / "012" / "40.jsonl")
    assert any("timed by cloud_t" in n for n in rec.notes)
    assert dt.datetime(2018, 2, 16, 23, 39, 50, tzinfo=UTC) < rec.start_utc < dt.datetime(2018, 2, 16, 23, 40, 10, tzinfo=UTC)
    good = read_record(OPENEEW / "2018_2_16" / "011" / "40.jsonl")
    assert not any("timed by cloud_t" in n for n in good.notes)
