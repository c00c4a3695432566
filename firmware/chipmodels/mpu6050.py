"""Register-level model of the InvenSense MPU-6050 (Register Map and Descriptions Rev 4.2), I2C only.

Modelled:
- WHO_AM_I (0x75) 0x68; every register resets to 0x00 except PWR_MGMT_1 0x40 (SLEEP) and
  WHO_AM_I. PWR_MGMT_1.DEVICE_RESET (0x80) resets all registers and reads back set for
  `reset_reads` reads before it clears itself.
- Sampling only while SLEEP is 0. ACCEL_CONFIG.AFS_SEL, CONFIG.DLPF_CFG and SMPLRT_DIV are stored
  (the model does not filter or time samples: push() is one sample-rate tick).
- 1024-byte FIFO written when USER_CTRL.FIFO_EN (0x40) is set, with the sources selected in the
  FIFO_EN register in register order: ACCEL (0x08, 6 bytes), TEMP (0x80, 2), XG/YG/ZG (0x40/0x20/
  0x10, 2 each); big-endian int16. When full, the oldest bytes are overwritten and
  INT_STATUS.FIFO_OFLOW_INT is set (if INT_ENABLE.FIFO_OFLOW_EN). FIFO_COUNTH/L (0x72/0x73)
  count bytes; FIFO_R_W (0x74) pops one byte per read and does not auto-increment; reading it
  empty returns the last byte read. USER_CTRL.FIFO_RESET (0x04) empties the FIFO when written
  with FIFO_EN 0, and clears itself.
- INT_STATUS (0x3A) clears when read; DATA_RDY_INT is set per sample when DATA_RDY_EN.

Not modelled: gyro and temperature data (pushed as zeros), the auxiliary I2C master, motion
interrupts, self test, cycle mode, INT_RD_CLEAR.
"""

from ..compat import const
from .common import ChipModel, clip

_CONFIG = const(0x1A)
_ACCEL_CONFIG = const(0x1C)
_FIFO_EN = const(0x23)
_INT_ENABLE = const(0x38)
_INT_STATUS = const(0x3A)
_ACCEL_XOUT_H = const(0x3B)
_USER_CTRL = const(0x6A)
_PWR_MGMT_1 = const(0x6B)
_FIFO_COUNTH = const(0x72)
_FIFO_COUNTL = const(0x73)
_FIFO_R_W = const(0x74)
_WHO_AM_I = const(0x75)
_NREGS = const(0x76)

_DEVICE_RESET = const(0x80)
_SLEEP = const(0x40)
_UC_FIFO_EN = const(0x40)
_UC_FIFO_RESET = const(0x04)
_FIFO_OFLOW = const(0x10)
_DATA_RDY = const(0x01)
_ACCEL_FIFO = const(0x08)
_DEPTH = const(1024)


class MPU6050Model(ChipModel):
    name = "mpu6050"

    def __init__(self, address=0x68, reset_reads=1):
        self.reset_reads = reset_reads
        self.regs = bytearray(_NREGS)
        self._fifo = bytearray(_DEPTH)
        ChipModel.__init__(self, address)

    def _reset(self):
        regs = self.regs
        for i in range(_NREGS):
            regs[i] = 0
        regs[_PWR_MGMT_1] = _SLEEP
        regs[_WHO_AM_I] = 0x68
        self._head = 0
        self._count = 0
        self._last = 0
        self._resetting = 0

    def peek(self, reg):
        """A register's stored value, without read side effects (for tests)."""
        return self.regs[reg]

    def push(self, x, y, z):
        """One sample-rate tick: store a sample (counts at the current range). False while asleep."""
        regs = self.regs
        if not self.present or regs[_PWR_MGMT_1] & _SLEEP:
            return False
        x = clip(x, 16)
        y = clip(y, 16)
        z = clip(z, 16)
        for i, v in ((0, x), (2, y), (4, z)):
            regs[_ACCEL_XOUT_H + i] = (v >> 8) & 0xFF
            regs[_ACCEL_XOUT_H + i + 1] = v & 0xFF
        if regs[_INT_ENABLE] & _DATA_RDY:
            regs[_INT_STATUS] |= _DATA_RDY
        if regs[_USER_CTRL] & _UC_FIFO_EN:
            sel = regs[_FIFO_EN]
            if sel & _ACCEL_FIFO:
                for v in (x, y, z):
                    self._put((v >> 8) & 0xFF)
                    self._put(v & 0xFF)
            for bit, n in ((0x80, 2), (0x40, 2), (0x20, 2), (0x10, 2)):  # TEMP, XG, YG, ZG
                if sel & bit:
                    for _ in range(n):
                        self._put(0)
        return True

    def _put(self, byte):
        if self._count == _DEPTH:
            self._head = (self._head + 1) % _DEPTH
            self._count -= 1
            if self.regs[_INT_ENABLE] & _FIFO_OFLOW:
                self.regs[_INT_STATUS] |= _FIFO_OFLOW
        self._fifo[(self._head + self._count) % _DEPTH] = byte
        self._count += 1

    def _read(self, reg):
        regs = self.regs
        if reg == _FIFO_R_W:
            if self._count:
                self._last = self._fifo[self._head]
                self._head = (self._head + 1) % _DEPTH
                self._count -= 1
            return self._last
        if reg == _FIFO_COUNTH:
            return self._count >> 8
        if reg == _FIFO_COUNTL:
            return self._count & 0xFF
        if reg == _INT_STATUS:
            v = regs[reg]
            regs[reg] = 0
            return v
        if reg == _PWR_MGMT_1 and self._resetting:
            self._resetting -= 1
            return regs[reg] | _DEVICE_RESET
        if reg < _NREGS:
            return regs[reg]
        return 0

    def _write(self, reg, value):
        if reg == _PWR_MGMT_1 and value & _DEVICE_RESET:
            self._reset()
            self._resetting = self.reset_reads
        elif reg == _USER_CTRL:
            if value & _UC_FIFO_RESET and not value & _UC_FIFO_EN:
                self._head = self._count = 0
            self.regs[reg] = value & 0x70  # reset bits clear themselves
        elif reg == _INT_STATUS or _ACCEL_XOUT_H <= reg <= 0x60 or reg >= _FIFO_COUNTH:
            pass  # read-only (FIFO_R_W writes are not modelled)
        else:
            self.regs[reg] = value

    def _next(self, reg):
        return reg if reg == _FIFO_R_W else (reg + 1) & 0x7F

    def _command(self, byte):
        pass  # no SPI on the MPU-6050 (the MPU-6000 has it): MISO stays low

    def _end(self):
        pass
