"""The detector's input scaling (firmware/detector_input.py) on both interpreters: the window
quantizer against exact arithmetic, and no allocation at a 20-bit peak.
"""

import sys
from array import array

from seismote.firmware.detector_input import WINDOW, quantize

MICROPYTHON = sys.implementation.name == "micropython"


def _window(peak, seed):
    """3*WINDOW ints in [-peak, peak] (-peak itself included), a decaying burst over small noise."""
    out = array("i", [0] * (3 * WINDOW))
    x = seed
    for i in range(3 * WINDOW):
        x = (1103515245 * x + 12345) & 0x7FFFFFFF
        amp = peak >> (i // 60)  # an octave per 20 samples: the whole dynamic range
        out[i] = (x % (2 * amp + 1)) - amp if amp else 0
    out[7] = -peak
    return out


def _exact(v, peak):
    """round(|v| * 127 / peak), halves away from zero, with the sign of v."""
    q = (abs(v) * 254 + peak) // (2 * peak)
    return q if v >= 0 else -q


def test_quantize_matches_exact_rounding_and_returns_the_peak():
    for peak in (1, 3, 100, 5000, 131071):
        src = _window(peak, peak)
        dst = array("b", bytes(3 * WINDOW))
        assert quantize(src, WINDOW, dst) == peak
        assert dst[7] == -127
        for i in range(3 * WINDOW):
            assert dst[i] == _exact(src[i], peak), (peak, i, src[i], dst[i])


def test_all_zero_window_gives_zeros():
    dst = array("b", [5] * (3 * WINDOW))
    assert quantize(array("i", [0] * (3 * WINDOW)), WINDOW, dst) == 1
    assert max(dst) == 0 and min(dst) == 0


def test_a_20_bit_peak_allocates_nothing():
    import gc

    peak = 600000  # an ADXL355 near full scale: |v| * 127 must stay a small int on a 32-bit board
    src = _window(peak, 3)
    dst = array("b", bytes(3 * WINDOW))
    gc.collect()
    if MICROPYTHON:
        import micropython

        m0 = gc.mem_alloc()
        micropython.heap_lock()
        try:
            got = quantize(src, WINDOW, dst)
        finally:
            micropython.heap_unlock()
        assert gc.mem_alloc() == m0
    else:
        got = quantize(src, WINDOW, dst)
    assert got == peak
    for i in range(3 * WINDOW):
        assert dst[i] == _exact(src[i], peak), (i, src[i], dst[i])
