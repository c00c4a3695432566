"""Board profiles: every shipped profile validates, and each kind of bad profile names its field.

Portable: runs under pytest on CPython and with the plain runner on MicroPython. The shipped
profiles live in hardware/boards/, which is not mounted in the MicroPython VM; there the
file-based test returns early and the rest still runs.
"""

import json
import sys

from seismote.firmware.boards import validate_profile
from seismote.firmware.errors import ConfigError
from tests.firmware.support import raises


def _spi_profile():
    return {
        "name": "t-spi", "mcu": "esp32", "description": "test",
        "sensor": {"type": "adxl355", "bus": "spi", "address": None,
                   "spi": {"id": 2, "sck": 18, "mosi": 23, "miso": 19, "cs": 5,
                           "baudrate": 5000000, "polarity": 0, "phase": 0},
                   "i2c": None, "int_pin": 4},
        "led_pin": 2, "flash_mb": 4, "usb_bridge": "CP2102N",
    }


def _i2c_profile():
    return {
        "name": "t-i2c", "mcu": "esp32", "description": "test",
        "sensor": {"type": "mpu6050", "bus": "i2c", "address": 0x68, "spi": None,
                   "i2c": {"id": 0, "scl": 22, "sda": 21, "freq": 400000}, "int_pin": 34},
        "led_pin": None, "flash_mb": 4, "usb_bridge": None,
    }


def _field(doc):
    return raises(ConfigError, validate_profile, doc).field


def _boards_dir():
    """hardware/boards next to tests/, or None where the tree isn't there (MicroPython VM)."""
    if sys.implementation.name != "cpython":
        return None
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "hardware", "boards")


def test_shipped_profiles_validate():
    folder = _boards_dir()
    if folder is None:
        return
    import os

    names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    assert "esp32-devkitc-adxl355.json" in names
    assert "esp32-devkitc-mpu6050.json" in names
    assert "esp32-devkitc-adxl345.json" in names
    for name in names:
        with open(os.path.join(folder, name)) as f:
            doc = json.load(f)
        assert validate_profile(doc) is doc
        # The file name is the profile name, so `--board NAME` finds it.
        assert doc["name"] + ".json" == name, name


def test_good_profiles_pass():
    doc = _spi_profile()
    assert validate_profile(doc) is doc
    doc = _i2c_profile()
    assert validate_profile(doc) is doc


def test_adxl345_spi_mode_3_and_i2c_addresses():
    doc = _spi_profile()
    doc["sensor"]["type"] = "adxl345"
    doc["sensor"]["spi"]["polarity"] = 1
    doc["sensor"]["spi"]["phase"] = 1
    validate_profile(doc)
    doc = _i2c_profile()
    doc["sensor"]["type"] = "adxl345"
    doc["sensor"]["address"] = 0x53
    validate_profile(doc)
    doc["sensor"]["type"] = "adxl355"
    doc["sensor"]["address"] = 0x1D
    validate_profile(doc)


def test_not_an_object():
    assert _field([]) == "profile"
    doc = _spi_profile()
    doc["sensor"] = "adxl355"
    assert _field(doc) == "sensor"
    doc = _spi_profile()
    doc["sensor"]["spi"] = [18, 23, 19, 5]
    assert _field(doc) == "sensor.spi"


def test_missing_keys_name_the_field():
    for key in ("name", "mcu", "description", "sensor", "led_pin", "flash_mb", "usb_bridge"):
        doc = _spi_profile()
        del doc[key]
        assert _field(doc) == key
    doc = _spi_profile()
    del doc["sensor"]["int_pin"]
    assert _field(doc) == "sensor.int_pin"
    doc = _spi_profile()
    del doc["sensor"]["spi"]["cs"]
    assert _field(doc) == "sensor.spi.cs"
    doc = _i2c_profile()
    del doc["sensor"]["i2c"]["freq"]
    assert _field(doc) == "sensor.i2c.freq"


def test_unknown_keys_are_rejected():
    doc = _spi_profile()
    doc["led"] = 2
    assert _field(doc) == "led"
    doc = _spi_profile()
    doc["sensor"]["spi"]["ss"] = 5
    assert _field(doc) == "sensor.spi.ss"


def test_bad_values():
    cases = (
        ("name", ""),
        ("mcu", "esp8266"),
        ("description", None),
        ("flash_mb", 3),
        ("flash_mb", "4"),
        ("usb_bridge", 2102),
        ("led_pin", True),
    )
    for key, value in cases:
        doc = _spi_profile()
        doc[key] = value
        e = raises(ConfigError, validate_profile, doc)
        assert e.field == key, (key, value, e.field)
        assert key in str(e)


def test_flash_pins_are_forbidden():
    for pin in (6, 7, 8, 9, 10, 11):
        doc = _spi_profile()
        doc["sensor"]["spi"]["sck"] = pin
        assert _field(doc) == "sensor.spi.sck"
    doc = _i2c_profile()
    doc["sensor"]["int_pin"] = 9
    assert _field(doc) == "sensor.int_pin"


def test_input_only_pins_cannot_be_outputs():
    for key in ("cs", "sck", "mosi"):
        doc = _spi_profile()
        doc["sensor"]["spi"][key] = 35
        assert _field(doc) == "sensor.spi." + key
    for key in ("scl", "sda"):
        doc = _i2c_profile()
        doc["sensor"]["i2c"][key] = 36
        doc["sensor"]["int_pin"] = None
        assert _field(doc) == "sensor.i2c." + key
    doc = _spi_profile()
    doc["led_pin"] = 39
    assert _field(doc) == "led_pin"
    # Inputs may use them.
    doc = _spi_profile()
    doc["sensor"]["spi"]["miso"] = 39
    doc["sensor"]["int_pin"] = 34
    validate_profile(doc)


def test_nonexistent_console_and_strapping_pins():
    for pin in (20, 24, 28, 40, -1, "5", None, 5.0):
        doc = _spi_profile()
        doc["sensor"]["spi"]["cs"] = pin
        assert _field(doc) == "sensor.spi.cs", pin
    for pin in (1, 3):
        doc = _i2c_profile()
        doc["sensor"]["i2c"]["sda"] = pin
        assert _field(doc) == "sensor.i2c.sda"
    for pin in (0, 2, 12):
        doc = _spi_profile()
        doc["led_pin"] = None
        doc["sensor"]["spi"]["cs"] = pin
        assert _field(doc) == "sensor.spi.cs", pin
    doc = _spi_profile()
    doc["led_pin"] = 0
    assert _field(doc) == "led_pin"


def test_a_pin_used_twice():
    doc = _spi_profile()
    doc["sensor"]["int_pin"] = 18
    e = raises(ConfigError, validate_profile, doc)
    assert e.field == "sensor.int_pin"
    assert "sensor.spi.sck" in str(e)
    doc = _spi_profile()
    doc["led_pin"] = 5
    assert _field(doc) == "led_pin"


def test_bus_and_type_mismatch():
    doc = _spi_profile()
    doc["sensor"]["type"] = "mpu6050"
    e = raises(ConfigError, validate_profile, doc)
    assert e.field == "sensor.bus"
    assert "mpu6050" in str(e)
    doc = _spi_profile()
    doc["sensor"]["type"] = "lis3dh"
    assert _field(doc) == "sensor.type"
    doc = _spi_profile()
    doc["sensor"]["bus"] = "uart"
    assert _field(doc) == "sensor.bus"


def test_the_other_bus_must_be_null():
    doc = _spi_profile()
    doc["sensor"]["i2c"] = {"id": 0, "scl": 22, "sda": 21, "freq": 400000}
    assert _field(doc) == "sensor.i2c"
    doc = _i2c_profile()
    doc["sensor"]["spi"] = _spi_profile()["sensor"]["spi"]
    assert _field(doc) == "sensor.spi"
    doc = _spi_profile()
    doc["sensor"]["spi"] = None
    assert _field(doc) == "sensor.spi"
    doc = _i2c_profile()
    doc["sensor"]["i2c"] = None
    assert _field(doc) == "sensor.i2c"


def test_addresses():
    doc = _spi_profile()
    doc["sensor"]["address"] = 0x1D
    assert _field(doc) == "sensor.address"
    for address in (None, 0x53, 0x1D, 0x69 + 1, "0x68"):
        doc = _i2c_profile()
        doc["sensor"]["address"] = address
        assert _field(doc) == "sensor.address", address
    doc = _i2c_profile()
    doc["sensor"]["address"] = 0x69
    validate_profile(doc)


def test_spi_settings():
    cases = (
        ("id", 0), ("id", 3),
        ("baudrate", 20000000), ("baudrate", 0),
        ("polarity", 1), ("phase", 1), ("polarity", 2),
    )
    for key, value in cases:
        doc = _spi_profile()
        doc["sensor"]["spi"][key] = value
        assert _field(doc) == "sensor.spi." + key, (key, value)
    # 10 MHz is the ADXL355's limit but over the ADXL345's 5 MHz.
    doc = _spi_profile()
    doc["sensor"]["spi"]["baudrate"] = 10000000
    validate_profile(doc)
    doc["sensor"]["type"] = "adxl345"
    doc["sensor"]["spi"]["polarity"] = 1
    doc["sensor"]["spi"]["phase"] = 1
    assert _field(doc) == "sensor.spi.baudrate"
    # The ADXL345 only speaks SPI mode 3.
    doc = _spi_profile()
    doc["sensor"]["type"] = "adxl345"
    doc["sensor"]["spi"]["baudrate"] = 2000000
    assert _field(doc) == "sensor.spi.polarity"


def test_i2c_settings():
    for key, value in (("id", 2), ("freq", 1000000), ("freq", 0), ("freq", 400000.0)):
        doc = _i2c_profile()
        doc["sensor"]["i2c"][key] = value
        assert _field(doc) == "sensor.i2c." + key, (key, value)
