"""The virtual node: the seismote firmware on the real MicroPython VM behind a pseudo-terminal.

    with VirtualNode(waveform="quake.mseed", speed=10) as vn:
        subprocess.run(["mpremote", "connect", vn.port, "exec", "print(1)"])

    seismote node virtual [--waveform FILE]... [--config NODE.json] [--speed X] [--start S]

`vn.port` is a /dev/pts/N path: mpremote, pyserial and every `seismote` command talk to it as to a
board on a USB-serial port (raw REPL, raw-paste, soft reset, `fs` commands, `machine.reset()`).

Inside, host_tools/vnode.mjs runs the MicroPython WebAssembly VM under Node.js and speaks the REPL
protocol on the pty (see that file for what it emulates). The VM's filesystem is the node's flash,
laid out as `seismote flash` leaves a board: the firmware in /lib/seismote/firmware, /config.json,
/board.json and the event log in /data. It survives soft and hard resets (not the process).

The node starts at every reset of the virtual node, soft or hard, in both REPL modes: the virtual
board starts it in its boot stage (/boot.py and /main.py are never run; a board's main.py needs
`machine` pins and buses). It runs `Node.step` every 40 ms of node time between REPL commands, so
the REPL stays free while the node runs (a board's REPL instead stops main.py); while a command runs
the node waits and catches up afterwards. Inside the VM, `import seismote_vnode` gives the running
node (`.node`, None with the reason in `.error`), its board and chip model, and `.info()`.

Its sensor is the register model of the board profile's accelerometer (firmware/chipmodels), whose
FIFO is fed from the waveform: read with waveforms.read_records, resampled to the configured sensor
rate and scaled to counts as `seismote replay` does (replay.NodeModel), then sensor self-noise
around the record's last mean, forever. Without a waveform the sensor gives only self-noise
(zero mean: gravity is not modelled, the node's conditioner removes it anyway). The feed keeps the
world's pace, `speed` seconds of waveform per wall second, and slows down when the VM cannot keep
up (about 20x real time at 250 Hz on one core): the node never loses samples to the host.

Also emulated: `machine.reset()` (`mpremote reset`), `machine.unique_id()`, `machine.reset_cause()`
and a `machine.WDT` that never fires; `input()` reads a line from the port. Not emulated: the
port's `sys.stdin` (so `mpremote mount`, which needs it, is refused at once), name completion and
history in the friendly REPL, and interrupting a command that neither prints nor reads the clock.
The feed is prepared for the sensor rate of the config the virtual node started with: a config
pushed later with another rate plays the waveform at the wrong speed.
Debugging: SEISMOTE_VNODE_DEBUG=1 logs every command and reset; see `log_text()`.
"""

from __future__ import annotations

import json
import math
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import tty
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from ..firmware import boards as fwboards
from ..firmware import config as fwconfig
from ..firmware.errors import ConfigError
from . import mpvm

SCRIPT = Path(__file__).with_name("vnode.mjs")
BOARDS = mpvm.ROOT / "hardware" / "boards"
DEFAULT_NODE_ID = "vnode-0"
NOISE_S = 64  # seconds of sensor noise, repeated after the record
# Sensor self-noise density in ug/sqrt(Hz), from the data sheets: ADXL355 Table 1 (22.5 x/y, 25 z),
# MPU-6050 accelerometer noise power spectral density, ADXL345 (about 1 LSB rms at 100 Hz).
NOISE_UG_PER_RTHZ = {"adxl355": 25.0, "mpu6050": 400.0, "adxl345": 400.0}
READY_TIMEOUT_S = 60.0


class VirtualNodeError(RuntimeError):
    """The virtual node could not start (or stopped): the message says why."""


def load_board(name: str) -> dict:
    """The board profile hardware/boards/<name>.json, validated."""
    path = BOARDS / ("%s.json" % name)
    try:
        profile = json.loads(path.read_text())
    except OSError:
        known = ", ".join(sorted(p.stem for p in BOARDS.glob("*.json")))
        raise VirtualNodeError("no board profile %r (known: %s)" % (name, known)) from None
    return fwboards.validate_profile(profile)


def _three_axes(data: np.ndarray) -> np.ndarray:
    if data.shape[1] == 3:
        return data
    out = np.zeros((data.shape[0], 3))
    out[:, 0] = data[:, 0]  # one (vertical) component: the other axes quiet, as in replay
    return out


def sensor_frames(waveform: Sequence[str], cfg: dict, start_s: float = 0.0) -> tuple[np.ndarray, float | None, list[str]]:
    """(int32 (n, 3) counts at the sensor rate, unix time of the first frame or None, notes).

    The conversion of `seismote replay` (replay.NodeModel): resample to the sensor's output data
    rate, scale to its counts, clip at its full scale. A gap between segments holds the last value.
    """
    from .replay import NodeModel
    from .waveforms import WaveformError, read_records

    records = read_records(list(waveform))
    if len(records) != 1:
        raise WaveformError("the virtual node has one sensor: give the files of one device (got %d records: %s)"
                            % (len(records), ", ".join(r.source for r in records)))
    rec = records[0]
    model = NodeModel(cfg)
    rate = model.sensor_rate
    if abs(rec.rate - rate) > 1e-9:
        rec = rec.resampled(rate)
    parts: list[np.ndarray] = []
    pos = 0
    for seg in rec.segments:
        first = int(round(seg.offset_s * rate))
        if parts and first > pos:
            parts.append(np.repeat(parts[-1][-1:], first - pos, axis=0))
        counts = model.to_counts(_three_axes(seg.data))
        parts.append(counts)
        pos = max(pos, first) + len(counts)
    frames = np.concatenate(parts) if parts else np.zeros((0, 3), dtype=np.int64)
    skip = max(0, int(round(start_s * rate)))
    if skip >= len(frames):
        raise WaveformError("%s: --start %g s is past the record's end (%.1f s)" % (rec.source, start_s, len(frames) / rate))
    frames = frames[skip:]
    unix0 = None if rec.start_utc is None else rec.start_utc.timestamp() + skip / rate
    return frames.astype(np.int32), unix0, list(rec.notes)


def noise_frames(cfg: dict, n: int, mean: np.ndarray, seed: int = 1) -> np.ndarray:
    """n frames of the sensor's self-noise around `mean` (counts), int32, clipped at full scale."""
    s = cfg["sensor"]
    counts_per_g = fwconfig.COUNTS_PER_G[s["type"]][s["range_g"]]
    sigma = NOISE_UG_PER_RTHZ[s["type"]] * 1e-6 * math.sqrt(s["odr_hz"] / 2.0) * counts_per_g
    rng = np.random.default_rng(seed)
    full = s["range_g"] * counts_per_g
    out = np.rint(rng.normal(0.0, max(sigma, 0.5), (n, 3)) + mean)
    return np.clip(out, -full, full).astype(np.int32)


class VirtualNode:
    """A virtual node on a pty. `start()` returns the port; `stop()` ends it (or use `with`).

    waveform: a file, or the files of one device (OpenEEW buckets are joined), any format
        `seismote replay` reads; None: sensor self-noise only.
    config: a node configuration (path or dict), validated; default: the default config for
        node `vnode-0`. Its `board` names the board profile (hardware/boards) and so the
        sensor model; its sensor rate and range set the feed.
    speed: seconds of waveform per wall-clock second (the node's clock runs at this pace).
    start_s: seconds of the waveform to skip.
    log: a file for the virtual node's log (default: in its temporary folder; see `log_text()`).
    """

    def __init__(self, waveform: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                 config: str | os.PathLike | dict | None = None, speed: float = 1.0, start_s: float = 0.0,
                 log: str | os.PathLike | None = None, seed: int = 1):
        if isinstance(waveform, (str, os.PathLike)):
            waveform = [waveform]
        self.waveform = [str(p) for p in waveform] if waveform else []
        if not (isinstance(speed, (int, float)) and speed > 0 and math.isfinite(speed)):
            raise ValueError("speed must be a positive number, not %r" % (speed,))
        self.speed = float(speed)
        self.start_s = float(start_s)
        self.seed = seed
        self.config_doc = self._config(config)
        self.config = fwconfig.validate(self.config_doc)
        self.board = load_board(self.config["board"])
        self.port: str | None = None
        self.notes: list[str] = []
        self._log_path = Path(log) if log is not None else None
        self._dir: Path | None = None
        self._proc: subprocess.Popen | None = None

    @staticmethod
    def _config(config) -> dict:
        if config is None:
            return {"node_id": DEFAULT_NODE_ID}
        if isinstance(config, dict):
            return dict(config)
        try:
            text = Path(config).read_text()
        except OSError as e:
            raise VirtualNodeError("cannot read config %s: %s" % (config, e.strerror)) from None
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise ConfigError("(document)", "not valid JSON: %s" % e) from None
        return doc

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Start the virtual node; return its port (/dev/pts/N) once the node has booted."""
        if self._proc is not None:
            raise VirtualNodeError("already started")
        node = mpvm.node_binary()  # VMUnavailable: no Node.js or no MicroPython package
        self._dir = Path(tempfile.mkdtemp(prefix="seismote-vnode-"))
        try:
            params = self._prepare(self._dir)
            master, slave = os.openpty()
            try:
                tty.setraw(slave)  # clients set their own modes; raw until then
                os.set_blocking(master, False)  # vnode.mjs reads it synchronously while a command runs
                self.port = os.ttyname(slave)
                log_path = self._log_path or (self._dir / "vnode.log")
                with open(log_path, "ab") as logf:
                    self._proc = subprocess.Popen(
                        [node, str(SCRIPT), "--params", str(params), "--fd", str(master), "--hold-fd", str(slave)],
                        pass_fds=(master, slave), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=logf,
                        cwd=mpvm.ROOT, start_new_session=True,
                    )
            finally:
                os.close(master)  # the Node process holds both ends now
                os.close(slave)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self.port

    def _wait_ready(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        buf = b""
        while b"ready\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise VirtualNodeError("the virtual node did not start within %.0f s:\n%s" % (READY_TIMEOUT_S, self.log_text()[-2000:]))
            r, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
            if r:
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    proc.wait(5)
                    raise VirtualNodeError("the virtual node exited (status %s):\n%s" % (proc.returncode, self.log_text()[-2000:]))
                buf += chunk

    def stop(self) -> None:
        """Stop the virtual node (its port disappears) and remove its temporary files."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()  # vnode.mjs exits when its stdin closes
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._dir is not None:
            if self._log_path is None and (self._dir / "vnode.log").exists():
                self._last_log = (self._dir / "vnode.log").read_text(errors="replace")
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        """What the virtual node logged (boot problems, node faults, firmware crashes)."""
        path = self._log_path or (self._dir / "vnode.log" if self._dir else None)
        if path is not None and Path(path).exists():
            return Path(path).read_text(errors="replace")
        return getattr(self, "_last_log", "")

    def __enter__(self) -> "VirtualNode":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what the VM gets ----------------------------------------------------------------------

    def _prepare(self, d: Path) -> Path:
        cfg = self.config
        sensor = self.board["sensor"]
        rate = int(cfg["sensor"]["odr_hz"])
        if self.waveform:
            frames, unix0, self.notes = sensor_frames(self.waveform, cfg, self.start_s)
            tail = frames[-rate:].mean(axis=0) if len(frames) else np.zeros(3)
        else:
            frames, unix0 = np.zeros((0, 3), dtype=np.int32), None
            tail = np.zeros(3)
        noise = noise_frames(cfg, NOISE_S * rate, np.rint(tail), self.seed)
        feed = d / "feed.i32"
        with open(feed, "wb") as f:
            f.write(frames.astype("<i4").tobytes())
            f.write(noise.astype("<i4").tobytes())
        (d / "config.json").write_text(json.dumps(self.config_doc, indent=2) + "\n")
        (d / "board.json").write_text(json.dumps(self.board, indent=2) + "\n")
        uid = "240ac4%06x" % (zlib.crc32(self.config["node_id"].encode()) & 0xFFFFFF)
        params = {
            "firmware": str(mpvm.FIRMWARE),
            "files": {"/config.json": str(d / "config.json"), "/board.json": str(d / "board.json")},
            "feed": str(feed),
            "frames": int(len(frames)),
            "noise_frames": int(len(noise)),
            "odr": rate,
            "chip": {"type": sensor["type"], "bus": sensor["bus"], "address": sensor["address"]},
            "unix0": unix0 if unix0 is not None else time.time(),
            "speed": self.speed,
            "uid": uid,
            "banner_machine": "seismote virtual node (%s) with %s" % (self.board["name"], sensor["type"].upper()),
        }
        path = d / "params.json"
        path.write_text(json.dumps(params))
        return path


# ---------------------------------------------------------------------------------------------
# `seismote node virtual`


def register(cli) -> None:
    """Add `seismote node virtual` to the click group `cli` (creating the `node` group if needed)."""
    import click

    class _Error(click.ClickException):
        exit_code = 2

        def show(self, file=None) -> None:
            click.echo("seismote: %s" % self.message, err=True)

    group = cli.commands.get("node")
    if group is None:
        group = click.Group("node", help="Nodes that need no hardware: the virtual node.")
        cli.add_command(group)

    @group.command("virtual")
    @click.option("--waveform", "waveform", multiple=True, type=click.Path(dir_okay=False),
                  help="Waveform feeding the sensor (any format `seismote replay` reads; repeat for the files of one device). Default: sensor noise.")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Node configuration JSON (default: built-in, node vnode-0).")
    @click.option("--speed", type=float, default=1.0, show_default=True, help="Seconds of waveform per wall-clock second.")
    @click.option("--start", "start_s", type=float, default=0.0, help="Seconds of the waveform to skip.")
    def virtual(waveform: tuple[str, ...], config_path: str | None, speed: float, start_s: float) -> None:
        """Run a virtual node on a pseudo-terminal; print its port, run until Ctrl-C.

        The firmware runs on the MicroPython VM and answers on the port like a board:
        `mpremote connect PORT exec ...`, `mpremote connect PORT fs ls`, `seismote status --port PORT`.
        """
        from .waveforms import WaveformError

        try:
            vn = VirtualNode(waveform=list(waveform) or None, config=config_path, speed=speed, start_s=start_s)
            vn.start()
            for note in vn.notes:
                click.echo("seismote: note: %s" % note, err=True)
        except (ConfigError, WaveformError, VirtualNodeError, mpvm.VMUnavailable, ValueError, OSError) as e:
            prefix = "%s: invalid config: " % (config_path or "config") if isinstance(e, ConfigError) else ""
            raise _Error(prefix + str(e)) from None
        # Ctrl-C sets a flag instead of raising: a KeyboardInterrupt landing inside Popen.poll() can
        # leave its wait lock held, and stop()'s final wait() then hangs for ever.
        interrupted = threading.Event()
        main = threading.current_thread() is threading.main_thread()  # only there can a handler be set
        previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.set()) if main else None
        try:
            click.echo(vn.port)
            src = " + ".join(Path(w).name for w in waveform) if waveform else "sensor noise"
            click.echo("seismote: virtual node %s on %s: %s fed from %s at %gx; Ctrl-C to stop"
                       % (vn.config["node_id"], vn.port, vn.board["sensor"]["type"].upper(), src, speed), err=True)
            click.echo("seismote: try `mpremote connect %s exec \"import seismote_vnode; print(seismote_vnode.node.health())\"`"
                       % vn.port, err=True)
            while not interrupted.wait(0.5):
                if not vn.alive() and not interrupted.wait(0.2):  # a Ctrl-C reaches the VM's process too
                    raise _Error("the virtual node stopped:\n%s" % vn.log_text()[-2000:])
        except KeyboardInterrupt:  # a handler could not be set (not the main thread)
            pass
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
            vn.stop()
