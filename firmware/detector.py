"""The on-node earthquake detector: the int8 TFLite model in TFLite Micro, plus a decision rule.

The backend is a module with the `microlite` API (tensorflow-micropython-examples):
`backend.interpreter(model, arena_size, input_callback, output_callback)` whose `invoke()` calls
`input_callback(interp)`, runs the model, calls `output_callback(interp)` and returns 0 (1 on a
failure); the callbacks reach the tensors through `interp.getInputTensor(0).setValue(i, v)` and
`interp.getOutputTensor(0).getValue(0)`. On the board the backend is the native `microlite`
module; on the host it is `seismote.model_export.tflm.microlite`, the same calls over the
tflite-micro package's TFLM kernels. This file never imports either: the caller passes it in.

    det = Detector(model_bytes, arena_bytes, microlite, on_q, off_q, confirm_n)
    quantize(src, n, det.buf)            # fill the int8 window (detector_input)
    q = det.infer()                      # int8 output, -128..127: the quantized logit
    if det.update(q): ...                # True once: confirmed
    det.score(q)                         # as a probability, 0..1 (float: off the per-sample path)

The model's output is the LOGIT, int8 (logit = (q - out_zero) * out_scale, model.json "output"),
not the sigmoid: int8 LOGISTIC has a fixed scale of 1/256, so every score above 0.996 is the same
q = 127, and the thresholds a node needs to keep false detections rare sit right there.

Decision rule (hysteresis), all in int8 score units so the node never touches a float:
`confirm_n` consecutive scores >= `on_q` confirm; a score below `off_q` resets the count; a
score between the two holds it. `reset()` starts a new event. At a trigger's onset the pipeline
first asks for `lookback` scores, of the windows ending at the onset and at each of the
lookback - 1 strides before it (firmware/pipeline.py). The pipeline asks for at most
`max_runs` inferences per event (0 = while the trigger is on): a warning is worth most within
seconds of the trigger, while the middle of a long disturbance (a truck passing for half a
minute) looks like the middle of an earthquake. model.json's `decision` sets all of these (the
calibration in model_export/evaluate.py chooses them); `decision_by_sensor`, where the export
calibrated one per sensor (`--per-sensor`), holds the rule for each: an MPU6050 or ADXL345 is
13-19x noisier than the ADXL355, so the same scores come with other false-detection rates on it.

Memory: `buf` (WINDOW * CHANNELS bytes) and the arena are allocated once, here. An inference
allocates a little on the board: microlite's getInputTensor / getOutputTensor each create a small
tensor object per call (2 per inference); the 600 setValue calls and the int results allocate
nothing. The pipeline calls `infer` only every `stride` samples while a trigger is on, never on
the other samples.
"""

from array import array

from .compat import const
from .crc32 import crc32
from .detector_input import CHANNELS, WINDOW

Q_MIN = const(-128)


def score_float(q, scale, zero):
    """The int8 logit as a probability in 0..1 (off the per-sample path: floats allocate on the board)."""
    import math

    z = (q - zero) * scale
    return 1.0 / (1.0 + math.exp(-z)) if z > -50 else 0.0


def score_q(score, scale, zero):
    """The lowest int8 output whose probability is >= `score` (host and config side)."""
    for q in range(-128, 128):
        if score_float(q, scale, zero) >= score:
            return q
    return 127


class DetectorError(OSError):
    """TFLite Micro refused the model or failed to run it."""


class Detector:
    def __init__(self, model, arena_bytes, backend, on_q, off_q, confirm_n=2, stride=5, max_runs=0, window=WINDOW,
                 out_scale=1.0, out_zero=0, lookback=0):
        if not (-128 <= off_q <= on_q <= 127):
            raise ValueError("Invalid thresholds: on %d, off %d (need -128 <= off <= on <= 127)" % (on_q, off_q))
        if confirm_n < 1:
            raise ValueError("Invalid confirm_n: %d" % confirm_n)
        if stride < 1:
            raise ValueError("Invalid stride: %d" % stride)
        if max_runs < 0:
            raise ValueError("Invalid max_runs: %d" % max_runs)
        if lookback < 0:
            raise ValueError("Invalid lookback: %d" % lookback)
        self.on_q = on_q
        self.off_q = off_q
        self.confirm_n = confirm_n
        self.stride = stride  # pipeline samples between inferences while a trigger is on
        self.max_runs = max_runs  # inferences per event, 0 = while the trigger is on
        self.lookback = lookback  # windows scored at the onset, ending at it and before it
        self.window = window
        self.out_scale = out_scale  # logit = (q - out_zero) * out_scale
        self.out_zero = out_zero
        self.size = window * CHANNELS
        self.buf = array("b", bytes(self.size))  # the int8 window the next inference reads
        self.q = Q_MIN  # latest output
        self.inferences = 0
        self._interp = backend.interpreter(model, arena_bytes, self._input, self._output)
        self.reset()

    def reset(self):
        """Start a new event: forget the run of high scores."""
        self.run = 0
        self.confirmed = False
        self.peak_q = Q_MIN

    def _input(self, interp):
        t = interp.getInputTensor(0)
        buf = self.buf
        for i in range(self.size):
            t.setValue(i, buf[i])

    def _output(self, interp):
        self.q = interp.getOutputTensor(0).getValue(0)

    def score(self, q):
        """Output `q` as a probability (floats: call off the per-sample path)."""
        return score_float(q, self.out_scale, self.out_zero)

    def infer(self, window=None):
        """Run the model on `window` (an int8 array of WINDOW * CHANNELS) or on `buf`; return the int8 score."""
        if window is not None and window is not self.buf:
            buf = self.buf
            for i in range(self.size):
                buf[i] = window[i]
        if self._interp.invoke() != 0:
            raise DetectorError("TFLite Micro failed to run the detector model")
        self.inferences += 1
        return self.q

    def update(self, q):
        """Feed one score to the decision rule; True exactly once, when the event is confirmed."""
        if q > self.peak_q:
            self.peak_q = q
        if q >= self.on_q:
            self.run += 1
        elif q < self.off_q:
            self.run = 0
        if not self.confirmed and self.run >= self.confirm_n:
            self.confirmed = True
            return True
        return False


def selftest(det, golden_path):
    """Run the golden vectors (golden.bin from the export) through `det`; return (vectors, mismatches).

    File: b"SMGV", then little-endian u16 count, window, channels; then per vector window*channels
    int8 inputs and the int8 output TFLM gave on the host. Read straight into det.buf.
    """
    import struct

    with open(golden_path, "rb") as f:
        head = f.read(10)
        if len(head) != 10 or head[:4] != b"SMGV":
            raise ValueError("Invalid golden file: %s" % golden_path)
        n, w, c = struct.unpack("<HHH", head[4:])
        if w * c != det.size:
            raise ValueError("Invalid golden file: %dx%d vectors for a %d-value input" % (w, c, det.size))
        out = bytearray(1)
        bad = 0
        for _ in range(n):
            if f.readinto(det.buf) != det.size or f.readinto(out) != 1:
                raise ValueError("Invalid golden file: truncated %s" % golden_path)
            want = out[0] - 256 if out[0] > 127 else out[0]
            if det.infer() != want:
                bad += 1
    return n, bad


GOLDEN_SUFFIX = ".golden.bin"  # the node keeps the export's golden.bin beside the model as <model stem> + this


def verify(det, golden_path):
    """The boot check of this image's TFLite Micro kernels: the export's golden vectors through `det`.

    The decision thresholds were calibrated on the host's TFLM outputs, so they hold on the board
    only if its kernels (ESP-NN's optimised ones, another TFLM version) give the same int8 outputs.
    Returns how many vectors matched (0: no golden file beside the model, nothing checked); raises
    DetectorError when any differs. Leaves the detector as loaded (no event, no inferences counted).
    """
    try:
        n, bad = selftest(det, golden_path)
    except DetectorError:
        raise
    except OSError:
        return 0
    det.inferences = 0
    det.reset()
    if bad:
        raise DetectorError("%d of %d golden vectors give other scores on this image's TFLite Micro kernels than at export" % (bad, n))
    return n


def rule_for(meta, sensor=None):
    """model.json's decision rule for `sensor` (config sensor.type): its own where calibrated, else `decision`."""
    by_sensor = meta.get("decision_by_sensor") or {}
    return by_sensor.get(sensor) or meta["decision"]


def load(backend, meta, model_path, sensor=None):
    """A Detector from the artifact: `meta` is the parsed model.json, `model_path` the .tflite file,
    `sensor` the node's sensor type (which of the model's decision rules it runs: `rule_for`).

    Reads the model into one preallocated bytearray (no intermediate copies) and checks that it is
    whole (size and CRC-32 from model.json) and that the artifact was built for this firmware's window.
    """
    inp = meta["input"]
    if inp["window"] != WINDOW or inp["channels"] != CHANNELS or inp["zero_point"] != 0:
        raise ValueError("Invalid model: input %dx%d zero point %d (this firmware feeds %dx%d, zero point 0)" % (
            inp["window"], inp["channels"], inp["zero_point"], WINDOW, CHANNELS))
    d = rule_for(meta, sensor)
    model = bytearray(meta["model_bytes"])
    with open(model_path, "rb") as f:
        n = f.readinto(model)
        longer = f.read(1)
    if n != len(model) or longer:
        raise ValueError("Invalid model: %s has %s bytes, model.json says %d" % (model_path, "more than %d" % n if longer else n, len(model)))
    # TFLite Micro trusts the flatbuffer: a flipped bit on flash or a half-copied upload can crash
    # it or silently change the scores, so the bytes must be the ones the export measured.
    want = meta.get("model_crc32")
    if want is None:
        raise ValueError("Invalid model: model.json has no model_crc32 (export it again)")
    crc = crc32(model)
    if crc != want:
        raise ValueError("Invalid model: %s has CRC-32 %08x, model.json says %08x (corrupt, or not this model.json's model)"
                         % (model_path, crc, want))
    out = meta["output"]
    if out.get("activation") != "logit":
        raise ValueError("Invalid model: output %r (this firmware reads an int8 logit)" % out.get("activation"))
    return Detector(model, meta["arena_bytes"], backend, d["on_q"], d["off_q"], d["confirm_n"], d["stride_samples"],
                    d.get("max_runs", 0), WINDOW, out["scale"], out["zero_point"], d.get("lookback", 0))
