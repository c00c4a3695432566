"""Accelerometer drivers against register-level models of their chips (CPython and MicroPython)."""

import sys
from array import array

from seismote.firmware.chipmodels.adxl345 import ADXL345Model
from seismote.firmware.chipmodels.adxl355 import ADXL355Model
from seismote.firmware.chipmodels.mpu6050 import MPU6050Model
from seismote.firmware.errors import SensorError
from seismote.firmware.sensors import KINDS, open_sensor
from seismote.firmware.sensors.adxl345 import ADXL345
from seismote.firmware.sensors.adxl355 import ADXL355
from seismote.firmware.sensors.mpu6050 import MPU6050
from tests.firmware.support import raises

# (label, driver, model, on SPI?)
CASES = (
    ("adxl355/i2c", ADXL355, ADXL355Model, False),
    ("adxl355/spi", ADXL355, ADXL355Model, True),
    ("adxl345/i2c", ADXL345, ADXL345Model, False),
    ("adxl345/spi", ADXL345, ADXL345Model, True),
    ("mpu6050/i2c", MPU6050, MPU6050Model, False),
)
# Output width in bits, as the driver's default range configures the chip.
BITS = {ADXL355: 20, ADXL345: 10, MPU6050: 16}


def make(driver, model_cls, spi, **settings):
    model = model_cls()
    drv = driver(model.spi, cs=model.cs, **settings) if spi else driver(model, **settings)
    return model, drv


def buffer_for(drv):
    return array("i", [0] * (3 * drv.max_burst))


def read_all(drv):
    buf = buffer_for(drv)
    n = drv.read_fifo(buf)
    return [tuple(buf[3 * i : 3 * i + 3]) for i in range(n)]


def test_identity_accepted():
    expect = {
        ADXL355: ("adxl355", 250, 256000, 32),
        ADXL345: ("adxl345", 100, 256, 32),
        MPU6050: ("mpu6050", 100, 16384, 170),
    }
    for label, driver, model_cls, spi in CASES:
        model, drv = make(driver, model_cls, spi)
        assert (drv.name, drv.odr_hz, drv.counts_per_g, drv.max_burst) == expect[driver], label
        assert (drv.overflows, drv.lost) == (0, 0), label


def test_wrong_chip_raises_sensor_error():
    i2c = (
        (ADXL355, ADXL345Model, 0x1D),
        (ADXL355, MPU6050Model, 0x1D),
        (ADXL345, ADXL355Model, 0x53),
        (ADXL345, MPU6050Model, 0x53),
        (MPU6050, ADXL345Model, 0x68),
        (MPU6050, ADXL355Model, 0x68),
    )
    for driver, other, address in i2c:
        e = raises(SensorError, driver, other(address=address))
        assert ("No %s found at 0x%02x" % (driver.name.upper(), address)) in str(e), str(e)
    spi = ((ADXL355, ADXL345Model), (ADXL355, MPU6050Model), (ADXL345, ADXL355Model), (ADXL345, MPU6050Model))
    for driver, other in spi:
        model = other()
        e = raises(SensorError, driver, model.spi, model.cs)
        assert ("No %s found at SPI" % driver.name.upper()) in str(e), str(e)


def test_absent_chip_raises_sensor_error():
    for label, driver, model_cls, spi in CASES:
        model = model_cls()
        model.present = False
        e = raises(SensorError, driver, model.spi, model.cs) if spi else raises(SensorError, driver, model)
        assert "No " in str(e) and "found" in str(e), label + ": " + str(e)
    # Something answers on the bus, but not at the driver's address.
    e = raises(SensorError, ADXL355, ADXL355Model(address=0x53))
    assert "0x1d" in str(e), str(e)


def test_bus_error_while_reading_raises_sensor_error():
    for label, driver, model_cls, spi in CASES:
        if spi:
            continue  # a vanished SPI chip reads as zeros: an empty FIFO
        model, drv = make(driver, model_cls, spi)
        model.present = False
        raises(SensorError, drv.read_fifo, buffer_for(drv))


def test_invalid_odr_and_range_raise_value_error():
    for label, driver, model_cls, spi in CASES:
        for bad in (333, 0, -100, "fast"):
            e = raises(ValueError, lambda: make(driver, model_cls, spi, odr_hz=bad))
            assert str(e) == "Invalid output data rate: %s" % bad, label + ": " + str(e)
        for bad in (3, 32, 0):
            e = raises(ValueError, lambda: make(driver, model_cls, spi, range_g=bad))
            assert str(e) == "Invalid range: %s g" % bad, label + ": " + str(e)
    e = raises(ValueError, lambda: make(ADXL355, ADXL355Model, False, range_g=16))  # +-2/4/8 g only
    assert "16" in str(e)
    e = raises(ValueError, lambda: make(MPU6050, MPU6050Model, False, odr_hz=10))  # no DLPF below 5 Hz
    assert "10" in str(e)


def test_adxl355_registers_hold_datasheet_codes():
    # (odr, range) -> FILTER.ODR_LPF and RANGE codes
    table = (
        (4000, 2, 0x00, 0x01),
        (250, 4, 0x04, 0x02),
        (125, 8, 0x05, 0x03),
        (62.5, 2, 0x06, 0x01),
        (3.90625, 2, 0x0A, 0x01),
    )
    for odr, rng, filt, code in table:
        model, drv = make(ADXL355, ADXL355Model, True, odr_hz=odr, range_g=rng)
        assert model.peek(0x28) == filt, odr  # FILTER.ODR_LPF, HPF off
        assert model.peek(0x2C) == 0x80 | code, rng  # RANGE keeps I2C_HS
        assert model.peek(0x2D) == 0x00  # POWER_CTL: measuring
        assert drv.odr_hz == odr and drv.counts_per_g == 512000 // rng


def test_mpu6050_registers_hold_datasheet_codes():
    # odr -> (SMPLRT_DIV, DLPF_CFG): rate = 1 kHz / (1 + div), DLPF bandwidth below odr / 2
    for odr, div, dlpf in ((1000, 0, 1), (200, 4, 2), (100, 9, 3), (62.5, 15, 4), (50, 19, 4), (20, 49, 6)):
        model, drv = make(MPU6050, MPU6050Model, False, odr_hz=odr)
        assert (model.peek(0x19), model.peek(0x1A)) == (div, dlpf), odr
        assert drv.odr_hz == odr
    assert isinstance(make(MPU6050, MPU6050Model, False, odr_hz=100)[1].odr_hz, int)
    for rng, afs in ((2, 0x00), (4, 0x08), (8, 0x10), (16, 0x18)):
        model, drv = make(MPU6050, MPU6050Model, False, range_g=rng)
        assert model.peek(0x1C) == afs and drv.counts_per_g == 16384 * 2 // rng
    assert model.peek(0x6B) == 0x01  # PWR_MGMT_1: awake, PLL on X gyro
    assert model.peek(0x23) == 0x08  # FIFO_EN: accelerometer only
    assert model.peek(0x6A) == 0x40  # USER_CTRL: FIFO enabled
    assert model.peek(0x38) == 0x10  # INT_ENABLE: FIFO_OFLOW


def test_adxl345_registers_hold_datasheet_codes():
    for odr, rate in ((3200, 0x0F), (100, 0x0A), (25, 0x08), (12.5, 0x07)):
        model, drv = make(ADXL345, ADXL345Model, True, odr_hz=odr)
        assert model.peek(0x2C) == rate, odr  # BW_RATE, normal power
        assert drv.odr_hz == odr
    for rng, code in ((2, 0), (4, 1), (8, 2), (16, 3)):
        model, drv = make(ADXL345, ADXL345Model, False, range_g=rng)
        assert model.peek(0x31) == 0x08 | code, rng  # DATA_FORMAT: FULL_RES, 4-wire, right-justified
        assert drv.counts_per_g == 256
    assert model.peek(0x38) >> 6 == 2  # FIFO_CTL: stream mode
    assert model.peek(0x2D) == 0x08  # POWER_CTL: measure


def test_samples_round_trip_with_clipping():
    for label, driver, model_cls, spi in CASES:
        model, drv = make(driver, model_cls, spi)
        top = (1 << (BITS[driver] - 1)) - 1
        pushed = [(1, -1, 0), (-2, 3, -4), (top, -top - 1, 12345 % top), (10 * top, -10 * top, -1)]
        for x, y, z in pushed:
            assert model.push(x, y, z)
        got = read_all(drv)
        assert got == pushed[:3] + [(top, -top - 1, -1)], label + ": %r" % (got,)


def test_adxl345_clips_at_each_full_resolution_range():
    for rng, bits in ((2, 10), (4, 11), (8, 12), (16, 13)):
        model, drv = make(ADXL345, ADXL345Model, False, range_g=rng)
        model.push(5000, -5000, 300)
        top = (1 << (bits - 1)) - 1
        assert read_all(drv) == [(top, -top - 1, 300)], rng


def test_partial_fifo_and_empty_fifo():
    for label, driver, model_cls, spi in CASES:
        model, drv = make(driver, model_cls, spi)
        assert drv.read_fifo(buffer_for(drv)) == 0, label
        for i in range(5):
            model.push(i, -i, 100 + i)
        assert read_all(drv) == [(i, -i, 100 + i) for i in range(5)], label
        assert drv.read_fifo(buffer_for(drv)) == 0, label
        for i in range(3):
            model.push(7, 8, i)
        assert read_all(drv) == [(7, 8, i) for i in range(3)], label
        # Filled to one short of the point where the chip reports an overflow.
        full = drv.max_burst if driver is MPU6050 else drv.max_burst - 1
        for i in range(full):
            model.push(i, i, -i)
        assert read_all(drv) == [(i, i, -i) for i in range(full)], label
        assert (drv.overflows, drv.lost) == (0, 0), label


def test_overflow_counted_and_data_after_it_valid():
    for label, driver, model_cls, spi in CASES:
        model, drv = make(driver, model_cls, spi)
        pushed = drv.max_burst + 10
        for i in range(pushed):
            model.push(i, -i, 2 * i)
        got = read_all(drv)
        assert drv.overflows == 1 and drv.lost >= 1, label
        if driver is MPU6050:
            # Overwritten bytes break the 6-byte framing: the FIFO is reset and its content counted lost.
            assert got == [] and drv.lost == 1024 // 6 + 1, label
        else:
            # ADXL355 and ADXL345 keep the newest samples.
            assert got == [(i, -i, 2 * i) for i in range(pushed - drv.max_burst, pushed)], label
        for i in range(4):
            model.push(-i, i, 9)
        assert read_all(drv) == [(-i, i, 9) for i in range(4)], label
        assert drv.overflows == 1, label


def test_reinit_after_power_cycle():
    for label, driver, model_cls, spi in CASES:
        model, drv = make(driver, model_cls, spi, range_g=4)
        model.push(1, 2, 3)
        model.power_cycle()
        assert not model.push(1, 2, 3), label  # back in standby/sleep: no samples
        assert drv.read_fifo(buffer_for(drv)) == 0, label
        drv.reinit()
        model.push(4, 5, 6)
        assert read_all(drv) == [(4, 5, 6)], label
    model, drv = make(ADXL355, ADXL355Model, False, odr_hz=125, range_g=8)
    model.power_cycle()
    assert (model.peek(0x28), model.peek(0x2C), model.peek(0x2D)) == (0x00, 0x81, 0x01)  # reset values
    drv.reinit()
    assert (model.peek(0x28), model.peek(0x2C), model.peek(0x2D)) == (0x05, 0x83, 0x00)


def test_adxl355_resynchronises_misaligned_fifo():
    for spi in (False, True):
        model, drv = make(ADXL355, ADXL355Model, spi)
        for i in range(4):
            model.push(i, 10 + i, 20 + i)
        # A stray 3-byte read of FIFO_DATA pops the first x entry: the FIFO now starts at a y.
        model.readfrom_mem(0x1D, 0x11, 3)
        assert read_all(drv) == [(i, 10 + i, 20 + i) for i in range(1, 4)]
        assert (drv.resyncs, drv.lost, drv.overflows) == (1, 1, 0)
        model.push(7, 8, 9)
        assert read_all(drv) == [(7, 8, 9)]
        assert drv.resyncs == 1


def test_adxl355_sample_split_across_reads():
    model, drv = make(ADXL355, ADXL355Model, False)
    model.push(1, 2, 3)
    model.push(4, 5, 6)
    model.readfrom_mem(0x1D, 0x11, 3)  # x of the first sample gone
    model.readfrom_mem(0x1D, 0x11, 3)  # y gone: the FIFO holds z, x, y, z
    assert read_all(drv) == [(4, 5, 6)]
    assert drv.resyncs == 1 and drv.lost == 1


def test_bounded_waits_raise_sensor_error():
    e = raises(SensorError, ADXL355, ADXL355Model(nvm_busy_reads=1000))
    assert "timed out" in str(e), str(e)
    e = raises(SensorError, MPU6050, MPU6050Model(reset_reads=1000))
    assert "timed out" in str(e), str(e)


def test_open_sensor():
    assert KINDS == ("adxl355", "mpu6050", "adxl345")
    for kind, model_cls in (("adxl355", ADXL355Model), ("mpu6050", MPU6050Model), ("adxl345", ADXL345Model)):
        drv = open_sensor(kind, model_cls())
        assert drv.name == kind
    drv = open_sensor("adxl345", ADXL345Model(address=0x1D), address=0x1D, odr_hz=400, range_g=16)
    assert (drv.odr_hz, drv.max_burst) == (400, 32)
    model = ADXL355Model()
    assert open_sensor("adxl355", model.spi, cs=model.cs, odr_hz=125).odr_hz == 125
    e = raises(ValueError, open_sensor, "lis3dh", ADXL355Model())
    assert "lis3dh" in str(e)


def test_read_fifo_allocates_nothing():
    import gc

    if not (hasattr(gc, "mem_alloc") and sys.implementation.name == "micropython"):
        return  # CPython allocates every int; the budget only means something on the board's VM
    import micropython

    lock = hasattr(micropython, "heap_lock")
    for label, driver, model_cls, spi in CASES:
        model, drv = make(driver, model_cls, spi)
        buf = buffer_for(drv)
        for i in range(200):
            # Mostly small bursts, sometimes none, every 50th an overflow (model pushes allocate,
            # so they stay outside the measured region).
            burst = drv.max_burst + 3 if i % 50 == 49 else i % 7
            for j in range(burst):
                model.push(j, -j, i)
            gc.collect()
            before = gc.mem_alloc()
            if lock:
                micropython.heap_lock()
            try:
                n = drv.read_fifo(buf)
            finally:
                if lock:
                    micropython.heap_unlock()
            grew = gc.mem_alloc() - before
            assert grew == 0, "%s: read_fifo allocated %d bytes" % (label, grew)
            assert n <= drv.max_burst
        assert drv.overflows == 4, label
