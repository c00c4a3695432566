"""Register access shared by the accelerometer drivers: the only code that touches the bus.

I2C or SPI is picked by duck typing: a bus with `readfrom_mem_into` is I2C, anything else is SPI
and needs a chip-select pin `cs` (called as `cs(0)` / `cs(1)`, like machine.Pin).

Every read lands at `raw[1:]` of a caller's buffer on both buses: SPI clocks the command byte out
of `raw[0]` and reads into the same buffer (machine.SPI.write_readinto allows one buffer for both),
I2C reads straight into `raw[1:]`. Drivers build the views once with `view()`, so reads allocate
nothing. The bytes after the command are clocked out unchanged; both ADXL parts ignore MOSI then.
"""

from ..compat import sleep_ms
from ..errors import SensorError


class RegBus:
    """One chip's registers on one bus.

    The SPI command byte is `(reg << shift) | read_bit`, plus `multi_bit` on multi-byte reads:
    ADXL355 shift=1, read_bit=0x01; ADXL345 shift=0, read_bit=0x80, multi_bit=0x40.
    """

    def __init__(self, bus, cs, address, chip, shift=0, read_bit=0x80, multi_bit=0):
        self.bus = bus
        self.cs = cs
        self.address = address
        self.chip = chip
        self.spi = not hasattr(bus, "readfrom_mem_into")
        if self.spi and cs is None:
            raise ValueError("%s on SPI needs a chip-select pin (cs)" % chip)
        self._shift = shift
        self._read_bit = read_bit
        self._multi_bit = multi_bit
        self._raw = bytearray(2)
        self._one = self.view(self._raw, 1)
        self._wr = memoryview(self._raw)[1:2]
        if self.spi:
            cs(1)

    def where(self):
        return "SPI" if self.spi else "0x%02x" % self.address

    def view(self, raw, n):
        """The view to pass to read_into() so that n bytes land at raw[1:1 + n]."""
        mv = memoryview(raw)
        return mv[0 : n + 1] if self.spi else mv[1 : n + 1]

    def _fail(self, e):
        raise SensorError("%s at %s: bus error (%s)" % (self.chip, self.where(), e))

    def _transfer(self, reg, view):
        if self.spi:
            cmd = (reg << self._shift) | self._read_bit
            if len(view) > 2:
                cmd |= self._multi_bit
            view[0] = cmd
            self.cs(0)
            try:
                self.bus.write_readinto(view, view)
            finally:
                self.cs(1)
        else:
            self.bus.readfrom_mem_into(self.address, reg, view)

    def read_into(self, reg, view):
        """Burst-read from `reg` into a view made by view()."""
        try:
            self._transfer(reg, view)
        except OSError as e:
            self._fail(e)

    def read(self, reg):
        self.read_into(reg, self._one)
        return self._raw[1]

    def write(self, reg, value):
        raw = self._raw
        raw[1] = value
        try:
            if self.spi:
                raw[0] = reg << self._shift
                self.cs(0)
                try:
                    self.bus.write(raw)
                finally:
                    self.cs(1)
            else:
                self.bus.writeto_mem(self.address, reg, self._wr)
        except OSError as e:
            self._fail(e)

    def write_checked(self, reg, value):
        """Write and read back: a chip that ignores configuration is not measuring what we think."""
        self.write(reg, value)
        got = self.read(reg)
        if got != value:
            msg = "%s at %s: register 0x%02x reads 0x%02x after writing 0x%02x"
            raise SensorError(msg % (self.chip, self.where(), reg, got, value))

    def expect(self, reg, want, label):
        """Identity check: SensorError unless `reg` reads `want`."""
        try:
            self._transfer(reg, self._one)
        except OSError as e:
            raise SensorError("No %s found at %s (bus error: %s)" % (self.chip, self.where(), e))
        got = self._raw[1]
        if got != want:
            raise SensorError("No %s found at %s (%s 0x%02x)" % (self.chip, self.where(), label, got))

    def wait(self, reg, mask, want, what, delay_ms=10):
        """Poll until `reg & mask == want`, at most 10 times, then raise SensorError."""
        for _ in range(10):
            if self.read(reg) & mask == want:
                return
            sleep_ms(delay_ms)
        raise SensorError("%s at %s: timed out waiting for %s" % (self.chip, self.where(), what))
