"""Export the trained network as the node's artifact: full-int8 TFLite + model.json + golden vectors.

    meta = export(ds, train_dir, out_dir)     # out_dir/model.tflite, model.json, golden.npz, golden.bin

- Full integer quantization with TFLiteConverter: int8 weights and activations, int8 input and
  output, TFLITE_BUILTINS_INT8 only; calibration (representative data set) on windows of the
  train split, weights quantized per tensor, names stripped (`convert`). The input tensor must come out as scale 1/127, zero point 0: the node writes its
  detector_input window into it unchanged (a window pinned at -128/127 and +1 in the calibration
  set fixes that range). The output is the logit (no LOGISTIC: its fixed int8 scale of 1/256 puts
  every score above 0.996 on one value), int8 with the scale the calibration set gives it.
- The graph is checked against model.ALLOWED_OPS; MACs are counted from the graph and the TFLM
  arena is measured (tflm.py); the configured arena adds a margin for the board.
- Decision rule: first from the val split's TFLM scores (window level: `on` is the lowest score
  that at most `fpr` of the val non-earthquake windows reach, `off` is `hysteresis` logit units below it); then,
  with `cal_hours` > 0, replaced by the rule chosen on calibration recordings through the whole
  node pipeline (evaluate.calibrate_decision: continuous synthetic recordings of every scenario
  with their own seeds; at <= `target_fph` false detections per hour, the most real val records,
  then the shortest delay within one standard error of the most synthetic quakes: evaluate.choose)
  as read by the ADXL355, with the real val records. With `per_sensor` (`--per-sensor`), once more
  for each other sensor: model.json `decision_by_sensor`, the node runs its own
  (detector.rule_for). Off by default: on the previous bundled model (24 h of node windows; held
  out, 3 h per scenario) it shortened the MPU6050's median delay (1.86 -> 1.53 s) but lengthened
  the ADXL345's (1.76 -> 1.92 s, false 0.22 -> 0.44/h) at the ADXL355 rule's detection rates, the
  choice hanging on 3-7 of ~800 calibration quakes.
- Golden vectors: test windows of both classes and two edge cases with their TFLM int8 outputs,
  in golden.npz (host) and golden.bin (read on the board by detector.selftest), cross-checked
  bit for bit against LiteRT, and so are the first CROSS_CHECK_WINDOWS test windows. The network's
  dense head goes out as convolutions (model.build_model `conv_head`): as FULLY_CONNECTED, TFLM
  and LiteRT differed by 1 LSB on 0.7-1.3% of 3,000 test windows, on two models.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np

from ..firmware import detector as fwdetector
from ..firmware.config import PIPELINE_RATE_HZ
from ..firmware.crc32 import crc32
from ..firmware.detector_input import CHANNELS, WINDOW
from . import tflm
from .evaluate import SENSORS, TARGET_FPH
from .model import ALLOWED_OPS, INPUT_SCALE, ModelSpec, build_model, to_input, transfer_weights

GOLDEN_MAGIC = b"SMGV"
ARENA_MARGIN = 1024  # bytes above the measured host need (rounded up to 256)
CROSS_CHECK_WINDOWS = 1000  # test windows that must also come out bit-identical in TFLM and LiteRT
SCHEMA = 1


class ExportError(RuntimeError):
    """The converted model breaks a contract of the node (ops, input quantization, budgets)."""


def representative_windows(ds, n: int = 1000, seed: int = 0) -> np.ndarray:
    """Up to `n` train windows, half of each class where possible, in a fixed order."""
    rng = np.random.default_rng(seed)
    split = np.asarray(ds.split)
    y = np.asarray(ds.y)
    picks = []
    for cls in (0, 1):
        idx = np.flatnonzero((split == "train") & (y == cls))
        picks.append(rng.choice(idx, size=min(len(idx), n // 2), replace=False))
    idx = np.sort(np.concatenate(picks))
    return np.asarray(ds.x)[idx]


def convert(model, rep: np.ndarray) -> bytes:
    """Keras model (batch 1) -> full-int8 TFLite flatbuffer."""
    import tensorflow as tf

    pinned = np.zeros((1, WINDOW, CHANNELS), dtype=np.float32)
    pinned[0, 0, 0] = -128 * INPUT_SCALE
    pinned[0, 1, 0] = 127 * INPUT_SCALE

    def gen():
        yield [pinned]
        for w in rep:
            yield [to_input(w[None])]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = gen
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    # One scale per weight tensor instead of one per output channel: every channel costs a float
    # scale and an int64 zero point in the flatbuffer, twice per layer (weights and bias), which
    # for this small a network is most of the 16 KB budget. Measured on the held-out windows: the
    # int8 ROC AUC moves by < 0.001. (A private converter flag; TFLM runs both kinds of kernel.)
    conv._experimental_disable_per_channel = True
    return strip_strings(conv.convert())


def strip_strings(blob: bytes) -> bytes:
    """Drop tensor names, the description and signature defs: TFLM reads tensors by index."""
    from tensorflow.lite.tools import flatbuffer_utils

    m = flatbuffer_utils.convert_bytearray_to_object(bytearray(blob))
    flatbuffer_utils.strip_strings(m)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(m))


def check_graph(model: bytes) -> dict:
    """The contracts the node relies on; raises ExportError naming the broken one."""
    ops = tflm.graph_ops(model)
    bad = sorted(set(ops) - ALLOWED_OPS)
    if bad:
        raise ExportError("the graph uses operators outside the TFLM ESP32 allow-list: %s" % ", ".join(bad))
    io = tflm.io_quantization(model)
    i, o = io["input"], io["output"]
    if i["dtype"] != "int8" or i["zero_point"] != 0 or abs(i["scale"] * 127 - 1) > 1e-6:
        raise ExportError("input tensor is %s scale %r zero point %r; the node feeds int8 scale 1/127 zero point 0" % (i["dtype"], i["scale"], i["zero_point"]))
    if int(np.prod(i["shape"])) != WINDOW * CHANNELS:
        raise ExportError("input shape %s is not %d x %d" % (i["shape"], WINDOW, CHANNELS))
    if o["dtype"] != "int8" or not o["scale"] > 0 or "LOGISTIC" in ops:
        raise ExportError("output tensor is %s scale %r after %s; expected an int8 logit" % (o["dtype"], o["scale"], ops[-1]))
    return {"ops": ops, "io": io}


def calibrate(scores_neg: np.ndarray, out: dict, fpr: float = 0.01, hysteresis: float = 2.0, confirm_n: int = 2, stride: int = 5) -> dict:
    """Decision rule from the val split's int8 scores of non-earthquake windows."""
    s = np.sort(np.asarray(scores_neg, dtype=int))
    # lowest q with P(score >= q) <= fpr
    on_q = 127
    for q in range(-128, 128):
        if np.mean(s >= q) <= fpr:
            on_q = q
            break
    off_q = max(-128, on_q - int(round(hysteresis / out["scale"])))  # hysteresis in logit units
    return decision(on_q, off_q, confirm_n, stride, out)


def decision(on_q: int, off_q: int, confirm_n: int, stride: int, out: dict, max_runs: int = 0, explain: bool = True,
             lookback: int = 0) -> dict:
    """model.json's decision rule (`explain`: with the rule's description, which the per-sensor copies leave out)."""
    rule = {
        "on_q": int(on_q),
        "off_q": int(off_q),
        "threshold": fwdetector.score_float(on_q, out["scale"], out["zero_point"]),
        "threshold_off": fwdetector.score_float(off_q, out["scale"], out["zero_point"]),
        "confirm_n": int(confirm_n),
        "stride_samples": int(stride),
        "stride_s": stride / PIPELINE_RATE_HZ,
        "max_runs": int(max_runs),
        "max_s": max_runs * stride / PIPELINE_RATE_HZ if max_runs else None,
        "lookback": int(lookback),
        "rule": "confirm after confirm_n consecutive scores >= on_q (inferences every stride_samples while the "
                "STA/LTA trigger is on, at most max_runs per event, 0 = no limit; at the trigger's onset first lookback "
                "of them, on the windows ending at the onset and at the strides before it); a score < off_q resets the "
                "count; plus PGA >= detector.min_pga_gal",
    }
    if not explain:
        del rule["rule"]
    return rule


def golden_vectors(ds, model: bytes, n_per_class: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Test windows spanning the score range of each class, plus all-zero and full-scale windows."""
    split, y = np.asarray(ds.split), np.asarray(ds.y)
    x_all = np.asarray(ds.x)
    rng = np.random.default_rng(seed)
    picks = []
    for cls in (1, 0):
        idx = np.flatnonzero((split == "test") & (y == cls))
        if not len(idx):
            continue
        cand = rng.choice(idx, size=min(len(idx), 200), replace=False)
        q = tflm.run_tflm(model, x_all[cand])
        order = cand[np.argsort(q, kind="stable")]
        picks.extend(order[np.linspace(0, len(order) - 1, n_per_class).round().astype(int)])
    x = [x_all[i] for i in picks]
    edge = np.zeros((WINDOW, CHANNELS), dtype=np.int8)
    x.append(edge)
    full = np.zeros((WINDOW, CHANNELS), dtype=np.int8)
    full[::2] = 127
    full[1::2] = -127
    x.append(full)
    xg = np.stack(x).astype(np.int8)
    return xg, tflm.run_tflm(model, xg)


def write_golden(out_dir: Path, x: np.ndarray, yq: np.ndarray) -> None:
    np.savez(out_dir / "golden.npz", x=x, y_q=yq)
    with open(out_dir / "golden.bin", "wb") as f:
        # magic, n, window, channels; then per vector: window*channels int8 inputs, 1 int8 output
        f.write(GOLDEN_MAGIC + struct.pack("<HHH", len(x), WINDOW, CHANNELS))
        for xi, yi in zip(x, yq):
            f.write(xi.astype(np.int8).tobytes() + struct.pack("<b", int(yi)))


def read_golden_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = Path(path).read_bytes()
    if data[:4] != GOLDEN_MAGIC:
        raise ValueError("%s is not a golden-vector file" % path)
    n, w, c = struct.unpack_from("<HHH", data, 4)
    rec = w * c + 1
    body = np.frombuffer(data, dtype=np.int8, offset=10, count=n * rec).reshape(n, rec)
    return body[:, :-1].reshape(n, w, c).copy(), body[:, -1].copy()


def val_scores(ds, model: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The val split's int8 TFLM scores and labels."""
    split, y = np.asarray(ds.split), np.asarray(ds.y)
    m = split == "val"
    return tflm.run_tflm(model, np.asarray(ds.x)[m]), y[m]


def export(ds, train_dir: Path, out_dir: Path, fpr: float = 0.01, hysteresis: float = 2.0, confirm_n: int = 2,
           stride: int = 5, probe: bool = True, cal_hours: float = 0.0, target_fph: float = TARGET_FPH, workers: int = 2,
           progress=None, per_sensor: bool = False, max_lookback: int = 0) -> dict:
    """Convert train_dir/model.keras; write the artifact into out_dir; return model.json's content.

    The artifact is made in out_dir.partial and moved into out_dir only once every check has passed
    (model.json last), so a failed export leaves the artifact already there (firmware/model) whole.

    `stride` (pipeline samples between inferences while triggered): the committed weights calibrated
    with 5 (0.1 s) give 88.2% of the quakes, 12 of 12 real val records, 0.44 false/h, 1.38 s after P;
    with 3 (1.67x the inferences) 88.2%, 12 of 12, 0.50/h, 1.34 s (confirm_n 4); with 2 (2.5x) 88.1%,
    12 of 12, 0.39/h, 1.36 s (confirm_n 3). The delay is the model's, not the stride's: 5 stays.
    """
    out_dir = Path(out_dir)
    work = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        meta = _export(ds, Path(train_dir), work, fpr=fpr, hysteresis=hysteresis, confirm_n=confirm_n, stride=stride, probe=probe,
                       cal_hours=cal_hours, target_fph=target_fph, workers=workers, progress=progress, per_sensor=per_sensor,
                       max_lookback=max_lookback)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in sorted(work.iterdir(), key=lambda f: f.name == "model.json"):
        os.replace(f, out_dir / f.name)
    work.rmdir()
    return meta


def _export(ds, train_dir: Path, out_dir: Path, *, fpr, hysteresis, confirm_n, stride, probe, cal_hours, target_fph, workers,
            progress, per_sensor, max_lookback) -> dict:
    import keras

    from .train import configure_tensorflow

    say = progress or (lambda msg: None)
    summary = json.loads((train_dir / "train.json").read_text())
    configure_tensorflow(summary["config"]["seed"], summary["config"].get("threads", 2))
    spec = ModelSpec.from_dict(summary["config"]["spec"])
    trained = keras.models.load_model(train_dir / "model.keras")
    model1 = build_model(spec, batch=1, logit=True, conv_head=True)
    transfer_weights(trained, model1)
    say("converting to full int8")
    blob = convert(model1, representative_windows(ds, seed=summary["config"]["seed"]))
    graph = check_graph(blob)
    (out_dir / "model.tflite").write_bytes(blob)
    say("calibrating the decision rule on the val split")
    qv, yv = val_scores(ds, blob)
    dec = calibrate(qv[yv == 0], graph["io"]["output"], fpr, hysteresis, confirm_n, stride)
    say("golden vectors")
    xg, yg = golden_vectors(ds, blob)
    write_golden(out_dir, xg, yg)
    check = tflm.cross_check(blob, xg, yg)
    xt = np.asarray(ds.x)[np.asarray(ds.split) == "test"][:CROSS_CHECK_WINDOWS]
    check_wide = tflm.cross_check(blob, xt)
    if not (check["tflm_vs_litert_identical"] and check.get("tflm_vs_golden_identical", True) and check_wide["tflm_vs_litert_identical"]):
        raise ExportError("TFLM and LiteRT disagree: golden vectors %s; test windows %s" % (check, check_wide))
    mac = tflm.count_macs(blob)
    arena = None
    if probe:
        say("measuring the TFLM arena")
        arena = tflm.probe_arena(blob)
    need = arena["arena_bytes"] if arena else 16 * 1024 - ARENA_MARGIN
    io = graph["io"]
    meta = {
        "schema": SCHEMA,
        "name": "seismote-detector",
        "created_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "model_bytes": len(blob),
        "model_crc32": crc32(blob),  # the node checks the flash copy against it before TFLM parses it
        "input": {
            "rate_hz": PIPELINE_RATE_HZ,
            "window": WINDOW,
            "window_s": WINDOW / PIPELINE_RATE_HZ,
            "channels": CHANNELS,
            "layout": "time-major, x/y/z interleaved, oldest first (Pipeline.window)",
            "conditioning": "conditioner.y (DC/gravity removed, 50 Hz), scaled by detector_input.quantize (window peak -> 127)",
            "dtype": "int8",
            "scale": io["input"]["scale"],
            "zero_point": io["input"]["zero_point"],
            "shape": io["input"]["shape"],
        },
        "output": {"dtype": "int8", "scale": io["output"]["scale"], "zero_point": io["output"]["zero_point"], "activation": "logit",
                   "meaning": "logit = (q - zero_point) * scale; earthquake score = 1 / (1 + exp(-logit))"},
        "decision": dec,
        "arena_bytes": int(-(-(need + ARENA_MARGIN) // 256) * 256),
        "arena_measured_bytes": arena["arena_bytes"] if arena else None,
        "arena_recorded": arena["recorded"] if arena else None,
        "macs": mac["macs"],
        "adds": mac["adds"],
        "ops": graph["ops"],
        "architecture": spec.to_dict(),
        "params": summary.get("params"),
        "training": {
            "data_fingerprint": getattr(ds, "fingerprint", summary.get("data_fingerprint")),
            "data_sha256": summary.get("data_sha256"),
            "config": summary["config"],
            "best_epoch": summary["best_epoch"],
            "epochs_run": summary["epochs_run"],
            "seconds": summary["seconds"],
            "n_train": summary["n_train"],
            "n_val": summary["n_val"],
            "calibration": {"split": "val", "fpr_target": fpr, "val_negative_windows": int(np.sum(yv == 0)),
                            "val_fpr_at_on": float(np.mean(qv[yv == 0] >= dec["on_q"])) if np.any(yv == 0) else None,
                            "val_tpr_at_on": float(np.mean(qv[yv == 1] >= dec["on_q"])) if np.any(yv == 1) else None},
        },
        "golden": {"files": ["golden.npz", "golden.bin"], "n": int(len(xg)), "cross_check": check,
                   "cross_check_test_windows": check_wide},
        "metrics": {},
        "attribution": "Trained in part on OpenEEW data (OpenEEW / Grillo, CC BY-SA 4.0); see ATTRIBUTION.md",
        "versions": _versions(),
    }
    (out_dir / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
    write_attribution(out_dir)
    if cal_hours > 0:
        say("calibrating the decision rule through the node pipeline")
        calibrate_rule(ds, out_dir, meta, qv, yv, cal_hours=cal_hours, target_fph=target_fph, workers=workers,
                       per_sensor=per_sensor, max_lookback=max_lookback, table=train_dir / "calibration.json")
    return meta


def calibrate_rule(ds, model_dir: Path, meta: dict, qv: np.ndarray, yv: np.ndarray, *, cal_hours: float, target_fph: float,
                   workers: int = 2, per_sensor: bool = False, progress=None, max_lookback: int = 0,
                   table: Path | None = None) -> dict:
    """Choose the artifact's decision rule through the node pipeline (evaluate.calibrate_decision) and
    write it into model_dir/model.json (`meta`, updated in place; its metrics cleared: they were the old
    rule's); `qv`, `yv`: the val split's int8 scores and labels. Writes every rule tried, with its
    figures, into `table` (for choosing another operating point by hand; not shipped to the node).
    Returns each sensor's calibration."""
    from . import real
    from .evaluate import calibrate_decision, data_seed_and_catalog

    seed, catalog = data_seed_and_catalog(ds)
    try:
        val_events = real.split_events(seed, catalog=catalog)["val"]
    except OSError:
        val_events = []
    # the ADXL355 first (the real val records are its recordings), then with per_sensor the others
    cals = {sensor: calibrate_decision(model_dir, hours=cal_hours, quake_hours=cal_hours, target_fph=target_fph,
                                       real_events=val_events if sensor == SENSORS[0] else (), workers=workers, sensor=sensor,
                                       progress=progress, max_lookback=max_lookback, catalog=catalog)
            for sensor in (SENSORS if per_sensor else SENSORS[:1])}
    stride = meta["decision"]["stride_samples"]

    def rule(sensor, explain=False):
        c = cals[sensor]["chosen"]
        return decision(c["on_q"], c["off_q"], c["confirm_n"], stride, meta["output"], c["max_runs"], explain, c["lookback"])

    def record(sensor):
        return {k: v for k, v in cals[sensor].items() if k != "table"}

    meta["decision"] = rule(SENSORS[0], explain=True)
    meta.pop("decision_by_sensor", None)
    cal_meta = meta["training"]["calibration"]
    cal_meta.pop("records_by_sensor", None)
    cal_meta["records"] = record(SENSORS[0])
    cal_meta["records"]["val_fpr_at_on"] = float(np.mean(qv[yv == 0] >= meta["decision"]["on_q"])) if np.any(yv == 0) else None
    if per_sensor:
        meta["decision_by_sensor"] = {sensor: rule(sensor) for sensor in cals}
        cal_meta["records_by_sensor"] = {sensor: record(sensor) for sensor in SENSORS[1:]}
    meta["metrics"] = {}
    (Path(model_dir) / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
    if table is not None:
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text(json.dumps(cals if per_sensor else cals[SENSORS[0]], indent=0) + "\n")
    return cals


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for d in ("tensorflow-cpu", "tensorflow", "keras", "tflite-micro", "ai-edge-litert", "numpy"):
        try:
            out[d] = md.version(d)
        except md.PackageNotFoundError:
            pass
    return out


ATTRIBUTION = """# Attribution

The detector model in this folder (`model.tflite`, its weights, and the golden vectors
`golden.npz` / `golden.bin`) was trained and calibrated in part on accelerometer records from
**OpenEEW** (https://github.com/openeew, data published by **Grillo** and the OpenEEW project),
licensed under the Creative Commons Attribution-ShareAlike 4.0 International licence
(CC BY-SA 4.0, https://creativecommons.org/licenses/by-sa/4.0/).

Attribution: "OpenEEW / Grillo, CC BY-SA 4.0". Changes: the records were resampled to the node's
sensor rate, converted to sensor counts, conditioned by the node's firmware and cut into 4-s
windows scaled to int8 (see `model_export/`); the model was trained on those windows together
with synthetic data. Golden input vectors may contain such windows.

To the extent that the model and the golden vectors are adaptations of that data, they are shared
under the same licence, CC BY-SA 4.0. The code that produced them is under the project's licence.
`model.json` records the training data fingerprint and the configuration that produced them.
"""


def write_attribution(out_dir: Path) -> None:
    (Path(out_dir) / "ATTRIBUTION.md").write_text(ATTRIBUTION)
