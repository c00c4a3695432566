"""The on-node detector: training, int8 export, TFLM validation, the firmware detector, replay.

- A tiny network is trained for two epochs on the small data set (reproducibly: twice, same
  weights), exported to full int8, and checked: operators against the TFLM ESP32 allow-list,
  input/output quantization, MACs counted from the graph, the arena measured in TFLM, golden vectors
  bit-identical between TFLite Micro and LiteRT, and golden.bin read back through the firmware's
  Detector (microlite API over TFLM).
- The committed artifact (firmware/model) keeps the node budgets: model <= 16 KB, TFLM arena
  <= 16 KB (it runs in a 16 KB arena and in the arena model.json configures), <= 100k MACs, and
  its golden vectors still match in both interpreters.
- firmware/detector.py: the hysteresis rule and the pipeline hook with a scripted backend, on
  CPython and on the real MicroPython VM (where the samples without an inference must not
  allocate: heap locked).
- `seismote replay` with the bundled model detects the Pinotepa record (OpenEEW / Grillo, CC BY-SA 4.0).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import zlib
from array import array
from pathlib import Path

import numpy as np
import pytest

from seismote.firmware import config as fwconfig
from seismote.firmware import detector as fwdetector
from seismote.firmware import pipeline as fwpipeline
from tests.support import benchmark, cli_runner

ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = ROOT / "firmware" / "model"
needs_artifact = pytest.mark.skipif(not (ARTIFACT / "model.tflite").is_file(), reason="no committed model in firmware/model")
KB16 = 16 * 1024


# ---------------------------------------------------------------------------------------------
# Training and export on the small data set


@pytest.fixture(scope="module")
def small_ds(tmp_path_factory):
    from seismote.model_export.dataset import DatasetConfig, build_dataset

    cache = ROOT / "build" / "test-cache"  # the small set is deterministic: reuse it between runs
    return build_dataset(DatasetConfig(seed=0, small=True), cache)


TINY = dict(convs=((4, 7, 2), (8, 5, 4), (8, 3, 4, "sep")), head="gap", dense=0, dropout=0.0)


@pytest.fixture(scope="module")
def trained(small_ds, tmp_path_factory):
    from seismote.model_export.model import ModelSpec
    from seismote.model_export.train import TrainConfig, train

    out = tmp_path_factory.mktemp("train")
    # node_hours: a little of the node-realistic negatives (trigger windows of continuous recordings)
    cfg = TrainConfig(seed=3, epochs=2, batch_size=64, spec=ModelSpec(**TINY), node_hours=0.03)
    res = train(small_ds, cfg, out)
    return out, cfg, res


@pytest.fixture(scope="module")
def exported(small_ds, trained, tmp_path_factory):
    from seismote.model_export.export import export

    out = tmp_path_factory.mktemp("artifact")
    meta = export(small_ds, trained[0], out)
    return out, meta


def test_training_is_reproducible(small_ds, trained, tmp_path, monkeypatch):
    import keras

    from seismote.model_export import train as train_mod

    out, cfg, res = trained
    InLine = benchmark("train_speed").InLine  # an executor that runs each job when it is submitted
    # again, with one batch per call into the graph instead of STEPS_PER_EXECUTION, the inputs made
    # in line and time along the height of the network's 2-D view (the exported layout): speed
    # settings only
    assert train_mod.STEPS_PER_EXECUTION > 1 and train_mod.TIME_ON == "width"
    monkeypatch.setattr(train_mod, "STEPS_PER_EXECUTION", 1)
    monkeypatch.setattr(train_mod, "ThreadPoolExecutor", InLine)
    monkeypatch.setattr(train_mod, "TIME_ON", "height")
    again = train_mod.train(small_ds, cfg, tmp_path)
    assert [h["loss"] for h in again["history"]] == [h["loss"] for h in res["history"]]
    w1 = keras.models.load_model(out / "model.keras").get_weights()
    w2 = keras.models.load_model(tmp_path / "model.keras").get_weights()
    assert w1[0].shape == (1, 7, 3, 4) and w2[0].shape == (7, 1, 3, 4)  # the first kernel, in each layout
    assert all(np.array_equal(a, b.reshape(a.shape)) for a, b in zip(w1, w2))
    assert res["data_fingerprint"] == small_ds.fingerprint
    assert sum(res["node_trigger_windows"]["train"].values()) > 0
    assert res["restarts"] == 0


def test_training_that_collapses_to_a_constant_score_restarts_then_fails_clearly(small_ds, tmp_path):
    from seismote.model_export.model import ModelSpec
    from seismote.model_export.train import COLLAPSE_EPOCHS, MAX_RESTARTS, TrainConfig, train

    # a learning rate far too high kills every ReLU in the first steps: the score is then constant,
    # and each run stops at the first epoch it is seen (the first run's after one epoch), not at the last checked
    cfg = TrainConfig(seed=3, epochs=4, batch_size=64, spec=ModelSpec(**TINY), node_hours=0.0, learning_rate=3000.0)
    with pytest.raises(RuntimeError, match="collapsed to a constant output %d times" % (MAX_RESTARTS + 1)) as err:
        train(small_ds, cfg, tmp_path)
    epochs = [int(e) for e in re.search(r"after epoch ([\d, ]+)\)", str(err.value)).group(1).split(", ")]
    assert len(epochs) == MAX_RESTARTS + 1 and epochs[0] == 1 and max(epochs) <= COLLAPSE_EPOCHS
    assert not (tmp_path / "model.keras").exists()


class NoPool:
    """A process pool that may not be started: what a call that must read its cache gets."""

    def __init__(self, *a, **k):
        raise AssertionError("the cached windows were built again")


def test_node_windows_come_from_the_pipeline_and_are_cached_by_the_code_that_makes_them(tmp_path, monkeypatch):
    import concurrent.futures

    from seismote.model_export import dataset, node_windows

    args = dict(seed=11, hours=0.05, keep=2, max_runs=20, quakes_per_hour=40.0, cache_dir=tmp_path)
    x, y, kind, age = node_windows.trigger_windows(**args)
    assert x.dtype == np.int8 and x.shape[1:] == (200, 3) and len(x) == len(y) == len(kind) == len(age)
    assert set(np.unique(y)) == {0.0, 1.0}  # the noise of every scenario and the quakes inserted into them
    assert np.array_equal(y == 1, kind == "node:quake")
    assert {str(k)[len("node:"):] for k in kind[y == 0]} <= set(dataset.SCENARIOS)
    assert np.all(age >= 0) and np.all(np.abs(x).max(axis=(1, 2)) <= 127)
    assert len(list(tmp_path.glob("node-windows-*.npz"))) == 1
    # training's and validation's sets in one pool (no cache): each as it comes alone
    both = node_windows.trigger_window_sets([(11, 0.05), (13, 0.02)], keep=2, max_runs=20, quakes_per_hour=40.0)
    alone = node_windows.trigger_windows(**dict(args, seed=13, hours=0.02, cache_dir=None))
    assert len(alone[0]) and all(np.array_equal(a, b) for a, b in zip(both[0], (x, y, kind, age)))
    assert all(np.array_equal(a, b) for a, b in zip(both[1], alone))

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", NoPool)  # a second call must read the cache
    again = node_windows.trigger_windows(**args)
    assert all(np.array_equal(a, b) for a, b in zip((x, y, kind, age), again))
    with pytest.raises(AssertionError, match="built again"):
        node_windows.trigger_windows(**dict(args, seed=12))


def test_real_node_windows_are_the_nodes_windows_on_real_p_waves(tmp_path, monkeypatch):
    """TrainConfig.node_real_passes: real records of the train and val events replayed through the node
    (node_windows.real_trigger_windows); a window is a quake's from 0.1 s after a refined P, after a
    trigger set off from P - 0.5 s on, and noise well before P or on a noise record."""
    import concurrent.futures

    from seismote.model_export import dataset, node_windows, real
    from seismote.model_export.synth_quake import synth_quake

    if not (real.OPENEEW_ROOT / "records.csv").exists():
        pytest.skip("needs the OpenEEW records")
    # a record of our own with a known P: a quake on a quiet ADXL355, and a knock on the node 40 s before it
    rng = np.random.default_rng(5)
    q, qm = synth_quake(5.0, 20.0, 10.0, rate=50.0, duration_s=90.0, p_at_s=60.0, rng=rng)
    q[20 * 50:20 * 50 + 3] += 50.0
    r = dict(data=q, p_index=qm["p_index"], split="train", event_id="e", label="earthquake_visible", positive=True,
             refined=True, mag=5.0, epi_km=20.0, index=0, source="e/0")
    cfg = dataset.DatasetConfig(small=True, workers=1)
    x, y, kinds, age, splits = node_windows._real_trigger_job((cfg, [r], 1, 1, 30))
    starts = np.flatnonzero(np.diff(age) < 0) + 1  # where each later trigger's windows start (at P, at S)
    assert len(starts) >= 1 and x.dtype == np.int8 and x.shape[1:] == (200, 3) and set(splits) == {"train"}
    k = starts[0]
    assert k == 30 and np.all(y[:k] == 0) and np.all(y[k:] == 1)  # the knock's, then the quake's
    assert list(kinds) == ["node:real-noise"] * k + ["node:real-quake"] * (len(y) - k)
    # the same as a noise record: all noise
    _, y0, k0, _, _ = node_windows._real_trigger_job((cfg, [dict(r, positive=False, label=real.NOISE_LABEL)], 1, 1, 30))
    assert len(y0) == len(y) and np.all(y0 == 0) and set(k0) == {"node:real-noise"}
    # the OpenEEW records of the small data set, cached
    args = dict(data_config=dataclasses.asdict(cfg), passes=2, keep=2, max_runs=20, workers=1, cache_dir=tmp_path)
    sets = node_windows.real_trigger_windows(**args)
    xt, yt, kt, at = sets["train"]
    assert len(xt) == len(yt) == len(kt) == len(at) and {0.0, 1.0} == set(np.unique(yt))
    assert np.array_equal(yt == 1, kt == "node:real-quake")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", NoPool)  # a second call must read the cache
    again = node_windows.real_trigger_windows(**args)
    assert all(np.array_equal(a, b) for a, b in zip(sets["train"], again["train"]))


def test_training_takes_the_real_node_windows(small_ds, tmp_path):
    from seismote.model_export import node_windows
    from seismote.model_export.model import ModelSpec
    from seismote.model_export.train import TrainConfig, train

    if not (real_root := Path(small_ds.config["real_root"])).joinpath("records.csv").exists():
        pytest.skip("needs the OpenEEW records %s" % real_root)
    cfg = TrainConfig(seed=3, epochs=1, batch_size=64, spec=ModelSpec(**TINY), node_hours=0.0, node_real_passes=1,
                      node_keep=4, node_max_runs=20)
    res = train(small_ds, cfg, tmp_path / "train", cache_dir=tmp_path)
    sets = node_windows.real_trigger_windows(small_ds.config, 1, 4, 20, cache_dir=tmp_path)  # the cached ones
    for split in ("train", "val"):
        x, y, kind, _ = sets[split]
        got = res["node_trigger_windows"].get(split, {})
        assert got == {str(k): int(c) for k, c in zip(*np.unique(kind, return_counts=True))}, split
        assert res["n_" + split] == int((small_ds.split == split).sum()) + len(y)
    assert got.get("node:real-quake", 0) + res["node_trigger_windows"]["train"].get("node:real-quake", 0) > 0


def test_node_windows_with_look_back_add_the_windows_scored_at_each_onset():
    """TrainConfig.node_lookback: the windows a looking-back node scores at each onset (ending there and at
    the strides before: ages -0.2, -0.1, 0 s) join the others, which stay as they were (3 more runs each)."""
    from seismote.model_export import node_windows

    args = dict(seed=11, hours=0.05, keep=1, max_runs=20, quakes_per_hour=40.0)
    x0, y0, k0, a0 = node_windows.trigger_windows(**args)
    x3, y3, k3, a3 = node_windows.trigger_windows(**dict(args, max_runs=23), lookback=3)  # the look-back ones count as runs
    later = a3 > 1e-6
    assert all(np.array_equal(u, v) for u, v in zip((x3[later], y3[later], k3[later], a3[later]), (x0, y0, k0, a0)))
    assert set(np.round(a3[~later].astype(float), 6)) == {-0.2, -0.1, 0.0}
    assert np.sum(y3[~later] == 0) > 0  # before the trigger of an activity: a negative the model now sees


def test_export_contract(exported):
    from seismote.model_export import tflm
    from seismote.model_export.model import ALLOWED_OPS, ModelSpec, macs

    out, meta = exported
    blob = (out / "model.tflite").read_bytes()
    ops = tflm.graph_ops(blob)
    assert set(ops) <= ALLOWED_OPS, ops
    assert "CONV_2D" in ops and "LOGISTIC" not in ops  # the node reads the logit (int8 LOGISTIC saturates)
    io = tflm.io_quantization(blob)
    assert io["input"]["dtype"] == "int8" and io["input"]["zero_point"] == 0 and abs(io["input"]["scale"] * 127 - 1) < 1e-6
    assert io["output"]["dtype"] == "int8" and io["output"]["scale"] == meta["output"]["scale"] > 0
    assert meta["output"]["activation"] == "logit"
    # the thresholds in model.json are the probabilities of the int8 logits the node compares with
    o, d = meta["output"], meta["decision"]
    assert abs(d["threshold"] - 1 / (1 + np.exp(-(d["on_q"] - o["zero_point"]) * o["scale"]))) < 1e-9
    # MACs counted from the graph agree with the architecture.
    assert meta["macs"] == tflm.count_macs(blob)["macs"] == macs(ModelSpec(**TINY))
    for key in ("input", "decision", "arena_bytes", "macs", "training", "metrics", "golden"):
        assert key in meta
    assert meta["input"]["rate_hz"] == 50 and meta["input"]["window"] == 200 and meta["input"]["channels"] == 3
    assert meta["training"]["data_fingerprint"]
    d = meta["decision"]
    assert -128 <= d["off_q"] <= d["on_q"] <= 127 and d["confirm_n"] >= 1 and d["stride_samples"] >= 1
    assert "OpenEEW / Grillo" in (out / "ATTRIBUTION.md").read_text()


def test_arena_is_measured_in_tflm(exported):
    from seismote.model_export import tflm

    out, meta = exported
    need = meta["arena_measured_bytes"]
    assert 0 < need <= meta["arena_bytes"] <= KB16
    assert meta["arena_recorded"]["total"] <= need
    path = out / "model.tflite"
    assert tflm._try_arena(path, need)[0]
    assert not tflm._try_arena(path, need - 64)[0]  # the search found the edge (16-byte steps)


def test_golden_vectors_bit_identical_tflm_litert(exported):
    from seismote.model_export import tflm
    from seismote.model_export.export import read_golden_bin

    out, meta = exported
    blob = (out / "model.tflite").read_bytes()
    z = np.load(out / "golden.npz")
    xb, yb = read_golden_bin(out / "golden.bin")
    assert np.array_equal(z["x"], xb) and np.array_equal(z["y_q"], yb)
    assert len(yb) >= 6 and len(set(yb.tolist())) > 1
    assert np.array_equal(tflm.run_tflm(blob, xb), yb)
    assert np.array_equal(tflm.run_litert(blob, xb), yb)
    # ...and through the firmware's Detector over the microlite API, as the board runs it.
    det = fwdetector.load(tflm.microlite, meta, str(out / "model.tflite"))
    assert fwdetector.selftest(det, str(out / "golden.bin")) == (len(yb), 0)


def test_export_calibrates_a_rule_per_sensor_when_asked(small_ds, trained, tmp_path):
    """--per-sensor: a rule for each sensor through its own node pipeline; `decision` stays the ADXL355's."""
    from seismote.model_export.evaluate import SENSORS
    from seismote.model_export.export import export

    meta = export(small_ds, trained[0], tmp_path / "a", probe=False, cal_hours=0.02, per_sensor=True)
    by = meta["decision_by_sensor"]
    assert list(by) == list(SENSORS) and "rule" in meta["decision"] and "rule" not in by["mpu6050"]
    assert {k: v for k, v in meta["decision"].items() if k != "rule"} == by[SENSORS[0]]
    cal = meta["training"]["calibration"]
    assert cal["records"]["sensor"] == SENSORS[0] and cal["records"]["real_quakes"] > 0  # the real val records: ADXL355 ones
    assert {s: r["sensor"] for s, r in cal["records_by_sensor"].items()} == {s: s for s in SENSORS[1:]}
    assert all(r["real_quakes"] == 0 for r in cal["records_by_sensor"].values())
    assert json.loads((trained[0] / "calibration.json").read_text()).keys() == set(SENSORS)


def test_model_calibrate_chooses_an_exported_models_rule_again(small_ds, exported, tmp_path):
    """`seismote model calibrate`: the export's calibration on an artifact already there (here with look-back
    windows allowed): a new decision rule in model.json, its old metrics cleared, every rule tried in the table;
    a missing model, a look-back beyond the traces and another data set are refused by name. The data set is
    known by its content: a fingerprint changed by an edit of the data code alone is not another data set."""
    from seismote.host_tools.cli import cli
    from seismote.model_export import tflm

    data, model, table = tmp_path / "data", tmp_path / "model", tmp_path / "cal.json"
    shutil.copytree(ROOT / "build" / "test-cache", data)
    (data / "config.json").write_text(json.dumps({"seed": 0, "small": True}))
    shutil.copytree(exported[0], model)
    meta = json.loads((model / "model.json").read_text())
    assert meta["training"]["data_sha256"] == small_ds.content_sha256()
    edited = dict(meta["training"], data_fingerprint="f" * 64)
    (model / "model.json").write_text(json.dumps(dict(meta, metrics={"old": 1}, training=edited)))
    args = ["model", "calibrate", "--data", str(data), "--model", str(model), "--cal-hours", "0.02", "--table", str(table)]
    res = cli_runner().invoke(cli, args + ["--max-lookback", "3"])
    assert res.exit_code == 0, res.output + res.stderr
    got = json.loads((model / "model.json").read_text())
    chosen = got["training"]["calibration"]["records"]["chosen"]
    assert got["metrics"] == {} and 0 <= got["decision"]["lookback"] <= 3
    assert {k: got["decision"][k] for k in ("on_q", "off_q", "confirm_n", "max_runs", "lookback")} == {
        k: chosen[k] for k in ("on_q", "off_q", "confirm_n", "max_runs", "lookback")}
    assert {r["lookback"] for r in json.loads(table.read_text())["table"]} == {0, 1, 2, 3}
    assert fwdetector.load(tflm.microlite, got, str(model / "model.tflite")).lookback == got["decision"]["lookback"]
    res = cli_runner().invoke(cli, args[:4] + ["--model", str(tmp_path / "none")])
    assert res.exit_code == 2 and "no model in" in res.stderr
    res = cli_runner().invoke(cli, args + ["--max-lookback", "4"])
    assert res.exit_code == 2 and "--max-lookback" in res.stderr
    (model / "model.json").write_text(json.dumps(dict(meta, training=dict(meta["training"], data_sha256="0" * 64))))
    res = cli_runner().invoke(cli, args)
    assert res.exit_code == 2 and "trained on a data set of content 0000000000000000" in res.stderr
    older = {k: v for k, v in meta["training"].items() if k != "data_sha256"}  # a model from before data_sha256
    (model / "model.json").write_text(json.dumps(dict(meta, training=dict(older, data_fingerprint="0" * 64))))
    res = cli_runner().invoke(cli, args)
    assert res.exit_code == 2 and "trained on a data set of fingerprint 0000000000000000" in res.stderr


def test_a_failed_export_leaves_the_artifact_already_there_whole(small_ds, trained, exported, tmp_path, monkeypatch):
    from seismote.model_export import tflm
    from seismote.model_export.export import ExportError, export

    out = tmp_path / "model"
    shutil.copytree(exported[0], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def disagree(model, x, expected=None):
        return {"n": len(x), "tflm_vs_litert_identical": False, "max_abs_diff": 1}

    monkeypatch.setattr(tflm, "cross_check", disagree)
    with pytest.raises(ExportError, match="TFLM and LiteRT disagree"):
        export(small_ds, trained[0], out, probe=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no half-made artifact left beside it


def test_dense_head_exports_as_convolutions_with_the_same_function():
    """TFLM's and LiteRT's int8 FULLY_CONNECTED differ by 1 LSB on ~1% of inputs; the exported head is CONV_2D."""
    from seismote.model_export import tflm
    from seismote.model_export.export import convert
    from seismote.model_export.model import ModelSpec, build_model, to_input, transfer_weights

    spec = ModelSpec(convs=((4, 7, 4), (8, 5, 5, "sep")), head="flatten", dense=6, dropout=0.1)
    src = build_model(spec, batch=1, logit=True)
    rng = np.random.default_rng(0)
    src.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in src.get_weights()])
    dst = build_model(spec, batch=1, logit=True, conv_head=True)
    transfer_weights(src, dst)
    x = rng.integers(-127, 128, (64, 200, 3)).astype(np.int8)
    assert np.allclose(src.predict(to_input(x), verbose=0), dst.predict(to_input(x), verbose=0), atol=1e-5)
    blob = convert(dst, x[:32])
    ops = tflm.graph_ops(blob)
    assert "FULLY_CONNECTED" not in ops and ops[-3:] == ["CONV_2D", "CONV_2D", "RESHAPE"]
    assert tflm.cross_check(blob, x)["tflm_vs_litert_identical"]


def test_op_allow_list_rejects_other_ops(tmp_path):
    """A graph with an op outside the list (here SOFTMAX) fails the export check."""
    import keras
    import tensorflow as tf

    from seismote.model_export.export import ExportError, check_graph

    inp = keras.Input((200, 3), batch_size=1)
    x = keras.layers.Flatten()(inp)
    out = keras.layers.Dense(2, activation="softmax")(x)
    conv = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, out))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([np.random.default_rng(i).uniform(-1, 1, (1, 200, 3)).astype(np.float32)] for i in range(4))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    with pytest.raises(ExportError, match="SOFTMAX"):
        check_graph(conv.convert())


# ---------------------------------------------------------------------------------------------
# The committed artifact


@needs_artifact
def test_committed_artifact_budgets():
    from seismote.model_export import tflm
    from seismote.model_export.export import read_golden_bin
    from seismote.model_export.model import ALLOWED_OPS

    blob = (ARTIFACT / "model.tflite").read_bytes()
    meta = json.loads((ARTIFACT / "model.json").read_text())
    assert len(blob) == meta["model_bytes"] <= KB16
    assert meta["model_crc32"] == zlib.crc32(blob)
    macs = tflm.count_macs(blob)["macs"]
    assert macs == meta["macs"] <= 100_000
    assert set(tflm.graph_ops(blob)) <= ALLOWED_OPS
    assert meta["arena_measured_bytes"] <= meta["arena_bytes"] <= KB16
    path = ARTIFACT / "model.tflite"
    assert tflm._try_arena(path, meta["arena_bytes"])[0]  # runs in the arena the node allocates
    assert tflm._try_arena(path, meta["arena_measured_bytes"])[0]
    xg, yg = read_golden_bin(ARTIFACT / "golden.bin")
    check = tflm.cross_check(blob, xg, yg)
    assert check["tflm_vs_litert_identical"] and check["tflm_vs_golden_identical"], check
    assert meta["golden"]["cross_check_test_windows"]["tflm_vs_litert_identical"]
    assert "FULLY_CONNECTED" not in tflm.graph_ops(blob)
    z = np.load(ARTIFACT / "golden.npz")
    assert np.array_equal(z["x"], xg) and np.array_equal(z["y_q"], yg)
    assert meta["training"]["data_fingerprint"] and meta["metrics"], "model.json lacks the training fingerprint or metrics"
    att = (ARTIFACT / "ATTRIBUTION.md").read_text()
    assert "OpenEEW / Grillo" in att and "CC BY-SA 4.0" in att


# ---------------------------------------------------------------------------------------------
# firmware/detector.py with a scripted backend


class ScriptedInterp:
    """microlite.interpreter stand-in: the output is the next scripted score (or a function of the input)."""

    def __init__(self, model, arena, input_cb, output_cb, scores, fail=False):
        self.inp = array("b", bytes(600))
        self.out = array("b", [-128])
        self.cb = (input_cb, output_cb)
        self.scores = scores
        self.fail = fail
        self.seen = []

    class T:
        def __init__(self, a):
            self.a = a

        def setValue(self, i, v):  # noqa: N802
            self.a[i] = v
            return self

        def getValue(self, i):  # noqa: N802
            return self.a[i]

    def getInputTensor(self, i):  # noqa: N802
        return self.T(self.inp)

    def getOutputTensor(self, i):  # noqa: N802
        return self.T(self.out)

    def invoke(self):
        self.cb[0](self)
        if self.fail:
            return 1
        self.seen.append(bytes(self.inp))
        s = self.scores
        self.out[0] = s(self.inp) if callable(s) else s.pop(0)
        self.cb[1](self)
        return 0


def backend(scores, fail=False):
    class B:
        @staticmethod
        def interpreter(model, arena, icb, ocb):
            B.interp = ScriptedInterp(model, arena, icb, ocb, scores, fail)
            return B.interp

    return B


def test_detector_hysteresis_confirms_after_n_consecutive():
    det = fwdetector.Detector(b"m", 4096, backend([]), on_q=50, off_q=0, confirm_n=3)
    assert [det.update(q) for q in (60, 70, 20, 80)] == [False, False, False, True]  # 20: between off and on holds
    assert det.confirmed and det.peak_q == 80
    assert not det.update(100)  # True only once per event
    det.reset()
    assert [det.update(q) for q in (60, 70, -10, 60, 60)] == [False, False, False, False, False]  # -10 < off resets
    assert det.update(60) and det.run == 3


def test_detector_scores_and_errors():
    det = fwdetector.Detector(b"m", 4096, backend([5, -128]), on_q=0, off_q=-20, confirm_n=1)
    w = array("b", [i % 100 - 50 for i in range(600)])
    assert det.infer(w) == 5 and det.infer() == -128
    assert backend.__name__  # the interp saw the window through setValue
    # int8 logit -> probability: logit = (q - zero) * scale
    assert fwdetector.score_float(10, 0.1, 10) == 0.5 and det.score(0) == 0.5 and det.score(127) > 0.999
    assert fwdetector.score_q(0.5, 0.1, 10) == 10 and fwdetector.score_q(0.75, 0.1, 10) == 21
    assert fwdetector.score_q(1.2, 0.1, 10) == 127 and fwdetector.score_q(0.0, 0.1, 10) == -128
    with pytest.raises(ValueError):
        fwdetector.Detector(b"m", 4096, backend([]), on_q=0, off_q=10)
    with pytest.raises(ValueError):
        fwdetector.Detector(b"m", 4096, backend([]), on_q=0, off_q=0, confirm_n=0)
    with pytest.raises(ValueError, match="lookback"):
        fwdetector.Detector(b"m", 4096, backend([]), on_q=0, off_q=0, lookback=-1)
    # the look-back windows must fit in the pipeline's ring (8 s: the 4 s window and 40 strides of 0.1 s)
    far = fwdetector.Detector(b"m", 4096, backend([]), on_q=0, off_q=0, stride=5, lookback=42)
    with pytest.raises(ValueError, match="look-back of 42 windows exceeds the 400-sample ring"):
        fwpipeline.Pipeline(fwconfig.default(), 256000, 100, detector=far)
    fwpipeline.Pipeline(fwconfig.default(), 256000, 100, detector=fwdetector.Detector(b"m", 4096, backend([]), 0, 0, stride=5, lookback=41))
    bad = fwdetector.Detector(b"m", 4096, backend([], fail=True), on_q=0, off_q=0)
    with pytest.raises(fwdetector.DetectorError):
        bad.infer()


def _quake_counts(rate=100, seconds=60, t0=40.0, amp=20000, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(seconds * rate) / rate
    q = np.where(t >= t0, amp * np.exp(-np.maximum(t - t0, 0) / 5) * np.sin(2 * np.pi * 3 * t), 0.0)
    x = rng.normal(0, 30, (len(t), 3)) + q[:, None] * np.array([1.0, 0.7, 0.5])
    x[:, 0] += 256000  # gravity on a 2 g ADXL355
    return np.rint(x).astype(int).tolist()


def test_pipeline_runs_the_detector_only_while_triggered():
    seen = []

    def score(inp):
        seen.append(max(abs(v) for v in inp))
        return 100

    det = fwdetector.Detector(b"m", 4096, backend(score), on_q=50, off_q=0, confirm_n=2, stride=5)
    p = fwpipeline.Pipeline(fwconfig.default(), 256000, 100, detector=det)
    events = []
    for x, y, z in _quake_counts():
        s = p.push(x, y, z)
        if s:
            events.append((s, p.n, p.event()))
    kinds = [e[0] for e in events]
    assert kinds[:2] == [fwpipeline.TRIGGER, fwpipeline.DETECTION], kinds
    onset_n, det_n = events[0][1], events[1][1]
    assert det_n == onset_n + 2 * 5  # two inferences, one every 5 samples, then confirmed
    assert det.inferences == 2  # nothing before the trigger, nothing after the confirmation
    assert all(v == 127 for v in seen)  # the window reached the model scaled to int8 by its peak
    assert events[0][2]["score"] > 1  # at the trigger: the STA/LTA ratio (no inference yet)
    assert events[1][2]["score"] == det.score(100) > 0.99  # detection: the model's score, as a probability


def test_pipeline_model_needs_min_pga_and_a_confirmation():
    det = fwdetector.Detector(b"m", 4096, backend(lambda inp: -100), on_q=50, off_q=0, confirm_n=2, stride=5)
    p = fwpipeline.Pipeline(fwconfig.default(), 256000, 100, detector=det)
    kinds = [s for s in (p.push(*c) for c in _quake_counts()) if s]
    assert fwpipeline.DETECTION not in kinds and kinds[0] == fwpipeline.TRIGGER  # the model says no
    cfg = fwconfig.validate({"node_id": "t", "detector": {"min_pga_gal": 500}})
    det = fwdetector.Detector(b"m", 4096, backend(lambda inp: 100), on_q=50, off_q=0, confirm_n=2, stride=5)
    p = fwpipeline.Pipeline(cfg, 256000, 100, detector=det)
    kinds = [s for s in (p.push(*c) for c in _quake_counts()) if s]
    assert fwpipeline.DETECTION not in kinds  # the model says yes, the PGA rule no


VM_CODE = r"""
import gc, micropython
from array import array
from seismote.firmware import config, pipeline, detector

class T:
    def __init__(self, a):
        self.a = a
    def setValue(self, i, v):
        self.a[i] = v
        return self
    def getValue(self, i):
        return self.a[i]

class Interp:
    def __init__(self, model, arena, icb, ocb):
        self.inp = array('b', bytes(600))
        self.out = array('b', [-128])
        self.icb = icb
        self.ocb = ocb
    def getInputTensor(self, i):
        return T(self.inp)
    def getOutputTensor(self, i):
        return T(self.out)
    def invoke(self):
        self.icb(self)
        self.out[0] = 100 if max(self.inp) == 127 or min(self.inp) == -127 else -128
        self.ocb(self)
        return 0

class Backend:
    interpreter = Interp

det = detector.Detector(b'm', 4096, Backend, 50, 0, 2, 5)
d = det
assert [d.update(q) for q in (60, 20, 70)] == [False, False, True]
d.reset()
p = pipeline.Pipeline(config.default(), 256000, 100, detector=det)
rng = 12345
def noise():
    global rng
    rng = (rng * 1103515245 + 12345) & 0x3FFFFFFF
    return (rng >> 10) % 61 - 30
xs, ys, zs = array('i', [0] * 6000), array('i', [0] * 6000), array('i', [0] * 6000)
for i in range(6000):
    xs[i], ys[i], zs[i] = noise(), noise(), 256000 + noise()
    if i >= 4000:
        k = (i - 4000) % 33
        amp = 20000 if k < 16 else -20000
        xs[i] += amp
        ys[i] += amp // 2
events = []
locked_ok = 0
for i in range(6000):
    x, y, z = xs[i], ys[i], zs[i]
    if not p.in_event and i < 4000:
        micropython.heap_lock()
        try:
            s = p.push(x, y, z)
            locked_ok += 1
        finally:
            micropython.heap_unlock()
    else:
        s = p.push(x, y, z)
    if s:
        events.append((s, p.n))
print('EVENTS', events[:3], 'LOCKED', locked_ok, 'INFER', det.inferences)
# with 3 look-back windows: scored at the onset, they confirm it; DETECTION on the next sample
det3 = detector.Detector(b'm', 4096, Backend, 50, 0, 2, 5, 0, 200, 1.0, 0, 3)
p3 = pipeline.Pipeline(config.default(), 256000, 100, detector=det3)
back = []
for i in range(6000):
    s = p3.push(xs[i], ys[i], zs[i])
    if s:
        back.append((s, p3.n, det3.inferences))
print('LOOKBACK', back[:2])
"""


@pytest.mark.micropython
def test_detector_and_hook_on_micropython():
    from seismote.host_tools import mpvm

    try:
        proc = mpvm.run(VM_CODE, heap=4 << 20, timeout=300)
    except mpvm.VMUnavailable as e:
        pytest.fail(str(e))
    out = proc.stdout + proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("EVENTS")]
    assert line, out[-3000:]
    assert "LOCKED 4000" in line[0], line  # every sample before the event ran with the heap locked
    assert "(1, " in line[0] and "(2, " in line[0], line  # a trigger, then a model-confirmed detection
    assert "INFER 2" in line[0], line
    back = [ln for ln in proc.stdout.splitlines() if ln.startswith("LOOKBACK")]
    assert back, out[-3000:]
    (trig, n, inf0), (det, n1, inf1) = eval(back[0][len("LOOKBACK "):])
    assert (trig, det, n1, inf0, inf1) == (1, 2, n + 1, 3, 3)  # 3 inferences at the onset, confirmed on the next sample


# ---------------------------------------------------------------------------------------------
# Replay with the model


@needs_artifact
def test_replay_with_model_detects_pinotepa():
    from seismote.host_tools.cli import DEMO_RECORD, cli

    files = [str(p) for p in DEMO_RECORD]
    res = cli_runner().invoke(cli, ["replay", *files, "--model"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    ev = [json.loads(line) for line in res.stdout.splitlines()]
    det = [e for e in ev if e["event"] == "detection"]
    assert len(det) >= 1, ev
    # 173 km from an Mw 7.2: the node triggers on the weak P, 0.8 s after it, and the model confirms
    # before the S wave, which comes about 20 s after P (the bundled model: 17.7 s after the
    # trigger; an earlier one 3.4 s, another ~56 s, on the S coda).
    trig = [e for e in ev if e["event"] == "trigger"]
    assert trig and trig[0]["t"] <= det[0]["t"] <= trig[0]["t"] + 19
    assert 0.0 <= det[0]["score"] <= 1.0  # the model's score
    meta = json.loads((ARTIFACT / "model.json").read_text())
    assert det[0]["score"] >= meta["decision"]["threshold"]


@needs_artifact
def test_replay_runs_the_model_unless_told_not_to():
    from seismote.host_tools.cli import DEMO_RECORD, cli

    files = [str(p) for p in DEMO_RECORD]
    rule = cli_runner().invoke(cli, ["replay", *files, "--no-model"], catch_exceptions=False)
    dets = [json.loads(line) for line in rule.stdout.splitlines() if '"detection"' in line]
    assert dets and dets[0]["score"] > 1.0  # the rule reports the peak STA/LTA ratio
    model = cli_runner().invoke(cli, ["replay", *files, "--ends"], catch_exceptions=False)
    assert model.exit_code == 0, model.stderr
    scored = [json.loads(line) for line in model.stdout.splitlines() if '"event": "trigger"' not in line]
    # with the model, every event that ran it reports the model's score in 0..1
    assert scored and all(0.0 <= e["score"] <= 1.0 for e in scored), scored


@needs_artifact
def test_node_boots_with_the_model_where_the_firmware_has_tflm(tmp_path):
    import shutil

    from seismote.firmware import eventlog
    from seismote.firmware.board import HostBoard
    from seismote.firmware.chipmodels.adxl355 import ADXL355Model
    from seismote.firmware.node import Node
    from seismote.model_export.tflm import TflmError, microlite

    def boot(model_path, backend):
        chip = ADXL355Model()
        board = HostBoard(chip.spi, chip.cs, data_dir=str(tmp_path / ("data%d" % len(list(tmp_path.iterdir())))), detector_backend=backend)
        node = Node(board, {"node_id": "t1", "detector": {"model": str(model_path)}})
        node.boot()
        return node, [r.json() for r in node.log.records() if r.type == eventlog.T_STATUS]

    node, st = boot(ARTIFACT / "model.tflite", microlite)
    assert st[-1]["kind"] == "boot" and st[-1]["detector"] == "model"
    assert node.pipe.detector is node.detector and node.detector.confirm_n >= 1
    assert st[-1]["golden_vectors"] == 0  # no <stem>.golden.bin beside it: the kernels went unchecked
    # as `seismote flash` lays the artifact out on the node: the golden vectors are checked at boot
    laid = tmp_path / "laid"
    laid.mkdir()
    for src, dst in (("model.tflite", "model.tflite"), ("model.json", "model.json"), ("golden.bin", "model.golden.bin")):
        shutil.copy(ARTIFACT / src, laid / dst)
    n_golden = json.loads((ARTIFACT / "model.json").read_text())["golden"]["n"]
    node, st = boot(laid / "model.tflite", microlite)
    assert st[-1]["detector"] == "model" and st[-1]["golden_vectors"] == n_golden >= 6
    assert node.detector.inferences == 0 and node.detector.run == 0  # the check left no trace
    # an image whose kernels compute other outputs (e.g. different rounding: one int8 step up on
    # some windows): its scores do not mean what the calibrated thresholds assume, so the rule runs

    class _Shifted:
        def __init__(self, it):
            self.it = it

        def getOutputTensor(self, i):  # noqa: N802
            v = self.it.getOutputTensor(i).getValue(0)
            return type("T", (), {"getValue": lambda _self, j: v + 1 if 0 <= v < 127 else v})()

    class OtherKernels:
        @staticmethod
        def interpreter(model, arena, inp, out):
            return microlite.interpreter(model, arena, inp, lambda it: out(_Shifted(it)))

    node, st = boot(laid / "model.tflite", OtherKernels())
    assert st[0]["kind"] == "detector_unavailable" and "golden vectors" in st[0]["error"], st
    assert st[1]["detector"] == "rule" and node.pipe.detector is None
    # no TFLite Micro in the firmware: the rule, quietly
    node, st = boot(ARTIFACT / "model.tflite", None)
    assert st[-1]["detector"] == "rule" and node.pipe.detector is None
    # a model whose settings are unreadable: logged, and the node runs on with the rule
    bad = tmp_path / "m"
    bad.mkdir()
    shutil.copy(ARTIFACT / "model.tflite", bad / "model.tflite")
    (bad / "model.json").write_text("{truncated")
    node, st = boot(bad / "model.tflite", microlite)
    assert [s["kind"] for s in st] == ["detector_unavailable", "boot"] and "model.tflite" in st[0]["model"]
    assert st[1]["detector"] == "rule" and node.pipe.detector is None
    # one flipped byte on flash (same size): TFLM would parse it and crash or score wrongly (a
    # weight byte changes 1-8 of the 10 golden outputs), so it never reaches TFLM
    shutil.copy(ARTIFACT / "model.json", bad / "model.json")
    blob = bytearray((ARTIFACT / "model.tflite").read_bytes())
    blob[1000] ^= 0x01
    (bad / "model.tflite").write_bytes(blob)
    node, st = boot(bad / "model.tflite", microlite)
    assert st[0]["kind"] == "detector_unavailable" and "CRC-32" in st[0]["error"], st
    assert st[1]["detector"] == "rule" and node.pipe.detector is None
    # a model file longer than model.json says (an old upload not truncated) is refused too
    (bad / "model.tflite").write_bytes((ARTIFACT / "model.tflite").read_bytes() + b"\0")
    node, st = boot(bad / "model.tflite", microlite)
    assert "more than" in st[0]["error"] and node.pipe.detector is None
    # the host's TFLM shim names a malformed flatbuffer instead of leaking its reader's errors
    blob[1000] ^= 0x01
    blob[40] ^= 0xFF
    with pytest.raises(TflmError, match="malformed model"):
        microlite.interpreter(bytes(blob), 16 * 1024, None, None)


@needs_artifact
def test_each_sensor_runs_its_own_decision_rule(tmp_path):
    """model.json's decision_by_sensor: the node, the replay and the evaluation each run the rule of
    the node's sensor, and model.json's `decision` where the model has none for it."""
    import shutil

    from seismote.firmware.board import HostBoard
    from seismote.firmware.chipmodels.mpu6050 import MPU6050Model
    from seismote.firmware.node import Node
    from seismote.model_export.node_windows import node_model
    from seismote.model_export.tflm import microlite

    shutil.copy(ARTIFACT / "model.tflite", tmp_path / "model.tflite")
    meta = json.loads((ARTIFACT / "model.json").read_text())
    base = dict(meta["decision"], on_q=-7, confirm_n=5)
    meta["decision"], meta["decision_by_sensor"] = base, {"mpu6050": dict(base, on_q=41, confirm_n=2)}
    (tmp_path / "model.json").write_text(json.dumps(meta))

    assert fwdetector.rule_for(meta, "mpu6050")["on_q"] == 41
    assert fwdetector.rule_for(meta, "adxl345") is base and fwdetector.rule_for(meta) is base
    assert fwdetector.rule_for(dict(meta, decision_by_sensor=None), "mpu6050") is base  # an artifact from before
    det = fwdetector.load(microlite, meta, str(tmp_path / "model.tflite"), "mpu6050")
    assert (det.on_q, det.confirm_n) == (41, 2)
    assert node_model("mpu6050", tmp_path).detector().on_q == 41  # replay and evaluation
    assert node_model("adxl345", tmp_path).detector().on_q == -7

    chip = MPU6050Model()
    board = HostBoard(chip, None, address=chip.address, data_dir=str(tmp_path / "data"), detector_backend=microlite)
    node = Node(board, {"node_id": "t1", "sensor": {"type": "mpu6050", "odr_hz": 100}, "detector": {"model": str(tmp_path / "model.tflite")}})
    node.boot()
    assert (node.detector.on_q, node.detector.confirm_n) == (41, 2)


def test_replay_with_a_missing_model_folder_is_a_user_error(tmp_path):
    from seismote.host_tools.cli import DEMO_RECORD, cli

    res = cli_runner().invoke(cli, ["replay", str(DEMO_RECORD[0]), "--model-dir", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "model.json" in res.stderr and "Traceback" not in res.stderr


def test_model_cli_registers_its_group():
    import click

    from seismote.model_export.cli import register

    @click.group()
    def top():
        pass

    register(top)
    res = cli_runner().invoke(top, ["model", "--help"])
    assert res.exit_code == 0
    for cmd in ("build-data", "train", "export", "evaluate"):
        assert cmd in res.stdout


def test_decision_replayed_from_score_traces():
    """evaluate.simulate replays the detector's rule on logged scores as the pipeline applies it."""
    from seismote.model_export.evaluate import simulate

    ev = [{"onset_t": 10.0, "trace": [(10.1, 10, 0.5), (10.2, 90, 0.8), (10.3, 40, 1.5), (10.4, 95, 2.0), (10.5, 99, 3.0)]},
          {"onset_t": 50.0, "trace": [(50.1, 120, 0.2), (50.2, 120, 0.3), (50.3, 120, 0.4)]}]
    assert simulate(ev, 80, 30, 2, 1.0) == [10.4]  # 40 holds the run (between off and on)
    assert simulate(ev, 80, 50, 2, 1.0) == [10.5]  # 40 < off resets it: confirmed by 95, 99
    assert simulate(ev, 80, 30, 2, 0.1) == [10.4, 50.2]
    assert simulate(ev, 80, 30, 2, 1.0, max_runs=3) == []  # the 4th score comes too late
    assert simulate(ev, 80, 30, 1, 1.0) == [10.3]  # confirmed at 10.2, reported once the PGA reaches 1 gal
    # look-back windows, scored at the onset (reported on its next sample): the last `lookback` of those traced
    ev2 = [{"onset_t": 10.0, "back": [(10.02, 10, 2.0), (10.02, 99, 2.0), (10.02, 85, 2.0)],
            "trace": [(10.1, 90, 2.0), (10.2, 40, 2.0), (10.3, 95, 2.0)]}]
    assert simulate(ev2, 80, 30, 2, 1.0) == [10.3]  # without them: 90, 40 holds, 95
    assert simulate(ev2, 80, 30, 2, 1.0, lookback=1) == [10.1]  # 85 at the onset, then 90
    assert simulate(ev2, 80, 30, 2, 1.0, lookback=2) == [10.02]  # 99, 85: confirmed at the onset
    assert simulate(ev2, 80, 30, 2, 1.0, lookback=3) == [10.02]  # 10 resets the run before 99, 85
    assert simulate(ev2, 80, 30, 2, 1.0, lookback=2, max_runs=1) == []  # the look-back windows count as runs
    with pytest.raises(ValueError, match="4 look-back windows asked for, 3 traced"):
        simulate(ev2, 80, 30, 2, 1.0, lookback=4)
    with pytest.raises(ValueError, match="every=1"):
        simulate(ev2, 80, 30, 2, 1.0, every=2, lookback=1)


def test_traces_with_a_trigger_override_run_the_node_with_those_settings():
    """evaluate.trace_record(..., trigger=...) (benchmarks/trigger_settings.py): the node replays the
    record with those trigger fields (the default 0.5 s STA sets off sooner on the demo's Pinotepa P
    wave than the 1 s one the training windows come from), and a setting the node's configuration
    refuses is refused by name."""
    from seismote.host_tools.cli import DEMO_RECORD
    from seismote.host_tools.waveforms import read_records
    from seismote.model_export.evaluate import trace_record
    from seismote.model_export.node_windows import TRAINING_TRIGGER, node_model

    assert node_model("adxl355", trigger=TRAINING_TRIGGER).cfg["trigger"]["sta_s"] == 1.0
    assert node_model("adxl355").cfg["trigger"]["sta_s"] == fwconfig.default()["trigger"]["sta_s"] == 0.5
    rec = read_records([str(p) for p in DEMO_RECORD])[0]
    slow, fast = (trace_record(rec, "adxl355", ARTIFACT, trig) for trig in (TRAINING_TRIGGER, None))
    assert slow["events"] and fast["events"]
    assert fast["events"][0]["onset_t"] < slow["events"][0]["onset_t"] < fast["events"][0]["onset_t"] + 1.0
    assert all(ev["trace"] for ev in fast["events"])  # the model scored every event
    with pytest.raises(fwconfig.ConfigError, match="trigger.sta_s"):
        node_model("adxl355", trigger={"sta_s": 50.0})


def test_look_back_windows_confirm_at_the_onset_as_the_traces_say(tmp_path):
    """The node's look-back (detector.lookback): at the onset it scores the windows ending there and at
    the strides before; the firmware pipeline's detections equal evaluate.simulate's on the traces of the
    same record for every look-back calibration may choose. The demo's Pinotepa record, 20x louder so
    that the PGA floor does not hold the confirmation back (the int8 window is scaled to its peak, so
    the scores barely change): a rule its last two look-back scores pass confirms on the onset's next sample."""
    import dataclasses

    from seismote.firmware.config import PIPELINE_RATE_HZ
    from seismote.host_tools.cli import DEMO_RECORD
    from seismote.host_tools.waveforms import read_records
    from seismote.model_export.evaluate import MAX_LOOKBACK, node_detections, simulate, trace_record

    rec = read_records([str(p) for p in DEMO_RECORD])[0]
    rec = dataclasses.replace(rec, segments=[dataclasses.replace(g, data=g.data * 20.0) for g in rec.segments])
    tr = trace_record(rec, "adxl355", ARTIFACT)
    ev = tr["events"][0]
    assert len(ev["back"]) == MAX_LOOKBACK == 3 and [t for t, _, _ in ev["back"]] == pytest.approx([ev["onset_t"] + 1 / PIPELINE_RATE_HZ] * 3)
    on_q = min(q for _, q, _ in ev["back"][-2:])
    for f in ("model.tflite", "model.json"):
        shutil.copy(ARTIFACT / f, tmp_path / f)
    meta = json.loads((ARTIFACT / "model.json").read_text())
    got = {}
    for lb in range(MAX_LOOKBACK + 1):
        meta["decision"].update(on_q=on_q, off_q=-128, confirm_n=2, max_runs=0, lookback=lb)
        (tmp_path / "model.json").write_text(json.dumps(meta))
        got[lb] = node_detections(rec, "adxl355", tmp_path)[0]
        assert got[lb] == pytest.approx(simulate(tr["events"], on_q, -128, 2, tr["min_pga_gal"], lookback=lb))
    assert got[2][0] == got[3][0] == pytest.approx(ev["onset_t"] + 1 / PIPELINE_RATE_HZ)
    assert got[0][0] >= ev["onset_t"] + 0.2 - 1e-9  # without: two scores at the 0.1 s stride after the onset


def test_calibration_picks_the_most_detections_within_the_false_rate_then_the_shortest_delay():
    """evaluate.choose_consecutive on traced runs: a door in an hour of activity, one quake (P at 100 s)."""
    from seismote.model_export.evaluate import choose_consecutive, rule_metrics, simulate

    door = {"onset_t": 30.0, "trace": [(30.1, 60, 5.0), (30.2, 60, 5.0), (30.3, -90, 5.0)]}
    quake = {"onset_t": 100.2, "trace": [(100.3, 20, 5.0), (100.4, 70, 5.0), (100.5, 90, 5.0), (100.6, 90, 5.0), (100.7, 90, 5.0)]}
    runs = [{"group": "activity", "scenario": "home", "duration_s": 3600.0, "events": [door], "min_pga_gal": 1.0,
             "quakes": [], "activities": [{"kind": "door", "t_s": 30.0, "dur_s": 1.0}]},
            {"group": "quakes", "scenario": "home", "duration_s": 3600.0, "events": [quake], "min_pga_gal": 1.0,
             "quakes": [{"p_s": 100.0, "end_s": 160.0}], "activities": []}]
    rules = [(1, 0, 50, 50, 0), (3, 0, 80, 80, 0), (2, 0, 80, 80, 0), (1, 0, 95, 95, 0)]
    m = rule_metrics(runs, lambda r: simulate(r["events"], 50, 50, 1, r["min_pga_gal"]))
    assert (m["detected"], m["false_per_hour"], m["quakes"], m["detected_real"]) == (1.0, 1.0, 1, None)
    assert round(m["median_delay_s"], 6) == 0.4
    assert m["detected_visible"] == 1.0 and round(m["median_delay_visible_s"], 6) == 0.4  # no SNR given: visible
    faint = [dict(runs[1], quakes=[{"p_s": 100.0, "end_s": 160.0, "snr": 3.0}])]  # the evaluation's "clearly visible" leaves it out
    assert rule_metrics(faint, lambda r: [100.4])["detected_visible"] is None
    # q >= 50 once catches the door; 3 or 2 at >= 80 do not, and 2 confirm sooner; 95 is never reached
    assert choose_consecutive(runs, 0.5, rules)["chosen"]["confirm_n"] == 2
    got = choose_consecutive(runs, 1.0, rules)
    assert (got["chosen"]["on_q"], got["chosen"]["median_delay_s"]) == (50, 0.4)  # the door is allowed now: fastest
    assert [r["detected"] for r in got["table"]] == [1.0, 1.0, 1.0, 0.0]


def test_calibration_takes_the_shortest_delay_among_rules_that_detect_as_many_within_sampling_error():
    """evaluate.choose: within the false-rate target, no real record is given up; among the rules whose
    share of the synthetic quakes is within one standard error of the best (746 quakes at 88.2%: 1.2
    points), the shortest median delay wins; past that error, or losing a real record, a faster rule
    does not; and with no rule within the target, the fewest false detections."""
    from seismote.model_export.evaluate import choose

    def m(fph, det, real, delay):
        return {"false_per_hour": fph, "detected": det, "detected_real": real, "median_delay_s": delay, "quakes": 746}

    items = [(m(0.44, 0.882, 1.0, 1.38), -28, "most quakes"), (m(0.42, 0.879, 1.0, 1.35), -24, "within the error, sooner"),
             (m(0.30, 0.865, 1.0, 1.0), -40, "beyond the error"), (m(0.40, 0.90, 11 / 12, 0.9), -50, "a real record lost"),
             (m(0.60, 0.95, 1.0, 0.5), -60, "too many false")]
    assert choose(items, 0.5)[2] == "within the error, sooner"
    assert choose(items[:1] + items[2:], 0.5)[2] == "most quakes"
    assert choose(items, 1.0)[2] == "too many false"  # now within the target, and the most real and synthetic quakes
    assert choose(items, 0.1)[2] == "beyond the error"  # none within: the fewest false detections
    tied = [(m(0.4, 0.88, None, 1.2), -20, "lower on_q"), (m(0.4, 0.88, None, 1.2), -16, "higher on_q")]
    assert choose(tied, 0.5)[2] == "higher on_q"


def test_scoring_matches_detections_to_quakes_and_splits_the_delay():
    """A detection from P - 2 s to the end of the shaking detects the quake (the first one gives the delay);
    any other is false, charged to the activity under way; the node's trigger delay is reported beside."""
    from seismote.model_export.evaluate import METHODS, match, summarise

    quakes = [{"mag": 4.0, "dist_km": 20.0, "pga_gal": 5.0, "snr": 30.0, "p_s": 100.0, "end_s": 130.0},
              {"mag": 3.0, "dist_km": 50.0, "pga_gal": 0.5, "snr": 3.0, "p_s": 300.0, "end_s": 320.0}]
    acts = [{"kind": "door", "t_s": 200.0, "dur_s": 1.0}]
    m = match([500.0, 101.5, 97.5, 99.0, 201.0], quakes, acts)
    assert m["delays"] == [-1.0, None]  # 97.5 is too early; 101.5 is the same quake again, not false
    assert m["false"] == [{"t": 97.5, "activity": "ambient"}, {"t": 201.0, "activity": "door"},
                          {"t": 500.0, "activity": "ambient"}]

    run = {"scenario": "quiet", "group": "activity", "duration_s": 3600.0, "trigger_times": [100.4, 302.0, 499.0],
           "quakes": quakes, "activities": acts, "detections": {k: [] for k in METHODS}}
    run["detections"]["model"] = [101.2, 500.0]
    win = {"roc_auc": 0.9, "average_precision": 0.9, "tpr_at_threshold": 0.5, "fpr_at_threshold": 0.01}
    meta = {"model_bytes": 1, "arena_bytes": 1, "macs": 1, "decision": {}}
    day = {"scenario": "quiet", "group": "quiet", "duration_s": 23 * 3600.0, "trigger_times": [50.0, 7000.0],
           "quakes": [], "activities": [], "detections": {k: [] for k in METHODS}}
    res = summarise(win, [run, day], [], meta)
    s = res["summary"]
    assert s["synthetic_quakes"] == 1 and s["synthetic_quakes_any_snr"] == 2  # the second is below SNR 8
    assert s["synthetic_detection_rate"]["model"] == 1.0 and s["synthetic_detection_rate"]["rule"] == 0.0
    assert s["node_trigger_rate_synthetic"] == 1.0
    assert s["node_trigger_median_delay_s_synthetic"] == pytest.approx(0.4)
    assert s["median_delay_after_p_s_synthetic"]["model"] == pytest.approx(1.2)
    # where that delay goes, by SNR band: 0.4 s to the trigger, 0.8 s from it to the model's confirmation
    assert list(res["delay_by_snr"]) == ["SNR 30-100"]
    band = res["delay_by_snr"]["SNR 30-100"]
    assert (band["n"], band["trigger_rate"], band["model_rate"]) == (1, 1.0, 1.0)
    assert (band["trigger_median_s"], band["model_median_s"], band["confirmation_median_s"]) == pytest.approx((0.4, 1.2, 0.8))
    # one false detection in a day of the quiet site: its hour among the activity scenarios + 23 h alone
    assert s["false_per_day_quiet_synthetic"]["model"] == 1.0 and s["quiet_synthetic_hours"] == 24.0
    assert s["false_per_hour_by_scenario"]["quiet"]["model"] == 1.0  # the activity table: that hour only
    assert res["triggers_per_hour"]["quiet"] == 3.0
    verdict = {t["target"].split(" (")[0]: t["verdict"] for t in s["targets"]}
    # one quake of one detected is 100%, but one quake cannot show >= 95% (the interval reaches 2.5%)
    assert verdict["clearly visible synthetic quakes detected"] == "met by the estimate, not shown at 95%"
    assert verdict["false detections, quiet site"] == "met by the estimate, not shown at 95%"  # 1 in a day
    assert verdict["median delay after P, detected synthetic quakes"] == "short"  # 1.2 s
    assert verdict["median delay after P, detected real OpenEEW records"] == "no data"  # no real record here
    assert verdict["false detections, activity and machinery"] == "no data"  # only the quiet site ran


def test_p_wave_visibility_is_measured_on_the_first_second_after_p():
    """snr_after_p: the record's peak after P over the noise rms before it. A quake seen only by its S
    wave, 5 s after P, is clearly visible over 90 s but its P second is noise; P's segment is found by
    its offset, and a P without 30 s of its segment before it has no figure."""
    from seismote.host_tools.waveforms import Record, Segment
    from seismote.model_export.evaluate import REAL_AFTER_P_S, snr_after_p

    rate, rng = 50.0, np.random.default_rng(1)
    data = rng.normal(0.0, 0.1, (int(200 * rate), 3))
    t = np.arange(int(0.5 * rate)) / rate
    burst = 2.0 * np.sin(2 * np.pi * 5.0 * t)
    p_at, s_at = int(60 * rate), int(160 * rate)  # a clear P at 60 s; at 160 s an S wave 5 s after its buried P
    data[p_at:p_at + len(t), 0] += burst
    data[s_at + int(5 * rate):s_at + int(5 * rate) + len(t), 1] += burst
    rec = Record(source="t", rate=rate, start_utc=None, components=("Z", "N", "E"), units="gal",
                 segments=[Segment(0.0, np.zeros((int(10 * rate), 3))), Segment(100.0, data)], gaps=[], notes=[])
    clear = snr_after_p(rec, 160.0, 1.0)
    assert 17.0 < clear < 23.0  # 2 gal over 0.1 gal rms
    assert snr_after_p(rec, 260.0, 1.0) < 8.0 < snr_after_p(rec, 260.0, REAL_AFTER_P_S)
    assert snr_after_p(rec, 120.0, 1.0) is None  # 20 s into its segment
    assert snr_after_p(rec, 5.0, 1.0) is None  # not 30 s into the first


def test_delay_is_split_by_whether_the_p_wave_is_clearly_visible():
    """Two clearly visible quakes, one seen by its P wave (detected 0.8 s after P), one whose P is buried
    (detected with its S wave, 6 s after P): the synthetic median is both's, the P-visible one the first's."""
    from seismote.model_export.evaluate import METHODS, summarise

    quakes = [{"mag": 4.0, "dist_km": 20.0, "pga_gal": 5.0, "snr": 40.0, "p_snr": 12.0, "p_s": 100.0, "end_s": 130.0},
              {"mag": 5.0, "dist_km": 90.0, "pga_gal": 2.0, "snr": 20.0, "p_snr": 3.0, "p_s": 300.0, "end_s": 340.0}]
    run = {"scenario": "home", "group": "activity", "duration_s": 3600.0, "trigger_times": [100.5, 305.5],
           "quakes": quakes, "activities": [], "detections": {k: [] for k in METHODS}}
    run["detections"]["model"] = [100.8, 306.0]
    win = {"roc_auc": 0.9, "average_precision": 0.9, "tpr_at_threshold": 0.5, "fpr_at_threshold": 0.01}
    res = summarise(win, [run], [], {"model_bytes": 1, "arena_bytes": 1, "macs": 1, "decision": {}})
    s = res["summary"]
    assert s["median_delay_after_p_s_synthetic"]["model"] == pytest.approx(3.4)
    assert s["synthetic_quakes_p_visible"] == 1 and s["synthetic_detection_rate_p_visible"]["model"] == 1.0
    assert s["median_delay_after_p_s_synthetic_p_visible"]["model"] == pytest.approx(0.8)
    assert s["real_p_visible_records"] == 0 and s["median_delay_after_p_s_real_p_visible"]["model"] is None
    assert list(res["delay_by_p_snr"]) == ["P SNR 0-8", "P SNR >= 8"]
    buried = res["delay_by_p_snr"]["P SNR 0-8"]
    assert (buried["trigger_median_s"], buried["model_median_s"], buried["confirmation_median_s"]) == pytest.approx((5.5, 6.0, 0.5))


def test_headline_is_the_adxl355s_and_every_sensor_gets_its_row():
    """Runs of the cheaper sensors go to `by_sensor` only; the headline and targets stay the ADXL355's."""
    from seismote.model_export.evaluate import METHODS, SENSORS, evaluation_jobs, summarise

    def run(sensor, detections, quake_snr=30.0):
        return {"scenario": "home", "group": "activity", "sensor": sensor, "duration_s": 7200.0, "trigger_times": [],
                "quakes": [{"mag": 4.0, "dist_km": 20.0, "pga_gal": 5.0, "snr": quake_snr, "p_s": 100.0, "end_s": 130.0}],
                "activities": [], "detections": {m: detections if m == "model" else [] for m in METHODS}}

    win = {"roc_auc": 0.9, "average_precision": 0.9, "tpr_at_threshold": 0.5, "fpr_at_threshold": 0.01}
    meta = {"model_bytes": 1, "arena_bytes": 1, "macs": 1, "decision": {}}
    res = summarise(win, [run("adxl355", [100.8]), run("mpu6050", [102.0, 900.0, 1900.0]), run("adxl345", [], 5.0)], [], meta)
    s, by = res["summary"], res["summary"]["by_sensor"]
    assert s["synthetic_quakes"] == 1 and s["median_delay_after_p_s_synthetic"]["model"] == pytest.approx(0.8)
    assert s["false_per_hour_activity_scenarios"]["model"] == 0.0
    assert list(by) == list(SENSORS)
    assert by["adxl355"]["detection_rate"]["model"] == 1.0 and by["adxl355"]["false_per_hour_activity"]["model"] == 0.0
    assert by["mpu6050"]["median_delay_after_p_s"]["model"] == pytest.approx(2.0)
    assert by["mpu6050"]["false_per_hour_activity"]["model"] == 1.0 and by["mpu6050"]["activity_hours"] == 2.0
    assert by["adxl345"]["visible_quakes"] == 0 and by["adxl345"]["detection_rate"]["model"] is None  # SNR 5: not visible

    jobs = evaluation_jobs(Path("m"), 3.0, 3.0, 24.0)
    assert {j[-1] for j in jobs if j[5] != "quiet"} == set(SENSORS) and {j[-1] for j in jobs if j[5] == "quiet"} == {SENSORS[0]}
    recordings: dict[str, set] = {}  # the same recordings (scenario, seed) for every sensor: a paired comparison
    for sc, seed, _, _, _, group, sensor in jobs:
        recordings.setdefault(sensor, set()).add((sc, seed, group))
    assert recordings["mpu6050"] == recordings["adxl345"] == {r for r in recordings["adxl355"] if r[2] != "quiet"}


def test_targets_are_met_only_when_their_whole_95_percent_interval_meets_them():
    from seismote.model_export.evaluate import _verdict, count_interval, median_interval, rate_interval

    assert rate_interval(0, 10) == [0.0, pytest.approx(0.3085, abs=1e-4)]  # Clopper-Pearson: 1 - 0.025 ** (1/10)
    assert rate_interval(18, 18)[0] == pytest.approx(0.8147, abs=1e-4) and rate_interval(0, 0) is None
    assert count_interval(0, 1.0) == [0.0, pytest.approx(3.689, abs=1e-3)]  # Poisson: no event in 1 h, up to 3.7/h
    assert count_interval(9, 18.0) == [pytest.approx(0.2286, abs=1e-4), pytest.approx(0.9492, abs=1e-4)]
    assert median_interval([float(v) for v in range(10, 0, -1)]) == [2.0, 9.0]  # n=10: the 2nd and 9th order statistics
    assert median_interval([1.0, 2.0, 3.0]) is None
    assert _verdict(0.5, [0.23, 0.95], 1.0, True) == "met"
    assert _verdict(0.5, [0.2, 1.3], 1.0, True) == "met by the estimate, not shown at 95%"
    assert _verdict(1.3, [0.9, 2.0], 1.0, True) == "short"
    assert _verdict(0.96, [0.951, 0.98], 0.95, False) == "met" and _verdict(0.93, [0.9, 0.96], 0.95, False) == "short"
    assert _verdict(None, None, 1.0, True) == "no data"


def test_baselines_trigger_on_a_quake_not_on_quiet_noise():
    from seismote.model_export.evaluate import openeew_trigger, rsudp_trigger

    rate = 50.0
    rng = np.random.default_rng(0)
    t = np.arange(int(120 * rate)) / rate
    acc = rng.normal(0, 0.05, (len(t), 3))
    assert openeew_trigger(acc, rate) == [] and rsudp_trigger(acc, rate) == []
    q = np.where(t >= 80, 5 * np.exp(-(t - 80) / 6) * np.sin(2 * np.pi * 2.5 * t), 0)
    acc[:, 0] += q
    on = openeew_trigger(acc, rate)
    assert on and 80 <= on[0] <= 82
    on = rsudp_trigger(acc, rate)
    assert on and 80 <= on[0] <= 85
