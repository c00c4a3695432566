"""Bus plumbing shared by the chip models: machine.I2C / machine.SPI look-alikes over one register file.

A model is the bus as seen from one chip: pass the model where a driver expects `machine.I2C`,
or `model.spi` (transfers only, as machine.SPI has no I2C methods) with `model.cs` as chip
select. Subclasses provide:

- `_reset()`: power-on state (registers, FIFO);
- `_read(reg)` / `_write(reg, value)`: one register byte, with the chip's side effects;
- `_next(reg)`: the register the address pointer moves to after a byte (FIFO ports stay put);
- `_command(byte)`: decode an SPI command byte into `_spi_reg`, `_spi_read`, `_spi_inc`;
- `_end()`: a transaction finished (I2C stop or chip-select high).

The paths a driver reads through allocate nothing, so driver heap tests can run the model inside
`micropython.heap_lock()`.
"""

_ENODEV = 19  # what machine.I2C raises when no device acknowledges the address


class Pin:
    """Chip-select line in the style of machine.Pin: cs(0) selects the chip, cs(1) ends the transfer."""

    def __init__(self, chip):
        self._chip = chip
        self._level = 1

    def __call__(self, value=None):
        if value is None:
            return self._level
        value = 1 if value else 0
        if value != self._level:
            self._level = value
            if value:
                self._chip._spi_end()
            else:
                self._chip._spi_begin()

    def value(self, value=None):
        return self(value)

    def on(self):
        self(1)

    def off(self):
        self(0)


class SPIBus:
    """The chip as a driver sees it through machine.SPI: transfers only, framed by `chip.cs`."""

    def __init__(self, chip):
        self._chip = chip

    def write_readinto(self, write_buf, read_buf):
        self._chip.write_readinto(write_buf, read_buf)

    def write(self, buf):
        self._chip.write(buf)

    def readinto(self, buf, write=0):
        self._chip.readinto(buf, write)

    def read(self, nbytes, write=0):
        return self._chip.read(nbytes, write)


class ChipModel:
    def __init__(self, address):
        self.address = address
        self.present = True
        self.cs = Pin(self)
        self.spi = SPIBus(self)
        self._selected = False
        self._spi_reg = -1
        self._spi_read = False
        self._spi_inc = True
        self._reset()

    # --- defined by each chip (see the module docstring) ---

    def _reset(self):
        raise NotImplementedError

    def _read(self, reg):
        raise NotImplementedError

    def _write(self, reg, value):
        raise NotImplementedError

    def _next(self, reg):
        raise NotImplementedError

    def _command(self, byte):
        raise NotImplementedError

    def _end(self):
        raise NotImplementedError

    def power_cycle(self):
        """Power off and on: every register back to its reset value, FIFO empty."""
        self._reset()

    # --- I2C (machine.I2C memory methods) ---

    def _ack(self, addr):
        if not self.present or addr != self.address:
            raise OSError(_ENODEV)

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        self._ack(addr)
        reg = memaddr
        for i in range(len(buf)):
            buf[i] = self._read(reg)
            reg = self._next(reg)
        self._end()

    def readfrom_mem(self, addr, memaddr, nbytes, addrsize=8):
        buf = bytearray(nbytes)
        self.readfrom_mem_into(addr, memaddr, buf)
        return bytes(buf)

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        self._ack(addr)
        reg = memaddr
        for i in range(len(buf)):
            self._write(reg, buf[i])
            reg = self._next(reg)
        self._end()

    # --- SPI (machine.SPI transfer methods; framing comes from cs) ---

    def _spi_begin(self):
        self._selected = True
        self._spi_reg = -1

    def _spi_end(self):
        if self._selected and self.present:
            self._end()
        self._selected = False
        self._spi_reg = -1

    def _spi_byte(self, mosi):
        if not (self._selected and self.present):
            return 0  # nobody drives MISO: reads as 0x00
        reg = self._spi_reg
        if reg < 0:
            self._command(mosi)
            return 0
        if self._spi_read:
            out = self._read(reg)
        else:
            self._write(reg, mosi)
            out = 0
        if self._spi_inc:
            self._spi_reg = self._next(reg)
        return out

    def write_readinto(self, write_buf, read_buf):
        if len(write_buf) != len(read_buf):
            raise ValueError("buffers must be the same length")
        for i in range(len(write_buf)):
            read_buf[i] = self._spi_byte(write_buf[i])

    def write(self, buf):
        for i in range(len(buf)):
            self._spi_byte(buf[i])

    def readinto(self, buf, write=0):
        for i in range(len(buf)):
            buf[i] = self._spi_byte(write)

    def read(self, nbytes, write=0):
        buf = bytearray(nbytes)
        self.readinto(buf, write)
        return bytes(buf)


def clip(value, bits):
    """Saturate a count to a signed `bits`-wide output, as the chip's ADC does at full scale."""
    top = (1 << (bits - 1)) - 1
    if value > top:
        return top
    if value < -top - 1:
        return -top - 1
    return value
