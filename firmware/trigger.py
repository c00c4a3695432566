"""Recursive STA/LTA trigger in integer fixed point, with on/off thresholds and dead time.

The characteristic function is the L1 amplitude cf = |b_x| + |b_y| + |b_z| of the trigger-band
signal (an amplitude ratio: robust to single spikes, and cf stays a small int where cf**2 would
not). Averages are kept as accumulators  A += cf - A // n  so that A ~ n * mean(cf); this is the
recursion of obspy.signal.trigger.recursive_sta_lta (c = 1/n) without losing the fraction that
plain integer means would. Ratios are in 1/16ths (RATIO_ONE = 16).

While the trigger is on, the LTA is frozen so that a long earthquake does not raise its own
background and switch itself off. After it switches off, no new onset is declared for the dead
time. No onset is declared until the LTA has seen a full window (warm-up).
"""

from .compat import const

RATIO_ONE = const(16)
_CF_MAX = const(1 << 20)  # accumulators stay below 2**30 (MicroPython small int) for n <= 1023


class StaLta:
    def __init__(self, nsta, nlta, on16, off16, dead_n, lta_floor=1):
        if not (1 <= nsta < nlta <= 1023):
            raise ValueError("Invalid STA/LTA lengths: %d/%d samples (need 1 <= sta < lta <= 1023)" % (nsta, nlta))
        if not (RATIO_ONE <= off16 < on16):
            raise ValueError("Invalid thresholds: on %d/16, off %d/16" % (on16, off16))
        self.nsta = nsta
        self.nlta = nlta
        self.on16 = on16
        self.off16 = off16
        self.dead_n = dead_n
        self.lta_floor = max(1, lta_floor)
        self.reset()

    def reset(self):
        self.sta = 0  # accumulators, ~n * mean(cf)
        self.lta = 0
        self.ratio = 0  # latest STA/LTA in 1/16ths
        self.level = self.lta_floor  # latest LTA mean (floored), cf units
        self.active = False
        self.seen = 0  # samples since reset (saturates at nlta)
        self.hold = 0  # dead-time samples left

    def push(self, cf):
        """Add one characteristic-function value; return 1 at an onset, -1 when it switches off, else 0."""
        if cf > _CF_MAX:
            cf = _CF_MAX
        self.sta += cf - self.sta // self.nsta
        if not self.active:
            self.lta += cf - self.lta // self.nlta
        lta = self.lta // self.nlta
        if lta < self.lta_floor:
            lta = self.lta_floor
        self.level = lta
        r = ((self.sta // self.nsta) << 4) // lta
        self.ratio = r
        if self.seen < self.nlta:
            self.seen += 1
            return 0
        if self.active:
            if r < self.off16:
                self.active = False
                self.hold = self.dead_n
                return -1
            return 0
        if self.hold:
            self.hold -= 1
            return 0
        if r >= self.on16:
            self.active = True
            return 1
        return 0

    def force_off(self):
        """End an active trigger from outside (maximum event length reached)."""
        if self.active:
            self.active = False
            self.hold = self.dead_n
