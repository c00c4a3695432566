"""Register-level model of the Analog Devices ADXL345 (data sheet Rev. E, Table 19 and "FIFO").

Modelled:
- DEVID 0xE5; reset values BW_RATE 0x0A (100 Hz), INT_SOURCE 0x02, all others 0x00; standby until
  POWER_CTL.Measure (0x08) is set; Sleep (0x04) stops sampling. No software reset exists.
- DATA_FORMAT: FULL_RES (0x08) keeps 3.9 mg/LSB with 10 + range bits (13 at +-16 g); without it
  the output is 10 bits at every range. Data is right-justified, little-endian, sign-extended.
- FIFO_CTL modes: bypass (entering it empties the FIFO), FIFO (stops when 32 entries are held),
  stream and trigger (keep the newest 32; the trigger event itself is not modelled). Samples bits
  are the watermark.
- Each transaction that reads any of DATAX0..DATAZ1 (0x32..0x37) pops one entry when it ends:
  read all six bytes in one burst. The data registers show the oldest FIFO entry (or the latest
  sample in bypass). FIFO_STATUS bits 5:0 = entries held.
- INT_SOURCE: DATA_READY while data is unread, Watermark while entries >= samples, Overrun set
  when new data replaces unread data (bypass) or when the FIFO fills (other modes) and cleared
  when FIFO contents are read.
- SPI: command byte R (0x80) | MB (0x40, auto-increment) | reg. I2C at 0x53 (ALT low) or 0x1D;
  I2C bursts always auto-increment.

Not modelled: the extra sample held in the output filter (33 readable when full), tap, activity,
free-fall, offsets, self test, justify (MSB) mode, low-power mode.
"""

from array import array

from ..compat import const
from .common import ChipModel, clip

_BW_RATE = const(0x2C)
_POWER_CTL = const(0x2D)
_INT_SOURCE = const(0x30)
_DATA_FORMAT = const(0x31)
_DATAX0 = const(0x32)
_DATAZ1 = const(0x37)
_FIFO_CTL = const(0x38)
_FIFO_STATUS = const(0x39)
_NREGS = const(0x3A)

_MEASURE = const(0x08)
_SLEEP = const(0x04)
_FULL_RES = const(0x08)
_DATA_READY = const(0x80)
_WATERMARK = const(0x02)
_OVERRUN = const(0x01)
_BYPASS = const(0)
_FIFO = const(1)
_DEPTH = const(32)


class ADXL345Model(ChipModel):
    name = "adxl345"

    def __init__(self, address=0x53):
        self.regs = bytearray(_NREGS)
        self._fifo = array("h", [0] * (3 * _DEPTH))
        self._latest = array("h", [0, 0, 0])
        ChipModel.__init__(self, address)

    def _reset(self):
        regs = self.regs
        for i in range(_NREGS):
            regs[i] = 0
        regs[0x00] = 0xE5
        regs[_BW_RATE] = 0x0A
        self._head = 0
        self._count = 0
        self._unread = False  # bypass: latest sample not yet read
        self._overrun = False
        self._data_read = False  # this transaction touched DATAX0..DATAZ1

    def peek(self, reg):
        """A register's stored value, without read side effects (for tests)."""
        return self.regs[reg]

    def _mode(self):
        return self.regs[_FIFO_CTL] >> 6

    def push(self, x, y, z):
        """One output-data-rate tick: store a sample (counts at the current range). False in standby."""
        p = self.regs[_POWER_CTL]
        if not self.present or not p & _MEASURE or p & _SLEEP:
            return False
        fmt = self.regs[_DATA_FORMAT]
        bits = 10 + (fmt & 3) if fmt & _FULL_RES else 10
        x = clip(x, bits)
        y = clip(y, bits)
        z = clip(z, bits)
        self._latest[0] = x
        self._latest[1] = y
        self._latest[2] = z
        mode = self._mode()
        if mode == _BYPASS:
            if self._unread:
                self._overrun = True
            self._unread = True
            return True
        if self._count == _DEPTH:
            if mode == _FIFO:
                return True  # FIFO mode stops collecting when full
            self._head = (self._head + 1) % _DEPTH  # stream/trigger: drop the oldest
            self._count -= 1
        i = 3 * ((self._head + self._count) % _DEPTH)
        self._fifo[i] = x
        self._fifo[i + 1] = y
        self._fifo[i + 2] = z
        self._count += 1
        if self._count == _DEPTH:
            self._overrun = True
        return True

    def _read(self, reg):
        if _DATAX0 <= reg <= _DATAZ1:
            self._data_read = True
            k = reg - _DATAX0
            if self._mode() == _BYPASS:
                v = self._latest[k >> 1]
            elif self._count:
                v = self._fifo[3 * self._head + (k >> 1)]
            else:
                v = 0
            return (v >> 8) & 0xFF if k & 1 else v & 0xFF
        if reg == _INT_SOURCE:
            v = 0
            if self._unread if self._mode() == _BYPASS else self._count:
                v |= _DATA_READY
            if self._count >= self.regs[_FIFO_CTL] & 0x1F:
                v |= _WATERMARK
            if self._overrun:
                v |= _OVERRUN
            return v
        if reg == _FIFO_STATUS:
            return self._count
        if reg < _NREGS:
            return self.regs[reg]
        return 0

    def _write(self, reg, value):
        if reg == _FIFO_CTL and value >> 6 == _BYPASS:
            self._head = self._count = 0
            self._overrun = False
        read_only = reg in (0x2B, _INT_SOURCE, _FIFO_STATUS) or _DATAX0 <= reg <= _DATAZ1
        if 0x1D <= reg < _NREGS and not read_only:  # 0x01..0x1C are reserved
            self.regs[reg] = value

    def _next(self, reg):
        return (reg + 1) & 0x3F

    def _command(self, byte):
        self._spi_reg = byte & 0x3F
        self._spi_read = bool(byte & 0x80)
        self._spi_inc = bool(byte & 0x40)

    def _end(self):
        if not self._data_read:
            return
        self._data_read = False
        if self._mode() == _BYPASS:
            self._unread = False
            self._overrun = False
        elif self._count:
            self._head = (self._head + 1) % _DEPTH
            self._count -= 1
            self._overrun = False
