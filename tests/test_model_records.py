"""Real records of your own in the detector's data set: a CSV catalogue of any file replay reads
(model_export/real.py; `seismote model build-data --records`).

The records here are OpenEEW records (OpenEEW / Grillo, CC BY-SA 4.0) written out as miniSEED in
counts with ObsPy, so what the catalogue says can be checked against what records.csv says of the
same waveforms.
"""

import csv
import datetime as dt
import json
import math

import numpy as np
import pytest

from seismote.model_export import real
from seismote.model_export.cli import ARTIFACT
from seismote.model_export.dataset import DatasetConfig, build_dataset, fingerprint
from tests.support import cli_runner

pytestmark = pytest.mark.skipif(not (real.OPENEEW_ROOT / "records.csv").exists(), reason="OpenEEW data folder not present")
GAIN = 1.0e5  # counts per m/s^2 of the miniSEED copy


def _write(rec, path, counts_per_gal):
    """The record's longest segment as a 3-channel miniSEED file of counts (Z, N, E); returns where
    the segment starts on the record's axis."""
    import obspy

    seg = max(rec.segments, key=lambda s: len(s.data))
    start = obspy.UTCDateTime(rec.start_utc) + seg.offset_s
    traces = [obspy.Trace(np.round(seg.data[:, j] * counts_per_gal).astype(np.int32),
                          header={"network": "XX", "station": "S1", "channel": cha, "sampling_rate": rec.rate, "starttime": start})
              for j, cha in enumerate(("HNZ", "HNN", "HNE"))]
    obspy.Stream(traces).write(str(path), format="MSEED")
    return seg.offset_s


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """A quake record (P given as p_utc) of a train event, renamed to an event of our own put in val,
    and a noise-only record in train; with their OpenEEW originals."""
    d = tmp_path_factory.mktemp("records")
    train = real.split_events(0)["train"]
    exs = real.openeew_examples(events=train)
    quake = next(e for e in exs if e["label"] == "earthquake_visible" and e["p_refined"])
    noise = next(e for e in exs if e["label"] == real.NOISE_LABEL)
    q_off = _write(quake["record"], d / "quake.mseed", GAIN / 100.0)  # 1 gal = 0.01 m/s^2
    _write(noise["record"], d / "noise.mseed", 1e6 / 100.0)  # another gain: 1e6 counts per m/s^2
    p_iso = (quake["record"].start_utc + dt.timedelta(seconds=quake["p_offset_s"])).replace(tzinfo=None).isoformat()
    text = ("file,event,label,p_utc,mag,epi_km,station,units,gain,split\n"
            "quake.mseed,mine-q1,earthquake,%s,%s,%s,Q1,counts,%g,val\n"
            "noise.mseed,mine-n1,noise,,,,N1,counts,1e6,train\n") % (p_iso, quake["mag"], quake["epi_km"], GAIN)
    (d / "catalog.csv").write_text(text)
    return d / "catalog.csv", quake, noise, q_off


def test_catalogue_records_read_as_the_openeew_originals(catalogue):
    """Same P on the same waveforms (a pick given is a pick), same label, mag and distance; the
    split is the catalogue's, and split_events adds its events."""
    cat, quake, noise, q_off = catalogue
    exs = real.catalog_examples(cat)
    q, n = exs
    assert q["label"] == "earthquake_visible" and q["positive"] and q["p_refined"]
    # the copy starts where its longest segment did: P on its own axis, to a millisecond
    assert q["p_offset_s"] == pytest.approx(quake["p_offset_s"] - q_off, abs=1e-3)
    assert (q["mag"], q["epi_km"], q["device"], q["event_id"]) == (quake["mag"], quake["epi_km"], "Q1", "mine-q1")
    gal = q["record"].segments[0].data
    seg = max(quake["record"].segments, key=lambda s: len(s.data))
    assert q["record"].rate == pytest.approx(quake["record"].rate, rel=1e-6)  # miniSEED keeps the rate to ~7 digits
    assert np.abs(gal - seg.data[:len(gal)]).max() <= 100.0 / GAIN  # one count
    assert n["label"] == real.NOISE_LABEL and not n["positive"] and n["p_offset_s"] > n["record"].duration_s
    split = real.split_events(0, catalog=cat)
    base = real.split_events(0)
    assert split["val"] == sorted(base["val"] + ["mine-q1"]) and split["train"] == sorted(base["train"] + ["mine-n1"])
    assert split["test"] == base["test"]
    both = real.examples(events=["mine-q1", base["train"][0]], catalog=cat)
    assert {e["event_id"] for e in both} == {"mine-q1", base["train"][0]} and both[-1]["event_id"] == "mine-q1"


def test_a_catalogue_p_from_origin_and_distance_is_predicted_and_picked_as_openeews(catalogue, tmp_path):
    """Without a pick, origin time + travel time, refined by the AIC pick: the OpenEEW record's own P."""
    cat, quake, _, q_off = catalogue
    row = next(r for r in real.read_index() if r["file"] == quake["file"].split("+")[0])
    (tmp_path / "quake.mseed").write_bytes((cat.parent / "quake.mseed").read_bytes())
    (tmp_path / "c.csv").write_text("file,event,label,origin_utc,epi_km,depth_km,units,gain\n"
                                    "quake.mseed,e1,earthquake,%s,%s,%s,counts,%g\n" % (row["origin_utc"], row["epi_km"], real.DEPTH_KM, GAIN))
    (ex,) = real.catalog_examples(tmp_path / "c.csv")
    assert ex["p_predicted_s"] == pytest.approx(quake["p_predicted_s"] - q_off, abs=1e-3)
    assert ex["p_refined"] == quake["p_refined"] and ex["p_offset_s"] == pytest.approx(quake["p_offset_s"] - q_off, abs=0.05)


def test_data_set_with_a_catalogue_adds_its_windows_and_leaves_the_openeew_ones(catalogue, tmp_path):
    cat = catalogue[0]
    cfg = DatasetConfig(seed=0, small=True, workers=1)
    base = build_dataset(cfg, tmp_path / "a")
    ds = build_dataset(DatasetConfig(seed=0, small=True, workers=1, records=str(cat)), tmp_path / "b")
    assert ds.fingerprint != base.fingerprint
    ev = ds.meta["event_id"]
    mine_q, mine_n = ev == "mine-q1", ev == "mine-n1"
    assert set(ds.kind[mine_q]) == {"real:quake", "real:pre-p"} and set(ds.split[mine_q]) == {"val"}
    assert ds.y[mine_q & (ds.kind == "real:quake")].all() and mine_q.sum() > 5
    assert (ds.meta["t_after_p_s"][mine_q & (ds.kind == "real:quake")] >= 0.1 - 1e-6).all()
    assert set(ds.kind[mine_n]) == {"real:noise"} and set(ds.split[mine_n]) == {"train"} and not ds.y[mine_n].any()
    # the OpenEEW windows are those of the build without the catalogue
    a = np.char.startswith(base.kind, "real:")
    b = np.char.startswith(ds.kind, "real:") & ~mine_q & ~mine_n
    assert np.array_equal(base.x[a], ds.x[b]) and base.meta[a].tobytes() == ds.meta[b].tobytes()  # NaNs too
    assert ds.info["real_split"]["val"] == real.split_events(0, catalog=cat)["val"]
    # the catalogue is known by its content: a copy elsewhere is the same data set, an edit is not
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for p in cat.parent.iterdir():
        (moved / p.name).write_bytes(p.read_bytes())
    assert fingerprint(DatasetConfig(seed=0, small=True, records=str(moved / cat.name))) == ds.fingerprint
    (moved / cat.name).write_text(cat.read_text().replace(",val\n", ",test\n"))
    assert fingerprint(DatasetConfig(seed=0, small=True, records=str(moved / cat.name))) != ds.fingerprint


def test_events_without_a_split_are_placed_by_their_id_and_kept_whole(catalogue, tmp_path):
    cat = catalogue[0]
    rows = cat.read_text().splitlines()
    lines = [rows[0]] + [rows[1].replace(",val", ",")] * 3 + [rows[2].replace(",train", ",").replace("mine-n1", "mine-n%d" % i)
                                                              for i in range(40)]
    (tmp_path / "quake.mseed").write_bytes((cat.parent / "quake.mseed").read_bytes())
    (tmp_path / "noise.mseed").write_bytes((cat.parent / "noise.mseed").read_bytes())
    (tmp_path / "c.csv").write_text("\n".join(lines) + "\n")
    split = real.split_events(0, catalog=tmp_path / "c.csv")
    mine = {s: [e for e in evs if e.startswith("mine-")] for s, evs in split.items()}
    assert sum(len(v) for v in mine.values()) == 41  # each event once
    assert 24 <= len(mine["train"]) <= 38 and mine["val"] and mine["test"]  # about 80/10/10
    assert split == real.split_events(0, catalog=tmp_path / "c.csv")
    assert real.split_events(1, catalog=tmp_path / "c.csv") != split
    # an OpenEEW event named in the catalogue keeps its split; another split for it is refused
    ev = real.split_events(0)["test"][0]
    (tmp_path / "d.csv").write_text(rows[0] + "\n" + rows[2].replace("mine-n1", ev).replace(",train", ",") + "\n")
    assert ev in real.split_events(0, catalog=tmp_path / "d.csv")["test"]
    (tmp_path / "d.csv").write_text(rows[0] + "\n" + rows[2].replace("mine-n1", ev) + "\n")
    with pytest.raises(real.CatalogError, match="event %s is in test, not train" % ev):
        real.split_events(0, catalog=tmp_path / "d.csv")


HEAD = "file,event,label,p_utc,p_s,units,gain,split"


@pytest.mark.parametrize("body, says", [
    ("file,event\nquake.mseed,e1\n", "header lacks column label"),
    (HEAD + ",colour\nquake.mseed,e1,noise,,,counts,1e5,,red\n", "unknown column colour"),
    (HEAD + "\n", "no records listed"),
    (HEAD + "\n,e1,noise,,,counts,1e5,\n", ":2: file: empty"),
    (HEAD + "\nquake.mseed,e1,quake,,,counts,1e5,\n", ":2: label: 'quake' is not one of earthquake, weak, noise"),
    (HEAD + "\nquake.mseed,e1,earthquake,,,counts,1e5,\n", ":2: p_utc: an earthquake needs its P"),
    (HEAD + "\nquake.mseed,e1,earthquake,,ten,counts,1e5,\n", ":2: p_s: 'ten' is not a number"),
    (HEAD + "\nquake.mseed,e1,earthquake,yesterday,,counts,1e5,\n", ":2: p_utc: 'yesterday' is not an ISO time"),
    (HEAD + "\nquake.mseed,e1,noise,,,counts,1e5,dev\n", ":2: split: 'dev' is not one of train, val, test"),
    (HEAD + "\nnoise.mseed,e1,noise,,,counts,1e5,\ngone.mseed,e2,noise,,,counts,1e5,\n", ":3: file: .*gone.mseed does not exist"),
    (HEAD + "\nquake.mseed,%s,noise,,,counts,1e5,\n" % ("e" * 25), ":2: event: .* longer than 24 characters"),
    (HEAD + "\nquake.mseed,e1,earthquake,,99999,counts,1e5,\n", ":2: P at 99999.00 s lies outside the record"),
    (HEAD + "\nquake.mseed,e1,noise,,,,,\n", ":2: file: .*quake.mseed.*gain"),
    (HEAD + "\nquake.mseed,e1,noise,,,counts,1e5,val\nnoise.mseed,e1,noise,,,counts,1e6,test\n", r"c\.csv:3: split: event e1 is in val, not test"),
    (HEAD + "\nslow.mseed,e1,noise,,,counts,1e5,\n", ":2: file: 10 Hz is below the 20 Hz"),
    (HEAD + "\ntwo.mseed,e1,noise,,,counts,1e5,\n", ":2: file: .*two.mseed: holds several stations"),
])
def test_a_bad_catalogue_is_refused_by_line_and_column(catalogue, tmp_path, body, says):
    import obspy

    for name in ("quake.mseed", "noise.mseed"):
        (tmp_path / name).write_bytes((catalogue[0].parent / name).read_bytes())
    st = obspy.read(str(tmp_path / "noise.mseed"))
    slow = st.copy()
    for tr in slow:
        tr.stats.sampling_rate = 10.0
    slow.write(str(tmp_path / "slow.mseed"), format="MSEED")
    two = st.copy()
    two[1].stats.station = "OTHER"  # two stations in one file: not one record
    two.write(str(tmp_path / "two.mseed"), format="MSEED")
    cat = tmp_path / "c.csv"
    cat.write_text(body)
    with pytest.raises(real.CatalogError, match=says):
        real.split_events(0, catalog=cat)
        real.catalog_examples(cat)


def test_build_data_records_option_is_saved_for_the_next_commands(catalogue, tmp_path):
    from seismote.host_tools.cli import cli

    cat = catalogue[0]
    data = tmp_path / "data"
    res = cli_runner().invoke(cli, ["model", "build-data", "--small", "--data", str(data), "--records", str(cat)])
    assert res.exit_code == 0, res.stdout + res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert json.loads((data / "config.json").read_text())["records"] == str(cat.resolve())
    from seismote.model_export.cli import _load_dataset

    assert _load_dataset(data).fingerprint == out["fingerprint"]  # train, export, evaluate: the same catalogue
    res = cli_runner().invoke(cli, ["model", "build-data", "--small", "--data", str(data)])  # without: none
    assert res.exit_code == 0 and "records" not in json.loads((data / "config.json").read_text())
    (tmp_path / "bad.csv").write_text("file,event,label\nnope.mseed,e1,noise\n")
    res = cli_runner().invoke(cli, ["model", "build-data", "--small", "--data", str(data), "--records", str(tmp_path / "bad.csv")])
    assert res.exit_code == 2 and "records:" in res.stderr and "bad.csv:2: file:" in res.stderr and "nope.mseed does not exist" in res.stderr


def test_real_augmentation_options_reach_the_data_set_and_training(tmp_path, monkeypatch):
    """build-data --real-mix is saved for the next commands as --records is; train --node-real-passes
    reaches TrainConfig."""
    from seismote.host_tools.cli import cli
    from seismote.model_export import train as train_mod
    from seismote.model_export.cli import _load_dataset

    data = tmp_path / "data"
    res = cli_runner().invoke(cli, ["model", "build-data", "--small", "--data", str(data), "--real-mix", "2"])
    assert res.exit_code == 0, res.stdout + res.stderr
    mixed = json.loads(res.stdout.strip().splitlines()[-1])
    assert json.loads((data / "config.json").read_text())["real_mix"] == 2
    assert _load_dataset(data).fingerprint == mixed["fingerprint"]
    seen = []
    monkeypatch.setattr(train_mod, "train", lambda ds, cfg, out, **kw: seen.append((ds.fingerprint, cfg)) or
                        {"best_epoch": 0, "best_val_loss": 0.0, "epochs_run": 0, "seconds": 0.0, "macs": 0, "params": 0})
    res = cli_runner().invoke(cli, ["model", "train", "--data", str(data), "--out", str(tmp_path / "t"), "--node-real-passes", "3"])
    assert res.exit_code == 0, res.stdout + res.stderr
    assert seen[0][0] == mixed["fingerprint"] and seen[0][1].node_real_passes == 3 and seen[0][1].real_weight == train_mod.TrainConfig().real_weight
    res = cli_runner().invoke(cli, ["model", "build-data", "--small", "--data", str(data)])  # without: none
    assert res.exit_code == 0 and "real_mix" not in json.loads((data / "config.json").read_text())
    assert json.loads(res.stdout.strip().splitlines()[-1])["windows"] < mixed["windows"]


def test_evaluation_and_calibration_score_the_catalogues_records_as_openeews(catalogue):
    """The held-out evaluation (its test events) and the calibration (its val events) take the
    catalogue's events from the data set's config and run their records through the node like the
    OpenEEW ones: the same result for a record and its catalogue copy."""
    from seismote.model_export import evaluate as E
    from seismote.model_export.dataset import Dataset

    cat, quake, _, q_off = catalogue
    ds = Dataset(*(np.zeros(0),) * 5, "", {"seed": 0, "records": str(cat)})  # only its config matters here
    assert E.data_seed_and_catalog(ds) == (0, str(cat))
    model_dir = ARTIFACT
    (mine,) = E._real_job(("mine-q1", model_dir, str(cat), real.OPENEEW_ROOT, "adxl355"))
    (orig,) = [r for r in E._real_job((quake["event_id"], model_dir, "", real.OPENEEW_ROOT, "adxl355")) if r["device"] == quake["device"]]
    assert (mine["event_id"], mine["device"], mine["visible"], mine["positive"]) == ("mine-q1", "Q1", True, True)
    assert mine["p_s"] == pytest.approx(orig["p_s"] - q_off, abs=1e-3)
    # the copy is the original to a count, so the node decides the same, at the same times on its axis
    for m in ("model", "rule"):
        assert mine["detections"][m] == pytest.approx([t - q_off for t in orig["detections"][m]], abs=0.05), m
    (trace,) = E._real_trace_job(("mine-q1", model_dir, str(cat)))
    assert trace["quakes"] == [{"p_s": mine["p_s"], "end_s": mine["p_s"] + E.REAL_AFTER_P_S}]


def test_held_out_evaluation_counts_the_catalogues_test_records(catalogue, tmp_path):
    """`seismote model evaluate` of a data set built with a catalogue: its test events' records are
    run through the node with OpenEEW's, counted in the real metrics and named in the report."""
    import shutil

    from seismote.model_export.evaluate import evaluate

    cat = tmp_path / "records" / "catalog.csv"
    shutil.copytree(catalogue[0].parent, cat.parent)
    # the quake's event held out, and its magnitude left out (a catalogue need not give it)
    rows = list(csv.DictReader(cat.open()))
    rows[0].update(split="test", mag="")
    with cat.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    ds = build_dataset(DatasetConfig(seed=0, small=True, workers=1, records=str(cat)), tmp_path / "data")
    model = tmp_path / "model"
    shutil.copytree(ARTIFACT, model)
    res = evaluate(ds, model, tmp_path / "eval", hours=0.01, quake_hours=0.02, quiet_hours=0.01, workers=2)
    base = json.loads((ARTIFACT / "model.json").read_text())["metrics"]
    (mine,) = [r for r in res["real"] if r["name"] == "quake.mseed"]
    assert mine["event_id"] == "mine-q1" and mine["visible"] and math.isnan(mine["mag"])
    # results.json is strict JSON: the figure the record lacks is null, not NaN
    saved = json.loads((tmp_path / "eval" / "results.json").read_text(), parse_constant=lambda c: pytest.fail("%s in results.json" % c))
    assert [r["mag"] for r in saved["real"] if r["name"] == "quake.mseed"] == [None]
    assert res["summary"]["real_visible_records"] == base["real_visible_records"] + 1
    assert json.loads((model / "model.json").read_text())["metrics"]["real_visible_records"] == base["real_visible_records"] + 1
    md = (tmp_path / "eval" / "report.md").read_text()
    assert "## Real test records: OpenEEW's and those of the catalogue `%s`" % cat in md
    assert "| quake.mseed | earthquake_visible |" in md and "the records of `%s` (their own terms)" % cat in md
    for png in ("roc_pr.png", "detection_by_mag_dist.png", "false_per_hour.png", "delay.png"):  # the report's figures
        head = (tmp_path / "eval" / png).read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(head[16:20], "big") >= 300, png  # width from IHDR
        assert "](%s)" % png in md


def test_score_records_runs_a_catalogue_through_the_node_as_the_evaluation_does(catalogue, tmp_path):
    """`seismote model score-records CATALOG`: every record of the catalogue, whatever its split, and
    no OpenEEW record; the quake copy scored as the evaluation scores its original (delays on its own
    axis), the noise record counted as noise time; a bad catalogue is refused by line."""
    from seismote.host_tools.cli import cli
    from seismote.model_export import evaluate as E

    cat, quake, noise, q_off = catalogue
    res = cli_runner().invoke(cli, ["model", "score-records", str(cat), "--workers", "1"])
    assert res.exit_code == 0, res.stdout + res.stderr
    lines = [json.loads(x) for x in res.stdout.strip().splitlines()]  # JSON lines only: the progress goes to stderr
    rows, summary = lines[:-1], lines[-1]["summary"]
    assert [(r["name"], r["event_id"], r["visible"]) for r in rows] == [("noise.mseed", "mine-n1", False), ("quake.mseed", "mine-q1", True)]

    def original(sensor):  # the OpenEEW record of the quake copy, scored by the evaluation's own job
        (r,) = [r for r in E.real_rows(E._real_job((quake["event_id"], ARTIFACT, "", real.OPENEEW_ROOT, sensor))) if r["device"] == quake["device"]]
        return r

    def same_delays(got, want, tol):
        for m in E.METHODS:
            a, b = got[m]["delay"], want[m]["delay"]
            assert (a is None) == (b is None) and (a is None or abs(a - b) <= tol), m

    same_delays(rows[1], original("adxl355"), 0.05)
    assert summary["real_visible_records"] == 1 and summary["real_noise_hours"] > 0
    noise_h = (rows[0]["duration_s"] + min(rows[1]["duration_s"], rows[1]["p_s"] - E.BEFORE_P_S)) / 3600
    assert summary["real_noise_hours"] == round(noise_h, 2)
    assert summary["real_false_detections"]["model"] == sum(len(r["model"]["false"]) for r in rows)
    # another sensor: the node reads the records in its counts and rate, as the evaluation's node with it would
    res = cli_runner().invoke(cli, ["model", "score-records", str(cat), "--workers", "1", "--sensor", "mpu6050"])
    assert res.exit_code == 0, res.stdout + res.stderr
    got = json.loads(res.stdout.strip().splitlines()[1])
    same_delays(got, original("mpu6050"), 0.01)
    assert abs(got["model"]["delay"] - rows[1]["model"]["delay"]) > 0.05  # here the sensor changes when the node confirms
    bad = tmp_path / "bad.csv"
    bad.write_text("file,event,label\n,e1,noise\n")
    res = cli_runner().invoke(cli, ["model", "score-records", str(bad)])
    assert res.exit_code == 2 and "bad.csv:2: file: empty" in res.stderr


def test_a_bad_time_in_records_csv_names_the_index_the_file_and_the_column(tmp_path):
    """OpenEEW's records.csv read with the replay's one ISO-time parser (waveforms.parse_utc): a time it
    cannot read is refused with the index, the record and the column named, not a bare value."""
    import shutil

    from seismote.host_tools.waveforms import WaveformError

    (row,) = [r for r in real.read_index() if r["file"] == "2019_3_9/015/00.jsonl"]
    (tmp_path / "2019_3_9" / "015").mkdir(parents=True)
    shutil.copy(real.OPENEEW_ROOT / row["file"], tmp_path / row["file"])
    with (tmp_path / "records.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        w.writeheader()
        w.writerow(dict(row, origin_utc="yesterday"))
    with pytest.raises(WaveformError, match=r"records\.csv \(2019_3_9/015/00\.jsonl\): origin_utc 'yesterday' is not an ISO time"):
        real.openeew_examples(root=tmp_path)
    with (tmp_path / "records.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        w.writeheader()
        w.writerow(row)
    (ex,) = real.openeew_examples(root=tmp_path)  # the same row with its own time reads as before
    assert ex["event_id"] == "2019_3_9" and ex["p_predicted_s"] > 0
