"""Integer signal conditioning: decimation to the pipeline rate, gravity/DC removal, trigger band.

Everything is small-int arithmetic (MicroPython on ESP32 boxes floats and longs on the heap), and
all state lives in preallocated arrays, so `push` allocates nothing.

Per axis, at the sensor rate:   s += x                      (boxcar anti-alias + decimation by D)
every D samples, at 50 Hz:      v = s // D
  DC/gravity removal:           y = v - dc >> K1 ; dc += y  (one-pole high-pass, ~0.06 Hz at K1=7)
  trigger band:                 b = y - lp >> K2 ; lp += b  (second high-pass, ~1 Hz at K2=3)
`y` is the waveform (PGA, PGV, detector input); `b` feeds the STA/LTA characteristic function.
"""

from array import array

from .compat import const

_K1 = const(7)  # DC removal corner: fs * 2**-K1 / (2 pi) = 0.062 Hz at 50 Hz
_K2 = const(3)  # trigger band corner: about 1 Hz at 50 Hz (cuts building sway and tilt)


class Conditioner:
    def __init__(self, decimation):
        if decimation < 1:
            raise ValueError("Invalid decimation: %d" % decimation)
        self.decimation = decimation
        self._sum = array("i", (0, 0, 0))
        self._dc = array("i", (0, 0, 0))  # DC estimate << K1
        self._lp = array("i", (0, 0, 0))  # trigger-band low-pass << K2
        self.y = array("i", (0, 0, 0))  # latest conditioned sample (counts)
        self.band = array("i", (0, 0, 0))  # latest trigger-band sample (counts)
        self._phase = 0
        self._primed = False

    def reset(self):
        for i in range(3):
            self._sum[i] = self._dc[i] = self._lp[i] = self.y[i] = self.band[i] = 0
        self._phase = 0
        self._primed = False

    def push(self, x, y, z):
        """Add one sensor sample; return True when a new pipeline-rate sample is in `y`/`band`."""
        s = self._sum
        s[0] += x
        s[1] += y
        s[2] += z
        self._phase += 1
        if self._phase < self.decimation:
            return False
        self._phase = 0
        d = self.decimation
        dc = self._dc
        lp = self._lp
        out = self.y
        band = self.band
        if not self._primed:
            # Start the DC estimate at the first value so gravity does not ring for minutes.
            for i in range(3):
                dc[i] = (s[i] // d) << _K1
            self._primed = True
        for i in range(3):
            v = s[i] // d
            s[i] = 0
            w = v - (dc[i] >> _K1)
            dc[i] += w
            out[i] = w
            b = w - (lp[i] >> _K2)
            lp[i] += b
            band[i] = b
        return True
