// The seismote virtual node: the node firmware on the real MicroPython VM (the MicroPython
// project's WebAssembly port under Node.js) behind a pseudo-terminal, speaking the MicroPython
// REPL protocol so that mpremote, pyserial and every `seismote` command talk to it as to a board.
//
//   node vnode.mjs --params PARAMS.json --fd PTY_MASTER_FD [--hold-fd PTY_SLAVE_FD]
//
// Started by host_tools/virtual_node.py, which opens the pty pair, writes PARAMS.json (firmware
// folder, initial /config.json and /board.json, the sensor feed, speed) and passes the master and
// slave fds. The slave is only held open, never read, so the pty does not hang up between client
// sessions. The process ends when its stdin closes (the Python side went away) or on SIGTERM.
// "ready" is printed on stdout once the node has booted; all logging goes to stderr.
//
// What it emulates, after shared/runtime/pyexec.c and mpremote's transport_serial.py:
// - friendly REPL: ">>> " prompt, echo, "... " continuation with auto-indent, Ctrl-E paste mode,
//   Ctrl-C cancels the line, Ctrl-B reprints the banner, Ctrl-D on an empty line soft-reboots;
// - raw REPL (Ctrl-A): "raw REPL; CTRL-B to exit\r\n>"; Ctrl-D runs the line and answers
//   "OK" + stdout + "\x04" + traceback + "\x04>"; Ctrl-D on an empty line answers "OK\r\n" and
//   soft-reboots ("MPY: soft reboot\r\n", the raw REPL banner again); Ctrl-B back to friendly;
// - raw-paste mode: "\x05A\x01" at the raw prompt answers "R\x01", the 2-byte little-endian
//   window and "\x01"; one "\x01" per window consumed; "\x04" from the host is acknowledged with
//   "\x04", then the code runs and answers stdout + "\x04" + traceback + "\x04>" (no "OK");
// - Ctrl-C during a command raises KeyboardInterrupt in it (whenever the code prints or reads the
//   clock: the VM has no other hook; a loop that does neither cannot be interrupted);
// - soft reset (Ctrl-D, SystemExit) and machine.reset() start a fresh VM: the filesystem (the
//   board's "flash") is carried over, Python state is not; the node boots again;
// - errno: the Emscripten filesystem's numbers (44 ENOENT, 20 EEXIST, ...) are translated at the
//   VM's syscall imports to the Linux/MicroPython numbers a board reports (2, 17, ...), so a
//   missing file is "OSError: [Errno 2] ENOENT" as mpremote expects;
// - console details: print() sends "\n" as "\r\n" (sys.stdout.buffer stays raw), os.ilistdir
//   gives sizes as littlefs does, input() reads a line from the port (this port's stdin always
//   reads 0), micropython.kbd_intr(-1) switches Ctrl-C off for one command.
// Not emulated: sys.stdin (mpremote mount needs it and is refused at once), REPL history and
// name completion, a command that neither prints nor reads the clock cannot be interrupted.
//
// The node (seismote_vnode below) runs as short top-level calls between REPL commands: this VM
// frees garbage only between top-level calls, and while a command runs the node pauses.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";
import tty from "node:tty";

// ---------------------------------------------------------------------------------------------
// Arguments

const args = process.argv.slice(2);
let paramsPath = null;
let ptyFd = null;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--params") paramsPath = args[++i];
  else if (a === "--fd") ptyFd = parseInt(args[++i], 10);
  else if (a === "--hold-fd") i++; // inherited and kept open for the life of the process
  else fail(`unknown argument ${a}`);
}
if (paramsPath === null || ptyFd === null || Number.isNaN(ptyFd)) fail("give --params FILE and --fd N");
const P = JSON.parse(fs.readFileSync(paramsPath, "utf8"));

function fail(msg) {
  process.stderr.write(`vnode: ${msg}\n`);
  process.exit(2);
}

function log(msg) {
  process.stderr.write(`vnode: ${msg}\n`);
}

// SEISMOTE_VNODE_DEBUG=1: log every command, reset and tick failure (to stderr, the log file).
const DEBUG = !!process.env.SEISMOTE_VNODE_DEBUG;
function debug(msg) {
  if (DEBUG) log(`[${new Date().toISOString()}] ${msg}`);
}

const realNow = Date.now.bind(Date);
const speed = P.speed > 0 ? P.speed : 1;
const STEP_MS = 40; // node time per main-loop pass (seismote_vnode._STEP_MS)
const TICK_MS = 50; // wall time between node ticks when the node keeps up
const TICK_BUDGET_MS = 40; // wall time one tick may take
const MAX_LEAD_MS = Math.max(2000, 4 * TICK_MS * speed); // world ahead of a lagging node, at most
const RAW_PASTE_WINDOW = P.window || 256;
const OUT_CAP = 256 * 1024; // bytes queued for a client that does not read; more is dropped, as a UART would
const STALL_MS = 5000; // a command's output waits this long for a client that stopped reading
const POLL_MS = 20; // how often a running command looks for Ctrl-C and flushes its output
const sleepCell = new Int32Array(new SharedArrayBuffer(4)); // Atomics.wait on it = a synchronous sleep

// ---------------------------------------------------------------------------------------------
// Errno: Emscripten (WASI) numbers -> Linux numbers, which MicroPython's errno module and mpremote use.

const ERRNO = [
  // name, emscripten, linux
  ["E2BIG", 1, 7], ["EACCES", 2, 13], ["EADDRINUSE", 3, 98], ["EADDRNOTAVAIL", 4, 99],
  ["EAFNOSUPPORT", 5, 97], ["EAGAIN", 6, 11], ["EALREADY", 7, 114], ["EBADF", 8, 9],
  ["EBADMSG", 9, 74], ["EBUSY", 10, 16], ["ECANCELED", 11, 125], ["ECHILD", 12, 10],
  ["ECONNABORTED", 13, 103], ["ECONNREFUSED", 14, 111], ["ECONNRESET", 15, 104], ["EDEADLK", 16, 35],
  ["EDESTADDRREQ", 17, 89], ["EDOM", 18, 33], ["EDQUOT", 19, 122], ["EEXIST", 20, 17],
  ["EFAULT", 21, 14], ["EFBIG", 22, 27], ["EHOSTUNREACH", 23, 113], ["EIDRM", 24, 43],
  ["EILSEQ", 25, 84], ["EINPROGRESS", 26, 115], ["EINTR", 27, 4], ["EINVAL", 28, 22],
  ["EIO", 29, 5], ["EISCONN", 30, 106], ["EISDIR", 31, 21], ["ELOOP", 32, 40],
  ["EMFILE", 33, 24], ["EMLINK", 34, 31], ["EMSGSIZE", 35, 90], ["EMULTIHOP", 36, 72],
  ["ENAMETOOLONG", 37, 36], ["ENETDOWN", 38, 100], ["ENETRESET", 39, 102], ["ENETUNREACH", 40, 101],
  ["ENFILE", 41, 23], ["ENOBUFS", 42, 105], ["ENODEV", 43, 19], ["ENOENT", 44, 2],
  ["ENOEXEC", 45, 8], ["ENOLCK", 46, 37], ["ENOLINK", 47, 67], ["ENOMEM", 48, 12],
  ["ENOMSG", 49, 42], ["ENOPROTOOPT", 50, 92], ["ENOSPC", 51, 28], ["ENOSYS", 52, 38],
  ["ENOTCONN", 53, 107], ["ENOTDIR", 54, 20], ["ENOTEMPTY", 55, 39], ["ENOTRECOVERABLE", 56, 131],
  ["ENOTSOCK", 57, 88], ["ENOTTY", 59, 25], ["ENXIO", 60, 6], ["EOVERFLOW", 61, 75],
  ["EOWNERDEAD", 62, 130], ["EPERM", 63, 1], ["EPIPE", 64, 32], ["EPROTO", 65, 71],
  ["EPROTONOSUPPORT", 66, 93], ["EPROTOTYPE", 67, 91], ["ERANGE", 68, 34], ["EROFS", 69, 30],
  ["ESPIPE", 70, 29], ["ESRCH", 71, 3], ["ESTALE", 72, 116], ["ETIMEDOUT", 73, 110],
  ["ETXTBSY", 74, 26], ["EXDEV", 75, 18], ["ENOTBLK", 105, 15], ["EOPNOTSUPP", 138, 95],
];
const TO_LINUX = new Map(ERRNO.map(([, em, lx]) => [em, lx]));
const toLinux = (e) => TO_LINUX.get(e) ?? e;

// Emscripten instantiates the VM with WebAssembly.instantiate(binary, imports); wrap the
// filesystem syscalls on the way in. __syscall_* return -errno on failure, the WASI fd_* calls
// return errno (0 = success).
const WRAPPED = Symbol("vnode-errno");
const instantiate = WebAssembly.instantiate.bind(WebAssembly);
WebAssembly.instantiate = function (source, imports, ...rest) {
  if (imports && typeof imports === "object") {
    for (const ns of Object.values(imports)) {
      if (!ns || typeof ns !== "object") continue;
      for (const name of Object.keys(ns)) {
        const f = ns[name];
        if (typeof f !== "function" || f[WRAPPED]) continue;
        let g = null;
        if (name.startsWith("__syscall_")) {
          g = function (...a) {
            const r = f.apply(this, a);
            return typeof r === "number" && r < 0 ? -toLinux(-r) : r;
          };
        } else if (name.startsWith("fd_")) {
          g = function (...a) {
            const r = f.apply(this, a);
            return typeof r === "number" && r > 0 ? toLinux(r) : r;
          };
        }
        if (g) {
          g[WRAPPED] = true;
          ns[name] = g;
        }
      }
    }
  }
  return instantiate(source, imports, ...rest);
};

// A reset replaces the VM. The package's JS glue frees a Python object when its JS proxy is
// garbage-collected, through a FinalizationRegistry whose callback calls the *current* global
// Module: a proxy of a dead VM collected later would free an object of the live one. So each VM
// gets its own generation and the callbacks of older ones do nothing (their VM is gone anyway).
let vmGeneration = 0;
const NativeFinalizationRegistry = globalThis.FinalizationRegistry;
globalThis.FinalizationRegistry = class extends NativeFinalizationRegistry {
  constructor(cleanup) {
    const gen = vmGeneration;
    super((held) => {
      if (gen === vmGeneration) cleanup(held);
    });
  }
};

// ---------------------------------------------------------------------------------------------
// Python that lives in the VM like a board's frozen modules (/.vnode/lib, on sys.path after
// .frozen, before /lib; rewritten at every reset, not part of the flash)

const BOOT_PY = String.raw`"""_boot: runs first at every reset of the virtual node, like a board's frozen _boot.py."""
import builtins
import io
import sys

_print = builtins.print


def print(*args, sep=" ", end="\n", file=None, **kw):
    # A board's console sends "\n" of text as "\r\n" (sys.stdout.buffer stays raw); do the same.
    if file is None or file is sys.stdout or file is sys.stderr:
        b = io.StringIO()
        _print(*args, sep=sep, end=end, file=b)
        (sys.stdout if file is None else file).write(b.getvalue().replace("\n", "\r\n"))
    else:
        _print(*args, sep=sep, end=end, file=file)


builtins.print = print


def input(prompt=""):
    # This port's stdin always reads 0 (its input() would wait forever): read a line from the
    # console the way a board's input() does, echoed, Backspace edits, Ctrl-C interrupts.
    if prompt:
        sys.stdout.write(str(prompt))
    import _vnode_host

    line = _vnode_host.read_line()
    if line is None:
        raise EOFError
    if line == "\x03":
        raise KeyboardInterrupt
    return line


builtins.input = input

# A board runs each REPL command with Ctrl-C as the interrupt character (this port starts with none).
import micropython

micropython.kbd_intr(3)

# The board's filesystem lists (name, type, inode, size) like littlefs (VfsPosix gives no size),
# and its root shows only the flash: the VM's /dev, /proc and the virtual node's own parts are hidden.
import os

_ilistdir = os.ilistdir
_HIDDEN = ("dev", "proc", ".vnode")


def _at_root(path):
    return path in ("/", "") and os.getcwd() == "/" or path == "/"


def ilistdir(path=""):
    root = _at_root(path)
    base = path if path else "."
    for e in _ilistdir(path) if path else _ilistdir():
        if root and e[0] in _HIDDEN:
            continue
        size = 0
        if e[1] & 0x8000:
            try:
                size = os.stat(base + "/" + e[0])[6]
            except OSError:
                pass
        yield (e[0], e[1], e[2], size)


def listdir(path=""):
    return [e[0] for e in ilistdir(path)]


os.ilistdir = ilistdir
os.listdir = listdir


def _absorb():
    # Raises a KeyboardInterrupt that was scheduled too late for the command it was meant for.
    for _ in range(2):
        pass
`;

const MACHINE_PY = String.raw`"""machine for the seismote virtual node: the calls host tools make on a board.

reset() restarts the virtual node as an ESP32 reset does (the REPL comes back friendly, the node
boots again, reset_cause() is then SOFT_RESET as after esp_restart); soft_reset() is a soft reboot;
unique_id() is the virtual node's MAC; WDT is accepted and fed but never fires. There are no pins or
buses: the sensor is the register model the virtual board owns (seismote_vnode.chip).
"""
import _vnode_host

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5


def reset():
    _vnode_host.request_reset("hard")
    raise SystemExit


def soft_reset():
    raise SystemExit


def reset_cause():
    return _vnode_host.reset_cause()


def unique_id():
    import binascii

    return binascii.unhexlify(_vnode_host.uid)


def freq(hz=None):
    return 240000000 if hz is None else None


def idle():
    pass


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout

    def feed(self):
        pass
`;

const VNODE_PY = String.raw`"""seismote_vnode: the virtual node's board, started at every reset of the virtual node.

The node (seismote.firmware.node.Node) runs on a HostBoard whose sensor is a register model of the
board profile's accelerometer. Its FIFO is filled from /.vnode/feed.i32 (int32 x, y, z frames at
the sensor rate: the waveform, resampled and scaled to counts on the host, then sensor noise) at
the pace of the world clock that the host advances; the host calls _tick() between REPL commands.

    import seismote_vnode
    seismote_vnode.node.health()     # the running node (None if it did not start: see .error)
    seismote_vnode.info()            # feed position, clocks, speed
"""
import json
import sys
from array import array
from time import ticks_diff, ticks_ms

from seismote.firmware.board import HostBoard
from seismote.firmware.node import Node

FEED = "/.vnode/feed.i32"
_STEP_MS = 40  # node time per pass of the main loop, as Node.run(poll_ms=40)
_BLOCK = 256  # frames read from the feed file at a time

node = None  # the running Node, or None (error says why)
board = None
chip = None
error = None
params = None
_feed = None


class VirtualBoard(HostBoard):
    def __init__(self, bus, cs, address, unix_time, uid):
        HostBoard.__init__(self, bus, cs, address=address, data_dir="/data", name="virtual", unix_time=unix_time)
        self._uid = uid

    def unique_id(self):
        return self._uid

    def reset_cause(self):
        import machine

        c = machine.reset_cause()
        if c == machine.SOFT_RESET:
            return "soft"
        if c == machine.HARD_RESET:
            return "hard"
        return "power_on"

    def reset(self):
        import machine

        machine.reset()


class _Feed:
    """Frames of the feed file in order: the record, then its noise block over and over."""

    def __init__(self, frames, noise_frames, first):
        self.frames = frames
        self.noise = noise_frames
        self.i = first  # absolute frame index (world time * rate)
        self.buf = array("i", [0] * (3 * _BLOCK))
        self.base = 0
        self.n = 0
        self.f = open(FEED, "rb") if frames + noise_frames else None

    def _pos(self, i):
        if i < self.frames or not self.noise:
            return i
        return self.frames + (i - self.frames) % self.noise

    def push(self, chip, count):
        i = self.i
        buf = self.buf
        for _ in range(count):
            j = self._pos(i)
            k = j - self.base
            if k < 0 or k >= self.n:
                self.f.seek(j * 12)
                got = self.f.readinto(buf) or 0
                self.base = j
                self.n = got // 12
                k = 0
                if self.n == 0:
                    break
            k *= 3
            chip.push(buf[k], buf[k + 1], buf[k + 2])
            i += 1
        self.i = i


def _make_chip(spec):
    kind = spec["type"]
    if kind == "adxl355":
        from seismote.firmware.chipmodels.adxl355 import ADXL355Model as Model
    elif kind == "adxl345":
        from seismote.firmware.chipmodels.adxl345 import ADXL345Model as Model
    else:
        from seismote.firmware.chipmodels.mpu6050 import MPU6050Model as Model
    return Model() if spec.get("address") is None else Model(spec["address"])


def start(text):
    """Boot the node; called by the virtual node at every reset, with its parameters as JSON."""
    global node, board, chip, error, params, _feed, _acc
    p = json.loads(text)
    params = p
    node = None
    error = None
    _acc = 0
    try:
        chip = _make_chip(p["chip"])
        _feed = _Feed(p["frames"], p["noise_frames"], p["world_ms"] * p["odr"] // 1000)
        if p["chip"]["bus"] == "spi":
            board = VirtualBoard(chip.spi, chip.cs, None, p["unix_s"], p["uid"])
        else:
            board = VirtualBoard(chip, None, chip.address, p["unix_s"], p["uid"])
        with open("/config.json") as f:
            cfg = json.load(f)
        n = Node(board, cfg)
        n.boot()
        node = n
    except Exception as e:
        error = "%s: %s" % (type(e).__name__, e)
        print("seismote virtual node: the node did not start: " + error)


def _crash(e):
    global node, error
    import io

    s = io.StringIO()
    sys.print_exception(e, s)
    error = "the node stopped: " + s.getvalue()
    node = None


_acc = 0


def _tick(ahead, budget):
    """Run the node's main loop for up to 'ahead' ms of node time; return the ms run (-1: not running)."""
    global _acc
    if node is None:
        return -1
    t0 = ticks_ms()
    done = 0
    rate = params["odr"] * _STEP_MS
    try:
        while done + _STEP_MS <= ahead:
            _acc += rate
            n = _acc // 1000
            _acc -= n * 1000
            _feed.push(chip, n)
            board.sleep_ms(_STEP_MS)
            node.step()
            done += _STEP_MS
            if ticks_diff(ticks_ms(), t0) >= budget:
                break
    except Exception as e:  # a firmware bug: the node stops, as main.py would on a board
        _crash(e)
        return -1
    return done


def info():
    """Where the virtual node is: feed frame, record or noise, clocks, speed."""
    p = params or {}
    return {
        "running": node is not None,
        "error": error,
        "sensor": p.get("chip"),
        "odr_hz": p.get("odr"),
        "speed": p.get("speed"),
        "frame": _feed.i if _feed else None,
        "record_frames": p.get("frames"),
        "in_record": bool(_feed and _feed.i < _feed.frames),
        "board_ms": board.ticks_ms() if board else None,
        "unix_time": board.unix_time() if board else None,
    }
`;

// ---------------------------------------------------------------------------------------------
// Output to the pty

let dropped = 0;
const outQ = [];
let outQBytes = 0;
let flushTimer = null;

function writeOut(data) {
  if (pendLen) flushPend(); // the command's output so far goes first
  if (typeof data === "string") data = Buffer.from(data, "latin1");
  else if (!Buffer.isBuffer(data)) data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (data.length === 0) return;
  lastOut = data[data.length - 1];
  if (outQ.length === 0) {
    try {
      const n = fs.writeSync(ptyFd, data);
      if (n === data.length) return;
      data = data.subarray(n);
    } catch (e) {
      if (e.code !== "EAGAIN") return ptyGone(e);
    }
  }
  if (outQBytes + data.length > OUT_CAP && execRunning) {
    // A command writes faster than the client reads: make it wait, as a full UART would,
    // unless nobody has read anything for STALL_MS.
    let last = realNow();
    while (outQBytes + data.length > OUT_CAP && realNow() - last < STALL_MS && !closing) {
      const before = outQBytes;
      flushOut();
      if (outQBytes < before) last = realNow();
      else Atomics.wait(sleepCell, 0, 0, 2);
    }
  }
  if (outQBytes + data.length > OUT_CAP) {
    dropped += data.length; // nobody reads the port: lost, as on a UART
    return;
  }
  outQ.push(data);
  outQBytes += data.length;
  if (!flushTimer) flushTimer = setTimeout(flushOut, 2);
}

function flushOut() {
  flushTimer = null;
  while (outQ.length) {
    let n;
    try {
      n = fs.writeSync(ptyFd, outQ[0]);
    } catch (e) {
      if (e.code !== "EAGAIN") return ptyGone(e);
      break;
    }
    outQBytes -= n;
    if (n === outQ[0].length) outQ.shift();
    else {
      outQ[0] = outQ[0].subarray(n);
      break;
    }
  }
  if (outQ.length && !flushTimer) flushTimer = setTimeout(flushOut, 2);
}

function ptyGone(e) {
  log(`the pty failed (${e.code || e.message}); stopping`);
  shutdown(1);
}

// Newlines of human-facing output (friendly REPL, boot, tracebacks) go out as "\r\n", as a board
// sends them; a "\n" already preceded by "\r" is left alone.
function cook(bytes) {
  let extra = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 10 && (i === 0 ? lastOut !== 13 : bytes[i - 1] !== 13)) extra++;
  if (!extra) return bytes;
  const out = Buffer.alloc(bytes.length + extra);
  let j = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (c === 10 && (i === 0 ? lastOut !== 13 : bytes[i - 1] !== 13)) out[j++] = 13;
    out[j++] = c;
  }
  return out;
}

// VM output. "pty": a command's output to the client (cooked in the friendly REPL); "log": the
// node's own output between commands, which a client in the raw REPL must never see.
let sink = "pty";
let cookOut = true;
let lastOut = 0;
let pend = Buffer.alloc(4096);
let pendLen = 0;
let logLine = [];

function vmOut(bytes) {
  if (sink === "log") {
    for (const c of bytes) {
      if (c === 10) {
        log("node: " + Buffer.from(logLine).toString("utf8"));
        logLine = [];
      } else if (c !== 13) logLine.push(c);
    }
    return;
  }
  for (const c of bytes) {
    if (pendLen === pend.length) flushPend();
    pend[pendLen++] = c;
  }
  if (execRunning) pollDuringExec();
}

function flushPend() {
  if (!pendLen) return;
  let b = Buffer.from(pend.subarray(0, pendLen));
  pendLen = 0;
  if (cookOut) b = cook(b);
  writeOut(b);
}

// ---------------------------------------------------------------------------------------------
// Input from the pty

const inq = [];
let execRunning = false;
let interruptSent = false;
let lastPoll = 0;
let vm = null; // {mp, vnode (module proxy or null), tick (callable or null)}

// While a command runs the event loop is blocked: its output and the clock calls come here, and
// this reads the pty directly to catch Ctrl-C (anything else is queued for later, in order).
// That needs a non-blocking fd (virtual_node.py sets O_NONBLOCK on the master); without one a
// read would wait for input, so Ctrl-C is then only seen between commands.
const pollBuf = Buffer.alloc(4096);
const canPoll = (() => {
  try {
    const flags = /flags:\s*([0-7]+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${ptyFd}`, "utf8"));
    return flags !== null && (parseInt(flags[1], 8) & 0o4000) !== 0;
  } catch (e) {
    return false;
  }
})();
if (!canPoll) log(`fd ${ptyFd} is blocking: Ctrl-C cannot interrupt a running command`);

function pollDuringExec() {
  const now = realNow();
  if (now - lastPoll < POLL_MS) return;
  lastPoll = now;
  flushPend();
  flushOut();
  if (!canPoll) return;
  for (;;) {
    let n = 0;
    try {
      n = fs.readSync(ptyFd, pollBuf, 0, pollBuf.length, null);
    } catch (e) {
      if (e.code !== "EAGAIN") ptyGone(e);
      return;
    }
    if (n <= 0) return;
    const intr = vm ? vm.mp._module._mp_hal_get_interrupt_char() : 3;
    let start = 0;
    for (let i = 0; i < n; i++) {
      if (pollBuf[i] === intr) {
        if (i > start) inq.push(Buffer.from(pollBuf.subarray(start, i)));
        start = i + 1;
        if (execRunning && vm) {
          interruptSent = true;
          vm.mp._module._mp_sched_keyboard_interrupt();
        }
      }
    }
    if (start < n) inq.push(Buffer.from(pollBuf.subarray(start, n)));
  }
}

// input(): wait for the console's next byte (bytes that came during the command first).
function readByteBlocking() {
  for (;;) {
    if (inq.length) {
      const b = inq[0];
      if (b.length <= 1) inq.shift();
      else inq[0] = b.subarray(1);
      if (b.length) return b[0];
      continue;
    }
    flushPend();
    flushOut();
    if (!canPoll || closing) return -1;
    let n = 0;
    try {
      n = fs.readSync(ptyFd, pollBuf, 0, pollBuf.length, null);
    } catch (e) {
      if (e.code !== "EAGAIN") {
        ptyGone(e);
        return -1;
      }
    }
    if (n > 0) inq.push(Buffer.from(pollBuf.subarray(0, n)));
    else Atomics.wait(sleepCell, 0, 0, 10);
  }
}

function readLine() {
  const chars = [];
  for (;;) {
    const c = readByteBlocking();
    if (c < 0) return null;
    if (vm && c === vm.mp._module._mp_hal_get_interrupt_char()) {
      writeOut("\r\n");
      return "\x03";
    }
    if (c === 4 && chars.length === 0) return null;
    if (c === 13) {
      writeOut("\r\n");
      return Buffer.from(chars).toString("utf8");
    }
    if (c === 8 || c === 127) {
      if (chars.length) {
        chars.pop();
        writeOut("\b\x1b[K");
      }
    } else if (c >= 32) {
      chars.push(c);
      writeOut(Buffer.from([c]));
    }
  }
}

Date.now = function () {
  const t = realNow();
  if (execRunning && t - lastPoll >= POLL_MS) pollDuringExec();
  return t;
};

// ---------------------------------------------------------------------------------------------
// The VM

let bannerName = "MicroPython";
const bannerMachine = P.banner_machine || "seismote virtual node with ESP32 board layer";
let resetCause = 1; // machine.PWRON_RESET
let resetRequest = null; // "hard" once machine.reset() asked for it
let resetting = false;

const host = {
  request_reset(kind) {
    resetRequest = String(kind);
  },
  reset_cause() {
    return resetCause;
  },
  read_line() {
    return readLine();
  },
  uid: P.uid,
};

function mkdirs(FS, p) {
  let cur = "";
  for (const part of p.split("/").filter(Boolean)) {
    cur += "/" + part;
    try {
      FS.mkdir(cur);
    } catch (e) {
      /* exists */
    }
  }
}

function copyTree(FS, src, dst) {
  mkdirs(FS, dst);
  for (const ent of fs.readdirSync(src, { withFileTypes: true })) {
    if (ent.name === "__pycache__" || ent.name.startsWith(".") || ent.name.endsWith(".pyc")) continue;
    const s = path.join(src, ent.name);
    const d = dst + "/" + ent.name;
    if (ent.isDirectory()) copyTree(FS, s, d);
    else if (ent.isFile()) FS.writeFile(d, fs.readFileSync(s));
  }
}

// The board's "flash": everything but the Emscripten devices and the frozen parts.
const NOT_FLASH = new Set(["/dev", "/proc", "/.vnode"]);

function snapshot(FS) {
  const items = [];
  const walk = (dir) => {
    for (const name of FS.readdir(dir)) {
      if (name === "." || name === "..") continue;
      const p = (dir === "/" ? "" : dir) + "/" + name;
      if (NOT_FLASH.has(p)) continue;
      const st = FS.stat(p);
      if (FS.isDir(st.mode)) {
        items.push({ path: p, dir: true });
        walk(p);
      } else if (FS.isFile(st.mode)) {
        items.push({ path: p, data: FS.readFile(p), mtime: st.mtime.getTime() });
      }
    }
  };
  walk("/");
  return items;
}

function restore(FS, items) {
  for (const it of items) {
    if (it.dir) mkdirs(FS, it.path);
    else {
      FS.writeFile(it.path, it.data);
      try {
        FS.utime(it.path, it.mtime, it.mtime);
      } catch (e) {
        /* keeps the copy time */
      }
    }
  }
}

function removeEmscriptenDefaults(FS) {
  for (const p of ["/home/web_user", "/home", "/tmp"]) {
    try {
      FS.rmdir(p);
    } catch (e) {
      /* not there or not empty */
    }
  }
}

const feedBytes = P.feed ? fs.readFileSync(P.feed) : Buffer.alloc(0);

async function createVM(flash) {
  vmGeneration++;
  const mp = await loadMicroPython({
    heapsize: P.heap || 1024 * 1024,
    stdout: vmOut,
    stderr: vmOut,
    linebuffer: false,
  });
  const FS = mp.FS;
  removeEmscriptenDefaults(FS);
  if (flash) restore(FS, flash);
  else {
    // First power-on: the flash as `seismote flash` leaves it.
    copyTree(FS, P.firmware, "/lib/seismote/firmware");
    FS.writeFile("/lib/seismote/__init__.py", "");
    for (const [dst, src] of Object.entries(P.files || {})) {
      mkdirs(FS, path.posix.dirname(dst));
      FS.writeFile(dst, fs.readFileSync(src));
    }
    mkdirs(FS, "/data");
  }
  mkdirs(FS, "/.vnode/lib");
  FS.writeFile("/.vnode/lib/_boot.py", BOOT_PY);
  FS.writeFile("/.vnode/lib/machine.py", MACHINE_PY);
  FS.writeFile("/.vnode/lib/seismote_vnode.py", VNODE_PY);
  FS.writeFile("/.vnode/feed.i32", feedBytes);
  mp.registerJsModule("_vnode_host", host);
  if (!errnoChecked) {
    errnoChecked = true;
    const wrong = ERRNO.filter(([name, em]) => new FS.ErrnoError(em).code !== name).map(([name]) => name);
    if (wrong.length) log(`this MicroPython package numbers errno differently (${wrong.join(", ")}): update ERRNO`);
  }
  return { mp, vnode: null, tick: null };
}
let errnoChecked = false;

let world = 0; // the world clock: ms of node time since the virtual node started
let nodeAt = 0; // how far the running node's clock has got on the world clock
let lastWall = realNow();
let nodeError = null;

function advanceWorld() {
  const now = realNow();
  world += (now - lastWall) * speed;
  lastWall = now;
}

// Boot the new VM: frozen _boot, then the node. Output goes to the client, as boot output does.
function bootVM(v) {
  const mp = v.mp;
  sink = "pty";
  cookOut = true;
  try {
    mp.runPython("__import__('sys').path[:] = ['', '.frozen', '/.vnode/lib', '/lib']\n__import__('_boot')\n");
    const ver = mp.pyimport("sys").version;
    bannerName = ver.includes("; ") ? ver.slice(ver.indexOf("; ") + 2) : `MicroPython ${ver}`;
  } catch (e) {
    log(`the VM did not boot: ${e.message}`);
  }
  advanceWorld();
  nodeAt = Math.floor(world);
  const params = {
    chip: P.chip,
    odr: P.odr,
    frames: P.frames,
    noise_frames: P.noise_frames,
    world_ms: nodeAt,
    unix_s: P.unix0 === null || P.unix0 === undefined ? null : Math.floor(P.unix0 + nodeAt / 1000),
    uid: P.uid,
    speed,
  };
  try {
    v.vnode = mp.pyimport("seismote_vnode");
    v.vnode.start(JSON.stringify(params));
    v.tick = v.vnode._tick;
    nodeError = v.vnode.error;
    if (nodeError) log(`the node did not start: ${nodeError}`);
  } catch (e) {
    nodeError = e.message;
    writeOut(cook(Buffer.from(`seismote virtual node: the board layer did not load:\n${e.message}`)));
    log(`the board layer did not load: ${e.message}`);
  }
  flushPend();
}

// A reset: a fresh VM with the old one's flash. kind: "soft" (MicroPython soft reboot) or "hard".
async function reboot(kind) {
  debug(`reset ${kind}`);
  resetting = true;
  try {
    const flash = vm ? snapshot(vm.mp.FS) : null;
    vm = null;
    if (kind === "hard") resetCause = 5; // machine.SOFT_RESET: what an ESP32 reports after machine.reset()
    vm = await createVM(flash);
    bootVM(vm);
  } finally {
    resetting = false;
  }
}

function banner() {
  return `${bannerName}; ${bannerMachine}\r\nType "help()" for more information.\r\n`;
}

// Run one command. kind "file" (raw REPL, paste mode) or "single" (a friendly REPL line).
// Returns {err: traceback text or null, exit: null | "soft" | "hard"}.
function runCommand(src, kind) {
  const mp = vm.mp;
  src = src.replace(/\r\n?/g, "\n");
  if (src.includes("class RemoteFS") && src.includes("class RemoteCommand")) {
    // mpremote mount talks to the host through sys.stdin, which this port cannot read (it would
    // wait forever): refuse at once.
    debug("refused mpremote mount");
    return { err: "OSError: [Errno 95] EOPNOTSUPP: mpremote mount needs sys.stdin, which the virtual node's MicroPython (WebAssembly port) does not have\n", exit: null };
  }
  sink = "pty";
  lastPoll = realNow();
  interruptSent = false;
  resetRequest = null;
  execRunning = true;
  debug(`run ${kind} ${JSON.stringify(src.length > 200 ? src.slice(0, 200) + "..." : src)}`);
  let err = null;
  let exit = null;
  try {
    if (kind === "single") mp.runPython(`exec(compile(${JSON.stringify(src)}, '<stdin>', 'single'))`);
    else mp.runPython(src);
  } catch (e) {
    if (e && e.name === "PythonError") {
      if (e.type === "SystemExit") exit = resetRequest === "hard" ? "hard" : "soft";
      else {
        err = e.message;
        if (kind === "single") err = err.replace(/^(Traceback \(most recent call last\):\n)  File "<stdin>", line 1, in <module>\n(?=  File )/, "$1");
      }
    } else {
      // The VM itself failed (a wasm trap): nothing to do but restart it, as a watchdog would.
      err = `RuntimeError: the virtual node's VM failed: ${e && e.message ? e.message : e}\n`;
      exit = "hard";
    }
  } finally {
    execRunning = false;
  }
  debug(`done ${err ? "error " + JSON.stringify(err.slice(-200)) : "ok"}${exit ? " exit " + exit : ""}`);
  if (interruptSent && !exit) {
    try {
      vm.mp.pyimport("_boot")._absorb();
    } catch (e) {
      /* the late KeyboardInterrupt, now spent */
    }
  }
  if (!exit && vm.mp._module._mp_hal_get_interrupt_char() !== 3) {
    // micropython.kbd_intr(-1) lasts one command on a board (pyexec sets Ctrl-C before each)
    try {
      vm.mp.runPython("__import__('micropython').kbd_intr(3)");
    } catch (e) {
      /* nothing to restore */
    }
  }
  flushPend();
  return { err, exit };
}

// ---------------------------------------------------------------------------------------------
// The REPL protocol

const FRIENDLY = 0;
const RAW = 1;
let mode = FRIENDLY;

// friendly REPL state
let line = ""; // the whole input so far, continuation lines joined with "\n"
let lineStart = 0; // where the current physical line starts in `line`
let cont = false;
let paste = false;
let esc = 0; // 0 none, 1 after ESC, 2 in CSI
let autoIndentJustAdded = false;

// raw REPL state
let raw = [];
let rawLen = 0;
let pasteActive = false;
let pasteData = [];
let pasteRemain = 0;

function prompt() {
  writeOut(cont ? "... " : ">>> ");
}

function friendlyRestart() {
  line = "";
  lineStart = 0;
  cont = false;
  paste = false;
  autoIndentJustAdded = false;
  prompt();
}

function rawAppend(buf) {
  raw.push(buf);
  rawLen += buf.length;
}

function rawText() {
  return Buffer.concat(raw, rawLen);
}

function rawReset() {
  raw = [];
  rawLen = 0;
}

// py/repl.c mp_repl_continue_with_input
function continueWithInput(input) {
  if (input.length === 0) return false;
  const starts = /^(if|while|for|try|with|def|class|async)(?![A-Za-z0-9_])/.test(input) || input[0] === "@";
  let nParen = 0;
  let nBrack = 0;
  let nBrace = 0;
  let q = 0; // 0 none, 1 ', 2 ", 3 ''', 4 """
  let i = 0;
  for (; i < input.length; i++) {
    const c = input[i];
    if (c === "'") {
      if ((q === 0 || q === 3) && input[i + 1] === "'" && input[i + 2] === "'") {
        i += 2;
        q = 3 - q;
      } else if (q === 0 || q === 1) q = 1 - q;
    } else if (c === '"') {
      if ((q === 0 || q === 4) && input[i + 1] === '"' && input[i + 2] === '"') {
        i += 2;
        q = 4 - q;
      } else if (q === 0 || q === 2) q = 2 - q;
    } else if (c === "\\" && (input[i + 1] === "'" || input[i + 1] === '"' || input[i + 1] === "\\")) {
      if (q !== 0) i++;
    } else if (q === 0) {
      if (c === "(") nParen++;
      else if (c === ")") nParen--;
      else if (c === "[") nBrack++;
      else if (c === "]") nBrack--;
      else if (c === "{") nBrace++;
      else if (c === "}") nBrace--;
    }
  }
  if (q === 3 || q === 4) return true;
  if ((nParen > 0 || nBrack > 0 || nBrace > 0) && q === 0) return true;
  const last = input[input.length - 1];
  if (last === "\\") return true;
  if (starts && last !== "\n") return true;
  return false;
}

// shared/readline/readline.c readline_auto_indent, on `line` ending in "\n"
function autoIndent() {
  if (line.length < 2 || line[line.length - 1] !== "\n") return;
  let i = line.length - 1;
  for (; i > 0; i--) if (line[i - 1] === "\n") break;
  let j = i;
  for (; j < line.length; j++) if (line[j] !== " ") break;
  if (i > 0 && j + 1 === line.length) {
    // the previous line is all spaces: no auto-indent if the one before is too
    for (let k = i - 1; k > 0; --k) {
      if (line[k - 1] === "\n") return;
      if (line[k - 1] !== " ") break;
    }
  }
  let n = Math.floor((j - i) / 4);
  if (line[line.length - 2] === ":") n += 1;
  while (n-- > 0) {
    line += "    ";
    writeOut("    ");
    autoIndentJustAdded = true;
  }
}

function noteNewline() {
  lineStart = line.length;
  prompt();
  autoIndent();
}

// The friendly REPL, one byte. Returns an action (async function) or null.
function friendlyByte(c) {
  if (paste) {
    if (c === 3) {
      writeOut("\r\n");
      friendlyRestart();
    } else if (c === 4) {
      writeOut("\r\n");
      const src = line;
      return () => execFriendly(src, "file");
    } else {
      line += String.fromCharCode(c);
      writeOut(c === 13 ? "\r\n=== " : Buffer.from([c]));
    }
    return null;
  }
  if (esc === 1) {
    esc = c === 0x5b || c === 0x4f ? 2 : 0;
    return null;
  }
  if (esc === 2) {
    if (c >= 0x40 && c <= 0x7e) esc = 0;
    return null;
  }
  if (c === 3) {  // Ctrl-C: drop the line (or the continued statement) and prompt afresh
    writeOut("\r\n");
    friendlyRestart();
    return null;
  }
  const cur = line.slice(lineStart);
  if (c >= 1 && c <= 5 && cur.length === 0) {
    if (!cont) {
      if (c === 1) {
        writeOut("\r\nraw REPL; CTRL-B to exit\r\n>");
        mode = RAW;
        rawReset();
        line = "";
        return null;
      }
      if (c === 2) {
        writeOut("\r\n" + banner());
        friendlyRestart();
        return null;
      }
      if (c === 4) {
        writeOut("\r\n");
        return () => softReboot();
      }
      writeOut("\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ");
      line = "";
      lineStart = 0;
      paste = true;
      return null;
    }
    if (c === 4) {
      writeOut("\r\n");
      const src = line;
      return () => execFriendly(src, "single");
    }
    return null;
  }
  if (c === 27) {
    esc = 1;
    return null;
  }
  if (c === 13) {
    writeOut("\r\n");
    autoIndentJustAdded = false;
    if (!cont) {
      if (line.length === 0) {
        friendlyRestart();
        return null;
      }
      if (!continueWithInput(line)) {
        const src = line;
        return () => execFriendly(src, "single");
      }
      line += "\n";
      cont = true;
      noteNewline();
      return null;
    }
    if (continueWithInput(line)) {
      line += "\n";
      noteNewline();
      return null;
    }
    const src = line;
    return () => execFriendly(src, "single");
  }
  const justAdded = autoIndentJustAdded;
  autoIndentJustAdded = false;
  if (justAdded && (c === 9 || c === 32)) {
    // tab or space right after an auto-indent (pasted code): a tab keeps it, a space takes 3 back
    if (c === 32) {
      line = line.slice(0, line.length - 3);
      writeOut("\b\b\b\x1b[K");
    }
    return null;
  }
  if (c === 8 || c === 127) {
    if (cur.length === 0) return null;
    const n = /^ +$/.test(cur) && cur.length >= 4 ? 4 : 1; // an indent level at once
    line = line.slice(0, line.length - n);
    writeOut("\b".repeat(n) + "\x1b[K");
    return null;
  }
  if (c === 9) {
    // after whitespace a tab is 4 spaces (name completion is not emulated)
    if (line.length && /\s/.test(line[line.length - 1])) {
      line += "    ";
      writeOut("    ");
    }
    return null;
  }
  if (c >= 32 && c !== 127) {
    line += String.fromCharCode(c);
    writeOut(Buffer.from([c]));
  }
  return null;
}

async function execFriendly(src, kind) {
  const text = Buffer.from(src, "latin1").toString("utf8"); // bytes arrived one by one
  cookOut = true;
  const r = runCommand(text, kind);
  if (r.err) writeOut(cook(Buffer.from(r.err, "utf8")));
  if (r.exit) return reset(r.exit);
  friendlyRestart();
}

async function softReboot() {
  writeOut("MPY: soft reboot\r\n");
  await reboot("soft");
  if (mode === RAW) writeOut("raw REPL; CTRL-B to exit\r\n>");
  else {
    writeOut(banner());
    friendlyRestart();
  }
}

async function reset(kind) {
  if (kind === "hard") {
    mode = FRIENDLY;
    rawReset();
    pasteActive = false;
    writeOut("\r\n");
    await reboot("hard");
    writeOut(banner());
    friendlyRestart();
    return;
  }
  await softReboot();
}

function execRaw(src, isPaste) {
  cookOut = false;
  const r = runCommand(src.toString("utf8"), "file");
  if (r.exit === "hard") return () => reset("hard");
  writeOut("\x04");
  if (r.err) writeOut(cook(Buffer.from(r.err, "utf8")));
  writeOut("\x04");
  if (r.exit === "soft") return () => softReboot();
  writeOut(">");
  return null;
}

// The raw REPL: consume bytes of buf from `at`; returns [consumed, action or null].
function rawBytes(buf, at) {
  if (pasteActive) {
    let i = at;
    while (i < buf.length && buf[i] !== 3 && buf[i] !== 4) i++;
    if (i > at) {
      // the host sends at most the window it was given; answer each window used with 0x01
      let n = i - at;
      pasteData.push(buf.subarray(at, i));
      while (n > 0) {
        const take = Math.min(n, pasteRemain);
        pasteRemain -= take;
        n -= take;
        if (pasteRemain === 0) {
          writeOut("\x01");
          pasteRemain = RAW_PASTE_WINDOW;
        }
      }
      return [i - at, null];
    }
    pasteActive = false;
    const data = Buffer.concat(pasteData);
    pasteData = [];
    writeOut("\x04"); // end of data acknowledged
    if (buf[at] === 3) {
      writeOut("\x04KeyboardInterrupt: \r\n\x04>");
      return [1, null];
    }
    return [1, () => execRaw(data, true)];
  }
  let i = at;
  while (i < buf.length && buf[i] > 4) i++;
  if (i > at) {
    rawAppend(buf.subarray(at, i));
    return [i - at, null];
  }
  const c = buf[at];
  if (c === 1) {
    const cmd = rawText();
    rawReset();
    if (cmd.length === 2 && cmd[0] === 5) {
      if (cmd[1] === 0x41) {
        writeOut(Buffer.from([0x52, 0x01, RAW_PASTE_WINDOW & 0xff, RAW_PASTE_WINDOW >> 8, 0x01]));
        pasteActive = true;
        pasteData = [];
        pasteRemain = RAW_PASTE_WINDOW;
      } else writeOut("R\x00>");
      return [1, null];
    }
    writeOut("raw REPL; CTRL-B to exit\r\n>");
    return [1, null];
  }
  if (c === 2) {
    rawReset();
    mode = FRIENDLY;
    writeOut("\r\n" + banner());
    friendlyRestart();
    return [1, null];
  }
  if (c === 3) {
    rawReset();
    return [1, null];
  }
  if (c === 4) {
    const src = rawText();
    rawReset();
    writeOut("OK");
    if (src.length === 0) {
      writeOut("\r\n");
      return [1, () => softReboot()];
    }
    return [1, () => execRaw(src, false)];
  }
  rawAppend(buf.subarray(at, at + 1)); // 0x00
  return [1, null];
}

let pumping = false;
const pendingActions = []; // resets asked for outside a command (the node called machine.reset())

// Feed queued input through the protocol, one action (command, reset) at a time, in order.
async function pump() {
  if (pumping || !vm) return;
  pumping = true;
  try {
    for (;;) {
      let action = pendingActions.shift() || null;
      if (!action) {
        if (!inq.length || !vm) break;
        const buf = inq[0];
        let at = 0;
        while (at < buf.length && !action) {
          if (mode === RAW) {
            const [n, a] = rawBytes(buf, at);
            at += n;
            action = a;
          } else {
            action = friendlyByte(buf[at]);
            at += 1;
          }
        }
        if (at >= buf.length) inq.shift();
        else inq[0] = buf.subarray(at);
        flushPend();
      }
      while (action) {
        const next = await action();
        action = typeof next === "function" ? next : null;
      }
    }
  } catch (e) {
    log(`REPL error: ${e && e.stack ? e.stack : e}`);
  } finally {
    pumping = false;
  }
}

// ---------------------------------------------------------------------------------------------
// The node's ticks

let tickTimer = null;

function scheduleTick(ms) {
  if (tickTimer || closing) return;
  tickTimer = setTimeout(tick, ms);
}

function tick() {
  tickTimer = null;
  advanceWorld();
  if (!vm || resetting || pumping || execRunning) return scheduleTick(TICK_MS);
  let lagging = false;
  if (vm.tick && nodeError === null) {
    if (world - nodeAt > MAX_LEAD_MS) world = nodeAt + MAX_LEAD_MS; // the node cannot keep up: slow the world
    const ahead = Math.floor(world - nodeAt);
    if (ahead >= STEP_MS) {
      sink = "log";
      let done = -1;
      try {
        done = vm.tick(ahead, TICK_BUDGET_MS);
      } catch (e) {
        if (e && e.name === "PythonError" && e.type === "SystemExit") {
          sink = "pty";
          const kind = resetRequest === "hard" ? "hard" : "soft";
          pendingActions.push(() => reset(kind));
          pump();
          return scheduleTick(TICK_MS);
        }
        log(`tick failed: ${e && e.message ? e.message : e}`);
      }
      sink = "pty";
      if (typeof done === "number" && done >= 0) {
        nodeAt += done;
        lagging = world - nodeAt >= 2 * STEP_MS;
      } else {
        try {
          nodeError = vm.vnode.error || "the node stopped";
        } catch (e) {
          nodeError = "the node stopped";
        }
        log(nodeError);
      }
    }
  } else nodeAt = Math.floor(world);
  if (inq.length || pendingActions.length) pump();
  scheduleTick(lagging ? 0 : TICK_MS);
}

// ---------------------------------------------------------------------------------------------
// Start and stop

let closing = false;
function shutdown(code) {
  if (closing) return;
  closing = true;
  if (tickTimer) clearTimeout(tickTimer);
  try {
    flushOut();
  } catch (e) {
    /* going anyway */
  }
  process.exit(code);
}

process.on("SIGTERM", () => shutdown(0));
process.on("SIGINT", () => shutdown(0));
process.on("SIGHUP", () => shutdown(0));
// The Python side holds our stdin: when it goes away, so do we (no orphaned virtual nodes).
process.stdin.on("end", () => shutdown(0));
process.stdin.on("error", () => shutdown(0));
process.stdin.resume();

const input = new tty.ReadStream(ptyFd);
input.on("data", (data) => {
  inq.push(data);
  pump();
});
input.on("error", (e) => ptyGone(e));

// A bug here must not take the session down with a dump of the package's minified source.
process.on("uncaughtException", (e) => log(`internal error: ${e && e.stack ? e.stack : e}`));
process.on("unhandledRejection", (e) => log(`internal error: ${e && e.stack ? e.stack : e}`));

try {
  vm = await createVM(null);
} catch (e) {
  log(`the MicroPython VM did not start: ${e && e.message ? e.message : e}`);
  process.exit(1);
}
lastWall = realNow(); // the waveform starts when the node first boots
world = 0;
bootVM(vm);
writeOut(banner());
friendlyRestart();
process.stdout.write("ready\n");
scheduleTick(TICK_MS);
pump();
