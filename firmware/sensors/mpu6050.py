"""MPU-6050 driver: 16-bit accelerometer, +-2/4/8/16 g, read through its 1024-byte FIFO over I2C.

I2C at 0x68 (AD0 low) or 0x69. Only the accelerometer goes to the FIFO: 6 bytes per sample,
big-endian int16 x, y, z. The gyro stays on as the clock source the data sheet recommends.

Counting rule: on INT_STATUS.FIFO_OFLOW (or a FIFO count above 170 whole samples, which only an
overflow produces) the FIFO has lost its alignment with 6-byte samples, so it is reset:
`overflows` + 1 and `lost` + (samples' worth of bytes dropped by the reset) + 1 for at least one
sample overwritten before it.
"""

from ..compat import const
from .bus import RegBus

_SMPLRT_DIV = const(0x19)
_CONFIG = const(0x1A)
_ACCEL_CONFIG = const(0x1C)
_FIFO_EN = const(0x23)
_INT_ENABLE = const(0x38)
_INT_STATUS = const(0x3A)
_USER_CTRL = const(0x6A)
_PWR_MGMT_1 = const(0x6B)
_FIFO_COUNTH = const(0x72)
_FIFO_R_W = const(0x74)
_WHO_AM_I = const(0x75)

_DEVICE_RESET = const(0x80)
_CLKSEL_PLL_X = const(0x01)  # PWR_MGMT_1: awake, PLL on the X gyro
_ACCEL_FIFO = const(0x08)
_FIFO_OFLOW = const(0x10)  # INT_ENABLE / INT_STATUS bit
_UC_FIFO_EN = const(0x40)
_UC_FIFO_RESET = const(0x04)
_SAMPLES = const(170)  # whole 6-byte samples that fit in 1024 bytes


class MPU6050:
    name = "mpu6050"

    def __init__(self, bus, cs=None, address=0x68, odr_hz=100, range_g=2):
        # Sample rate = 1 kHz / (1 + SMPLRT_DIV) with the DLPF on (register map 4.2). DLPF_CFG 1..6
        # give 184, 94, 44, 21, 10, 5 Hz accelerometer bandwidth (4.3): the widest below ODR/2.
        bandwidths = (184, 94, 44, 21, 10, 5)
        ranges = (2, 4, 8, 16)  # ACCEL_CONFIG.AFS_SEL 0..3 (4.5)
        div = -1
        dlpf = 0
        if isinstance(odr_hz, (int, float)) and odr_hz > 0:
            d = 1000 / odr_hz - 1
            if d == int(d) and 0 <= d <= 255:
                div = int(d)
        if div >= 0:
            for i in range(len(bandwidths)):
                if 2 * bandwidths[i] < odr_hz:
                    dlpf = i + 1
                    break
        if not dlpf:
            raise ValueError("Invalid output data rate: %s" % odr_hz)
        if range_g not in ranges:
            raise ValueError("Invalid range: %s g" % range_g)
        if not hasattr(bus, "readfrom_mem_into"):
            raise ValueError("MPU6050 needs an I2C bus")
        self._div = div
        self._dlpf = dlpf
        self._afs = ranges.index(range_g)
        self.odr_hz = 1000 // (div + 1) if 1000 % (div + 1) == 0 else 1000 / (div + 1)
        self.range_g = ranges[self._afs]
        self.counts_per_g = 16384 >> self._afs
        self.max_burst = _SAMPLES
        self.overflows = 0
        self.lost = 0
        self._reg = reg = RegBus(bus, None, address, "MPU6050")
        self._raw = bytearray(1 + 6 * _SAMPLES)
        self._count = reg.view(self._raw, 2)
        self._chunks = tuple((n, reg.view(self._raw, 6 * n)) for n in (128, 32, 8, 2, 1))
        self._setup()

    def reinit(self):
        """Device reset, identity check and configuration again (after a SensorError)."""
        self._setup()

    def _setup(self):
        reg = self._reg
        reg.expect(_WHO_AM_I, 0x68, "WHO_AM_I")
        reg.write(_PWR_MGMT_1, _DEVICE_RESET)
        reg.wait(_PWR_MGMT_1, _DEVICE_RESET, 0, "device reset")
        reg.write_checked(_PWR_MGMT_1, _CLKSEL_PLL_X)
        reg.write_checked(_SMPLRT_DIV, self._div)
        reg.write_checked(_CONFIG, self._dlpf)
        reg.write_checked(_ACCEL_CONFIG, self._afs << 3)
        reg.write_checked(_INT_ENABLE, _FIFO_OFLOW)
        reg.write_checked(_FIFO_EN, _ACCEL_FIFO)
        self._reset_fifo()

    def _reset_fifo(self):
        reg = self._reg
        reg.write(_USER_CTRL, 0)  # FIFO_RESET only acts while FIFO_EN is 0
        reg.write(_USER_CTRL, _UC_FIFO_RESET)
        reg.read(_INT_STATUS)  # clear a FIFO_OFLOW from before the reset
        reg.write(_USER_CTRL, _UC_FIFO_EN)

    def read_fifo(self, buf):
        """Move every complete sample from the FIFO to buf as x, y, z counts; return how many."""
        reg = self._reg
        raw = self._raw
        status = reg.read(_INT_STATUS)  # clears on read
        reg.read_into(_FIFO_COUNTH, self._count)
        count = (raw[1] << 8) | raw[2]
        if status & _FIFO_OFLOW or count > 6 * _SAMPLES:
            self.overflows += 1
            self.lost += count // 6 + 1
            self._reset_fifo()
            return 0
        left = count // 6  # a sample still being written stays for the next call
        k = 0
        for n, view in self._chunks:
            while left >= n:
                reg.read_into(_FIFO_R_W, view)
                left -= n
                o = 1
                end = 1 + 6 * n
                while o < end:
                    v = (raw[o] << 8) | raw[o + 1]
                    if v & 0x8000:
                        v -= 0x10000
                    buf[k] = v
                    k += 1
                    o += 2
        return k // 3
