"""The detector's input: the last WINDOW conditioned samples, scaled to int8 by the window's peak.

One implementation for the node (filling the TFLM input tensor), replay, and training (the data
set builder calls `quantize` on the same conditioned counts, so what the model learns is exactly
what the node feeds it). Per-window peak scaling keeps the waveform's shape, which is what tells an
earthquake's P wave from a door or a truck; absolute amplitude is judged separately by the
pipeline's PGA rule. Integer arithmetic only, no allocation.
"""

from .compat import const

WINDOW = const(200)  # samples at the 50 Hz pipeline rate: 4 s
CHANNELS = const(3)


def quantize(src, n, dst):
    """Scale 3*n interleaved counts in `src` into int8 values in `dst` (array('b') or bytearray).

    Returns the window's peak |count| (>= 1). Rounding is half away from zero, symmetric for
    negative values, so the host (numpy) and the node give bit-identical inputs.
    """
    peak = 1
    for i in range(3 * n):
        v = src[i]
        if v < 0:
            v = -v
        if v > peak:
            peak = v
    half = peak >> 1
    for i in range(3 * n):
        v = src[i]
        if v >= 0:
            q = (v * 127 + half) // peak
        else:
            q = -((-v * 127 + half) // peak)
        dst[i] = q
    return peak
