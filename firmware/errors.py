"""Typed errors for what hardware, flash or peers hand the firmware.

Never `assert` on such input: asserts vanish in .mpy built with opt>=1.
"""


class SensorError(OSError):
    """The accelerometer is missing, answered with the wrong identity, or stopped responding."""


class ConfigError(ValueError):
    """A node configuration document is invalid; `field` is the dotted path of the bad field."""

    def __init__(self, field, message):
        super().__init__("%s: %s" % (field, message))
        self.field = field
        self.message = message


class LogError(OSError):
    """The event log on flash cannot be written or read."""


class RecordError(ValueError):
    """A log record or frame is corrupt or truncated."""
