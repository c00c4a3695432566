"""The node's detection pipeline, one sensor sample at a time: conditioner -> STA/LTA -> event.

The SAME class runs on the board, in `seismote replay`, in the virtual node and in the tests.
`push(x, y, z)` takes raw sensor counts and returns a status code; it allocates nothing. The axis
the configuration names as vertical (`sensor.vertical`) is swapped into the first channel, so the
conditioned samples and the detector window are always [vertical, horizontal, horizontal].

Until the on-node model lands, a trigger is confirmed as a detection by the rule: for
`detector.confirm_s` after the onset the trigger stays on, the shaking is sustained: at least half
of the samples since the onset, and half of the recent ones (an average over ~0.3 s), carry energy
above the on level cf >= on * LTA (a recursive STA stays high for seconds after a single knock
while its energy is gone in a fraction of that; an earthquake keeps shaking), and the event's PGA reaches
`detector.min_pga_gal`. `score` is then the peak STA/LTA ratio of the event.

With a `detector` (firmware/detector.py: the int8 TFLite model), the model confirms instead of the
rule: while an event is open and not yet confirmed (for at most `detector.max_runs` inferences
when that is set), every `detector.stride` samples the last
WINDOW conditioned samples are copied out of the ring, scaled to int8 (detector_input.quantize)
into the detector's buffer and scored; DETECTION = the detector's hysteresis rule confirms and the
PGA reaches `detector.min_pga_gal`. At the onset itself the detector first scores `detector.lookback`
windows, ending at the onset and at each of the lookback - 1 strides before it (all in the ring
already): the STA rises through its on level a few tenths of a second after the P wave arrives,
and a window the model is already sure of then counts at once. `score` is then the model's highest score of the event (0..1)
once the model has run (so at a trigger it is still the peak STA/LTA ratio). Samples without an
inference allocate nothing, as before; an inference allocates a little on the board (detector.py,
and the two memoryviews of the window copy).
"""

from array import array

from .compat import const
from .conditioner import Conditioner
from .config import PIPELINE_RATE_HZ
from .detector_input import quantize
from .features import G_GAL, EventFeatures
from .trigger import RATIO_ONE, StaLta

NONE = const(0)
TRIGGER = const(1)  # STA/LTA onset
DETECTION = const(2)  # trigger confirmed as an earthquake
END = const(3)  # a confirmed event is over: features are final
REJECTED = const(4)  # a trigger ended without confirmation
_RECENT_K = const(4)
RING_S = const(8)  # seconds of conditioned waveform kept for snippets and the detector window


class Pipeline:
    def __init__(self, cfg, counts_per_g, sensor_rate_hz, detector=None):
        """`cfg`: a validated node configuration (config.validate); `detector`: a detector.Detector or None."""
        decimation = sensor_rate_hz // PIPELINE_RATE_HZ
        if decimation < 1 or decimation * PIPELINE_RATE_HZ != sensor_rate_hz:
            raise ValueError("Invalid sensor rate: %s Hz (needs a multiple of %d Hz)" % (sensor_rate_hz, PIPELINE_RATE_HZ))
        t = cfg["trigger"]
        d = cfg["detector"]
        fs = PIPELINE_RATE_HZ
        self.rate = fs
        self.vaxis = "xyz".index(cfg["sensor"]["vertical"])  # swapped into x: the vertical goes first
        self.sensor_rate = sensor_rate_hz
        self.counts_per_g = counts_per_g
        per_gal = counts_per_g / G_GAL
        self.cond = Conditioner(decimation)
        self.trig = StaLta(
            max(1, int(t["sta_s"] * fs + 0.5)),
            int(t["lta_s"] * fs + 0.5),
            int(t["on"] * RATIO_ONE + 0.5),
            int(t["off"] * RATIO_ONE + 0.5),
            int(t["dead_time_s"] * fs + 0.5),
            int(t["min_lta_gal"] * per_gal + 0.5),
        )
        # A sample counts as shaking when cf is above the on level. Lower levels let the decaying
        # tail of a knock through the high-pass count as shaking (benchmarks: a 0.1 s 30-gal knock
        # confirmed 20/20 times at the off level, 0/20 here; OpenEEW visible events 92% -> 88%).
        self.busy16 = self.trig.on16
        self.feat = EventFeatures()
        self.confirm_n = int(d["confirm_s"] * fs + 0.5)
        self.min_pga = int(d["min_pga_gal"] * per_gal + 0.5)
        self.max_event_n = int(t["max_event_s"] * fs + 0.5)
        self.ring_n = RING_S * fs
        self.ring = array("i", [0] * (3 * self.ring_n))
        self.detector = detector
        if detector is not None:
            if detector.window > self.ring_n:
                raise ValueError("detector window of %d samples exceeds the %d-sample ring" % (detector.window, self.ring_n))
            if detector.window + (detector.lookback - 1) * detector.stride > self.ring_n:
                raise ValueError("detector look-back of %d windows exceeds the %d-sample ring" % (detector.lookback, self.ring_n))
            self.win = array("i", [0] * (3 * detector.window))  # conditioned counts of the window
        self.reset()

    def reset(self):
        """Forget all signal state (after a gap in the data or a sensor re-initialisation)."""
        self.cond.reset()
        self.trig.reset()
        self.n = 0  # pipeline-rate samples since reset
        self.head = 0  # next ring slot
        self.in_event = False
        self.confirmed = False
        self.onset_n = -1
        self.detect_n = -1
        self.peak_ratio = 0
        self.busy = 0  # samples since the onset with cf above the off level
        self.recent = 0  # moving average of that flag, 256 = always (time constant 2**_RECENT_K samples)
        self.due = 0  # samples until the next inference
        self.runs = 0  # inferences in this event
        self.back = 0  # the window being scored ends this many samples before the latest one
        if self.detector is not None:
            self.detector.reset()

    def push(self, x, y, z):
        v = self.vaxis
        if v == 2:
            x, z = z, x
        elif v == 1:
            x, y = y, x
        if not self.cond.push(x, y, z):
            return NONE
        a = self.cond.y
        b = self.cond.band
        ring = self.ring
        h = self.head
        ring[h] = a[0]
        ring[h + 1] = a[1]
        ring[h + 2] = a[2]
        h += 3
        self.head = 0 if h >= 3 * self.ring_n else h
        self.n += 1
        cf = (b[0] if b[0] >= 0 else -b[0]) + (b[1] if b[1] >= 0 else -b[1]) + (b[2] if b[2] >= 0 else -b[2])
        edge = self.trig.push(cf)
        if edge == 1:
            self.in_event = True
            self.confirmed = False
            self.onset_n = self.n
            self.peak_ratio = self.trig.ratio
            self.busy = 1
            self.recent = 256
            self.feat.start()
            self.feat.update(a)
            det = self.detector
            if det is not None:
                det.reset()
                self.due = det.stride
                self.runs = 0
                k = det.lookback  # oldest first; a confirmation here is reported on the next sample
                while k > 0 and (not det.max_runs or self.runs < det.max_runs):
                    k -= 1
                    self._score(det, k * det.stride)
            return TRIGGER
        if not self.in_event:
            return NONE
        self.feat.update(a)
        recent = self.recent
        recent -= recent >> _RECENT_K
        if (cf << 4) // self.trig.level >= self.busy16:
            self.busy += 1
            recent += 1 << (8 - _RECENT_K)
        self.recent = recent
        if self.trig.ratio > self.peak_ratio:
            self.peak_ratio = self.trig.ratio
        if edge == -1 or self.feat.samples >= self.max_event_n:
            self.trig.force_off()
            self.in_event = False
            return END if self.confirmed else REJECTED
        det = self.detector
        if det is not None:
            if self.confirmed:
                return NONE
            self.due -= 1
            if self.due <= 0 and (not det.max_runs or self.runs < det.max_runs):
                self.due = det.stride
                self._score(det, 0)
            if det.confirmed and self.feat.pga_counts() >= self.min_pga:
                self.confirmed = True
                self.detect_n = self.n
                return DETECTION
            return NONE
        n = self.feat.samples
        if not self.confirmed and n > self.confirm_n and 2 * self.busy >= n and recent >= 128 and self.feat.pga_counts() >= self.min_pga:
            self.confirmed = True
            self.detect_n = self.n
            return DETECTION
        return NONE

    def event(self):
        """The open or last event as a dict (allocates: call off the per-sample path)."""
        e = self.feat.summary(self.counts_per_g, self.rate)
        e["onset_s"] = self.onset_n / self.rate
        det = self.detector
        e["score"] = det.score(det.peak_q) if det is not None and self.runs else self.peak_ratio / RATIO_ONE
        e["confirmed"] = self.confirmed
        return e

    def _score(self, det, back):
        """One inference on the window ending `back` samples ago, fed to the detector's rule."""
        self.back = back
        self.window(self.win, det.window, back)
        quantize(self.win, det.window, det.buf)
        det.update(det.infer())
        self.runs += 1

    def window(self, out, n, back=0):
        """Copy `n` conditioned samples ending `back` samples ago (oldest first, xyz interleaved) into array `out`."""
        if n + back > self.ring_n:
            raise ValueError("window of %d samples, %d back, exceeds the %d-sample ring" % (n, back, self.ring_n))
        size = 3 * self.ring_n
        j = self.head - 3 * (n + back)
        if j < 0:
            j += size
        # two block copies, not a loop over 3n items (600 bytecode rounds per inference on the
        # board); each memoryview is a small heap object, the samples are not copied through one
        k = 3 * n
        first = size - j if size - j < k else k
        dst = memoryview(out)
        src = memoryview(self.ring)
        dst[0:first] = src[j : j + first]
        if first < k:
            dst[first:k] = src[0 : k - first]
