"""Flashing through esptool's API against an ESP32 modelled in memory at the serial boundary.

`FakeEsp32` is what sits behind a USB-serial bridge: the DTR/RTS auto-reset circuit of an
ESP32-DevKitC (with the RC delay on EN), the ROM bootloader's SLIP protocol (SYNC, READ_REG,
WRITE_REG with the SPI user-command registers esptool uses to read the flash id and SFDP,
GET_SECURITY_INFO, SPI_ATTACH, MEM_BEGIN/DATA/END, CHANGE_BAUDRATE), esptool's flasher stub
once its uploaded code checks out against esptool's own stub image (ERASE_FLASH, FLASH_BEGIN/DATA/END,
FLASH_DEFL_BEGIN/DATA/END, SPI_FLASH_MD5) and a 4 MB NOR flash array (erase sets 0xFF, a write
can only clear bits). esptool itself is not patched: `deploy.flash_image` hands it this object
as the open serial port, as ESPLoader allows, and every byte goes through esptool's SLIP code.

The flash here is a bytearray: these tests show that esptool is driven correctly and that bad
input is refused; they do not show that a real board was flashed (see tests/test_deploy.py for
the hardware-in-the-loop notes).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import struct
import time
import zlib

import pytest
import serial
from click.testing import CliRunner

from seismote.host_tools import deploy
from seismote.host_tools.ports import UserError
from seismote.host_tools.transport import NodeError

# -- images -------------------------------------------------------------------------------------

APP_DESC_FMT = "<IIII32s32s16s16s32s32s"


def _app_desc(version="v1.27.0", project="micropython", idf="v5.4.2") -> bytes:
    desc = struct.pack(APP_DESC_FMT, 0xABCD5432, 0, 0, 0, version.encode(), project.encode(), b"12:00:00",
                       b"Jan  1 2026", idf.encode(), b"\0" * 32)
    return desc + b"\0" * (256 - len(desc))


def _esp_image(segments, chip_id=0, entry=0x40080400) -> bytes:
    from esptool.bin_image import ELFSection, ESP32FirmwareImage

    img = ESP32FirmwareImage()
    img.chip_id = chip_id
    img.entrypoint = entry
    img.segments = [ELFSection(b".seg%d" % i, addr, data, 0) for i, (addr, data) in enumerate(segments)]
    out = bytearray(img.save(None))
    if chip_id:  # the saver writes its own chip's id: patch the extended header, redo the digest
        struct.pack_into("<H", out, 12, chip_id)
        out[-32:] = hashlib.sha256(out[:-32]).digest()
    return bytes(out)


def _partition_table(entries) -> bytes:
    table = b""
    for name, ptype, subtype, offset, size in entries:
        table += struct.pack("<2sBBII16sI", b"\xaa\x50", ptype, subtype, offset, size, name.encode(), 0)
    table += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(table).digest()
    return table + b"\xff" * (0xC00 - len(table))


PARTITIONS = [("nvs", 1, 2, 0x9000, 0x6000), ("phy_init", 1, 1, 0xF000, 0x1000),
              ("factory", 0, 0, 0x10000, 0x1F0000), ("vfs", 1, 0x81, 0x200000, 0x200000)]


def make_image(chip_id=0, app_kb=96, seed=1, version="v1.27.0") -> bytes:
    """A combined ESP32 image as MicroPython builds it: bootloader at 0x1000, partition table at
    0x8000, factory app at 0x10000 (file offsets 0, 0x7000, 0xF000). Part random, part compressible."""
    rnd = random.Random(seed)
    boot = _esp_image([(0x3FFF0000, rnd.randbytes(0x400)), (0x40078000, rnd.randbytes(0x2000)),
                       (0x40080400, rnd.randbytes(0x800))], chip_id)
    code = rnd.randbytes(app_kb * 512) + bytes(app_kb * 512)
    app = _esp_image([(0x3F400020, _app_desc(version) + rnd.randbytes(0x2000)), (0x400D0020, code),
                      (0x3FFB0000, rnd.randbytes(0x800)), (0x40080000, rnd.randbytes(0x1000))], chip_id)
    out = bytearray(boot)
    out += b"\xff" * (0x7000 - len(out))
    out += _partition_table(PARTITIONS)
    out += b"\xff" * (0xF000 - len(out))
    out += app
    return bytes(out)


@pytest.fixture(scope="module")
def image() -> bytes:
    return make_image()


# -- the fake board -------------------------------------------------------------------------------

ESP32_MAGIC = 0x00F01D83
ESP8266_MAGIC = 0xFFF0C101
SPI_BASE = 0x3FF42000
SPI_CMD, SPI_ADDR, SPI_USR2, SPI_W0 = SPI_BASE, SPI_BASE + 0x04, SPI_BASE + 0x24, SPI_BASE + 0x80
SPI_CMD_USR = 1 << 18
EFUSE = 0x3FF5A000
APB_CTL_DATE = 0x3FF66000 + 0x7C
ROM_SYNC_VAL = 0x20120707  # the ROM answers SYNC with a non-zero value; the stub with 0
RC_DELAY = 0.01  # EN's RC network: IO0 is sampled this long after EN rises


def _stub_image():
    from esptool.loader import StubFlasher

    for sub in StubFlasher.STUB_SUBDIRS:
        path = os.path.join(StubFlasher.STUB_DIR, sub, "esp32.json")
        if os.path.exists(path):
            import base64

            d = json.load(open(path))
            return d["entry"], {d["text_start"]: base64.b64decode(d["text"]), d["data_start"]: base64.b64decode(d["data"])}
    raise RuntimeError("esptool's ESP32 stub is missing")


def slip(packet: bytes) -> bytes:
    return b"\xc0" + packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


class FakeEsp32:
    """An ESP32 board on a USB-serial bridge, as a pyserial-like object (see the module docstring).

    chip: "esp32" | "esp8266" | "esp32s3" (what the ROM says it is). auto_reset: the DTR/RTS
    transistors are there (False: a board whose auto-reset does not work). in_bootloader: the
    board starts in the download mode (BOOT held at power-up). link_max_baud: above this rate
    the cable garbles everything. bad_cells: flash addresses stuck at 0 after any write.
    """

    def __init__(self, chip="esp32", flash_mb=4, auto_reset=True, in_bootloader=False, link_max_baud=921600,
                 bad_cells=(), port="fake://esp32"):
        self.chip = chip
        self.auto_reset = auto_reset
        self.link_max_baud = link_max_baud
        self.bad_cells = set(bad_cells)
        self.port = self.name = port
        self.flash = bytearray(b"\xff" * (flash_mb << 20))
        self.flash[0x200000:0x200010] = b"old file system!"  # something to erase (or keep)
        self._baud = 9600
        self.timeout = 3
        self.write_timeout = None
        self.is_open = True
        self.dtr = self.rts = False
        self.rx = bytearray()  # host -> chip, undecoded
        self.tx = bytearray()  # chip -> host
        self.ops = []  # command names seen, in order
        self.host_bytes = 0  # every byte the host wrote
        self.boots = []  # "download" | "app" per reset
        self.stub_verified = False
        self._en_rise = None
        self.regs = {ESPLoader_MAGIC_ADDR: {"esp32": ESP32_MAGIC, "esp8266": ESP8266_MAGIC, "esp32s3": 0x9}[chip],
                     EFUSE + 4: 0xC4123456, EFUSE + 8: 0x0000240A,  # MAC 24:0a:c4:12:34:56 (words 2, 1)
                     EFUSE + 12: (1 << 15) | (1 << 9), EFUSE + 20: 1 << 20, APB_CTL_DATE: 1 << 31}
        self._power_on("download" if in_bootloader else "app")

    # -- pyserial surface ---------------------------------------------------------------------
    @property
    def baudrate(self):
        return self._baud

    @baudrate.setter
    def baudrate(self, value):
        self._baud = value

    def open(self):
        self.is_open = True

    def isOpen(self):
        return self.is_open

    def close(self):
        self.is_open = False

    def fileno(self):  # not a tty: esptool's ioctl-based reset is skipped, the classic one works
        raise OSError(errno.ENOTTY, "not a tty")

    def setDTR(self, state):
        self._lines(bool(state), self.rts)

    def setRTS(self, state):
        self._lines(self.dtr, bool(state))

    def inWaiting(self):
        self._tick()
        return len(self.tx)

    @property
    def in_waiting(self):
        return self.inWaiting()

    def read(self, size=1):
        self._tick()
        out = bytes(self.tx[:size])
        del self.tx[:size]
        return out

    def write(self, data):
        self._tick()
        self.host_bytes += len(data)
        if self.mode == "download" and self._link_ok():
            self.rx += data
            self._decode()
        return len(data)

    def reset_input_buffer(self):
        self._tick()
        self.tx.clear()

    flushInput = reset_input_buffer

    def flushOutput(self):
        pass

    reset_output_buffer = flushOutput

    # -- the auto-reset circuit and boot -----------------------------------------------------------
    def _en_low(self, dtr, rts):
        return self.auto_reset and rts and not dtr

    def _io0_low(self, dtr, rts):
        return self.auto_reset and dtr and not rts

    def _lines(self, dtr, rts):
        now = time.monotonic()
        if self._en_rise is not None and now - self._en_rise >= RC_DELAY:
            self._boot(self._io0_low(self.dtr, self.rts))  # sampled before this change
        was_low = self._en_low(self.dtr, self.rts)
        self.dtr, self.rts = dtr, rts
        if self._en_low(dtr, rts):
            self.mode = "reset"
            self._en_rise = None
        elif was_low:
            self._en_rise = now

    def settle(self):
        """Let the RC on EN run out, so a pending reset has booted the chip."""
        time.sleep(RC_DELAY)
        self._tick()

    def _tick(self):
        if self._en_rise is not None and time.monotonic() - self._en_rise >= RC_DELAY:
            self._boot(self._io0_low(self.dtr, self.rts))

    def _power_on(self, mode):
        self._en_rise = None
        self.mode = mode
        self.stub = False
        self.chip_baud = None  # the ROM measures the rate of the first SYNC
        self.rx.clear()
        self.mem = []
        self.boots.append(mode)
        if mode == "download":
            self.tx += b"rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\nwaiting for download\r\n"
        else:
            self.tx += b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"
            if self.flash[0x1000] == 0xE9:
                self.tx += b"MicroPython v1.27.0 on 2026-01-01; Generic ESP32 module with ESP32\r\n>>> "

    def _boot(self, io0_low):
        self._power_on("download" if io0_low else "app")

    def _link_ok(self):
        if self.chip_baud is None:
            self.chip_baud = self._baud
        return self.chip_baud == self._baud and self._baud <= self.link_max_baud

    # -- the bootloader protocol ------------------------------------------------------------------
    def _decode(self):
        while True:
            start = self.rx.find(b"\xc0")
            if start < 0:
                self.rx.clear()
                return
            end = self.rx.find(b"\xc0", start + 1)
            if end < 0:
                del self.rx[:start]
                return
            frame = bytes(self.rx[start + 1:end]).replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb")
            del self.rx[:end]  # keep the closing 0xC0: it may open the next frame
            if len(frame) >= 8:
                self._command(frame)

    def _reply(self, op, val=0, data=b"", status=(0, 0)):
        tail = bytes(status) + (b"" if self.stub else b"\0\0")
        self.tx += slip(struct.pack("<BBHI", 1, op, len(data) + len(tail), val) + data + tail)

    def _command(self, frame):
        direction, op, size, chk = struct.unpack("<BBHI", frame[:8])
        body = frame[8:8 + size]
        name = {0x08: "SYNC", 0x0A: "READ_REG", 0x09: "WRITE_REG", 0x14: "GET_SECURITY_INFO", 0x0D: "SPI_ATTACH",
                0x0B: "SPI_SET_PARAMS", 0x05: "MEM_BEGIN", 0x07: "MEM_DATA", 0x06: "MEM_END", 0x0F: "CHANGE_BAUDRATE",
                0xD0: "ERASE_FLASH", 0xD1: "ERASE_REGION", 0x02: "FLASH_BEGIN", 0x03: "FLASH_DATA", 0x04: "FLASH_END",
                0x10: "FLASH_DEFL_BEGIN", 0x11: "FLASH_DEFL_DATA", 0x12: "FLASH_DEFL_END", 0x13: "SPI_FLASH_MD5"}.get(op, "0x%02X" % op)
        self.ops.append(name)
        if direction != 0:
            return
        handler = getattr(self, "_op_" + name, None)
        stub_only = name in ("ERASE_FLASH", "ERASE_REGION")
        rom_only = name.startswith("MEM_")
        if handler is None or (stub_only and not self.stub) or (rom_only and self.stub):
            self._reply(op, status=(1, 5))  # the ROM's "invalid command"
            return
        handler(op, body, chk)

    def _op_SYNC(self, op, body, chk):
        if body == b"\x07\x07\x12\x20" + b"\x55" * 32:
            for _ in range(1 if self.stub else 8):
                self._reply(op, 0 if self.stub else ROM_SYNC_VAL)

    def _op_READ_REG(self, op, body, chk):
        (addr,) = struct.unpack("<I", body[:4])
        self._reply(op, self.regs.get(addr, 0))

    def _op_WRITE_REG(self, op, body, chk):
        for i in range(0, len(body) - 15, 16):
            addr, value, mask, _delay = struct.unpack("<IIII", body[i:i + 16])
            self.regs[addr] = (self.regs.get(addr, 0) & ~mask) | (value & mask)
            if addr == SPI_CMD and value & SPI_CMD_USR:
                self._spi_user_command()
        self._reply(op)

    def _spi_user_command(self):
        cmd = self.regs.get(SPI_USR2, 0) & 0xFF
        if cmd == 0x9F:  # RDID: Winbond W25Q32 (EF 40 16) -> 4 MB
            self.regs[SPI_W0] = 0x1640EF
        elif cmd == 0x5A:  # RDSFDP: the "SFDP" signature at address 0
            self.regs[SPI_W0] = 0x50444653 if (self.regs.get(SPI_ADDR, 0) >> 8) == 0 else 0
        self.regs[SPI_CMD] = 0  # done

    def _op_GET_SECURITY_INFO(self, op, body, chk):
        if self.chip == "esp32s3":
            self._reply(op, data=struct.pack("<IBBBBBBBBII", 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0))
        else:
            self._reply(op, status=(1, 5))  # not in the ESP32 ROM

    def _op_SPI_ATTACH(self, op, body, chk):
        self._reply(op)

    def _op_SPI_SET_PARAMS(self, op, body, chk):
        self._reply(op)

    def _op_MEM_BEGIN(self, op, body, chk):
        size, blocks, blocksize, offset = struct.unpack("<IIII", body[:16])
        self.mem.append([offset, bytearray(), size])
        self._reply(op)

    def _op_MEM_DATA(self, op, body, chk):
        n, seq = struct.unpack("<II", body[:8])
        data = body[16:16 + n]
        if self._checksum(data) != chk:
            self._reply(op, status=(1, 7))
            return
        self.mem[-1][1] += data
        self._reply(op)

    def _op_MEM_END(self, op, body, chk):
        flag, entry = struct.unpack("<II", body[:8])
        self._reply(op)
        stub_entry, segments = _stub_image()
        got = {offset: bytes(data) for offset, data, _ in self.mem}
        if flag == 0 and entry == stub_entry and got == segments:
            self.stub_verified = True
            self.stub = True
            self.tx += slip(b"OHAI")

    def _op_CHANGE_BAUDRATE(self, op, body, chk):
        new, _old = struct.unpack("<II", body[:8])
        self._reply(op)
        self.chip_baud = new

    # flash: erase sets bytes to 0xFF, a write can only clear bits (NOR)
    def _erase(self, offset, size):
        start = offset - offset % 0x1000
        end = -(-(offset + size) // 0x1000) * 0x1000
        self.flash[start:end] = b"\xff" * (end - start)

    def _program(self, addr, data):
        for i, b in enumerate(data):
            a = addr + i
            self.flash[a] &= 0 if a in self.bad_cells else b

    def _op_ERASE_FLASH(self, op, body, chk):
        self.flash[:] = b"\xff" * len(self.flash)
        self._reply(op)

    def _op_ERASE_REGION(self, op, body, chk):
        offset, size = struct.unpack("<II", body[:8])
        self._erase(offset, size)
        self._reply(op)

    def _op_FLASH_BEGIN(self, op, body, chk):
        size, blocks, blocksize, offset = struct.unpack("<IIII", body[:16])
        self._erase(offset, size)
        self._write = {"addr": offset, "seq": 0, "blocksize": blocksize, "inflate": None}
        self._reply(op)

    def _op_FLASH_DEFL_BEGIN(self, op, body, chk):
        size, blocks, blocksize, offset = struct.unpack("<IIII", body[:16])
        self._erase(offset, size)
        self._write = {"addr": offset, "seq": 0, "blocksize": blocksize, "inflate": zlib.decompressobj()}
        self._reply(op)

    def _op_FLASH_DATA(self, op, body, chk):
        self._data(op, body, chk)

    def _op_FLASH_DEFL_DATA(self, op, body, chk):
        self._data(op, body, chk)

    def _data(self, op, body, chk):
        n, seq = struct.unpack("<II", body[:8])
        data = body[16:16 + n]
        w = self._write
        if len(data) != n or self._checksum(data) != chk or seq != w["seq"]:
            self._reply(op, status=(1, 7))
            return
        if w["inflate"] is not None:
            data = w["inflate"].decompress(data)
        self._program(w["addr"], data)
        w["addr"] += len(data)
        w["seq"] += 1
        self._reply(op)

    def _op_FLASH_END(self, op, body, chk):
        self._reply(op)

    def _op_FLASH_DEFL_END(self, op, body, chk):
        self._reply(op)

    def _op_SPI_FLASH_MD5(self, op, body, chk):
        addr, size = struct.unpack("<II", body[:8])
        digest = hashlib.md5(self.flash[addr:addr + size])
        self._reply(op, data=digest.digest() if self.stub else digest.hexdigest().encode())

    @staticmethod
    def _checksum(data, state=0xEF):
        for b in data:
            state ^= b
        return state


ESPLoader_MAGIC_ADDR = 0x40001000


def flashed(fake: FakeEsp32, image: bytes) -> bool:
    return bytes(fake.flash[0x1000:0x1000 + len(image)]) == image


# -- tests: the happy paths -------------------------------------------------------------------------


def test_check_image_reads_a_combined_micropython_image(image):
    info = deploy.check_image(image, "esp32", flash_mb=4)
    assert info.offset == 0x1000 and info.app_offset == 0x10000
    assert (info.project, info.version, info.idf_version) == ("micropython", "v1.27.0", "v5.4.2")
    assert [p.name for p in info.partitions] == ["nvs", "phy_init", "factory", "vfs"]
    assert info.md5 == hashlib.md5(image).hexdigest()


def test_flash_erases_writes_verifies_and_boots_the_image(image):
    fake = FakeEsp32()  # running its old app; esptool resets it into the bootloader by DTR/RTS
    stages = []
    result = deploy.flash_image(fake, image, "esp32", 460800, flash_mb=4,
                                progress=lambda s, d, t: stages.append(s))
    assert flashed(fake, image)
    assert fake.flash[0x200000:0x200010] == b"\xff" * 16  # the old file system is gone
    assert fake.stub_verified  # esptool's stub was uploaded byte for byte, then used
    assert fake.chip_baud == 460800 and result.baud == 460800 and not result.fallbacks
    assert result.verified and result.md5 == hashlib.md5(image).hexdigest()
    assert result.chip.startswith("ESP32-D0WD-V3") and result.flash_size == "4MB"
    assert result.mac == "24:0a:c4:12:34:56"
    assert {"ERASE_FLASH", "SPI_FLASH_MD5"} <= set(fake.ops)
    assert {"erase", "write", "verify"} <= set(stages)
    fake.settle()
    assert fake.boots[-2:] == ["download", "app"]  # reset into the bootloader, then hard reset to run
    assert fake.is_open  # an object passed in is the caller's to close


def test_keep_fs_writes_without_erasing(image):
    fake = FakeEsp32()
    result = deploy.flash_image(fake, image, erase=False)
    assert flashed(fake, image) and not result.erased
    assert fake.flash[0x200000:0x200010] == b"old file system!"
    assert "ERASE_FLASH" not in fake.ops


def test_baud_falls_back_to_115200_when_the_link_fails_faster(image):
    fake = FakeEsp32(link_max_baud=115200)
    result = deploy.flash_image(fake, image, baud=460800)
    assert result.baud == 115200 and flashed(fake, image)
    assert len(result.fallbacks) == 1 and result.fallbacks[0].startswith("460800 Bd")


def test_board_held_in_bootloader_by_hand_flashes_without_auto_reset(image):
    fake = FakeEsp32(auto_reset=False, in_bootloader=True)
    result = deploy.flash_image(fake, image, connect_attempts=2)
    assert flashed(fake, image) and result.verified
    assert fake.boots == ["download"]  # no reset line: it stays there until EN is pressed


# -- tests: bad input loses nothing --------------------------------------------------------------------


def test_board_not_in_bootloader_is_a_clear_error(image):
    fake = FakeEsp32(auto_reset=False)  # running MicroPython; DTR/RTS reach nothing
    before = bytes(fake.flash)
    with pytest.raises(UserError) as e:
        deploy.flash_image(fake, image, connect_attempts=2)
    assert "did not enter the bootloader" in e.value.message
    assert "hold BOOT" in e.value.hint and e.value.exit_code == 2
    assert bytes(fake.flash) == before


def test_wrong_chip_is_refused_before_writing(image):
    fake = FakeEsp32(chip="esp32s3")
    before = bytes(fake.flash)
    with pytest.raises(UserError) as e:
        deploy.flash_image(fake, image, "esp32", connect_attempts=4)
    assert "ESP32-S3" in e.value.message and "ESP32" in e.value.message
    assert bytes(fake.flash) == before
    assert not {"MEM_BEGIN", "ERASE_FLASH", "FLASH_DEFL_BEGIN", "FLASH_BEGIN"} & set(fake.ops)


def _cut(image: bytes, where: str) -> bytes:
    return {
        "in the bootloader": image[:0x800],
        "before the partition table": image[:0x6000],
        "before the application": image[:0xE000],
        "in the application": image[:0xF000 + 0x9000],
        "in the application's digest": image[:-10],
    }[where]


@pytest.mark.parametrize("where", ["in the bootloader", "before the partition table", "before the application",
                                   "in the application", "in the application's digest"])
def test_truncated_image_is_refused_before_the_port_is_touched(image, where):
    fake = FakeEsp32()
    with pytest.raises(UserError) as e:
        deploy.flash_image(fake, _cut(image, where))
    assert "truncated" in e.value.message or "corrupt" in e.value.message
    assert "again" in e.value.hint
    assert fake.host_bytes == 0 and not fake.ops


def test_corrupt_partition_table_is_refused(image):
    bad = bytearray(image)
    bad[0x7000 + 40] ^= 0x01  # inside the factory entry: its MD5 no longer matches
    with pytest.raises(UserError, match="partition table is corrupt"):
        deploy.check_image(bytes(bad))


def test_bit_flip_in_the_application_is_refused(image):
    bad = bytearray(image)
    bad[0xF000 + 0x4000] ^= 0x10
    with pytest.raises(UserError, match="application is corrupt"):
        deploy.check_image(bytes(bad))


def test_image_for_another_chip_is_refused():
    with pytest.raises(UserError, match="built for the ESP32-S3"):
        deploy.check_image(make_image(chip_id=9))


@pytest.mark.parametrize("data, message", [
    (b"", "is empty"),
    (b"\x7fELF" + b"\0" * 100, "ELF file"),
    (b"\0" * 0x20000, "not an ESP32 firmware image"),
])
def test_not_an_image_is_refused(data, message):
    with pytest.raises(UserError, match=message):
        deploy.check_image(data)


def test_application_only_image_is_refused(image):
    with pytest.raises(UserError, match="without bootloader and partition table"):
        deploy.check_image(image[0xF000:])


def test_image_larger_than_the_flash_is_refused(image):
    with pytest.raises(UserError, match="does not fit the board's 1 MB flash"):
        deploy.check_image(image + b"\xff" * (1 << 20), flash_mb=1)


def test_write_that_does_not_verify_is_a_node_error(image):
    cell = 0xF000 + 0x2000  # in the application's data
    assert image[cell] != 0
    fake = FakeEsp32(bad_cells={0x1000 + cell})  # one byte of flash stuck at 0
    with pytest.raises(NodeError) as e:
        deploy.flash_image(fake, image, baud=115200)
    assert e.value.exit_code == 1 and "does not hold the image" in e.value.message


def test_missing_port_and_busy_port_are_user_errors(image, tmp_path):
    with pytest.raises(UserError, match="no serial port /dev/ttyNOPE9"):
        deploy.flash_image("/dev/ttyNOPE9", image)
    master, slave = os.openpty()
    path = os.ttyname(slave)
    held = serial.Serial(path, exclusive=True)  # another program has it
    try:
        with pytest.raises(UserError) as e:
            deploy.flash_image(path, image)
        assert "busy" in e.value.message and "another program" in e.value.hint
    finally:
        held.close()
        os.close(master)
        os.close(slave)


def test_dry_run_checks_the_image_and_touches_nothing(image):
    fake = FakeEsp32()
    info = deploy.flash_image(fake, image, dry_run=True)
    assert isinstance(info, deploy.ImageInfo) and fake.host_bytes == 0


# -- the CLI over the same fake -----------------------------------------------------------------------


def _cli():
    from seismote.host_tools import cli_device
    from seismote.host_tools.cli import cli

    if "flash" not in cli.commands:
        cli_device.register(cli)
    return cli


def test_cli_flash_dry_run_prints_the_plan(image, tmp_path):
    img = tmp_path / "firmware.bin"
    img.write_bytes(image)
    res = CliRunner().invoke(_cli(), ["flash", "--port", "/dev/null", "--board", "esp32-devkitc-adxl355",
                                      "--firmware", str(img), "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert plan["dry_run"] and plan["image"]["version"] == "v1.27.0"
    assert any("erase the flash" in step for step in plan["plan"])


def test_cli_flash_truncated_image_is_one_message_and_a_hint(image, tmp_path):
    img = tmp_path / "firmware.bin"
    img.write_bytes(image[:0xF000 + 0x9000])
    res = CliRunner().invoke(_cli(), ["flash", "--port", "/dev/null", "--board", "esp32-devkitc-adxl355",
                                      "--firmware", str(img)])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    lines = res.stderr.strip().splitlines()
    assert lines[0].startswith("seismote: ") and "truncated" in lines[0]
    assert lines[1].startswith("hint: ")


def test_cli_flash_writes_through_esptool_to_the_fake(image, tmp_path, monkeypatch):
    """`seismote flash --firmware` as far as the MicroPython part: the fake has no REPL, so the
    command must fail after a verified flash, naming the missing REPL (exit 2, no traceback)."""
    img = tmp_path / "firmware.bin"
    img.write_bytes(image)
    fake = FakeEsp32()
    monkeypatch.setattr(deploy, "open_serial", lambda port, baud=115200: fake)  # esptool's port
    monkeypatch.setattr(serial, "serial_for_url", lambda *a, **k: fake)  # mpremote's port
    res = CliRunner().invoke(_cli(), ["flash", "--port", "/dev/null", "--board", "esp32-devkitc-adxl355",
                                      "--firmware", str(img), "--repl-wait", "0"])
    assert flashed(fake, image)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "REPL" in res.stderr
