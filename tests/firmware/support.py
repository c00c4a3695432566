"""Helpers for the portable firmware tests (they run on CPython under pytest and on MicroPython)."""

import os

_counter = [0]


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def rmtree(path):
    for name in os.listdir(path):
        p = path + "/" + name
        if os.stat(p)[0] & 0x4000:  # S_IFDIR
            rmtree(p)
        else:
            os.remove(p)
    os.rmdir(path)


def tmpdir(prefix="sm"):
    """A fresh, empty directory (no tempfile module on MicroPython)."""
    base = "/tmp"
    if not _exists(base):
        os.mkdir(base)
    while True:
        _counter[0] += 1
        path = "%s/%s-%d-%d" % (base, prefix, os.getpid() if hasattr(os, "getpid") else 0, _counter[0])
        if _exists(path):
            continue
        os.mkdir(path)
        return path


def raises(exc_type, fn, *args):
    """Call fn(*args) and return the exception it raises; fail if it raises nothing or another type."""
    try:
        fn(*args)
    except exc_type as e:
        return e
    raise AssertionError("%s not raised by %r" % (exc_type.__name__, fn))


class Lcg:
    """Deterministic integer noise, identical on CPython and MicroPython (no random module needed)."""

    def __init__(self, seed=1):
        self.state = seed & 0x7FFFFFFF

    def uniform(self, span):
        # Park-Miller minimal standard generator; split so intermediates stay small ints.
        self.state = (self.state * 48271) % 0x7FFFFFFF
        return self.state % (2 * span + 1) - span

    def noise(self, sigma):
        # Sum of 4 uniforms: near-Gaussian, integer, sigma about `sigma`.
        s = 0
        for _ in range(4):
            s += self.uniform(sigma)
        return s // 2


def synthetic_counts(n, rate, quake_at=None, quake_amp=0, noise=30, gravity=256000, seed=7):
    """(n, 3) samples in counts as a flat list: sensor noise, gravity on z, and an optional
    decaying 5 Hz wavetrain (a stand-in P/S arrival) starting at sample `quake_at`."""
    import math

    rng = Lcg(seed)
    out = []
    for i in range(n):
        q = 0
        if quake_at is not None and i >= quake_at:
            t = (i - quake_at) / rate
            q = int(quake_amp * math.sin(2 * math.pi * 5.0 * t) * math.exp(-t / 8.0) * min(1.0, t / 0.3))
        out.append(rng.noise(noise) + q)
        out.append(rng.noise(noise) + q // 2)
        out.append(rng.noise(noise) + gravity + q // 3)
    return out


class ArraySensor:
    """A sensor stand-in that serves preloaded samples in FIFO-sized bursts (no register model)."""

    name = "array"

    def __init__(self, samples, burst=32, odr_hz=100, counts_per_g=256000):
        self.samples = samples
        self.pos = 0
        self.max_burst = burst
        self.odr_hz = odr_hz
        self.counts_per_g = counts_per_g
        self.overflows = 0
        self.lost = 0

    def read_fifo(self, buf):
        left = (len(self.samples) - self.pos) // 3
        n = self.max_burst if left > self.max_burst else left
        s = self.samples
        p = self.pos
        for i in range(3 * n):
            buf[i] = s[p + i]
        self.pos = p + 3 * n
        return n
