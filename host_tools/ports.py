"""Serial ports: find the node's USB-serial bridge, open it, and explain why not.

The lowest layer of the host tools (cli -> deploy/transport -> ports). Errors the user can act on
are `UserError`: a message and a hint, printed by the CLI as two lines with no traceback.

    find_port(port=None) -> str        # auto-detect an ESP32 bridge, or check the given one
    open_serial(port, baudrate) -> serial.Serial   # exclusive; busy/permission -> UserError
    candidates() -> [PortInfo]         # ESP32-capable bridges that are plugged in now

Auto-detection goes by USB VID:PID, as esptool and mpremote do: the bridges used on ESP32 boards
(Silicon Labs CP210x, WCH CH340/CH9102, FTDI) and Espressif's own native USB.
"""

from __future__ import annotations

import errno
import os
import sys
from dataclasses import dataclass

import serial
import serial.tools.list_ports


class UserError(Exception):
    """An error the user can fix: wrong input, a missing or busy port, a board not answering.

    `hint` says what to do. `exit_code` follows esptool: 2 for errors in what was asked for;
    deploy uses 1 (NodeError) when a board took the input but failed a check afterwards.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else "%s\nhint: %s" % (self.message, self.hint)


# USB VID:PID of the serial bridges found on ESP32 boards. Espressif's native USB (VID 0x303A)
# matches on the VID alone: the ROM, the USB-Serial/JTAG unit and MicroPython's TinyUSB CDC
# each use their own PID.
BRIDGES = {
    (0x10C4, 0xEA60): "Silicon Labs CP210x",
    (0x10C4, 0xEA70): "Silicon Labs CP2105",
    (0x10C4, 0xEA71): "Silicon Labs CP2108",
    (0x1A86, 0x7523): "WCH CH340",
    (0x1A86, 0x5523): "WCH CH341",
    (0x1A86, 0x55D3): "WCH CH343",
    (0x1A86, 0x55D4): "WCH CH9102",
    (0x0403, 0x6001): "FTDI FT232R",
    (0x0403, 0x6010): "FTDI FT2232",
    (0x0403, 0x6011): "FTDI FT4232",
    (0x0403, 0x6014): "FTDI FT232H",
    (0x0403, 0x6015): "FTDI FT-X",
}
ESPRESSIF_VID = 0x303A

_NONE_HINT_LINUX = (
    "plug the board in with a data USB cable (some cables only charge); check `dmesg` for the "
    "bridge (cp210x, ch341, ftdi_sio); or name the port with --port"
)
_PERMISSION_HINT = {
    "linux": "add yourself to the dialout group (`sudo usermod -aG dialout $USER`, then log out and in)",
    "darwin": "check the port's permissions (ls -l %s)",
    "win32": "check that no other program has the port open",
}
_BUSY_HINT = (
    "another program has the port open: close `seismote monitor`, screen, minicom, Thonny, an IDE's "
    "serial monitor or another esptool/mpremote, then try again"
)


@dataclass(frozen=True)
class PortInfo:
    device: str
    bridge: str
    vid: int
    pid: int
    serial_number: str | None = None

    def describe(self) -> str:
        sn = " S/N %s" % self.serial_number if self.serial_number else ""
        return "%s (%s, %04X:%04X%s)" % (self.device, self.bridge, self.vid, self.pid, sn)


def bridge_name(vid: int | None, pid: int | None) -> str | None:
    """Name of the ESP32-capable USB bridge with this VID:PID, or None if it is not one."""
    if vid is None or pid is None:
        return None
    if vid == ESPRESSIF_VID:
        return "Espressif native USB"
    return BRIDGES.get((vid, pid))


def candidates(comports=None) -> list[PortInfo]:
    """The plugged-in serial ports whose USB IDs are an ESP32 bridge, sorted by device name."""
    found = []
    for p in serial.tools.list_ports.comports() if comports is None else comports:
        name = bridge_name(getattr(p, "vid", None), getattr(p, "pid", None))
        if name is not None:
            found.append(PortInfo(p.device, name, p.vid, p.pid, getattr(p, "serial_number", None)))
    found.sort(key=lambda c: c.device)
    return found


def _looks_like_path(port: str) -> bool:
    return "://" not in port and (port.startswith("/") or os.sep in port)


def find_port(port: str | None = None, comports=None) -> str:
    """The port to use: `port` if given (and, for a device path, present), else the one bridge.

    None found or several found -> UserError naming what was seen and what to do.
    """
    if port:
        if _looks_like_path(port) and not os.path.exists(port):
            others = candidates(comports)
            hint = ("boards seen: %s" % ", ".join(c.describe() for c in others)) if others else _NONE_HINT_LINUX
            raise UserError("no serial port %s" % port, hint)
        return port
    found = candidates(comports)
    if not found:
        raise UserError("no ESP32 USB-serial port found (looked for CP210x, CH340/CH9102, FTDI, Espressif USB)",
                        _NONE_HINT_LINUX)
    if len(found) > 1:
        raise UserError(
            "%d ESP32 USB-serial ports found: %s" % (len(found), ", ".join(c.describe() for c in found)),
            "pass the one you mean with --port",
        )
    return found[0].device


def explain_open_error(port: str, exc: BaseException) -> UserError:
    """Turn an exception from opening `port` into a UserError with a hint."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "No such file" in text:
        return UserError("no serial port %s (unplugged?)" % port, _NONE_HINT_LINUX)
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        hint = _PERMISSION_HINT.get(sys.platform, _PERMISSION_HINT["linux"])
        return UserError("permission denied opening %s" % port, hint.replace("%s", port))
    if code == errno.ENOTTY or "Inappropriate ioctl" in text:
        return UserError("%s is not a serial port" % port,
                         "name the board's USB-serial port (e.g. /dev/ttyUSB0), or leave --port out to find it")
    if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "exclusively lock" in text or "busy" in text.lower():
        return UserError("serial port %s is busy" % port, _BUSY_HINT)
    return UserError("cannot open %s: %s" % (port, text), "check the port name and the cable")


def open_serial(port: str, baudrate: int = 115200, timeout: float | None = 0.1) -> serial.SerialBase:
    """Open `port` exclusively (as esptool and mpremote do); UserError with a hint if it fails."""
    try:
        ser = serial.serial_for_url(port, baudrate=baudrate, timeout=timeout, exclusive=True, do_not_open=True)
        ser.open()
    except (serial.SerialException, OSError, ValueError) as e:
        raise explain_open_error(port, e) from None
    return ser


def probe_open(port: str) -> None:
    """Open and close `port` once, to turn an opaque failure elsewhere into a UserError."""
    open_serial(port).close()
