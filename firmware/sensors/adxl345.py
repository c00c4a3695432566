"""ADXL345 driver: full-resolution (3.9 mg/LSB) +-2/4/8/16 g, read through its 32-entry FIFO.

SPI: mode 3, at most 5 MHz, 4-wire. I2C: 0x53 (ALT low) or 0x1D. The FIFO runs in stream mode;
each entry is read as one 6-byte burst from DATAX0, which pops it. (The data sheet asks for 5 us
between such reads; the interpreter's call overhead is longer than that.)

Counting rule: INT_SOURCE.Overrun is set when the FIFO fills; the next sample then pushes out the
oldest, and the chip cannot say whether that happened before the read. So `overflows` + 1 and
`lost` + 1 (a lower bound) for each Overrun seen.
"""

from ..compat import const
from ..errors import SensorError
from .bus import RegBus

_DEVID = const(0x00)
_BW_RATE = const(0x2C)
_POWER_CTL = const(0x2D)
_INT_ENABLE = const(0x2E)
_INT_SOURCE = const(0x30)
_DATA_FORMAT = const(0x31)
_DATAX0 = const(0x32)
_FIFO_CTL = const(0x38)
_FIFO_STATUS = const(0x39)

_MEASURE = const(0x08)
_FULL_RES = const(0x08)
_STREAM = const(0x80)  # FIFO_CTL mode bits 10
_WATERMARK = const(16)  # FIFO_CTL samples bits: for boards that wire INT1; read_fifo polls
_OVERRUN = const(0x01)
_DEPTH = const(32)


class ADXL345:
    name = "adxl345"

    def __init__(self, bus, cs=None, address=0x53, odr_hz=100, range_g=2):
        # BW_RATE rate codes 0x0F (3200 Hz) down to 0x07 (12.5 Hz), low-power bit off.
        rates = (3200, 1600, 800, 400, 200, 100, 50, 25, 12.5)
        ranges = (2, 4, 8, 16)  # DATA_FORMAT range codes 0..3
        if odr_hz not in rates:
            raise ValueError("Invalid output data rate: %s" % odr_hz)
        if range_g not in ranges:
            raise ValueError("Invalid range: %s g" % range_g)
        i = rates.index(odr_hz)
        self._rate_code = 0x0F - i
        self._range_code = ranges.index(range_g)
        self.odr_hz = rates[i]
        self.range_g = ranges[self._range_code]
        self.counts_per_g = 256  # FULL_RES keeps 3.9 mg/LSB at every range
        self.max_burst = _DEPTH
        self.overflows = 0
        self.lost = 0
        self._reg = reg = RegBus(bus, cs, address, "ADXL345", shift=0, read_bit=0x80, multi_bit=0x40)
        self._raw = bytearray(7)
        self._data = reg.view(self._raw, 6)
        self._setup()

    def reinit(self):
        """Reset to standby, identity check and configuration again (after a SensorError)."""
        self._setup()

    def _setup(self):
        reg = self._reg
        reg.expect(_DEVID, 0xE5, "DEVID")
        # No software reset exists: standby, interrupts off, bypass (empties the FIFO).
        reg.write(_POWER_CTL, 0)
        reg.write(_INT_ENABLE, 0)
        reg.write(_FIFO_CTL, 0)
        reg.write_checked(_BW_RATE, self._rate_code)
        reg.write_checked(_DATA_FORMAT, _FULL_RES | self._range_code)  # 4-wire SPI, right-justified
        reg.write_checked(_FIFO_CTL, _STREAM | _WATERMARK)
        reg.write_checked(_POWER_CTL, _MEASURE)

    def read_fifo(self, buf):
        """Move every complete sample from the FIFO to buf as x, y, z counts; return how many."""
        reg = self._reg
        raw = self._raw
        if reg.read(_INT_SOURCE) & _OVERRUN:
            self.overflows += 1
            self.lost += 1
        n = reg.read(_FIFO_STATUS) & 0x3F
        if n > _DEPTH:
            raise SensorError("ADXL345 at %s: FIFO_STATUS reports %d entries" % (reg.where(), n))
        k = 0
        for _ in range(n):
            reg.read_into(_DATAX0, self._data)
            for o in (1, 3, 5):
                v = raw[o] | (raw[o + 1] << 8)
                if v & 0x8000:
                    v -= 0x10000
                buf[k] = v
                k += 1
        return n
