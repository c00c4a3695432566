"""Register-level model of the Analog Devices ADXL355 (data sheet Rev. B/C, register map Table 15).

Modelled:
- ID registers DEVID_AD 0xAD, DEVID_MST 0x1D, PARTID 0xED, REVID 0x01; reset values RANGE 0x81,
  POWER_CTL 0x01 (standby), FIFO_SAMPLES 0x60, ACT_COUNT 0x01, all others 0x00.
- RESET (0x2F) takes 0x52 and acts like power-on; STATUS shows NVM_BUSY for `nvm_busy_reads`
  reads afterwards (the NVM refresh the no-OS driver polls for).
- Measurement only when POWER_CTL.STANDBY is 0; entering standby empties the FIFO. The ODR_LPF
  field of FILTER only changes in standby (ADI's no-OS driver: "cannot be changed in measurement").
- FIFO of 96 entries (32 x/y/z samples). Each entry is 3 bytes, 20-bit two's complement
  left-justified; bit 0 of the third byte marks an x-axis entry, bit 1 means "FIFO was empty".
  FIFO_DATA (0x11) does not auto-increment; an entry is popped after its third byte is read.
  When full, each new entry pushes out the oldest one and latches STATUS.FIFO_OVR ("FIFO has
  overrun, and the oldest data is lost"). FIFO_ENTRIES counts entries (axes), not samples.
- STATUS: DATA_RDY and FIFO_OVR latch and clear when STATUS is read; FIFO_FULL is
  FIFO_ENTRIES >= FIFO_SAMPLES (watermark).
- SPI: command byte (reg << 1) | R (1 = read), multi-byte transfers auto-increment. I2C at 0x1D
  (ASEL low) or 0x53.

Not modelled: filters and HPF, offsets, activity detection, self test, temperature, interrupts.
"""

from array import array

from ..compat import const
from .common import ChipModel, clip

_STATUS = const(0x04)
_FIFO_ENTRIES = const(0x05)
_XDATA3 = const(0x08)
_FIFO_DATA = const(0x11)
_FILTER = const(0x28)
_FIFO_SAMPLES = const(0x29)
_RANGE = const(0x2C)
_POWER_CTL = const(0x2D)
_RESET = const(0x2F)
_NREGS = const(0x30)

_DATA_RDY = const(0x01)
_FIFO_FULL = const(0x02)
_FIFO_OVR = const(0x04)
_NVM_BUSY = const(0x10)
_STANDBY = const(0x01)
_DEPTH = const(96)


class ADXL355Model(ChipModel):
    name = "adxl355"

    def __init__(self, address=0x1D, nvm_busy_reads=2):
        self.nvm_busy_reads = nvm_busy_reads
        self.regs = bytearray(_NREGS)
        self._fifo = array("i", [0] * _DEPTH)  # (20-bit value << 1) | x marker
        ChipModel.__init__(self, address)

    def _reset(self):
        regs = self.regs
        for i in range(_NREGS):
            regs[i] = 0
        regs[0x00] = 0xAD
        regs[0x01] = 0x1D
        regs[0x02] = 0xED
        regs[0x03] = 0x01
        regs[0x27] = 0x01  # ACT_COUNT
        regs[_FIFO_SAMPLES] = 0x60
        regs[_RANGE] = 0x81
        regs[_POWER_CTL] = _STANDBY
        self._latched = 0
        self._busy = self.nvm_busy_reads
        self._head = 0
        self._count = 0
        self._byte = 0  # next byte of the head entry that FIFO_DATA returns

    def peek(self, reg):
        """A register's stored value, without read side effects (for tests)."""
        return self.regs[reg]

    def push(self, x, y, z):
        """One output-data-rate tick: store a sample (counts at the current range). False in standby."""
        if not self.present or self.regs[_POWER_CTL] & _STANDBY:
            return False
        x = clip(x, 20)
        y = clip(y, 20)
        z = clip(z, 20)
        self._append(x, 1)
        self._append(y, 0)
        self._append(z, 0)
        regs = self.regs
        for i, v in ((0, x), (3, y), (6, z)):
            u = v & 0xFFFFF
            regs[_XDATA3 + i] = u >> 12
            regs[_XDATA3 + i + 1] = (u >> 4) & 0xFF
            regs[_XDATA3 + i + 2] = (u & 0xF) << 4
        self._latched |= _DATA_RDY
        return True

    def _append(self, value, marker):
        if self._count == _DEPTH:
            self._head = (self._head + 1) % _DEPTH
            self._count -= 1
            self._byte = 0
            self._latched |= _FIFO_OVR
        self._fifo[(self._head + self._count) % _DEPTH] = ((value & 0xFFFFF) << 1) | marker
        self._count += 1

    def _fifo_byte(self):
        k = self._byte
        if self._count == 0:
            return 0x02 if k == 2 else 0  # empty indicator, data zero
        e = self._fifo[self._head]
        u = e >> 1
        if k == 0:
            self._byte = 1
            return u >> 12
        if k == 1:
            self._byte = 2
            return (u >> 4) & 0xFF
        self._byte = 0
        self._head = (self._head + 1) % _DEPTH
        self._count -= 1
        return ((u & 0xF) << 4) | (e & 1)

    def _read(self, reg):
        if reg == _FIFO_DATA:
            return self._fifo_byte()
        if reg == _STATUS:
            v = self._latched
            self._latched = 0
            if self._count >= self.regs[_FIFO_SAMPLES]:
                v |= _FIFO_FULL
            if self._busy > 0:
                self._busy -= 1
                v |= _NVM_BUSY
            return v
        if reg == _FIFO_ENTRIES:
            return self._count
        if reg < _NREGS:
            return self.regs[reg]
        return 0

    def _write(self, reg, value):
        regs = self.regs
        if reg == _RESET:
            if value == 0x52:
                self._reset()
        elif reg == _POWER_CTL:
            if value & _STANDBY:
                self._head = self._count = self._byte = 0
            regs[reg] = value & 0x07
        elif reg == _FILTER:
            if not regs[_POWER_CTL] & _STANDBY:
                value = (value & 0x70) | (regs[reg] & 0x0F)
            regs[reg] = value & 0x7F
        elif reg == _FIFO_SAMPLES:
            regs[reg] = value & 0x7F
        elif _FIFO_DATA < reg < _NREGS:
            regs[reg] = value  # read-only ID, status and data registers ignore writes

    def _next(self, reg):
        return reg if reg == _FIFO_DATA else (reg + 1) & 0x7F

    def _command(self, byte):
        self._spi_reg = byte >> 1
        self._spi_read = bool(byte & 1)
        self._spi_inc = True

    def _end(self):
        self._byte = 0  # a part-read entry stays in the FIFO
