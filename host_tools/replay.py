"""Replay recorded waveforms through the node's own detection pipeline.

The record is converted the way the node would see it: resampled to the sensor's output data rate,
scaled to the sensor's counts, clipped at its full scale and rounded to integers; then every sample
goes through `seismote.firmware.pipeline.Pipeline.push`, the code that runs on the board. The
conditioner's first step, the boxcar sum of each `odr / 50` sensor samples and its floor division,
is done here in NumPy (`NodeModel.samples`), and the pipeline runs at 50 Hz: the same integers as
on the board, with up to 5x fewer Python calls (tests/test_replay.py checks the two agree). Each
contiguous segment (see waveforms.py for the gap rules) restarts the pipeline, as a node does after
losing data, so its STA/LTA re-warms before it can trigger again.

With a model (`NodeModel.model_dir`, by default the artifact in firmware/model/), the pipeline's
detector is the firmware's own `detector.Detector` driving the TFLite Micro kernels of the
tflite-micro package through the `microlite` API (model_export/tflm.py), as it drives the native
module on the board: a detection is then a trigger the model confirmed, and `score` is the model's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..firmware import config as fwconfig
from ..firmware import detector as fwdetector
from ..firmware import pipeline as fwpipeline
from ..firmware.features import G_GAL
from .waveforms import Record


MODEL_DIR = Path(fwconfig.__file__).resolve().with_name("model")  # the committed artifact


class ModelUnavailable(RuntimeError):
    """The detector model cannot be used (artifact missing or invalid, tflite-micro not installed)."""


def load_detector(model_dir: Path, sensor: str | None = None) -> fwdetector.Detector:
    """The firmware's Detector over the host TFLM kernels, from model.tflite + model.json in `model_dir`,
    with the decision rule for `sensor` (fwdetector.rule_for)."""
    model_dir = Path(model_dir)
    try:
        meta = json.loads((model_dir / "model.json").read_text())
    except (OSError, ValueError) as e:
        raise ModelUnavailable("cannot read %s: %s" % (model_dir / "model.json", e)) from e
    try:
        from ..model_export.tflm import TflmError, microlite
    except ImportError as e:
        raise ModelUnavailable("tflite-micro is not installed (pip install 'seismote[model]'): %s" % e) from e
    try:
        return fwdetector.load(microlite, meta, str(model_dir / "model.tflite"), sensor)
    except (OSError, ValueError, KeyError, TflmError) as e:
        raise ModelUnavailable("invalid model in %s: %s" % (model_dir, e)) from e


@dataclass
class NodeModel:
    """What the replay needs to know of the node: its sensor, its configuration, its detector model."""

    cfg: dict
    model_dir: Path | None = None  # None: detections by the rule
    _detector: Any = field(default=None, init=False, repr=False)

    def detector(self) -> fwdetector.Detector | None:
        """The node's detector (loaded once; the pipeline resets it for every record)."""
        if self.model_dir is None:
            return None
        if self._detector is None:
            self._detector = load_detector(self.model_dir, self.cfg["sensor"]["type"])
        return self._detector

    @property
    def sensor_rate(self) -> int:
        return int(self.cfg["sensor"]["odr_hz"])

    @property
    def counts_per_g(self) -> int:
        s = self.cfg["sensor"]
        return fwconfig.COUNTS_PER_G[s["type"]][s["range_g"]]

    @property
    def full_scale(self) -> int:
        return int(self.cfg["sensor"]["range_g"] * self.counts_per_g)

    def to_counts(self, gal: np.ndarray) -> np.ndarray:
        """Counts on the node's (x, y, z) axes from data with the vertical first, mounted as the config
        says: the vertical on `sensor.vertical` (swapped with x; the pipeline swaps it back)."""
        v = "xyz".index(self.cfg["sensor"]["vertical"])
        if v:
            gal = gal.copy()
            gal[:, [0, v]] = gal[:, [v, 0]]
        counts = np.rint(gal * (self.counts_per_g / G_GAL))
        return np.clip(counts, -self.full_scale, self.full_scale).astype(np.int64)

    @property
    def decimation(self) -> int:
        return self.sensor_rate // fwconfig.PIPELINE_RATE_HZ

    def pipeline(self, detector=None) -> fwpipeline.Pipeline:
        """The node's Pipeline as the host runs it: at the pipeline rate, fed by `samples`."""
        return fwpipeline.Pipeline(self.cfg, self.counts_per_g, fwconfig.PIPELINE_RATE_HZ, detector=detector)

    def samples(self, gal: np.ndarray) -> Iterator[tuple[int, int, int]]:
        """The conditioner's input at the pipeline rate from `gal` at the sensor rate, one sample at a
        time as Python ints for `pipeline().push`: the sum of each `decimation` sensor samples in
        counts, floor-divided by it (conditioner.py's boxcar; a trailing partial sum is never used
        on the board either). Three flat lists zipped: an (n, 3) tolist makes a list per sample,
        which the cyclic GC then rescans (the node-window replay took 1.4x as long with it)."""
        counts = self.to_counts(gal)
        d = self.decimation
        if d > 1:
            counts = counts[: len(counts) // d * d].reshape(-1, d, 3).sum(axis=1) // d
        return zip(*counts.T.tolist())

    def segments(self, rec: Record) -> Iterator[tuple[Any, Iterator[tuple[int, int, int]]]]:
        """Each contiguous segment of `rec` with its `samples`, the record resampled to the sensor rate
        first (a segment restarts the pipeline: the caller resets it)."""
        rec = rec.resampled(self.sensor_rate) if abs(rec.rate - self.sensor_rate) > 1e-9 else rec
        for seg in rec.segments:
            yield seg, self.samples(_three_axes(seg.data))


def _three_axes(data: np.ndarray) -> np.ndarray:
    if data.shape[1] == 3:
        return data
    # A single (vertical) component: the node still sees three axes, the others quiet.
    out = np.zeros((data.shape[0], 3))
    out[:, 0] = data[:, 0]
    return out


def replay_record(rec: Record, node: NodeModel, ends: bool = False) -> Iterator[dict]:
    """Yield one dict per trigger and detection (and per event end if `ends`) in time order."""
    pipe = node.pipeline(node.detector())
    for seg, counts in node.segments(rec):
        pipe.reset()
        yield from _run_segment(rec, seg, pipe, counts, ends)


def _run_segment(rec: Record, seg, pipe, counts: Iterator[tuple[int, int, int]], ends: bool) -> Iterator[dict]:
    fs = pipe.rate
    push = pipe.push
    for x, y, z in counts:
        status = push(x, y, z)
        if not status:
            continue
        if status == fwpipeline.TRIGGER:
            kind = "trigger"
        elif status == fwpipeline.DETECTION:
            kind = "detection"
        elif ends:
            kind = "end" if status == fwpipeline.END else "rejected"
        else:
            continue
        ev = pipe.event()
        t = seg.offset_s + pipe.n / fs
        out = {
            "source": rec.source,
            "t": round(t, 3),
            "utc": None if rec.start_utc is None else (rec.start_utc + timedelta(seconds=t)).isoformat(),
            "event": kind,
            "pga_gal": ev["pga_gal"],
            "score": ev["score"],
            "onset_t": round(seg.offset_s + ev["onset_s"], 3),
            "ratio": pipe.trig.ratio / 16,
        }
        if kind != "trigger":
            out.update(pgv_cms=ev["pgv_cms"], cav_cms=ev["cav_cms"], duration_s=ev["duration_s"])
        yield out
