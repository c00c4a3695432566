"""Accelerometer drivers. Each takes a bus object (SPI or I2C), never pins."""

KINDS = ("adxl355", "mpu6050", "adxl345")


def open_sensor(kind, bus, cs=None, address=None, odr_hz=None, range_g=2):
    """Driver for `kind` on `bus`; address and odr_hz default to the driver's own defaults.

    Drivers are imported here, not at module level, so a board loads only the one it has.
    """
    if kind not in KINDS:
        raise ValueError("Unknown sensor kind: %s (expected one of %s)" % (kind, ", ".join(KINDS)))
    kwargs = {"range_g": range_g}
    if address is not None:
        kwargs["address"] = address
    if odr_hz is not None:
        kwargs["odr_hz"] = odr_hz
    if kind == "adxl355":
        from .adxl355 import ADXL355

        return ADXL355(bus, cs, **kwargs)
    if kind == "mpu6050":
        from .mpu6050 import MPU6050

        return MPU6050(bus, cs, **kwargs)
    from .adxl345 import ADXL345

    return ADXL345(bus, cs, **kwargs)
