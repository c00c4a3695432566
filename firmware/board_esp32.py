"""The board layer on an ESP32: buses, pins, watchdog, clock, flash and reset, from a board profile.

Only this file touches `machine` on the node; firmware/board.py has the host twin (HostBoard)
with the same methods. The profile is the JSON document from hardware/boards/, uploaded to the
node as /board.json. Nothing is created at import: pins and buses come up when first asked for.
"""

import binascii
import gc
import json
import os
import time

import machine
from micropython import const

from .boards import validate_profile

PROFILE_PATH = "/board.json"
_DATA_DIR = "/data"
# Seconds from 1970-01-01 to 2000-01-01, for ports whose time() counts from 2000.
_SECONDS_1970_TO_2000 = const(946684800)
# The RTC starts at 2000-01-01 after power-up; a year before this means nobody has set it.
_FIRST_VALID_YEAR = const(2024)


class Esp32Board:
    """The node's hardware as the firmware sees it, built from a validated board profile."""

    def __init__(self, profile: dict) -> None:
        # Check before any pin is configured: a wrong pin can hang the flash or the boot straps.
        self.profile = validate_profile(profile)
        self.name = profile["name"]
        self._bus: "tuple | None" = None  # (bus, cs), made on the first sensor_bus() call
        self._led: "machine.Pin | None" = None
        # time() counts from 2000 on the ESP32 port's builds so far and from 1970 on others:
        # ask the port once instead of assuming.
        self._epoch_offset = _SECONDS_1970_TO_2000 if time.gmtime(0)[0] == 2000 else 0

    def sensor_bus(self) -> tuple:
        """(bus, cs): machine.SPI and its chip-select Pin, or machine.I2C and None."""
        if self._bus is None:
            sensor = self.profile["sensor"]
            if sensor["bus"] == "spi":
                spi = sensor["spi"]
                # CS idles high before the bus comes up, so the sensor never sees a stray frame.
                cs = machine.Pin(spi["cs"], machine.Pin.OUT, value=1)
                spi_bus = machine.SPI(
                    spi["id"],
                    baudrate=spi["baudrate"],
                    polarity=spi["polarity"],
                    phase=spi["phase"],
                    sck=machine.Pin(spi["sck"]),
                    mosi=machine.Pin(spi["mosi"]),
                    miso=machine.Pin(spi["miso"]),
                )
                self._bus = (spi_bus, cs)
            else:
                i2c = sensor["i2c"]
                i2c_bus = machine.I2C(
                    i2c["id"], scl=machine.Pin(i2c["scl"]), sda=machine.Pin(i2c["sda"]), freq=i2c["freq"]
                )
                self._bus = (i2c_bus, None)
        return self._bus

    def sensor_address(self) -> "int | None":
        return self.profile["sensor"]["address"]

    def ticks_ms(self) -> int:
        return time.ticks_ms()

    def sleep_ms(self, ms: int) -> None:
        time.sleep_ms(ms)

    def watchdog(self, timeout_ms: int) -> machine.WDT:
        # Once started the ESP32 watchdog cannot be stopped: call this only when the main loop runs.
        return machine.WDT(timeout=timeout_ms)

    def data_dir(self) -> str:
        try:
            os.stat(_DATA_DIR)
        except OSError:
            os.mkdir(_DATA_DIR)
        return _DATA_DIR

    def unique_id(self) -> str:
        return binascii.hexlify(machine.unique_id()).decode()

    def free_heap(self) -> int:
        return gc.mem_free()

    def unix_time(self) -> "int | None":
        """Seconds since 1970-01-01 UTC, or None while the RTC has not been set (NTP or host)."""
        now = time.time()
        if time.gmtime(now)[0] < _FIRST_VALID_YEAR:
            return None
        return now + self._epoch_offset

    def reset_cause(self) -> str:
        # Compared one by one, not through a dict: some machine constants share values on
        # this port (SLEEP == HARD_RESET), the reset causes themselves do not.
        cause = machine.reset_cause()
        if cause == machine.PWRON_RESET:
            return "power_on"
        if cause == machine.HARD_RESET:
            return "hard"
        if cause == machine.WDT_RESET:
            return "wdt"
        if cause == machine.DEEPSLEEP_RESET:
            return "deepsleep"
        if cause == machine.SOFT_RESET:
            return "soft"
        return "unknown"

    def reset(self) -> None:
        machine.reset()

    def led(self, on: bool) -> None:
        """Drive the status LED; boards without one (led_pin null) ignore this."""
        pin = self.profile["led_pin"]
        if pin is None:
            return
        if self._led is None:
            self._led = machine.Pin(pin, machine.Pin.OUT, value=0)
        self._led.value(1 if on else 0)


    def detector_backend(self):  # -> the microlite module, or None
        """TFLite Micro, where the firmware image was built with it (hardware/firmware-image.md)."""
        try:
            import microlite  # type: ignore[import-not-found]
        except ImportError:
            return None
        return microlite


def from_profile_file(path: str = PROFILE_PATH) -> Esp32Board:
    """The board described by the profile uploaded to the node (/board.json by default)."""
    with open(path) as f:
        return Esp32Board(json.load(f))
