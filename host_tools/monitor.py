"""`seismote monitor`: the live status of a node, for the field check and the tap test.

How it reads a running node depends on the node:

- A board: while main.py runs, the USB serial port is the node's console and the REPL is not
  available, so no tool can ask a running main.py anything. The monitor therefore restarts the
  node in a monitored session: it stops main.py (Ctrl-C, as every REPL tool does) and runs
  `logserver.run_monitored(interval_ms)` over the raw REPL, which starts the node with the board's
  own main.py (same board, config, log) but with `logserver.monitor()` as its main loop: the
  node's own loop plus a status frame every interval. The node samples, detects, logs and
  reports as always while it is watched. When the monitor exits (Ctrl-C, --once, --seconds) it
  interrupts the session and soft-reboots the board into main.py. The node's log shows the
  restarts as boot records.
- The virtual node, whose board steps the node between REPL commands: the monitor polls it, one
  short command (`logserver.poll(seismote_vnode.node)`) per interval, and changes nothing.

Status frames are the log stream's (COBS4, CRC-checked; firmware/logserver.py) with type
T_MONITOR and a JSON payload (logserver.Watch): node.health() (sensor, overflows, lost, dropped,
ratio, free_heap, log_next_seq, outbox_dropped, last_detection, triggers, detections, faults,
reinits...) and rate_hz, uptime_ms, t, outbox, link, in_event, last_event, counts_per_g, level,
wave_hz, wave.

    with Monitor(transport, interval=0.5) as m:
        for status in m.statuses():    # dicts: the frame plus level_g and noise_mg per axis
            ...
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
import time
from collections import deque

from ..firmware import logserver
from . import logs

AXES = ("x", "y", "z")
_BLOCKS = " ▁▂▃▄▅▆▇█"
G_MG = 1000.0


class MonitorError(Exception):
    """The session could not start or stopped (hint: what to do)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def session_code(interval_ms: int) -> str:
    return "from seismote.firmware import logserver\nlogserver.run_monitored(%d)\n" % interval_ms


POLL_CODE = "import seismote_vnode\nfrom seismote.firmware import logserver\nlogserver.poll(seismote_vnode.node)\n"


def derive(frame: dict) -> dict:
    """The frame plus host-side figures: level_g (gravity per axis, g) and noise_mg (RMS of the
    conditioned samples in the frame, mg), None where the node sent no pipeline data."""
    out = dict(frame)
    cpg = frame.get("counts_per_g")
    level = frame.get("level")
    wave = frame.get("wave") or []
    out["level_g"] = [round(v / cpg, 4) for v in level] if cpg and level else None
    if cpg and len(wave) >= 3:
        out["noise_mg"] = []
        for a in range(3):
            col = wave[a::3]
            mean = sum(col) / len(col)
            rms = (sum((v - mean) ** 2 for v in col) / len(col)) ** 0.5
            out["noise_mg"].append(round(rms / cpg * G_MG, 3))
    else:
        out["noise_mg"] = None
    return out


class Monitor:
    """Status frames from the node on `transport` (host_tools.transport.Transport, an mpremote
    transport, or a stand-in with the same methods).

    poll=False: a monitored session (a board); `code` replaces the session's Python.
    poll=True: one command per interval (a node that runs between commands: the virtual node).
    """

    def __init__(self, transport, interval: float = 0.5, idle_s: float | None = None, code: str | None = None,
                 poll: bool = False):
        self.transport = transport
        self.interval = interval
        self.idle_s = idle_s if idle_s is not None else max(10.0, 4 * interval)
        self.poll = poll
        self.code = code or (POLL_CODE if poll else session_code(int(interval * 1000)))
        self.st = logs.raw_transport(transport)
        self.wire: logs.Wire | None = None
        self.old_timeout = None
        self.started = False

    def start(self) -> None:
        self.started = True
        if self.poll:
            return
        st = self.st
        ser = st.serial
        self.old_timeout = ser.timeout
        try:
            if not st.in_raw_repl:
                st.enter_raw_repl(soft_reset=False)
            st.exec_raw_no_follow(self.code)
            ser.timeout = 0.05  # after mpremote's handshake, which reads with the port's own timeout
        except Exception as e:  # mpremote's TransportError, pyserial's SerialException
            raise MonitorError("could not start the monitor session: %s" % (e,)) from None
        self.wire = logs.Wire(ser, self.idle_s)

    def statuses(self):
        """Yield one dict per status frame (derive()d); MonitorError when the node stops."""
        if not self.started:
            self.start()
        if self.poll:
            yield from self._polled()
            return
        wire = self.wire
        assert wire is not None  # set by start()
        while True:
            try:
                rec = logs.read_frame(wire)
            except logs.StreamEnded:
                wire.byte()
                try:
                    err = wire.until(4)[:-1]
                except logs.LinkError:
                    err = b""
                raise _stopped(err) from None
            except logs.FrameError as e:
                raise MonitorError("corrupt status frame from the node: %s" % e, "check the cable; run the monitor again") from None
            except logs.LinkError as e:
                raise MonitorError("lost the node: %s" % e, "check the cable; press EN to restart the board") from None
            yield derive(_status(rec))

    def _polled(self):
        first = True
        while True:
            t0 = time.monotonic()
            try:
                out, err = logs.run_code(self.transport, self.code, self.idle_s)
                if err:
                    raise _stopped(err)
                frames = logs.decode_frames(out)
            except logs.PullError as e:
                raise MonitorError("lost the node: %s" % e, "check the cable; run the monitor again") from None
            except Exception as e:  # mpremote's TransportError, pyserial's SerialException
                if isinstance(e, MonitorError):
                    raise
                raise MonitorError("lost the node: %s" % (e,), "check the cable; run the monitor again") from None
            if len(frames) != 1:
                raise MonitorError("the node answered %d status frames to one poll" % len(frames))
            if not first:  # the first poll starts the node's Watch: no rate, no waveform yet
                yield derive(_status(frames[0]))
            first = False
            time.sleep(max(0.0, self.interval - (time.monotonic() - t0)))

    def stop(self) -> None:
        """End the session: interrupt it (Ctrl-C) and drain its output (nothing to do when polling)."""
        if self.poll or not self.started:
            return
        ser = self.st.serial
        logs.abandon(ser)
        try:
            ser.timeout = self.old_timeout
        except Exception:
            pass

    def __enter__(self) -> "Monitor":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _status(rec) -> dict:
    if rec.type != logserver.T_MONITOR:
        raise MonitorError("unexpected frame type 0x%02x from the node" % rec.type)
    return rec.json()


def _stopped(err: bytes) -> MonitorError:
    line = logs.last_line(err) if err else "the session ended"
    hint = None
    if "ImportError" in line or "no module named" in line:
        hint = "install the seismote firmware on the node (seismote flash)"
    elif "ConfigError" in line:
        hint = "check the node's configuration (seismote config validate)"
    return MonitorError("the node stopped: %s" % line, hint)


# ---------------------------------------------------------------------------------------------
# The live view


def sparkline(values, width: int, floor: float = 0.0, slots: int | None = None) -> tuple[str, float]:
    """|values| as `width` block characters (the peak per column) and the full-scale value.

    With `slots` (> len(values)) the values fill the right end of a time axis of that many
    samples, so that new data scrolls in from the right; the empty start is blank.
    """
    vals = list(values)
    n = len(vals)
    total = max(n, slots or 0)
    if not total:
        return " " * width, 0.0
    pad = total - n
    cols: list[float | None] = []
    for c in range(width):
        a = max(c * total // width - pad, 0)
        b = max((c + 1) * total // width - pad, 0)
        cols.append(max(abs(v) for v in vals[a : max(b, a + 1)]) if b > 0 and a < n else None)
    peak = max((v for v in cols if v is not None), default=0.0)
    scale = max(peak, floor)
    if scale <= 0:
        return "".join(" " if v is None else _BLOCKS[1] for v in cols), 0.0
    line = "".join(" " if v is None else _BLOCKS[min(8, 1 + int(7.999 * v / scale))] for v in cols)
    return line, scale


class View:
    """Keeps the last `seconds` of waveform; renders the status panel with rich."""

    def __init__(self, seconds: float = 10.0, title: str = ""):
        self.seconds = seconds
        self.title = title
        self.wave: list[deque] = [deque() for _ in AXES]
        self.status: dict | None = None

    def update(self, status: dict) -> None:
        self.status = status
        hz = status.get("wave_hz") or 50
        cap = int(self.seconds * hz)
        wave = status.get("wave") or []
        cpg = status.get("counts_per_g") or 0
        for a in range(3):
            d = self.wave[a]
            if d.maxlen != cap:
                self.wave[a] = d = deque(d, maxlen=cap)
            if cpg:
                d.extend(v / cpg * G_MG for v in wave[a::3])

    def render(self, width: int = 100):
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        s = self.status or {}
        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold")
        t.add_column()

        def fmt(v, unit="", nd=None):
            if v is None:
                return "-"
            return ("%.*f" % (nd, v) if nd is not None else str(v)) + unit

        sensor = s.get("sensor")
        t.add_row("sensor", Text(str(sensor), style="green" if sensor == "ok" else "bold red"))
        t.add_row("sample rate", fmt(s.get("rate_hz"), " Hz", 1))
        data_path = "overflows %s, lost %s, dropped %s" % (fmt(s.get("overflows")), fmt(s.get("lost")), fmt(s.get("dropped")))
        bad = any((s.get(k) or 0) > 0 for k in ("overflows", "lost", "dropped"))
        t.add_row("FIFO / ring", Text(data_path, style="bold red" if bad else ""))
        ratio = s.get("ratio")
        bar = "" if ratio is None else " " + "█" * min(40, int(ratio * 4))
        t.add_row("STA/LTA", Text(fmt(ratio, "", 2) + bar, style="bold red" if s.get("in_event") else ""))
        t.add_row("free heap", fmt(s.get("free_heap"), " B"))
        up = s.get("uptime_ms")
        t.add_row("uptime", "-" if up is None else str(_dt.timedelta(seconds=int(up // 1000))))
        clock = logs.iso(s.get("t") or 0)
        t.add_row("clock", Text(clock or "unset", style="" if clock else "yellow"))
        t.add_row("link", "%s (outbox %s, dropped %s)" % (s.get("link", "-"), fmt(s.get("outbox")), fmt(s.get("outbox_dropped"))))
        ev = s.get("last_event")
        if ev:
            t.add_row("last detection", "seq %s, %s, PGA %s gal, score %s" % (
                ev.get("seq"), logs.iso(ev.get("time") or 0) or "clock unset", fmt(ev.get("pga_gal"), "", 2), fmt(ev.get("score"), "", 2)))
        else:
            t.add_row("last detection", "none")
        t.add_row("since boot", "triggers %s, detections %s, rejected %s, faults %s, reinits %s" % tuple(
            fmt(s.get(k)) for k in ("triggers", "detections", "rejected", "faults", "reinits")))
        lv = s.get("level_g")
        t.add_row("level (g)", "-" if not lv else "  ".join("%s %+.3f" % (a, v) for a, v in zip(AXES, lv)))
        nz = s.get("noise_mg")
        t.add_row("noise (mg rms)", "-" if not nz else "  ".join("%s %.2f" % (a, v) for a, v in zip(AXES, nz)))
        lines = []
        for a, name in enumerate(AXES):
            line, scale = sparkline(self.wave[a], width, floor=1.0, slots=self.wave[a].maxlen)
            lines.append(Text.assemble((name + " ", "bold"), (line, "cyan"), (" %6.1f mg" % scale, "dim")))
        wave_title = Text("waveform, last %g s (|a| per column, conditioned)" % self.seconds, style="dim")
        return Panel(Group(t, Text(""), wave_title, *lines), title=self.title, title_align="left")


# ---------------------------------------------------------------------------------------------
# The command


def run(port: str | None, baud: int = 115200, as_json: bool = False, once: bool = False, interval: float = 0.5,
        seconds: float | None = None, transport=None, out=None, console=None) -> int:
    """`seismote monitor`: returns the number of status frames shown."""
    out = out or sys.stdout
    if transport is None:
        from .transport import Transport

        # No soft reset: on a board Ctrl-C has stopped main.py already; the virtual node keeps running.
        transport = Transport.connect(port, baudrate=baud, soft_reset=False)
    shown = 0
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        live = logs.node_runs_between_commands(transport)
    except Exception as e:  # NodeError, LinkError, mpremote's TransportError
        logs.finish(transport, restart=False)
        raise MonitorError("the node does not answer: %s" % e) from None
    mon = Monitor(transport, interval, poll=live)
    try:
        mon.start()
        if as_json:
            for status in mon.statuses():
                out.write(json.dumps(status) + "\n")
                out.flush()
                shown += 1
                if once or (deadline is not None and time.monotonic() >= deadline):
                    break
        else:
            from rich.console import Console
            from rich.live import Live

            console = console or Console()
            view = View(title="seismote monitor: %s" % (port or "node"))
            with Live(view.render(), console=console, refresh_per_second=4, transient=False) as screen:
                for status in mon.statuses():
                    view.title = "seismote monitor: node %s on %s" % (status.get("node"), port or "port")
                    view.update(status)
                    screen.update(view.render(max(20, min(120, console.width - 16))))
                    shown += 1
                    if once or (deadline is not None and time.monotonic() >= deadline):
                        break
    except KeyboardInterrupt:
        pass
    finally:
        mon.stop()
        logs.finish(transport, restart=not live)  # a board: back to main.py
    return shown
