"""The windows the node's detector is asked to score, from recordings replayed through its pipeline.

    x, y, kind, age = trigger_windows(seed=3001, hours=24.0, keep=2, cache_dir=Path("build/model/data"))

`drive` runs a record through the firmware Pipeline (seismote replay's path: resampled to the
sensor rate, in counts) with a `Probe` in the detector's place; the evaluation (evaluate.py)
traces scores with it, and training (`trigger_windows`) keeps the windows. The node-window cache
key covers this module and the sources it replays through, not the training recipe or the
evaluation, so changing those does not rebuild the windows.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np


def node_model(sensor: str, model_dir: Path | None = None, trigger: dict | None = None):
    """The default node with this sensor (and the model in `model_dir`, None: the rule); `trigger`
    overrides fields of its trigger configuration (benchmarks/trigger_settings.py)."""
    from ..firmware import config as fwconfig
    from ..host_tools.replay import NodeModel

    return NodeModel(fwconfig.validate({"node_id": "eval", "sensor": {"type": sensor}, "trigger": dict(trigger or {})}), model_dir)


class Probe:
    """A stand-in firmware Detector that never confirms, so the pipeline asks it for an inference
    every `stride` samples for the whole of every event (at most `max_runs`). Subclasses look at
    the window in `buf` (`infer`) or at the score (`update`); `pipe` and `offset` (the segment's
    start, s) are set by `drive`."""

    def __init__(self, stride: int = 5, max_runs: int = 0, buf=None, lookback: int = 0):
        from array import array

        from ..firmware.detector_input import CHANNELS, WINDOW

        self.window, self.stride, self.size = WINDOW, stride, WINDOW * CHANNELS
        self.buf = array("b", bytes(self.size)) if buf is None else buf
        self.max_runs = max_runs
        self.lookback = lookback  # windows the pipeline asks for at each onset (detector.lookback)
        self.confirmed = False
        self.peak_q = -128
        self.pipe = None
        self.offset = 0.0

    def reset(self):
        self.confirmed = False
        self.peak_q = -128

    def infer(self, window=None):
        return -128

    def update(self, q):
        return False


def drive(rec, node, probe: Probe) -> list[tuple[float, int]]:
    """Run `rec` through `node`'s pipeline (resampled to the sensor rate, in counts) with `probe` as
    its detector; return the triggers as (segment offset s, pipeline sample)."""
    from ..firmware import pipeline as fwpipeline

    pipe = node.pipeline(probe)
    probe.pipe = pipe
    onsets = []
    for seg, counts in node.segments(rec):
        pipe.reset()
        probe.offset = seg.offset_s
        for x, y, z in counts:
            if pipe.push(x, y, z) == fwpipeline.TRIGGER:
                onsets.append((seg.offset_s, pipe.n))
    return onsets


class _Collector(Probe):
    """Keeps every `keep`-th window the pipeline asks it to score (and when it ends, and since which
    onset), the `lookback` windows scored at each onset (detector.lookback) included."""

    def __init__(self, keep: int, max_runs: int = 0, lookback: int = 0):
        super().__init__(max_runs=max_runs, lookback=lookback)
        self.keep = keep
        self.windows: list[bytes] = []
        self.times: list[int] = []
        self.onsets: list[int] = []
        self._k = 0

    def reset(self):
        super().reset()
        self._k = 0

    def infer(self, window=None):
        p = self.pipe
        if self._k % self.keep == 0:
            self.windows.append(bytes(self.buf))
            self.times.append(p.n - p.back)  # a look-back window ends before the onset it is scored at
            self.onsets.append(p.onset_n)
        self._k += 1
        return -128

    def collected(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kept windows (n, 200, 3) int8, when each ends and its trigger's onset (s, pipeline clock)."""
        from ..firmware.config import PIPELINE_RATE_HZ

        x = np.frombuffer(b"".join(self.windows), dtype=np.int8).reshape(-1, 200, 3) if self.windows else np.zeros((0, 200, 3), np.int8)
        return x, np.array(self.times, dtype=float) / PIPELINE_RATE_HZ, np.array(self.onsets, dtype=float) / PIPELINE_RATE_HZ


def _trigger_job(args) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    from .dataset import continuous_records

    scenario, seed, hours, keep, max_runs, sensor, quakes_per_hour, lookback = args
    rec = next(continuous_records(seed=seed, hours=hours, scenarios=(scenario,), sensor=sensor,
                                  quakes_per_hour=quakes_per_hour, mag_range=NODE_QUAKE_MAGS, min_snr=NODE_QUAKE_SNR))
    col = _Collector(keep, max_runs, lookback)
    drive(rec.to_record(), node_model(rec.sensor, trigger=TRAINING_TRIGGER), col)
    x, t, onset = col.collected()
    label = np.zeros(len(t), dtype=np.int8)  # 0 noise, 1 quake, -1 unclear (dropped)
    for q in rec.quakes:
        # anything that may hold quake signal: from before P to the window's length after the end
        label[(t >= q["p_s"] - 2.0) & (t <= q["end_s"] + 5.0)] = -1
        # a trigger the quake set off (P - 0.5 s or later, inside its shaking): what the node must confirm
        label[(onset >= q["p_s"] - 0.5) & (onset <= q["end_s"]) & (t >= q["p_s"] + 0.1) & (t <= q["end_s"])] = 1
    ok = label >= 0
    kinds = ["node:%s" % scenario if v == 0 else "node:quake" for v in label[ok]]
    return x[ok], label[ok].astype(np.float32), kinds, (t - onset)[ok].astype(np.float32)


NODE_SENSORS = ("adxl355", "mpu6050", "adxl345")
# The trigger of the node that makes the training windows: the bundled model's, a 1 s STA. The node
# runs a 0.5 s STA (firmware/config.py), with the bundled model calibrated for it. Trained on the
# 0.5 s STA's windows instead (the recipe otherwise unchanged: 304,345 windows, best epoch 64 of 74,
# `build-data` + `train` 25.7 min), exported (calibration chose 2 scores >= -4) and evaluated with
# that trigger, held out: 96.9% of the clearly visible quakes, 14 of 18 real test records, 0.53
# false/h of activity, 0.71 per quiet day, 1.11 s after P; the bundled weights 97.5%, 16, 0.53,
# 0.71, 0.97 s. Not adopted.
TRAINING_TRIGGER = {"sta_s": 1.0}
NODE_QUAKE_MAGS = (2.5, 7.5)
NODE_QUAKE_SNR = 4.0
# The quakes' distances are continuous_records' (log-uniform in 1-300 km, so most are near). Half of
# them uniform in 10-300 km instead (the base data set's mix: more distant P waves; a snapshot trained
# on the EPYC, 284,639 windows, 45 epochs, `build-data` + `train` 23 min): calibrated 87.9% of the
# quakes, 12 of 12 real val records at 0.50 false/h, 1.83 s after P (confirm_n 4; the committed
# weights: 88.2%, 12 of 12, 0.44/h, 1.38 s); held out 96.8%, 14 of 18 real, 0.72 false/h of activity
# (tower 2.0/h), 1.43 s after P, slower in every distance band up to 200 km (0-50 km 1.33 s against
# 1.04), real 17.7 s against 18.5: not adopted.


def _source_shas() -> dict:
    """The source that makes node windows (the recordings, the node's firmware, the replay path) by content."""
    from . import dataset

    here = Path(__file__).resolve().parent
    sources = [here / m for m in dataset._MODULES + ("node_windows.py",)]
    sources += [here.parent / "firmware" / m for m in dataset._FIRMWARE + ("pipeline.py", "trigger.py")]
    sources += [here.parent / "host_tools" / m for m in ("waveforms.py", "replay.py")]
    return {str(p.relative_to(here.parent)): dataset._sha_file(p) for p in sources}


def _cache_path(cache_dir: Path, name: str, key_doc: list) -> Path:
    """Where windows made from what `key_doc` (JSON) describes are cached."""
    key = hashlib.sha256(json.dumps(key_doc, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / ("%s-%s.npz" % (name, key))


def trigger_windows(seed: int, hours: float, keep: int = 5, max_runs: int = 0, quakes_per_hour: float = 20.0,
                    workers: int = 2, cache_dir: Path | None = None, lookback: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Windows the node scores while triggered, from every scenario: (x, y, kind, age).

    `age`: seconds from the trigger's onset to the window's end (negative: a look-back window).

    Continuous recordings (dataset.continuous_records, sensors in turn) with quakes inserted go
    through the node's own pipeline; the windows its detector would see are kept: label 0 outside
    the quakes ("node:<scenario>"), 1 after a trigger the quake set off ("node:quake"), none around
    quakes otherwise. Cached in `cache_dir` by the arguments and the source that shapes them.
    """
    return trigger_window_sets([(seed, hours)], keep, max_runs, quakes_per_hour, workers, cache_dir, lookback)[0]


def trigger_window_sets(sets: list[tuple[int, float]], keep: int = 5, max_runs: int = 0, quakes_per_hour: float = 20.0,
                        workers: int = 2, cache_dir: Path | None = None, lookback: int = 0) -> list[tuple]:
    """`trigger_windows` for several (seed, hours) sets (training's and validation's) at once.

    The recordings of every set not cached share one process pool, longest first: one set's 7
    scenarios keep 2 workers busy for 4 rounds with one idle in the last, which the other set's
    recordings fill (the 48 h training set and its 12 h val set: ~1 min less). Each set is
    assembled in its own job order and cached on its own, so the windows are the same either way.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from . import dataset

    shas = _source_shas() if cache_dir is not None else {}
    out: list = [None] * len(sets)
    todo = []  # (set index, its jobs, its cache path)
    for i, (seed, hours) in enumerate(sets):
        jobs = [(sc, seed + k, hours, keep, max_runs, NODE_SENSORS[k % len(NODE_SENSORS)], quakes_per_hour, lookback)
                for k, sc in enumerate(dataset.SCENARIOS)]
        path = None
        if cache_dir is not None:
            path = _cache_path(cache_dir, "node-windows", [jobs, shas])
            if path.is_file():
                with np.load(path) as z:
                    out[i] = (z["x"], z["y"], z["kind"], z["age"])
                continue
        todo.append((i, jobs, path))
    if todo:
        flat = [(i, j, job) for i, jobs, _ in todo for j, job in enumerate(jobs)]
        with ProcessPoolExecutor(max(1, workers), mp_context=get_context("spawn")) as ex:
            futs = {(i, j): ex.submit(_trigger_job, job) for i, j, job in sorted(flat, key=lambda f: -f[2][2])}
        for i, jobs, path in todo:  # every scenario gives a part, so none of the concatenations is empty
            parts = [futs[(i, j)].result() for j in range(len(jobs))]
            out[i] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                      np.array([k for p in parts for k in p[2]]), np.concatenate([p[3] for p in parts]))
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(path, x=out[i][0], y=out[i][1], kind=out[i][2], age=out[i][3])
    return out


def _real_trigger_job(args) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, list[str]]:
    from ..firmware.config import PIPELINE_RATE_HZ
    from ..host_tools.waveforms import Record, Segment
    from . import dataset

    cfg, recs, passes, keep, max_runs = args
    xs, ys, kinds, ages, splits = [], [], [], [], []
    for r in recs:
        for k in range(passes):
            rng = dataset._rng(cfg.seed, 5, r["index"], k)
            d, sensor, _ = dataset.real_pass(cfg, r, rng, k, mixed=k % 2 == 1)
            rec = Record(source=r["source"], rate=PIPELINE_RATE_HZ, start_utc=None, components=("Z", "N", "E"), units="gal",
                         segments=[Segment(0.0, d)], gaps=[], notes=[])
            col = _Collector(keep, max_runs)
            drive(rec, node_model(sensor, trigger=TRAINING_TRIGGER), col)
            x, t, onset = col.collected()
            label = np.zeros(len(t), dtype=np.int8)
            if r["positive"] and r["p_index"] < len(d):
                # as the data set's real windows
                p = r["p_index"] / PIPELINE_RATE_HZ
                before_s, after_s = dataset.p_trust_s(r["refined"])
                label[t >= p - before_s] = -1
                label[(onset >= p - 0.5) & (t >= p + after_s)] = 1
            ok = label >= 0
            xs.append(x[ok])
            ys.append(label[ok].astype(np.float32))
            kinds += ["node:real-quake" if v else "node:real-noise" for v in label[ok]]
            ages.append((t - onset)[ok].astype(np.float32))
            splits += [r["split"]] * int(ok.sum())
    if not xs:
        return np.zeros((0, 200, 3), np.int8), np.zeros(0, np.float32), [], np.zeros(0, np.float32), []
    return np.concatenate(xs), np.concatenate(ys), kinds, np.concatenate(ages), splits


def real_trigger_windows(data_config: dict, passes: int, keep: int = 2, max_runs: int = 0, workers: int = 2,
                         cache_dir: Path | None = None) -> dict:
    """The windows the node scores while triggered on the data set's real records: {split: (x, y, kind, age)}.

    Each real record (`dataset._real_pool` of the data set config `data_config`, OpenEEW and the
    catalogue's) is recorded again `passes` times (`dataset.real_pass`: pass 0 as it is, then other
    sensors and orientations, every other one over another background) and replayed through the
    node's pipeline as `trigger_windows` replays synthetic recordings. Label 1 ("node:real-quake")
    after a trigger set off from P - 0.5 s on, once the window ends 0.1 s after P (2 s for a P not
    refined by a pick); 0 ("node:real-noise") for noise records and windows ending well before P;
    none in between. The real windows the data set cuts at fixed offsets after P are few; these
    are the ones a node scores after its trigger, on real P waves. Cached by the data set's
    fingerprint, the arguments and the source that shapes them.
    """
    import dataclasses
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from . import dataset

    fields = {f.name for f in dataclasses.fields(dataset.DatasetConfig)}
    cfg = dataset.DatasetConfig(**{k: tuple(v) if k == "sensors" else v for k, v in data_config.items() if k in fields})
    path = None
    if cache_dir is not None:
        path = _cache_path(cache_dir, "node-real-windows", [dataset.fingerprint(cfg), passes, keep, max_runs, _source_shas()])
        if path.is_file():
            with np.load(path) as z:
                return {s: (z["x_" + s], z["y_" + s], z["kind_" + s], z["age_" + s]) for s in ("train", "val")}
    pool = [r for r in dataset._real_pool(cfg) if r["split"] in ("train", "val")]
    noise = dataset._noise_segments(pool)
    jobs = [(cfg, pool[a:a + 4], passes, keep, max_runs) for a in range(0, len(pool), 4)]
    with ProcessPoolExecutor(max(1, workers), mp_context=get_context("spawn"), initializer=dataset._init_worker,
                             initargs=(noise,)) as ex:
        parts = list(ex.map(_real_trigger_job, jobs))
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    kind = np.array([k for p in parts for k in p[2]], dtype="U24")
    age = np.concatenate([p[3] for p in parts])
    split = np.array([s for p in parts for s in p[4]])
    out = {s: (x[split == s], y[split == s], kind[split == s], age[split == s]) for s in ("train", "val")}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{"%s_%s" % (n, s): a for s, v in out.items() for n, a in zip(("x", "y", "kind", "age"), v)})
    return out
