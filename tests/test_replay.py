"""Tests for `seismote replay` (and `demo`, `config validate`): the command line over the node pipeline.

The CLI runs in-process through click's CliRunner. Synthetic records (noise plus a 5 Hz decaying
wavetrain of 20 gal, the "quake", starting at QUAKE_S) are written into tmp_path at test time; the
real OpenEEW records of the 2018 Mw 7.2 Pinotepa earthquake (CC BY-SA 4.0, OpenEEW / Grillo) are
read from the shared data folder and those tests skip when it is absent.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from seismote.host_tools.cli import DEMO_RECORD, cli

OPENEEW = Path(__file__).resolve().parents[2] / "shared" / "data" / "openeew"
needs_openeew = pytest.mark.skipif(not (OPENEEW / "records.csv").is_file(), reason="OpenEEW data folder not present")
UTC = dt.timezone.utc
START = dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
RATE = 100.0
DURATION_S = 90.0
QUAKE_S = 60.0
GAIN = 2.0e5  # counts per m/s^2
EVENT_KEYS = {"source", "t", "utc", "event", "pga_gal", "score"}


# ---------------------------------------------------------------------------------------------
# Running the CLI and checking what it prints


def _runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        return CliRunner()  # click >= 8.2 keeps stderr apart


def run(*args: str):
    """Invoke `seismote ARGS`; return (exit code, parsed stdout objects, stderr lines).

    `replay` runs with the node's rule (--no-model): these tests are about readers and the pipeline;
    the model's replay is tested in test_model_export.py.
    """
    if args and args[0] == "replay" and "--model" not in args:
        args = (*args, "--no-model")
    res = _runner().invoke(cli, list(args), catch_exceptions=True)
    # Errors are reported by the command, never as an uncaught exception (a traceback).
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exc_info
    assert "Traceback" not in res.stderr
    events = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    return res.exit_code, events, res.stderr.splitlines()


def check_stream(events: list[dict], ends: bool = False) -> None:
    """The output contract: fields, types, per-source time order, trigger before detection."""
    kinds = {"trigger", "detection"} | ({"end", "rejected"} if ends else set())
    by_source: dict[str, list[dict]] = {}
    for e in events:
        assert EVENT_KEYS <= set(e), e
        assert e["event"] in kinds, e
        assert isinstance(e["t"], (int, float)) and e["t"] >= 0
        assert isinstance(e["pga_gal"], (int, float)) and e["pga_gal"] >= 0
        assert isinstance(e["score"], (int, float)) and e["score"] > 0
        by_source.setdefault(e["source"], []).append(e)
    for source, evs in by_source.items():
        ts = [e["t"] for e in evs]
        assert ts == sorted(ts), "t goes backwards for %s: %s" % (source, ts)
        starts = set()
        for e in evs:
            if e["utc"] is not None:
                utc = dt.datetime.fromisoformat(e["utc"])
                assert utc.tzinfo is not None and utc.utcoffset() == dt.timedelta(0)
                starts.add(round((utc - dt.timedelta(seconds=e["t"])).timestamp(), 3))
        assert len(starts) <= 1, "utc - t is not the record's start for every event of %s" % source
        open_trigger = None  # the trigger of the event still open
        for e in evs:
            if e["event"] == "trigger":
                assert open_trigger is None or not ends, "a trigger before the last one was closed"
                open_trigger = dict(e, detected=False)
            else:
                assert open_trigger is not None, "%s without a trigger before it" % e["event"]
                assert e["t"] >= open_trigger["t"]
                if "onset_t" in e:
                    assert e["onset_t"] == open_trigger["onset_t"]
                if e["event"] == "detection":
                    assert not open_trigger["detected"], "two detections for one trigger"
                    open_trigger["detected"] = True
                else:
                    assert (e["event"] == "end") == open_trigger["detected"]
                    open_trigger = None


def of(events, source=None, kind=None):
    return [e for e in events if (source is None or e["source"] == source) and (kind is None or e["event"] == kind)]


def names_file(stderr: list[str], path) -> bool:
    return any(line.startswith("seismote: %s" % path) for line in stderr)


# ---------------------------------------------------------------------------------------------
# Synthetic records


def quake(t: np.ndarray, t0: float = QUAKE_S, amp: float = 20.0, f: float = 5.0, tau: float = 4.0) -> np.ndarray:
    """A 5 Hz wavetrain of `amp` gal from t0 (0.2 s rise), decaying with time constant tau."""
    d = np.maximum(t - t0, 0.0)
    return np.where(t >= t0, amp * np.clip(d / 0.2, 0, 1) * np.exp(-d / tau) * np.sin(2 * np.pi * f * d), 0.0)


def record(rate: float = RATE, duration: float = DURATION_S, seed: int = 0, noise: float = 0.2) -> np.ndarray:
    """(3, n) Z, N, E in gal: white noise plus the quake."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(duration * rate))) / rate
    q = quake(t)
    return np.stack([q, 0.6 * q, 0.4 * q]) + rng.normal(0, noise, (3, len(t)))


def smooth_record(rate: float, duration: float = DURATION_S) -> np.ndarray:
    """Like record(), but the noise is a sum of 0.5-12 Hz sines: the same continuous signal at any rate."""
    rng = np.random.default_rng(7)
    freqs = rng.uniform(0.5, 12.0, 60)
    phases = rng.uniform(0, 2 * np.pi, (3, 60))
    t = np.arange(int(round(duration * rate))) / rate
    q = quake(t)
    noise = [(0.05 * np.sin(2 * np.pi * freqs[None, :] * t[:, None] + phases[c][None, :])).sum(axis=1) for c in range(3)]
    return np.stack([q, 0.6 * q, 0.4 * q]) + np.stack(noise)


def write_mseed(path: Path, pieces, channels=("HNZ", "HNN", "HNE"), rate: float = RATE, gain: float | None = GAIN):
    """pieces: [(start offset s, (ncomp, n) gal)]; counts (int32) with `gain`, else float32 m/s^2."""
    import obspy

    st = obspy.Stream()
    for offset, data in pieces:
        for ch, x in zip(channels, data):
            values = np.round(x / 100.0 * gain).astype(np.int32) if gain else (x / 100.0).astype(np.float32)
            st += obspy.Trace(values, header=dict(network="XX", station="SM01", channel=ch, sampling_rate=rate,
                                                  starttime=obspy.UTCDateTime(START + dt.timedelta(seconds=offset))))
    st.write(str(path), format="MSEED")
    return path


def write_npz(path: Path, data: np.ndarray, rate: float = RATE) -> Path:
    np.savez(path, z=data[0], n=data[1], e=data[2], rate=rate, start_utc=START.isoformat())
    return path


def assert_quake_detected(events, source, lo=QUAKE_S - 0.5, hi=QUAKE_S + 2.5):
    """Exactly one trigger and one detection, both near the quake's onset."""
    trig, det = of(events, source, "trigger"), of(events, source, "detection")
    assert len(trig) == 1 and len(det) == 1, events
    assert lo <= trig[0]["t"] <= det[0]["t"] <= hi, events
    assert det[0]["pga_gal"] > 5  # the 20-gal quake, not the 0.2-gal noise
    return det[0]


# ---------------------------------------------------------------------------------------------
# The real thing: the Mw 7.2 Pinotepa earthquake on OpenEEW nodes


def expected_p(file: str) -> dt.datetime:
    """Expected P arrival from records.csv: start_utc + expected_P_offset_s (+-2 s) of that file."""
    with open(OPENEEW / "records.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["file"] == file)
    start = dt.datetime.fromisoformat(row["start_utc"]).replace(tzinfo=UTC)
    return start + dt.timedelta(seconds=float(row["expected_P_offset_s"]))


def assert_detected_after_p(events: list[dict], p: dt.datetime, within_s: float = 60.0) -> None:
    dets = of(events, kind="detection")
    assert dets, "no detection"
    first = dt.datetime.fromisoformat(dets[0]["utc"])
    assert first >= p - dt.timedelta(seconds=2), "first detection %s is before the P wave (%s)" % (first, p)
    assert first <= p + dt.timedelta(seconds=within_s), "first detection %s is over %g s after P (%s)" % (first, within_s, p)


# Devices whose first detection falls in [P - 2 s, P + 60 s]. Not listed: 020 (377 km, PGA 2.7 gal,
# no detection) and 023 (408 km: detects ~68 s after P, after the S wave). The device_t clocks of
# 012 and 015 run ~30 minutes behind cloud_t: the reader times them by cloud_t (waveforms.py).
PINOTEPA_DETECTS = ["000", "001", "006", "008", "009", "011", "012", "014", "015", "017", "018"]


@needs_openeew
@pytest.mark.parametrize("device", PINOTEPA_DETECTS)
def test_pinotepa_detected_after_p(device):
    a = str(OPENEEW / "2018_2_16" / device / "35.jsonl")
    b = str(OPENEEW / "2018_2_16" / device / "40.jsonl")
    code, events, stderr = run("replay", a, b)
    assert code == 0, stderr
    check_stream(events)
    assert {e["source"] for e in events} == {a + "+" + b}
    assert_detected_after_p(events, expected_p("2018_2_16/%s/40.jsonl" % device))


def test_demo_detects_after_p():
    code, events, stderr = run("demo")
    assert code == 0, stderr
    check_stream(events)
    assert {e["source"] for e in events} == {"+".join(str(p) for p in DEMO_RECORD)}
    assert any("OpenEEW / Grillo" in line for line in stderr)  # attribution of the CC BY-SA data
    if (OPENEEW / "records.csv").is_file():
        p = expected_p("2018_2_16/001/40.jsonl")
    else:  # the catalogue: origin 23:39:39, 172.9 km, 20 km deep, vp 6.5 km/s
        p = dt.datetime(2018, 2, 16, 23, 39, 39, tzinfo=UTC) + dt.timedelta(seconds=(172.9**2 + 20**2) ** 0.5 / 6.5)
    # the demo runs the model, which confirms this distant (173 km) record late, in the S coda
    # (firmware/model/model.json metrics); the evaluation counts a detection up to P + 90 s
    assert_detected_after_p(events, p, within_s=90.0)
    assert of(events, kind="trigger")[0]["t"] <= of(events, kind="detection")[0]["t"]
    assert 0.0 <= of(events, kind="detection")[0]["score"] <= 1.0  # the model's score


@pytest.mark.parametrize("sensor, vertical", [("adxl355", "z"), ("mpu6050", "y"), ("adxl345", "x")])
def test_host_pipeline_at_50_hz_gives_the_boards_integers(sensor, vertical):
    """The host sums and floor-divides each sensor-rate block in NumPy (NodeModel.samples) and runs
    the pipeline at 50 Hz; the board runs it at the sensor rate. Same statuses at the same samples
    with the same integer features and trigger state, through triggers, detections by the rule,
    rejected knocks and a partial block at the end."""
    from seismote.firmware import config as fwconfig
    from seismote.firmware import pipeline as fwpipeline
    from seismote.host_tools.replay import NodeModel

    node = NodeModel(fwconfig.validate({"node_id": "n", "sensor": {"type": sensor, "vertical": vertical}}))
    fs = node.sensor_rate
    rng = np.random.default_rng(11)
    n = 200 * fs + 3  # not a whole number of blocks
    gal = rng.normal(0.0, 0.3, (n, 3)) + np.array([980.0, -3.0, 7.0])  # gravity and offsets on every axis
    t = np.arange(n) / fs
    for t0, amp, f, tau in ((80.0, 40.0, 4.0, 8.0), (130.0, 300.0, 12.0, 0.05), (170.0, -25.0, 2.5, 3.0)):
        k = t >= t0
        gal[k] += amp * np.sin(2 * np.pi * f * (t[k] - t0))[:, None] * np.exp(-(t[k] - t0) / tau)[:, None] * [0.5, 1.0, 0.7]

    def run(pipe, samples):
        out = []
        for x, y, z in samples:
            s = pipe.push(x, y, z)
            if s:
                f = pipe.feat
                out.append((s, pipe.n, f.pga_counts(), list(f.vpeak), list(f.cav_lo), list(f.cav_hi), pipe.peak_ratio, pipe.trig.ratio))
        return out

    board = run(fwpipeline.Pipeline(node.cfg, node.counts_per_g, fs), zip(*node.to_counts(gal).T.tolist()))
    host = run(node.pipeline(), node.samples(gal))
    assert host == board
    assert {s[0] for s in board} >= {fwpipeline.TRIGGER, fwpipeline.DETECTION, fwpipeline.REJECTED}


# ---------------------------------------------------------------------------------------------
# miniSEED, units and gain


def test_miniseed_counts_with_gain(tmp_path):
    path = write_mseed(tmp_path / "quake.mseed", [(0.0, record())])
    code, events, stderr = run("replay", str(path), "--units", "counts", "--gain", str(GAIN))
    assert code == 0, stderr
    check_stream(events)
    det = assert_quake_detected(events, str(path))
    assert dt.datetime.fromisoformat(det["utc"]) == START + dt.timedelta(seconds=det["t"])
    assert 10 < det["pga_gal"] < 30


def test_miniseed_counts_without_gain_names_the_file(tmp_path):
    path = write_mseed(tmp_path / "quake.mseed", [(0.0, record())])
    for args in (["--units", "counts"], []):  # counts is also the default for ObsPy formats
        code, events, stderr = run("replay", str(path), *args)
        assert code != 0
        assert events == []
        assert names_file(stderr, path) and any("--gain" in line for line in stderr), stderr


def test_miniseed_in_m_s2(tmp_path):
    path = write_mseed(tmp_path / "quake.mseed", [(0.0, record())], gain=None)
    code, events, stderr = run("replay", str(path), "--units", "m/s2")
    assert code == 0, stderr
    check_stream(events)
    assert_quake_detected(events, str(path))
    # --gain only applies to counts.
    code, events, stderr = run("replay", str(path), "--units", "m/s2", "--gain", str(GAIN))
    assert code != 0 and events == [] and names_file(stderr, path)


def test_one_component_vertical_only(tmp_path):
    path = write_mseed(tmp_path / "z.mseed", [(0.0, record()[:1])], channels=("HNZ",), gain=None)
    code, events, stderr = run("replay", str(path), "--units", "m/s2")
    assert code == 0, stderr
    check_stream(events)
    det = assert_quake_detected(events, str(path))
    assert 10 < det["pga_gal"] < 30  # the vertical's 20 gal, at full scale
    assert any("HNZ" in line for line in stderr)


def test_long_gap_does_not_trigger_and_keeps_record_time(tmp_path):
    data = record()
    data[0] += 980.665  # gravity on the vertical, as a real accelerometer records it
    t = np.arange(data.shape[1]) / RATE
    data[1, t >= 30.0] += 30.0  # the horizontal offset moved while the data were lost (re-levelled)
    before, after = t < 25.0, t >= 30.0  # 5 s missing at 25 s
    path = write_mseed(tmp_path / "gap.mseed", [(0.0, data[:, before]), (30.0, data[:, after])])
    code, events, stderr = run("replay", str(path), "--units", "counts", "--gain", str(GAIN))
    assert code == 0, stderr
    check_stream(events)
    assert any("gap" in line and "25.000 s" in line for line in stderr), stderr  # the split is noted
    # Nothing at the gap (the pipeline restarts and re-warms), and the quake after it is timed from
    # the record's first sample (60 s), not from the start of its segment (30 s).
    assert not [e for e in events if e["t"] < QUAKE_S - 1], events
    det = assert_quake_detected(events, str(path))
    assert dt.datetime.fromisoformat(det["utc"]) == START + dt.timedelta(seconds=det["t"])


def test_resampling_31_25_and_100_hz_agree(tmp_path):
    times = {}
    for rate in (31.25, 100.0):
        path = write_npz(tmp_path / ("r%g.npz" % rate), smooth_record(rate), rate)
        code, events, stderr = run("replay", str(path))
        assert code == 0, stderr
        check_stream(events)
        det = assert_quake_detected(events, str(path))
        times[rate] = (of(events, kind="trigger")[0]["t"], det["t"])
    assert abs(times[31.25][0] - times[100.0][0]) <= 0.2, times
    assert abs(times[31.25][1] - times[100.0][1]) <= 0.2, times


# ---------------------------------------------------------------------------------------------
# Unreadable files among good ones


def test_bad_files_are_named_and_the_good_ones_replayed(tmp_path):
    good_npz = write_npz(tmp_path / "good.npz", record())
    demo = [str(p) for p in DEMO_RECORD]  # two OpenEEW buckets of one device: joined into one record
    missing = tmp_path / "missing.mseed"
    garbage = tmp_path / "garbage.mseed"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    not_packets = tmp_path / "bad.jsonl"
    not_packets.write_text('hello\n{"not": "a packet"}\n')
    args = [str(missing), demo[0], str(garbage), str(empty), str(good_npz), str(not_packets), demo[1]]
    code, events, stderr = run("replay", *args)
    assert code != 0
    check_stream(events)
    for bad in (missing, garbage, empty, not_packets):
        assert names_file(stderr, bad), (bad, stderr)
    assert not names_file(stderr, good_npz)
    assert {e["source"] for e in events} == {str(good_npz), "+".join(demo)}
    assert_quake_detected(events, str(good_npz))
    assert of(events, "+".join(demo), "detection")
    # The output of each good file is what it gives alone.
    _, alone, _ = run("replay", str(good_npz))
    assert of(events, str(good_npz)) == alone


def test_every_file_bad_prints_nothing(tmp_path):
    garbage = tmp_path / "garbage.mseed"
    garbage.write_bytes(b"\x00\x01not a waveform" * 50)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    res = _runner().invoke(cli, ["replay", str(tmp_path / "missing.npz"), str(garbage), str(empty)])
    assert res.exit_code != 0
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    for bad in (tmp_path / "missing.npz", garbage, empty):
        assert names_file(lines, bad)


@needs_openeew
def test_openeew_buckets_that_do_not_join_are_named(tmp_path):
    """Two buckets of one device that read alone but not together (their rates differ)."""
    a = OPENEEW / "2018_2_16" / "001" / "35.jsonl"
    odd = tmp_path / "odd.jsonl"
    packets = [json.loads(line) for line in (OPENEEW / "2018_2_16" / "001" / "40.jsonl").read_text().splitlines()[:40]]
    odd.write_text("".join(json.dumps(dict(p, sr=100.0)) + "\n" for p in packets))
    good = write_npz(tmp_path / "good.npz", record())
    code, events, stderr = run("replay", str(a), str(odd), str(good))
    assert code != 0
    check_stream(events)
    assert any(str(odd) in line and "rates" in line for line in stderr), stderr
    assert str(good) in {e["source"] for e in events}
    assert_quake_detected(events, str(good))


def test_source_is_the_path_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_npz(tmp_path / "q.npz", record())
    (tmp_path / "sub").mkdir()
    write_csv(tmp_path / "sub" / "q.csv", record(seed=2), ("# rate: 100",))
    given = ["./q.npz", "sub/../sub/q.csv"]
    code, events, stderr = run("replay", *given)
    assert code == 0, stderr
    check_stream(events)
    sources = [e["source"] for e in events]
    assert sorted(set(sources), key=sources.index) == given  # as given, in the order given
    for source in given:
        assert_quake_detected(events, source)


# ---------------------------------------------------------------------------------------------
# CSV and --rate


def write_csv(path: Path, data: np.ndarray, header_lines: tuple[str, ...] = ()) -> Path:
    rows = "\n".join("%.5f,%.5f,%.5f" % tuple(r) for r in data.T)
    path.write_text("".join(h + "\n" for h in header_lines) + "z,n,e\n" + rows + "\n")
    return path


def test_csv_without_time_column_needs_rate(tmp_path):
    path = write_csv(tmp_path / "q.csv", record())
    code, events, stderr = run("replay", str(path))
    assert code != 0 and events == []
    assert names_file(stderr, path) and any("--rate" in line for line in stderr), stderr

    code, events, stderr = run("replay", str(path), "--rate", "100")
    assert code == 0, stderr
    check_stream(events)
    det = assert_quake_detected(events, str(path))
    assert det["utc"] is None  # the file gives no start time

    # The same samples declared at 50 Hz last twice as long: the quake is at 120 s.
    code, events, stderr = run("replay", str(path), "--rate", "50")
    assert code == 0, stderr
    assert_quake_detected(events, str(path), lo=2 * QUAKE_S - 0.5, hi=2 * QUAKE_S + 2.5)


def test_csv_rate_that_disagrees_with_the_file(tmp_path):
    path = write_csv(tmp_path / "q.csv", record(), ("# rate: 100", "# start_utc: %s" % START.isoformat()))
    code, events, stderr = run("replay", str(path), "--rate", "50")
    assert code != 0 and events == [] and names_file(stderr, path)
    code, events, stderr = run("replay", str(path), "--rate", "100")
    assert code == 0, stderr
    det = assert_quake_detected(events, str(path))
    assert dt.datetime.fromisoformat(det["utc"]) == START + dt.timedelta(seconds=det["t"])


# ---------------------------------------------------------------------------------------------
# --ends


def test_ends_adds_end_and_rejected(tmp_path):
    data = record(noise=0.05)
    t = np.arange(data.shape[1]) / RATE
    # A small event: it triggers, but its PGA (~0.6 gal) stays below detector.min_pga_gal (1 gal).
    data[0] += quake(t, t0=30.0, amp=0.6, tau=2.0)
    path = write_npz(tmp_path / "q.npz", data)
    code, plain, stderr = run("replay", str(path))
    assert code == 0, stderr
    check_stream(plain)
    code, events, stderr = run("replay", str(path), "--ends")
    assert code == 0, stderr
    check_stream(events, ends=True)
    assert [e["event"] for e in events] == ["trigger", "rejected", "trigger", "detection", "end"]
    # --ends only adds lines: the others are the same.
    assert [e for e in events if e["event"] in ("trigger", "detection")] == plain
    small, rejected, _, det, end = events
    assert 30.0 <= small["t"] < rejected["t"] < QUAKE_S
    assert rejected["pga_gal"] < 1.0
    assert QUAKE_S <= det["t"] < end["t"] < DURATION_S
    for e in (rejected, end):
        assert {"pgv_cms", "cav_cms", "duration_s"} <= set(e)
    assert end["duration_s"] > det["duration_s"] and end["pga_gal"] >= det["pga_gal"]


# ---------------------------------------------------------------------------------------------
# --config and config validate


BAD_CONFIGS = [
    ({"node_id": "n1", "trigger": {"on": 100}}, "trigger.on"),
    ({"node_id": "n1", "trigger": {"on": 2.0, "off": 2.5}}, "trigger.off"),
    ({"node_id": "n1", "detector": {"confirm_s": "1"}}, "detector.confirm_s"),
    ({"node_id": "n1", "sensor": {"type": "adxl355", "odr_hz": 100}}, "sensor.odr_hz"),
    ({"trigger": {}}, "node_id"),
]


@pytest.mark.parametrize("doc, field", BAD_CONFIGS, ids=[f for _, f in BAD_CONFIGS])
def test_invalid_config_is_one_line_naming_the_field(tmp_path, doc, field):
    cfg = tmp_path / "node.json"
    cfg.write_text(json.dumps(doc))
    rec = write_npz(tmp_path / "q.npz", record(duration=30))
    for args in (["replay", str(rec), "--config", str(cfg)], ["config", "validate", str(cfg)]):
        res = _runner().invoke(cli, args)
        assert res.exit_code == 2, (args, res.stdout, res.stderr)
        assert res.stdout == ""
        lines = res.stderr.splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("seismote: ") and field + ":" in lines[0] and str(cfg) in lines[0], lines
        assert isinstance(res.exception, SystemExit)


def test_config_not_json_or_missing(tmp_path):
    cfg = tmp_path / "node.json"
    cfg.write_text("{trigger: on}")
    for path in (cfg, tmp_path / "nope.json"):
        res = _runner().invoke(cli, ["config", "validate", str(path)])
        assert res.exit_code == 2 and res.stdout == ""
        assert len(res.stderr.splitlines()) == 1 and str(path) in res.stderr


def test_config_is_used_by_replay(tmp_path):
    rec = write_npz(tmp_path / "q.npz", record())
    cfg = tmp_path / "node.json"
    # A node that needs 100 gal before it reports: the 20-gal quake triggers, is not confirmed.
    cfg.write_text(json.dumps({"node_id": "n1", "detector": {"min_pga_gal": 100}}))
    res = _runner().invoke(cli, ["config", "validate", str(cfg)])
    assert res.exit_code == 0
    full = json.loads(res.stdout)
    assert full["detector"]["min_pga_gal"] == 100 and full["trigger"]["on"] > full["trigger"]["off"]
    code, events, stderr = run("replay", str(rec), "--config", str(cfg), "--ends")
    assert code == 0, stderr
    check_stream(events, ends=True)
    assert [e["event"] for e in events] == ["trigger", "rejected"]
    assert QUAKE_S - 0.5 <= events[0]["t"] <= QUAKE_S + 1
    # Another sensor (100 Hz MPU-6050): the record is resampled to its rate, the quake still found.
    cfg.write_text(json.dumps({"node_id": "n1", "sensor": {"type": "mpu6050", "odr_hz": 100, "range_g": 2}}))
    code, events, stderr = run("replay", str(rec), "--config", str(cfg))
    assert code == 0, stderr
    assert_quake_detected(events, str(rec))
