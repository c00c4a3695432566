"""The thin board layer: everything the node needs from hardware, behind one small interface.

`Esp32Board` (board_esp32.py) is the real one; `HostBoard` here runs the same node code on
CPython or on the MicroPython VM, in tests, replay and the virtual node. Its clock is virtual
(sleep_ms advances it) so tests of minutes of node time run in milliseconds, and its sensor is
whatever bus object it is handed: a register model of the chip at this true hardware boundary.
"""

import gc
import os


class _Watchdog:
    def __init__(self, board, timeout_ms):
        self.board = board
        self.timeout_ms = timeout_ms
        self.fed = board.ticks_ms()

    def feed(self):
        self.fed = self.board.ticks_ms()

    def expired(self):
        return self.board.ticks_ms() - self.fed > self.timeout_ms


class HostBoard:
    def __init__(self, bus, cs=None, address=None, data_dir="/tmp/seismote", name="host", unix_time=None, detector_backend=None):
        self.name = name
        self._backend = detector_backend
        self._bus = bus
        self._cs = cs
        self._address = address
        self._data_dir = data_dir
        self._ms = 0
        self._unix0 = unix_time
        self.wdt = None
        self.resets = 0

    def sensor_bus(self):
        return self._bus, self._cs

    def sensor_address(self):
        return self._address

    def ticks_ms(self):
        return self._ms

    def sleep_ms(self, ms):
        self._ms += ms

    def watchdog(self, timeout_ms):
        self.wdt = _Watchdog(self, timeout_ms)
        return self.wdt

    def data_dir(self):
        try:
            os.mkdir(self._data_dir)
        except OSError:
            pass  # exists
        return self._data_dir

    def unique_id(self):
        return "000000000000"

    def free_heap(self):
        return gc.mem_free() if hasattr(gc, "mem_free") else 0

    def unix_time(self):
        return None if self._unix0 is None else self._unix0 + self._ms // 1000

    def reset_cause(self):
        return "power_on"

    def reset(self):
        self.resets += 1

    def led(self, on):
        pass

    def detector_backend(self):
        """A module with the microlite API (the host's: model_export.tflm.microlite), or None."""
        return self._backend
