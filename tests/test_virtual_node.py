"""Tier 3: the virtual node (host_tools/virtual_node.py + vnode.mjs) behind a pseudo-terminal.

The real `mpremote` (as a subprocess) and pyserial talk to it as to a board: exec, eval, raw-paste,
`fs ls/cp/rm/mkdir/cat/sha256sum`, mpremote's "No such file" for a missing file (errno 2, not the
VM's 44), soft reset and reconnecting, Ctrl-C into a running command, machine.reset(), the raw and
friendly REPL byte for byte, the node running behind the REPL, a detection in the node's event log
when the bundled Pinotepa record (OpenEEW) feeds its sensor, and `seismote node virtual`.
Skipped when Node.js or the MicroPython WebAssembly package is missing (`make setup`).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from seismote.firmware import eventlog
from seismote.firmware.errors import ConfigError
from seismote.host_tools import mpvm
from seismote.host_tools.virtual_node import VirtualNode, VirtualNodeError

DATA = Path(__file__).resolve().parents[1] / "host_tools" / "data" / "openeew"
PINOTEPA = [DATA / "2018_2_16_001_35.jsonl", DATA / "2018_2_16_001_40.jsonl"]

try:
    mpvm.node_binary()
    _VM = None
except mpvm.VMUnavailable as e:  # pragma: no cover - depends on the machine
    _VM = str(e)

pytestmark = [pytest.mark.micropython, pytest.mark.skipif(_VM is not None, reason=_VM or "")]


def mpremote(port: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args],
                          capture_output=True, text=True, timeout=timeout)


def ok(port: str, *args: str) -> str:
    r = mpremote(port, *args)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


@pytest.fixture(scope="module")
def vnode():
    vn = VirtualNode()
    vn.start()
    try:
        yield vn
    finally:
        log = vn.log_text()
        vn.stop()
        print(log[-3000:])


def read_until(ser: serial.Serial, ending: bytes, timeout: float = 10) -> bytes:
    data = b""
    end = time.monotonic() + timeout
    while not data.endswith(ending):
        assert time.monotonic() < end, "no %r in %r" % (ending, data[-300:])
        data += ser.read(1)
    return data


# -- mpremote -------------------------------------------------------------------------------------


def test_port_is_a_pty_that_mpremote_treats_as_one(vnode):
    assert vnode.port.startswith("/dev/pts/") and not os.path.islink(vnode.port)
    from mpremote.transport_serial import SerialTransport

    assert SerialTransport._is_pty_device(vnode.port)


def test_mpremote_exec_and_eval(vnode):
    assert ok(vnode.port, "exec", "print(1+1)").strip() == "2"
    assert ok(vnode.port, "eval", "6*7").strip() == "42"
    r = mpremote(vnode.port, "exec", "1/0")
    assert r.returncode == 1 and "ZeroDivisionError: divide by zero" in r.stdout


def test_mpremote_raw_paste_runs_a_long_script(vnode):
    lines = ["acc = 0"] + ["acc += %d  # padding to make the script longer than the paste window" % i for i in range(60)]
    lines.append("print('sum', acc)")
    script = "\n".join(lines) + "\n"
    assert len(script) > 4096  # many raw-paste windows
    assert ok(vnode.port, "exec", script).strip() == "sum %d" % sum(range(60))


def test_mpremote_fs_cp_both_ways_ls_sha256_rm(vnode, tmp_path):
    data = bytes(range(256)) * 40 + b"\x04\x03\r\n end"  # control bytes and > 1 chunk
    src = tmp_path / "blob.bin"
    src.write_bytes(data)
    assert "cp " in ok(vnode.port, "fs", "cp", str(src), ":blob.bin")
    listing = ok(vnode.port, "fs", "ls", ":")
    assert "%d blob.bin" % len(data) in listing and "config.json" in listing and "lib/" in listing
    assert ".vnode" not in listing and "dev/" not in listing  # only the "flash" shows
    back = tmp_path / "back.bin"
    ok(vnode.port, "fs", "cp", ":blob.bin", str(back))
    assert back.read_bytes() == data
    assert hashlib.sha256(data).hexdigest() in ok(vnode.port, "fs", "sha256sum", ":blob.bin")
    # mpremote hashes the file on the node (hashlib) and skips an identical copy
    assert "Up to date" in ok(vnode.port, "fs", "cp", str(src), ":blob.bin")
    ok(vnode.port, "fs", "mkdir", ":sub")
    ok(vnode.port, "fs", "cp", str(src), ":sub/")
    assert "blob.bin" in ok(vnode.port, "fs", "ls", ":sub")
    ok(vnode.port, "fs", "rm", "-r", ":sub")
    ok(vnode.port, "fs", "rm", ":blob.bin")
    assert "blob.bin" not in ok(vnode.port, "fs", "ls", ":")


def test_missing_file_is_mpremotes_no_such_file(vnode, tmp_path):
    r = mpremote(vnode.port, "fs", "cat", ":nope.txt")
    assert r.returncode == 1 and "No such file or directory" in r.stderr, r
    r = mpremote(vnode.port, "fs", "cp", ":nope.txt", str(tmp_path / "x"))
    assert r.returncode == 1 and "No such file or directory" in r.stderr, r
    r = mpremote(vnode.port, "fs", "rm", ":nope.txt")
    assert r.returncode == 1 and "No such file or directory" in r.stderr, r
    r = mpremote(vnode.port, "fs", "mkdir", ":data")
    assert r.returncode == 1 and "File exists" in r.stderr, r
    # the board's numbers and names, not Emscripten's (44, 20, 55)
    r = mpremote(vnode.port, "exec", "import os, errno\n"
                 "for f, a in ((open, '/nope'), (os.mkdir, '/lib'), (os.rmdir, '/lib'), (os.listdir, '/config.json')):\n"
                 " try:\n  f(a)\n except OSError as e:\n  print(e.errno, errno.errorcode.get(e.errno))\n")
    assert r.stdout.split() == ["2", "ENOENT", "17", "EEXIST", "39", "None", "20", "None"], r.stdout
    r = mpremote(vnode.port, "exec", "open('/nope')")
    assert "OSError: [Errno 2] ENOENT" in r.stdout


def test_soft_reset_and_reconnect_many_times(vnode, tmp_path):
    ok(vnode.port, "resume", "exec", "kept = 5")
    assert ok(vnode.port, "resume", "eval", "kept").strip() == "5"  # no reset: state stays
    marker = tmp_path / "m.txt"
    marker.write_text("flash survives resets\n")
    ok(vnode.port, "fs", "cp", str(marker), ":m.txt")
    for i in range(4):
        out = ok(vnode.port, "soft-reset", "exec", "print('alive', %d)" % i)
        assert out.strip() == "alive %d" % i
    r = mpremote(vnode.port, "resume", "eval", "kept")
    assert r.returncode == 1 and "NameError" in r.stdout  # Python state is gone
    assert ok(vnode.port, "fs", "cat", ":m.txt").strip() == "flash survives resets"
    ok(vnode.port, "fs", "rm", ":m.txt")


def test_node_runs_behind_the_repl(vnode):
    code = "import seismote_vnode\nprint(repr(seismote_vnode.node.health()))\nprint(repr(seismote_vnode.info()))"
    out = ok(vnode.port, "resume", "exec", code).splitlines()
    health, info = ast.literal_eval(out[0]), ast.literal_eval(out[1])
    assert health["sensor"] == "ok" and health["faults"] == 0 and health["detections"] == 0
    assert info["running"] and info["sensor"]["type"] == "adxl355" and info["odr_hz"] == 250
    before = info["board_ms"]
    time.sleep(0.5)
    after = ast.literal_eval(ok(vnode.port, "resume", "exec", code).splitlines()[1])["board_ms"]
    assert after - before >= 300  # the node's clock runs with the wall clock (speed 1)
    # the firmware's own status report, as `seismote status` reads it
    st = json.loads(ok(vnode.port, "exec", "from seismote.firmware.status import status_json\nprint(status_json())"))
    assert st["node_id"] == "vnode-0" and st["config"] == "ok" and st["board_profile"] == "ok"
    assert st["board"] == "esp32-devkitc-adxl355" and len(st["uid"]) == 12
    assert st["reset_cause"] in ("power_on", "soft")  # "soft" once machine.reset() ran (test order)
    assert st["log"]["last_boot"]["kind"] == "boot" and st["log"]["last_boot"]["board"] == "virtual"


def test_mpremote_reset_is_a_hard_reset(vnode):
    r = mpremote(vnode.port, "reset")
    assert r.returncode == 0, r
    out = ok(vnode.port, "exec", "import machine, seismote_vnode\nprint(machine.reset_cause() == machine.SOFT_RESET, seismote_vnode.node is not None)")
    assert out.split() == ["True", "True"]  # after esp_restart an ESP32 reports SOFT_RESET


# -- pyserial, byte for byte -----------------------------------------------------------------------


def test_raw_repl_bytes_with_pyserial(vnode):
    with serial.Serial(vnode.port, 115200, timeout=5) as ser:
        ser.write(b"\r\x03\r\x01")
        read_until(ser, b"raw REPL; CTRL-B to exit\r\n>")
        ser.write(b"print(6*7)\x04")
        assert read_until(ser, b"\x04>") == b"OK42\r\n\x04\x04>"
        ser.write(b"1/0\x04")
        out = read_until(ser, b"\x04>")
        assert out.startswith(b"OK\x04Traceback (most recent call last):\r\n") and out.endswith(b"ZeroDivisionError: divide by zero\r\n\x04>")
        # binary output through sys.stdout.buffer stays raw (no "\r" added)
        ser.write(b"import sys\nsys.stdout.buffer.write(b'a\\nb')\x04")
        assert read_until(ser, b"\x04>") == b"OKa\nb\x04\x04>"
        # raw-paste: b"R\x01", the window (little-endian), then one 0x01 per window consumed
        ser.write(b"\x05A\x01")
        assert ser.read(2) == b"R\x01"
        window = struct.unpack("<H", ser.read(2))[0]
        assert window >= 32 and ser.read(1) == b"\x01"
        code = b"x = '" + b"y" * (3 * window) + b"'\nprint(len(x))\n"
        credit, sent = 2 * window, 0  # the window, and the 0x01 after it
        while sent < len(code):
            while credit == 0 or ser.in_waiting:
                assert ser.read(1) == b"\x01"
                credit += window
            n = min(credit, len(code) - sent)
            ser.write(code[sent:sent + n])
            sent += n
            credit -= n
        ser.write(b"\x04")
        out = read_until(ser, b"\x04>")
        assert out.lstrip(b"\x01") == b"\x04%d\r\n\x04\x04>" % (3 * window)
        # Ctrl-D at an empty raw prompt: OK and a soft reboot, then the raw REPL again
        ser.write(b"\x04")
        out = read_until(ser, b"raw REPL; CTRL-B to exit\r\n>")
        assert out.startswith(b"OK\r\nMPY: soft reboot\r\n")
        # Ctrl-B: the friendly REPL with its banner
        ser.write(b"\x02")
        out = read_until(ser, b">>> ")
        assert b"MicroPython v1.27" in out and b"seismote virtual node" in out


def test_friendly_repl_with_pyserial(vnode):
    with serial.Serial(vnode.port, 115200, timeout=5) as ser:
        ser.write(b"\r\x03\r\x02")
        read_until(ser, b'Type "help()" for more information.\r\n>>> ')
        ser.write(b"1+1\r")
        assert read_until(ser, b">>> ") == b"1+1\r\n2\r\n>>> "
        ser.write(b"for i in range(2):\r")
        assert read_until(ser, b"...     ") == b"for i in range(2):\r\n...     "  # auto-indent
        ser.write(b"print(i*10)\r")
        read_until(ser, b"...     ")
        # as on a board: Return twice ends the auto-indent, a third one runs the block
        ser.write(b"\r\r\r")
        out = read_until(ser, b">>> ")
        assert out == b"\r\n...     \r\n... \r\n0\r\n10\r\n>>> "
        ser.write(b"1/0\r")
        out = read_until(ser, b">>> ")
        assert out == (b'1/0\r\nTraceback (most recent call last):\r\n  File "<stdin>", line 1, in <module>\r\n'
                       b"ZeroDivisionError: divide by zero\r\n>>> ")
        ser.write(b"\x05")  # paste mode
        read_until(ser, b"=== ")
        ser.write(b"a = 3\rprint(a * 2)\r\x04")
        assert read_until(ser, b">>> ").endswith(b"6\r\n>>> ")
        # input() reads a line from the console (the WebAssembly port's own stdin reads only zeros)
        ser.write(b"name = input('name? ')\r")
        read_until(ser, b"\r\nname? ")
        ser.write(b"pinx\x7fo\r")
        assert read_until(ser, b">>> ") == b"pinx\x08\x1b[Ko\r\n>>> "
        ser.write(b"name\r")
        assert read_until(ser, b">>> ") == b"name\r\n'pino'\r\n>>> "


def test_ctrl_c_interrupts_a_running_command(vnode):
    with serial.Serial(vnode.port, 115200, timeout=5) as ser:
        ser.write(b"\r\x03\r\x01")
        read_until(ser, b"raw REPL; CTRL-B to exit\r\n>")
        ser.write(b"import time\nprint('start')\nwhile True:\n time.sleep_ms(10)\n\x04")
        assert read_until(ser, b"start\r\n") == b"OKstart\r\n"
        time.sleep(0.3)
        ser.write(b"\x03")
        out = read_until(ser, b"\x04>")
        assert b"KeyboardInterrupt" in out
        ser.write(b"print('after')\x04")
        assert read_until(ser, b"\x04>") == b"OKafter\r\n\x04\x04>"
        ser.write(b"\x02")


def test_mpremote_mount_is_refused_at_once(vnode, tmp_path):
    # mount needs sys.stdin on the device, which this MicroPython port cannot read
    r = mpremote(vnode.port, "mount", str(tmp_path), "exec", "print(1)", timeout=20)
    assert r.returncode != 0 and "EOPNOTSUPP" in r.stdout + r.stderr
    assert ok(vnode.port, "exec", "print(3)").strip() == "3"


# -- the node and its sensor -----------------------------------------------------------------------


def test_pinotepa_record_gives_a_detection_in_the_event_log(tmp_path):
    # The 2018 Mw 7.2 Pinotepa record: P at ~309.5 s; start 50 s before it (the LTA warms in 20 s).
    with VirtualNode(waveform=PINOTEPA, speed=30, start_s=260) as vn:
        code = ("import seismote_vnode as v\n"
                "print(v.node.stats['detections'] if v.node else -1, v.info()['in_record'])")
        deadline = time.monotonic() + 40
        while True:
            out = ok(vn.port, "resume", "exec", code).split()
            if int(out[0]) >= 1:
                break
            assert out[0] != "-1", vn.log_text()
            assert time.monotonic() < deadline and out[1] == "True", "no detection: %s\n%s" % (out, vn.log_text())
            time.sleep(0.5)
        # The host pulls the raw log segments and decodes them with the node's own code.
        names = [ln.split()[-1] for ln in ok(vn.port, "resume", "fs", "ls", ":data").splitlines()[1:]]
        assert names and all(n.startswith("ev") for n in names)
        raw = b""
        for name in sorted(names):
            ok(vn.port, "resume", "fs", "cp", ":data/" + name, str(tmp_path / name))
            raw += (tmp_path / name).read_bytes()
    records, bad = eventlog.decode_stream(raw)
    assert bad == 0
    events = [r.json() for r in records if r.type == eventlog.T_EVENT]
    assert events, records
    ev = events[0]
    assert 0.5 <= ev["pga_gal"] <= 3.0, ev  # replay of the same record: 1.02 gal
    boots = [r.json() for r in records if r.type == eventlog.T_STATUS and r.json()["kind"] == "boot"]
    assert boots and boots[0]["board"] == "virtual"
    # node time follows the record: 2018-02-16 23:40:08 UTC, the onset replay finds
    t = [r.time for r in records if r.type == eventlog.T_EVENT][0]
    assert abs(t - 1518824408) <= 10, t


def test_bad_config_and_board_are_refused_before_starting():
    with pytest.raises(ConfigError) as e:
        VirtualNode(config={"node_id": "x", "trigger": {"on": 2.0, "off": 2.5}})
    assert e.value.field == "trigger.off"
    with pytest.raises(VirtualNodeError, match="no board profile"):
        VirtualNode(config={"node_id": "x", "board": "esp32-nope"})
    with pytest.raises(ValueError):
        VirtualNode(speed=0)


def test_cli_prints_the_port_and_runs_until_ctrl_c():
    code = ("from seismote.host_tools.cli import cli\n"
            "from seismote.host_tools import virtual_node\n"
            "if 'node' not in cli.commands or 'virtual' not in cli.commands['node'].commands:\n"
            "    virtual_node.register(cli)\n"
            "cli(['node', 'virtual', '--speed', '2'], prog_name='seismote')\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/pts/"), (port, proc.stderr.read() if proc.poll() is not None else "")
        assert float(ok(port, "eval", "__import__('seismote_vnode').info()['speed']")) == 2.0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
