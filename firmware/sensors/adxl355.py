"""ADXL355 driver: 20-bit, +-2/4/8 g, read through its 96-entry FIFO over SPI or I2C.

SPI: mode 0, at most 10 MHz. I2C: 0x1D (ASEL low) or 0x53.

Counting rule: `overflows` + 1 and `lost` + 1 for each STATUS.FIFO_OVR. The chip then keeps the
newest 32 samples and does not say how many older ones it dropped, so 1 is a lower bound. A
misaligned FIFO (an entry without the x marker where an x is due, or an x before the z) is
resynchronised on the next x entry and counted in `resyncs`, with `lost` + 1 for the broken sample.
"""

from ..compat import const
from ..errors import SensorError
from .bus import RegBus

_DEVID_AD = const(0x00)
_DEVID_MST = const(0x01)
_PARTID = const(0x02)
_STATUS = const(0x04)
_FIFO_DATA = const(0x11)
_FILTER = const(0x28)
_RANGE = const(0x2C)
_POWER_CTL = const(0x2D)
_RESET = const(0x2F)

_FIFO_OVR = const(0x04)
_NVM_BUSY = const(0x10)
_RESET_CODE = const(0x52)
_MEASURE = const(0x00)  # POWER_CTL: STANDBY, TEMP_OFF and DRDY_OFF all clear
_DEPTH = const(96)  # FIFO entries, one axis each


class ADXL355:
    name = "adxl355"

    def __init__(self, bus, cs=None, address=0x1D, odr_hz=250, range_g=2):
        # FILTER.ODR_LPF code n selects 4000 Hz / 2**n (register 0x28, codes 0..10).
        rates = (4000, 2000, 1000, 500, 250, 125, 62.5, 31.25, 15.625, 7.8125, 3.90625)
        ranges = (2, 4, 8)  # RANGE codes 01, 10, 11
        if odr_hz not in rates:
            raise ValueError("Invalid output data rate: %s" % odr_hz)
        if range_g not in ranges:
            raise ValueError("Invalid range: %s g" % range_g)
        self._odr_code = rates.index(odr_hz)
        self._range_code = ranges.index(range_g) + 1
        self.odr_hz = rates[self._odr_code]
        self.range_g = ranges[self._range_code - 1]
        self.counts_per_g = 512000 // self.range_g  # 3.9 ug/LSB at +-2 g, doubling per range
        self.max_burst = _DEPTH // 3
        self.overflows = 0
        self.lost = 0
        self.resyncs = 0
        self._reg = reg = RegBus(bus, cs, address, "ADXL355", shift=1, read_bit=0x01)
        # FIFO_DATA bursts of 48, 24, ... 1 entries; 96 entries take two reads.
        self._raw = bytearray(1 + 3 * 48)
        self._status = reg.view(self._raw, 2)  # STATUS and FIFO_ENTRIES in one burst
        self._chunks = tuple((n, reg.view(self._raw, 3 * n)) for n in (48, 24, 12, 6, 3, 2, 1))
        self._setup()

    def reinit(self):
        """Soft reset, identity check and configuration again (after a SensorError)."""
        self._setup()

    def _setup(self):
        reg = self._reg
        reg.expect(_DEVID_AD, 0xAD, "DEVID_AD")
        reg.expect(_DEVID_MST, 0x1D, "DEVID_MST")
        reg.expect(_PARTID, 0xED, "PARTID")
        reg.write(_RESET, _RESET_CODE)  # to standby with reset values, FIFO empty
        reg.wait(_STATUS, _NVM_BUSY, 0, "NVM refresh after reset")
        reg.write_checked(_FILTER, self._odr_code)  # high-pass off; ODR only changes in standby
        reg.write_checked(_RANGE, (reg.read(_RANGE) & 0xC0) | self._range_code)
        reg.write_checked(_POWER_CTL, _MEASURE)
        self._phase = 0  # axes of the current sample read so far (0: expecting x)
        self._x = 0
        self._y = 0
        self._skipping = False

    def read_fifo(self, buf):
        """Move every complete sample from the FIFO to buf as x, y, z counts; return how many."""
        reg = self._reg
        raw = self._raw
        reg.read_into(_STATUS, self._status)
        status = raw[1]
        entries = raw[2] & 0x7F
        phase = self._phase
        if status & _FIFO_OVR:
            self.overflows += 1
            self.lost += 1
            if phase:  # the rest of the part-read sample may be among the dropped entries
                self.lost += 1
                phase = 0
        if entries > _DEPTH:
            raise SensorError("ADXL355 at %s: FIFO_ENTRIES reads %d" % (reg.where(), entries))
        x = self._x
        y = self._y
        skipping = self._skipping
        k = 0
        for n, view in self._chunks:
            while entries >= n:
                reg.read_into(_FIFO_DATA, view)
                entries -= n
                o = 1
                end = 1 + 3 * n
                while o < end:
                    b = raw[o + 2]
                    if not b & 0x02:  # bit 1: empty slot, no data
                        v = (raw[o] << 12) | (raw[o + 1] << 4) | (b >> 4)
                        if v & 0x80000:
                            v -= 0x100000
                        if b & 0x01:  # bit 0: x-axis marker
                            if phase:
                                self.resyncs += 1
                                self.lost += 1
                            x = v
                            phase = 1
                            skipping = False
                        elif phase == 1:
                            y = v
                            phase = 2
                        elif phase == 2:
                            buf[k] = x
                            buf[k + 1] = y
                            buf[k + 2] = v
                            k += 3
                            phase = 0
                        elif not skipping:  # y or z without its x: skip to the next x
                            skipping = True
                            self.resyncs += 1
                            self.lost += 1
                    o += 3
        self._phase = phase
        self._x = x
        self._y = y
        self._skipping = skipping
        return k // 3
