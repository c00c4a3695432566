from seismote.firmware import compat
from seismote.firmware.errors import ConfigError


def test_ticks_diff_wraps_like_micropython():
    a = compat.ticks_ms()
    assert compat.ticks_diff(a, a) == 0
    # MicroPython's tick counter wraps at 2**30.
    assert compat.ticks_diff(5, 0x3FFFFFFF) == 6
    assert compat.ticks_diff(0x3FFFFFFF, 5) == -6


def test_config_error_names_field():
    e = ConfigError("trigger.on", "must be above trigger.off")
    assert e.field == "trigger.on"
    assert "trigger.on" in str(e)
