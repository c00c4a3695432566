"""Board profile validation: the pins and sensor wiring of one board, as data.

A profile is the JSON document in hardware/boards/<name>.json, uploaded to a node as /board.json.
The same check runs on the host before an upload and on the node at boot, so a bad profile is
rejected with the dotted name of the bad field (e.g. "sensor.spi.cs") before any pin is touched.
The schema is documented in hardware/boards/README.md.
"""

from .errors import ConfigError

# GPIOs that exist on an ESP32 (there is no GPIO 20, 24 or 28-31).
_ESP32_GPIOS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23,
                25, 26, 27, 32, 33, 34, 35, 36, 37, 38, 39)
# Wired to the module's SPI flash: touching them crashes the chip.
_FLASH_PINS = (6, 7, 8, 9, 10, 11)
# UART0, the USB serial console that flashing, the REPL and `seismote monitor` use.
_CONSOLE_PINS = (1, 3)
# Strapping pins a sensor line could hold at the wrong level during reset: 0 low enters the
# download mode, 2 high blocks flashing, 12 high selects 1.8 V flash and the module won't boot.
_STRAPPING_PINS = (0, 2, 12)
_LED_STRAPPING_PINS = (0,)
# 34-39 have no output driver (and no pull-ups): fine for MISO or an interrupt, not for outputs.
_FIRST_INPUT_ONLY = 34

_TOP_KEYS = ("name", "mcu", "description", "sensor", "led_pin", "flash_mb", "usb_bridge")
_SENSOR_KEYS = ("type", "bus", "address", "spi", "i2c", "int_pin")
_SPI_KEYS = ("id", "sck", "mosi", "miso", "cs", "baudrate", "polarity", "phase")
_I2C_KEYS = ("id", "scl", "sda", "freq")
_SPI_OUTPUTS = ("sck", "mosi", "cs")
_I2C_OUTPUTS = ("scl", "sda")  # open drain, but the pin still needs an output driver

_MCUS = ("esp32",)
_FLASH_SIZES_MB = (4, 8, 16)
_SPI_IDS = (1, 2)  # hardware SPI: 1 = HSPI, 2 = VSPI (SPI0 drives the flash)
_I2C_IDS = (0, 1)
_I2C_MAX_HZ = 400000  # fast mode: the most the MPU-6050 and ADXL345 accept


def _sensor_rules(kind):
    """(buses, I2C addresses, SPI max Hz, SPI (polarity, phase)) for a sensor type, or None."""
    if kind == "adxl355":
        # SPI mode 0 up to 10 MHz; I2C address 0x1D with ASEL low, 0x53 with ASEL high.
        return ("spi", "i2c"), (0x1D, 0x53), 10000000, (0, 0)
    if kind == "adxl345":
        # SPI mode 3 up to 5 MHz; I2C address 0x53 with SDO/ALT low, 0x1D with it high.
        return ("spi", "i2c"), (0x53, 0x1D), 5000000, (1, 1)
    if kind == "mpu6050":
        # I2C only; address 0x68 with AD0 low, 0x69 with it high.
        return ("i2c",), (0x68, 0x69), 0, (0, 0)
    return None


def _is_int(value):
    # bool is an int subclass on both interpreters; `true` is never a pin number.
    return isinstance(value, int) and not isinstance(value, bool)


def _dict(doc, field):
    if not isinstance(doc, dict):
        raise ConfigError(field or "profile", "must be an object")
    return doc


def _keys(doc, keys, prefix):
    for key in keys:
        if key not in doc:
            raise ConfigError(prefix + key, "missing")
    for key in doc:
        if key not in keys:
            raise ConfigError(prefix + str(key), "unknown key")


def _text(doc, key, field, choices=None, nullable=False):
    value = doc[key]
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(field, "must be a non-empty string")
    if choices is not None and value not in choices:
        raise ConfigError(field, "must be one of %s, not %r" % (", ".join(choices), value))
    return value


def _number(doc, key, field, choices=None, low=None, high=None):
    value = doc[key]
    if not _is_int(value):
        raise ConfigError(field, "must be an integer")
    if choices is not None and value not in choices:
        raise ConfigError(field, "must be one of %s, not %d" % (", ".join(str(c) for c in choices), value))
    if low is not None and value < low:
        raise ConfigError(field, "must be at least %d, not %d" % (low, value))
    if high is not None and value > high:
        raise ConfigError(field, "must be at most %d, not %d" % (high, value))
    return value


def _pin(value, field, output, strapping, used):
    if not _is_int(value) or value not in _ESP32_GPIOS:
        raise ConfigError(field, "is not an ESP32 GPIO: %r" % (value,))
    if value in _FLASH_PINS:
        raise ConfigError(field, "GPIO %d is wired to the SPI flash (GPIO 6-11 are reserved)" % value)
    if value in _CONSOLE_PINS:
        raise ConfigError(field, "GPIO %d is the UART0 serial console" % value)
    if value in strapping:
        raise ConfigError(field, "GPIO %d is a strapping pin; a line held at the wrong level stops the board booting" % value)
    if output and value >= _FIRST_INPUT_ONLY:
        raise ConfigError(field, "GPIO %d is input-only (GPIO 34-39 cannot drive an output)" % value)
    if value in used:
        raise ConfigError(field, "GPIO %d is already used by %s" % (value, used[value]))
    used[value] = field


def _bus_pins(doc, prefix, keys, outputs, used):
    for key in keys:
        _pin(doc[key], prefix + key, key in outputs, _STRAPPING_PINS, used)


def _validate_spi(spi, rules, used):
    _dict(spi, "sensor.spi")
    _keys(spi, _SPI_KEYS, "sensor.spi.")
    _number(spi, "id", "sensor.spi.id", choices=_SPI_IDS)
    _bus_pins(spi, "sensor.spi.", ("sck", "mosi", "miso", "cs"), _SPI_OUTPUTS, used)
    _number(spi, "baudrate", "sensor.spi.baudrate", low=100000, high=rules[2])
    polarity = _number(spi, "polarity", "sensor.spi.polarity", choices=(0, 1))
    phase = _number(spi, "phase", "sensor.spi.phase", choices=(0, 1))
    want = rules[3]
    if polarity != want[0]:
        raise ConfigError("sensor.spi.polarity", "this sensor needs SPI mode %d (polarity %d, phase %d)"
                          % (want[0] * 2 + want[1], want[0], want[1]))
    if phase != want[1]:
        raise ConfigError("sensor.spi.phase", "this sensor needs SPI mode %d (polarity %d, phase %d)"
                          % (want[0] * 2 + want[1], want[0], want[1]))


def _validate_i2c(i2c, used):
    _dict(i2c, "sensor.i2c")
    _keys(i2c, _I2C_KEYS, "sensor.i2c.")
    _number(i2c, "id", "sensor.i2c.id", choices=_I2C_IDS)
    _bus_pins(i2c, "sensor.i2c.", ("scl", "sda"), _I2C_OUTPUTS, used)
    _number(i2c, "freq", "sensor.i2c.freq", low=10000, high=_I2C_MAX_HZ)


def _validate_sensor(sensor, used):
    _dict(sensor, "sensor")
    _keys(sensor, _SENSOR_KEYS, "sensor.")
    kind = _text(sensor, "type", "sensor.type", choices=("adxl355", "adxl345", "mpu6050"))
    rules = _sensor_rules(kind)
    bus = _text(sensor, "bus", "sensor.bus", choices=("spi", "i2c"))
    if bus not in rules[0]:
        raise ConfigError("sensor.bus", "%s supports only %s, not %s" % (kind, " or ".join(rules[0]), bus))
    other = "i2c" if bus == "spi" else "spi"
    if sensor[other] is not None:
        raise ConfigError("sensor." + other, "must be null when the bus is %s" % bus)
    address = sensor["address"]
    if bus == "spi":
        if address is not None:
            raise ConfigError("sensor.address", "must be null on SPI (the chip is chosen by sensor.spi.cs)")
        _validate_spi(sensor["spi"], rules, used)
    else:
        if not _is_int(address) or address not in rules[1]:
            raise ConfigError("sensor.address", "%s answers at %s, not %r"
                              % (kind, " or ".join("%d (0x%02X)" % (a, a) for a in rules[1]), address))
        _validate_i2c(sensor["i2c"], used)
    if sensor["int_pin"] is not None:
        _pin(sensor["int_pin"], "sensor.int_pin", False, _STRAPPING_PINS, used)


def validate_profile(doc):
    """Check a board profile and return it unchanged; raise ConfigError naming the bad field."""
    _dict(doc, "")
    _keys(doc, _TOP_KEYS, "")
    _text(doc, "name", "name")
    _text(doc, "mcu", "mcu", choices=_MCUS)
    _text(doc, "description", "description")
    _number(doc, "flash_mb", "flash_mb", choices=_FLASH_SIZES_MB)
    _text(doc, "usb_bridge", "usb_bridge", nullable=True)
    used: dict = {}  # GPIO -> the field that took it
    _validate_sensor(doc["sensor"], used)
    if doc["led_pin"] is not None:
        # An LED to ground pulls its pin low: right for GPIO 2 and 12 (many clones wire their LED
        # to 2), wrong for GPIO 0, where low at reset means the download mode.
        _pin(doc["led_pin"], "led_pin", True, _LED_STRAPPING_PINS, used)
    return doc
