"""Event features accumulated sample by sample while an event is open: PGA, PGV, CAV.

Integers only on the per-sample path; physical units are computed once, in `summary()`.
PGA and PGV are the largest single-component peaks (the usual engineering convention), CAV is
the cumulative absolute acceleration of the component with the largest CAV. Velocity is a leaky
integral of the conditioned acceleration (leak time constant 2**7 samples = 2.6 s at 50 Hz) so
that an offset cannot make it grow without bound.
"""

from array import array

from .compat import const

_LEAK = const(7)
_CARRY = const(1 << 24)  # CAV sums carry into a high word here, so no accumulator leaves small-int range
G_GAL = 980.665


class EventFeatures:
    def __init__(self):
        self.peak = array("i", (0, 0, 0))  # |a| max per axis, counts
        self.vel = array("i", (0, 0, 0))  # leaky velocity, counts * samples
        self.vpeak = array("i", (0, 0, 0))
        self.cav_lo = array("i", (0, 0, 0))
        self.cav_hi = array("i", (0, 0, 0))
        self.samples = 0

    def start(self):
        for i in range(3):
            self.peak[i] = self.vel[i] = self.vpeak[i] = self.cav_lo[i] = self.cav_hi[i] = 0
        self.samples = 0

    def update(self, a):
        """Add one conditioned 3-axis sample `a` (array of counts)."""
        peak = self.peak
        vel = self.vel
        vpeak = self.vpeak
        lo = self.cav_lo
        for i in range(3):
            v = a[i]
            if v < 0:
                v = -v
            if v > peak[i]:
                peak[i] = v
            lo[i] += v
            if lo[i] >= _CARRY:
                lo[i] -= _CARRY
                self.cav_hi[i] += 1
            w = vel[i] + a[i]
            w -= w >> _LEAK
            vel[i] = w
            if w < 0:
                w = -w
            if w > vpeak[i]:
                vpeak[i] = w
        self.samples += 1

    def pga_counts(self):
        p = self.peak
        return max(p[0], p[1], p[2])

    def summary(self, counts_per_g, rate_hz):
        """PGA (gal), PGV (cm/s), CAV (cm/s) and duration (s), rounded for reports."""
        per_gal = counts_per_g / G_GAL
        cav = 0.0
        for i in range(3):
            c = (self.cav_hi[i] * _CARRY + self.cav_lo[i]) / per_gal / rate_hz
            if c > cav:
                cav = c
        return {
            "pga_gal": round(self.pga_counts() / per_gal, 3),
            "pgv_cms": round(max(self.vpeak[0], self.vpeak[1], self.vpeak[2]) / per_gal / rate_hz, 4),
            "cav_cms": round(cav, 3),
            "duration_s": round(self.samples / rate_hz, 2),
        }
