"""The few names that differ between MicroPython and CPython, in one place.

Firmware modules import `const`, `ticks_ms`, `ticks_diff` and `sleep_ms` from here so that the
same source runs on the board, in `seismote replay`, in the virtual node and under pytest.
On MicroPython `_NAME = const(...)` is folded at compile time whatever module `const` came from.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(expr):  # type: ignore[no-redef]
        return expr


try:
    from time import sleep_ms, ticks_diff, ticks_ms  # type: ignore[attr-defined]
except ImportError:  # CPython
    import time as _time

    _T0 = _time.monotonic_ns()

    def ticks_ms():  # type: ignore[no-redef]
        return ((_time.monotonic_ns() - _T0) // 1_000_000) & 0x3FFFFFFF

    def ticks_diff(a, b):  # type: ignore[no-redef]
        # Same wrap-around rule as MicroPython's 30-bit tick counter.
        d = (a - b) & 0x3FFFFFFF
        return d - 0x40000000 if d & 0x20000000 else d

    def sleep_ms(ms):  # type: ignore[no-redef]
        _time.sleep(ms / 1000)
