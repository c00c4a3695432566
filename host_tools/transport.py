"""Talk to a MicroPython node over its serial REPL: a thin layer over mpremote's SerialTransport.

    with Transport.connect(port) as t:          # port None: auto-detect (ports.find_port)
        t.exec("print(1)")                      # -> b"1\\r\\n"; device traceback -> NodeExecError
        t.write_file("/config.json", data)      # atomic (temp file + rename), sha256-checked
        t.read_file("/config.json")             # -> bytes; missing file -> OSError(ENOENT, path)
        t.hashes(["/main.py"], roots=["/lib/seismote"])   # {path: sha256 hex} in one round trip
        t.node_status()                         # seismote.firmware.status.status_json() as a dict
        t.reset()                               # restart the node, return what it printed booting
    # leaving the `with`: back to the friendly REPL; with t.restart_on_close, main.py runs again

Errors follow mpremote (STYLE.md 12): a file-system traceback on the device becomes a host
`OSError(errno, path)`; a board that does not answer, or a port that cannot be opened, becomes a
`UserError` with a hint. The connection is always released in `close()` (context manager).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
import json
import time

import serial
from mpremote.transport import TransportError, TransportExecError, _convert_filesystem_error
from mpremote.transport_serial import SerialTransport

from .ports import UserError, explain_open_error, find_port, open_serial

# Where the firmware package lives on the node: /lib is on MicroPython's default sys.path.
NODE_PACKAGE = "/lib/seismote"
STATUS_CALL = "from seismote.firmware.status import status_json\nprint(status_json())"
_CHUNK = 1536  # raw bytes per write: 2 KB of base64, well inside the raw-paste window
_HASH_HELPERS = """
import os, hashlib, binascii
def _sm_h(p):
    h = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    with open(p, 'rb') as f:
        while True:
            n = f.readinto(b)
            if not n:
                break
            h.update(m[:n])
    return binascii.hexlify(h.digest()).decode()
def _sm_walk(d, out):
    try:
        entries = list(os.ilistdir(d))  # whole listing first: no directory open while recursing
    except OSError:
        return
    for e in entries:
        p = d + '/' + e[0]
        if e[1] & 0x4000:
            _sm_walk(p, out)
        else:
            out[p] = _sm_h(p)
"""


class NodeError(UserError):
    """The node answered, but what it did or reported failed a check (exit status 1)."""

    exit_code = 1


class LinkError(UserError):
    """The serial link failed mid-conversation (no answer, garbled, port gone)."""


class NodeExecError(NodeError):
    """Python code sent to the node raised; `exc_line` is the last line of its traceback."""

    def __init__(self, message: str, traceback: str, hint: str | None = None):
        super().__init__(message, hint)
        self.traceback = traceback
        lines = [ln for ln in traceback.strip().splitlines() if ln.strip()]
        self.exc_line = lines[-1].strip() if lines else ""


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else text.strip()


def _no_repl(port: str, detail: str = "") -> UserError:
    return UserError(
        "no MicroPython REPL answering on %s%s" % (port, (": " + detail) if detail else ""),
        "is MicroPython on the board (seismote flash --firmware IMAGE.bin ...)? Is the board in "
        "the bootloader (press EN to restart it)? Is this the right port?",
    )


class Transport:
    """A connected node. Make one with `Transport.connect(port)`; close it (or use `with`)."""

    def __init__(self, st: SerialTransport, port: str):
        self._st = st
        self.port = port
        self._closed = False
        # Entering the raw REPL stops main.py; commands that should leave the node running set this.
        self.restart_on_close = False

    # -- connection ---------------------------------------------------------------------------

    @classmethod
    def connect(cls, port: str | None = None, baudrate: int = 115200, soft_reset: bool = True,
                timeout: float = 10.0) -> "Transport":
        """Open `port` (auto-detected if None) and enter the raw REPL.

        soft_reset=True (mpremote's default) restarts the interpreter first, which stops a
        running main.py and frees its heap; boot.py runs again, main.py does not.
        """
        port = find_port(port)
        try:
            # A read timeout: on a pty mpremote reads without checking in_waiting first, and with
            # no timeout a silent line would block it for ever.
            st = SerialTransport(port, baudrate=baudrate, timeout=5)
        except TransportError:
            # mpremote hides the cause; open the port once ourselves to name it.
            open_serial(port, baudrate).close()
            raise UserError("cannot open %s" % port, "check the port name and the cable")
        except (serial.SerialException, OSError) as e:
            raise explain_open_error(port, e) from None
        t = cls(st, port)
        try:
            t._enter(soft_reset, timeout)
        except BaseException:
            t.close()
            raise
        return t

    def _enter(self, soft_reset: bool, timeout: float = 10.0) -> None:
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):  # mpremote prints what it got on failure
                self._st.enter_raw_repl(soft_reset=soft_reset, timeout_overall=timeout)
        except TransportError as e:
            seen = out.getvalue().strip()
            raise _no_repl(self.port, "%s%s" % (e, (" (got %s)" % seen[-80:]) if seen else "")) from None
        except (serial.SerialException, OSError) as e:
            raise UserError("lost the connection to %s: %s" % (self.port, e),
                            "check the cable; a board with native USB re-appears a moment after a reset") from None

    def close(self, restart: bool | None = None) -> None:
        """Leave the raw REPL and release the port. restart (default: self.restart_on_close):
        soft-reboot from the friendly REPL first, so that main.py (the node) runs again."""
        if self._closed:
            return
        self._closed = True
        if restart is None:
            restart = self.restart_on_close
        try:
            if self._st.in_raw_repl:
                self._st.exit_raw_repl()
            if restart:
                time.sleep(0.05)
                self._st.serial.write(b"\x04")  # Ctrl-D at the friendly prompt: soft reboot, runs main.py
                self._st.serial.flush()
                time.sleep(0.1)
        except (OSError, serial.SerialException):
            pass  # the port may be gone (unplugged, or a reset on native USB)
        try:
            self._st.close()
        except (OSError, serial.SerialException):
            pass

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- running code -------------------------------------------------------------------------

    def exec(self, code: str, timeout: float = 10.0) -> bytes:
        """Run `code` on the node; return its stdout. A traceback raises NodeExecError."""
        try:
            out, err = self._st.exec_raw(code, timeout=timeout)
        except TransportError as e:
            raise LinkError("the node on %s stopped answering (%s)" % (self.port, e),
                            "press EN to restart the board and try again") from None
        except (serial.SerialException, OSError) as e:
            raise LinkError("lost the connection to %s: %s" % (self.port, e), "check the USB cable") from None
        if err:
            text = err.decode("utf-8", "replace")
            raise NodeExecError("the node raised %s" % _last_line(text), text)
        return out

    def eval_json(self, code: str, timeout: float = 10.0):
        """Run `code`, which prints one JSON document, and return it parsed."""
        out = self.exec(code, timeout).decode("utf-8", "replace").strip()
        try:
            return json.loads(out.splitlines()[-1] if out else "")
        except (ValueError, IndexError):
            raise NodeError("the node sent something that is not JSON: %r" % out[-200:]) from None

    def _retry(self, fn, *args):
        """Run an idempotent operation; after a link failure, recover and run it once more."""
        try:
            return fn(*args)
        except LinkError:
            self._recover()
            return fn(*args)

    def _fs(self, code: str, path: str, timeout: float = 10.0) -> bytes:
        """exec() for file-system code: an OSError on the node becomes OSError(errno, path)."""
        try:
            return self.exec(code, timeout)
        except NodeExecError as e:
            converted = _convert_filesystem_error(TransportExecError(1, e.traceback), path)
            if isinstance(converted, OSError):
                raise converted from None
            raise

    # -- files --------------------------------------------------------------------------------

    def read_file(self, path: str) -> bytes:
        """The contents of `path` on the node; OSError(ENOENT, path) if it does not exist."""
        return self._retry(self._read_file, path)

    def _read_file(self, path: str) -> bytes:
        out = self._fs(
            "import binascii\nwith open(%r, 'rb') as f:\n while True:\n  b = f.read(%d)\n  if not b:\n   break\n"
            "  print(binascii.b2a_base64(b).decode().strip())\n" % (path, _CHUNK),
            path,
        )
        data = bytearray()
        for line in out.decode("ascii", "replace").split():
            data += base64.b64decode(line)
        return bytes(data)

    def exists(self, path: str) -> bool:
        try:
            self._fs("import os\nos.stat(%r)" % path, path)
            return True
        except OSError:
            return False

    def mkdir_p(self, path: str) -> None:
        """Create `path` and its parents on the node (no error if they exist)."""
        # stat first: errno numbers differ between ports (EEXIST is 17 on the ESP32, 20 under Emscripten).
        self._fs(
            "import os\np = ''\nfor part in %r.split('/'):\n if not part:\n  continue\n p += '/' + part\n"
            " try:\n  os.stat(p)\n except OSError:\n  os.mkdir(p)\n" % path,
            path,
        )

    def remove(self, path: str, missing_ok: bool = True) -> None:
        try:
            self._fs("import os\nos.remove(%r)" % path, path)
        except OSError as e:
            if not (missing_ok and e.errno == errno.ENOENT):
                raise

    def rename(self, src: str, dst: str) -> None:
        # littlefs and the VFS replace an existing dst; FAT may refuse, so retry after removing it.
        self._fs(
            "import os\ntry:\n os.rename(%r, %r)\nexcept OSError:\n try:\n  os.remove(%r)\n except OSError:\n  pass\n"
            " os.rename(%r, %r)\n" % (src, dst, dst, src, dst),
            dst,
        )

    def hashes(self, paths=(), roots=()) -> dict[str, str | None]:
        """sha256 hex of each file in `paths` (None if missing) and of every file under `roots`."""
        code = _HASH_HELPERS + "import json\nout = {}\n"
        for r in roots:
            code += "_sm_walk(%r, out)\n" % r.rstrip("/")
        for p in paths:
            code += "try:\n out[%r] = _sm_h(%r)\nexcept OSError:\n out[%r] = None\n" % (p, p, p)
        code += "print(json.dumps(out))\n"
        return self._retry(self.eval_json, code, 60)

    def sha256(self, path: str) -> str | None:
        return self.hashes([path])[path]

    def write_file(self, path: str, data: bytes, progress=None, feed_watchdog: bool = False, retries: int = 1) -> None:
        """Write `data` to `path` atomically and check it: temp file, sha256 on the node, rename.

        If anything fails, the old file is still there and the temp file is removed. A link
        failure (noise, a slow node) restarts the file's transfer up to `retries` times.
        progress(done, total) is called after each chunk.
        """
        parent = path.rsplit("/", 1)[0]
        if parent:
            self.mkdir_p(parent)
        for attempt in range(retries + 1):
            try:
                self._write_once(path, data, progress, feed_watchdog)
                return
            except LinkError:
                if attempt == retries:
                    raise
                self._recover()

    def _write_once(self, path, data, progress, feed_watchdog) -> None:
        tmp = path + ".part"
        total = len(data)
        feed = "\nif globals().get('_sm_wdt'):\n _sm_wdt.feed()" if feed_watchdog else ""
        try:
            self._fs("import binascii\n_sm_f = open(%r, 'wb')\n_sm_a = binascii.a2b_base64" % tmp, tmp)
            for i in range(0, max(total, 1), _CHUNK):
                chunk = data[i:i + _CHUNK]
                if chunk:
                    self._fs("_sm_f.write(_sm_a(%r))%s" % (base64.b64encode(chunk), feed), tmp)
                if progress is not None:
                    progress(min(i + _CHUNK, total), total)
            self._fs("_sm_f.close()", tmp)
            want = hashlib.sha256(data).hexdigest()
            got = self.sha256(tmp)
            if got != want:
                raise NodeError("%s: the node holds different bytes than were sent (sha256 %s, expected %s)"
                                % (path, got, want), "check the cable and the board's power, then try again")
            self.rename(tmp, path)
        except LinkError:
            raise  # the temp file is cleaned up by the retry (it is rewritten) or left as *.part
        except BaseException:
            with contextlib.suppress(Exception):
                self.exec("try:\n _sm_f.close()\nexcept Exception:\n pass")
                self.remove(tmp)
            raise

    def _recover(self) -> None:
        """After a link failure: drain the line and get back to the raw REPL prompt."""
        with contextlib.suppress(Exception):
            time.sleep(0.2)
            self._st.serial.reset_input_buffer()
        self._enter(soft_reset=False)

    # -- the node -----------------------------------------------------------------------------

    def start_watchdog_keepalive(self, timeout_ms: int = 120000) -> None:
        """Stretch a running hardware watchdog for a long upload; write_file(feed_watchdog=True) feeds it.

        The node's main loop starts an ESP32 watchdog (30 s) that nothing can stop, and it keeps
        running after the REPL interrupts main.py. Re-creating machine.WDT re-arms it with a longer
        timeout. Call only before a sequence that ends in reset(): if none was running, this starts one.
        """
        self.exec(
            "try:\n import machine\n _sm_wdt = machine.WDT(timeout=%d)\nexcept Exception:\n _sm_wdt = None\n"
            % timeout_ms
        )

    def node_status(self) -> dict:
        """The node's health (seismote.firmware.status.status_json) as a dict."""
        try:
            return self._retry(self.eval_json, STATUS_CALL, 30)
        except NodeExecError as e:
            if "ImportError" in e.exc_line or "no module named" in e.exc_line:
                raise UserError(
                    "the seismote firmware is not installed on the node on %s" % self.port,
                    "install it with `seismote flash --port %s --board PROFILE`" % self.port,
                ) from None
            raise

    def reset(self, boot_wait: float = 3.0, hard: bool = True) -> str:
        """Restart the node so that main.py runs; return what it printed while booting.

        Hard reset (machine.reset) where the node has `machine`, else a soft reboot from the
        friendly REPL (Ctrl-D), which also runs boot.py and main.py. Reading stops after
        `boot_wait` seconds, or earlier when a REPL prompt shows main.py has ended.
        Afterwards the transport re-enters the raw REPL without another reset (interrupting main.py).
        """
        st = self._st
        has_machine = False
        if hard:
            try:
                self.exec("import machine")
                has_machine = True
            except NodeExecError:
                has_machine = False
        try:
            if has_machine:
                st.exec_raw_no_follow("machine.reset()")
            else:
                st.exit_raw_repl()
                time.sleep(0.05)
                st.serial.write(b"\x04")  # soft reboot from the friendly REPL: runs main.py
        except (TransportError, serial.SerialException, OSError) as e:
            raise UserError("lost the connection to %s while restarting the node: %s" % (self.port, e)) from None
        st.in_raw_repl = False
        output = self._read_boot_output(boot_wait)
        self._enter(soft_reset=False)
        return output

    def _read_boot_output(self, seconds: float) -> str:
        st = self._st
        buf = bytearray()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                n = st.serial.in_waiting
                chunk = st.serial.read(n) if n else b""  # never a blocking read: the wait is ours
            except (serial.SerialException, OSError):
                # Native USB drops off the bus during a reset: wait for it and reopen.
                if not self._reopen(end):
                    break
                continue
            if chunk:
                buf += chunk
                if buf.rstrip().endswith(b">>>"):
                    break  # main.py ended (or failed) and the friendly REPL is waiting
            else:
                time.sleep(0.02)
        return buf.decode("utf-8", "replace")

    def _reopen(self, deadline: float) -> bool:
        st = self._st
        with contextlib.suppress(Exception):
            st.serial.close()
        while time.monotonic() < deadline:
            try:
                st.serial.open()
                return True
            except (serial.SerialException, OSError):
                time.sleep(0.2)
        return False
