"""Putting seismote on a node: port auto-detection, the mpy-cross build, config get/set/validate/push,
`status`, and the whole `seismote flash` upload path.

- Ports: `serial.tools.list_ports` is replaced by lists of port records (the USB IDs of real
  bridges), and a pty stands in for a port another program holds.
- Build and config files: plain files, no board.
- Everything that talks to a node runs against the virtual node (host_tools/virtual_node.py):
  the firmware on the real MicroPython VM behind a pseudo-terminal speaking the raw REPL, so
  mpremote's transport and these tools talk to it as to a board. Those tests are skipped if the
  virtual node is not available (no Node.js / npm packages).
- A real board (hardware in the loop, marker `hil`): SEISMOTE_HIL_PORT=/dev/ttyUSB0 runs the
  node tests against it instead (a board already running MicroPython; its config is restored
  afterwards; the tests that would erase it are skipped). Without one nothing here claims a
  board was flashed: tests/test_flash.py drives esptool against an in-memory ESP32.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import serial
from click.testing import CliRunner

from seismote.firmware import config as fwconfig
from seismote.firmware.errors import ConfigError
from seismote.host_tools import deploy, ports
from seismote.host_tools.ports import UserError

ROOT = Path(__file__).resolve().parent.parent
BOARD = "esp32-devkitc-adxl355"


def _cli():
    from seismote.host_tools import cli_device
    from seismote.host_tools.cli import cli

    if "flash" not in cli.commands:
        cli_device.register(cli)
    return cli


def run_cli(*args):
    return CliRunner().invoke(_cli(), [str(a) for a in args])


# -- port auto-detection ---------------------------------------------------------------------------


def _port(device, vid=None, pid=None, serial_number=None):
    return SimpleNamespace(device=device, vid=vid, pid=pid, serial_number=serial_number)


@pytest.mark.parametrize("vid, pid, bridge", [
    (0x10C4, 0xEA60, "Silicon Labs CP210x"),
    (0x1A86, 0x7523, "WCH CH340"),
    (0x1A86, 0x55D4, "WCH CH9102"),
    (0x0403, 0x6001, "FTDI FT232R"),
    (0x0403, 0x6010, "FTDI FT2232"),
    (0x0403, 0x6014, "FTDI FT232H"),
    (0x0403, 0x6015, "FTDI FT-X"),
    (0x303A, 0x1001, "Espressif native USB"),
    (0x303A, 0x4001, "Espressif native USB"),
])
def test_find_port_picks_the_one_esp32_bridge(vid, pid, bridge):
    listing = [_port("/dev/ttyS0"), _port("/dev/ttyACM3", 0x2341, 0x0043),  # an Arduino Uno
               _port("/dev/ttyUSB7", vid, pid, "0001")]
    assert ports.find_port(None, listing) == "/dev/ttyUSB7"
    assert ports.candidates(listing)[0].bridge == bridge


def test_find_port_with_none_says_what_to_check():
    with pytest.raises(UserError) as e:
        ports.find_port(None, [_port("/dev/ttyS0"), _port("/dev/ttyACM0", 0x2341, 0x0043)])
    assert "no ESP32 USB-serial port found" in e.value.message
    assert "cable" in e.value.hint and "--port" in e.value.hint


def test_find_port_with_several_lists_them():
    listing = [_port("/dev/ttyUSB1", 0x1A86, 0x7523), _port("/dev/ttyUSB0", 0x10C4, 0xEA60, "A1")]
    with pytest.raises(UserError) as e:
        ports.find_port(None, listing)
    assert "2 ESP32 USB-serial ports found: /dev/ttyUSB0 (Silicon Labs CP210x, 10C4:EA60 S/N A1), /dev/ttyUSB1" in e.value.message
    assert "--port" in e.value.hint


def test_find_port_uses_the_live_listing(monkeypatch):
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: [_port("/dev/ttyUSB3", 0x10C4, 0xEA60)])
    assert ports.find_port() == "/dev/ttyUSB3"


def test_given_port_that_does_not_exist_names_the_boards_seen():
    with pytest.raises(UserError) as e:
        ports.find_port("/dev/ttyUSB9", [_port("/dev/ttyUSB0", 0x10C4, 0xEA60)])
    assert e.value.message == "no serial port /dev/ttyUSB9"
    assert "/dev/ttyUSB0" in e.value.hint


def test_busy_port_and_permission_errors_get_hints(monkeypatch):
    master, slave = os.openpty()
    path = os.ttyname(slave)
    held = serial.Serial(path, exclusive=True)
    try:
        with pytest.raises(UserError) as e:
            ports.open_serial(path)
        assert "busy" in e.value.message and "another program" in e.value.hint
    finally:
        held.close()
        os.close(master)
        os.close(slave)
    err = serial.SerialException(13, "could not open port /dev/ttyUSB0: [Errno 13] Permission denied")
    monkeypatch.setattr("sys.platform", "linux")
    e = ports.explain_open_error("/dev/ttyUSB0", err)
    assert "permission denied" in e.message and "dialout" in e.hint


def test_status_on_a_missing_port_is_exit_2_without_traceback():
    res = run_cli("status", "--port", "/dev/ttyNOPE0")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.stderr.splitlines()[0] == "seismote: no serial port /dev/ttyNOPE0"
    assert res.stderr.splitlines()[1].startswith("hint: ")


def test_a_port_that_is_not_a_node_is_a_clear_error():
    from seismote.host_tools.transport import Transport

    master, slave = os.openpty()  # a serial line with nothing on the other end
    try:
        with pytest.raises(UserError) as e:
            Transport.connect(os.ttyname(slave), timeout=1)  # the CLI waits 10 s, as mpremote
    finally:
        os.close(master)
        os.close(slave)
    assert "no MicroPython REPL answering" in e.value.message and "MicroPython on the board" in e.value.hint


# -- build --------------------------------------------------------------------------------------------


def test_build_mpy_compiles_the_node_firmware(tmp_path):
    build = deploy.build_mpy(tmp_path)
    paths = {f.node_path for f in build.files}
    assert "/lib/seismote/__init__.mpy" in paths and "/main.py" in paths
    assert "/lib/seismote/firmware/node.mpy" in paths and "/lib/seismote/firmware/sensors/adxl355.mpy" in paths
    assert "/lib/seismote/firmware/status.mpy" in paths
    assert not any("chipmodels" in p or "mypy" in p or p.endswith("/main.mpy") for p in paths)
    for f in build.files:
        data = f.local.read_bytes()
        if f.node_path.endswith(".mpy"):
            assert data[:2] == b"M\x06"  # .mpy v6, as MicroPython 1.27 loads
            assert data[2] == 0  # no native code, so no arch lock: loads on the board and the VM
        assert deploy._sha(data) == f.sha256
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["build"] == build.build_id and len(manifest["files"]) == len(build.files)
    again = deploy.build_mpy(tmp_path / "again")
    assert again.build_id == build.build_id  # reproducible: unchanged files are not re-sent


def test_build_mpy_names_a_source_that_does_not_compile(tmp_path):
    src = tmp_path / "fw"
    src.mkdir()
    (src / "good.py").write_text("X = 1\n")
    (src / "bad.py").write_text("def f(:\n")
    with pytest.raises(UserError, match="could not compile seismote/firmware/bad.py"):
        deploy.build_mpy(tmp_path / "out", source=src)


# -- config: validate against the board, set, get on files --------------------------------------------


def test_prepare_config_fills_board_and_sensor_from_the_profile():
    profile = deploy.load_profile("esp32-devkitc-mpu6050")
    cfg = deploy.prepare_config({"node_id": "site-1"}, profile)
    assert cfg["board"] == "esp32-devkitc-mpu6050" and cfg["sensor"]["type"] == "mpu6050"
    with pytest.raises(ConfigError) as e:
        deploy.prepare_config({"node_id": "site-1", "sensor": {"type": "adxl355"}}, profile)
    assert e.value.field == "sensor.type"
    with pytest.raises(ConfigError) as e:
        deploy.prepare_config({"node_id": "site-1", "board": BOARD}, profile)
    assert e.value.field == "board"


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(UserError) as e:
        deploy.load_profile("esp32-devkit-nope")
    assert BOARD in e.value.hint


@pytest.fixture
def node_json(tmp_path):
    p = tmp_path / "node.json"
    p.write_text(json.dumps({"node_id": "site-07", "trigger": {"on": 3.0}}, indent=2))
    return p


def test_config_set_changes_dotted_fields_and_validates(node_json):
    res = run_cli("config", "set", node_json, "trigger.on=4.0", "location.lat=19.4", "location.lon=-99.1",
                  "telemetry.broker=mqtt.example.org")
    assert res.exit_code == 0, res.output
    doc = json.loads(node_json.read_text())
    assert doc["trigger"] == {"on": 4.0} and doc["location"] == {"lat": 19.4, "lon": -99.1}
    assert doc["telemetry"]["broker"] == "mqtt.example.org"
    assert "trigger.on: 3.0 -> 4.0" in res.output
    fwconfig.validate(doc)


@pytest.mark.parametrize("assignment, field", [
    ("trigger.off=9", "trigger.off"),  # must be below trigger.on
    ("sensor.odr_hz=333", "sensor.odr_hz"),
    ("trigger.onn=3", "trigger.onn"),
    ("node_id=has space", "node_id"),
])
def test_config_set_refuses_an_invalid_value_and_keeps_the_file(node_json, assignment, field):
    before = node_json.read_bytes()
    res = run_cli("config", "set", node_json, assignment)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "invalid config: %s" % field in res.stderr and "nothing was written" in res.stderr
    assert node_json.read_bytes() == before


def test_config_get_from_a_file_fills_defaults(node_json):
    assert run_cli("config", "get", "trigger.on", "--file", node_json).output.strip() == "3.0"
    assert run_cli("config", "get", "trigger.lta_s", "--file", node_json).output.strip() == "20.0"
    res = run_cli("config", "get", "telemetry", "--file", node_json, "--json")
    assert json.loads(res.output)["port"] == 1883
    res = run_cli("config", "get", "trigger.nope", "--file", node_json)
    assert res.exit_code == 2 and "no field trigger.nope" in res.stderr and "sta_s" in res.stderr


def test_config_validate_still_works_from_the_group(node_json):
    res = run_cli("config", "validate", node_json)
    assert res.exit_code == 0 and json.loads(res.output)["node_id"] == "site-07"


def test_config_push_refuses_an_invalid_file_before_opening_a_port(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"node_id": "x", "trigger": {"on": 2.0, "off": 2.5}}))
    res = run_cli("config", "push", bad, "--port", "/dev/ttyNOPE0")  # the port is never looked at
    assert res.exit_code == 2
    assert "invalid config: trigger.off: must be below trigger.on" in res.stderr
    assert "nothing was sent" in res.stderr


def test_flash_refuses_a_config_for_another_board_before_opening_a_port(tmp_path):
    cfg = tmp_path / "node.json"
    cfg.write_text(json.dumps({"node_id": "x", "sensor": {"type": "mpu6050"}}))
    res = run_cli("flash", "--port", "/dev/ttyNOPE0", "--board", BOARD, "--config", cfg)
    assert res.exit_code == 2 and "invalid config: sensor.type" in res.stderr


# -- what an upload removes, and what counts as a boot ---------------------------------------------


def test_stale_files_are_only_ours():
    pkg = "/lib/seismote/firmware/"
    on_node = {pkg + "old.mpy": "h", pkg + "node.mpy": "h", pkg + "node.py": "h", pkg + "mine.py": "h",
               pkg + "chipmodels/adxl355.py": "h", pkg + "x.mpy.part": "h", "/config.json": "h",
               "/config.json.part": None}
    wanted = {pkg + "node.mpy", "/config.json"}
    manifest = {"files": {pkg + "old.mpy": "h", pkg + "node.mpy": "h"}}
    assert deploy.stale_files(on_node, wanted, manifest) == [pkg + "node.py", pkg + "old.mpy", pkg + "x.mpy.part"]
    assert deploy.stale_files(on_node, wanted, {}) == [pkg + "node.py", pkg + "x.mpy.part"]


class _BootingNode:
    """Just enough of a Transport for verify_boot: what the node printed, then its status."""

    port = "/dev/ttyUSB0"

    def __init__(self, output="", config="ok", boot_seq=7, recent=()):
        self.output = output
        self.st = {"config": config, "board_profile": "ok",
                   "log": {"last_boot": {"seq": boot_seq, "kind": "boot"} if boot_seq else None, "recent": list(recent)}}

    def reset(self, boot_wait=3.0):
        return self.output

    def node_status(self):
        return self.st


def test_verify_boot_decides_from_output_and_status():
    from seismote.host_tools.transport import NodeError

    assert deploy.verify_boot(_BootingNode(), since_seq=7)["warnings"] == []
    cases = [
        (_BootingNode(output="Traceback (most recent call last):\r\n  File \"main.py\", line 5\r\n"
                             "ImportError: no module named 'seismote'\r\n>>> "), "main.py raised ImportError"),
        (_BootingNode(config="invalid: trigger.on: 99 is outside 1.2..50.0"), "its config is invalid: trigger.on"),
        (_BootingNode(boot_seq=5), "no new boot record"),
        (_BootingNode(boot_seq=None), "no new boot record"),
    ]
    for t, message in cases:
        with pytest.raises(NodeError) as e:
            deploy.verify_boot(t, since_seq=7)
        assert message in e.value.message and e.value.exit_code == 1
    t = _BootingNode(recent=[{"seq": 7, "kind": "boot"}, {"seq": 8, "kind": "sensor_fault", "error": "no ADXL355"}])
    assert "no ADXL355" in deploy.verify_boot(t, since_seq=7)["warnings"][0]


# -- the status helper that runs on the node ----------------------------------------------------------


def _fake_node_root(root: Path, cfg=None):
    from seismote.firmware import eventlog

    (root / "data").mkdir(parents=True)
    (root / "board.json").write_text((ROOT / "hardware" / "boards" / (BOARD + ".json")).read_text())
    (root / "config.json").write_text(json.dumps(cfg if cfg is not None else fwconfig.default("n-1")))
    log = eventlog.EventLog(str(root / "data"))
    log.append_json(eventlog.T_STATUS, {"kind": "boot", "reset_cause": "power_on"})
    log.append_json(eventlog.T_STATUS, {"kind": "sensor_fault", "error": "no ADXL355 at CS 5"})


def test_status_helper_on_cpython_reports_checks_and_log(tmp_path):
    from seismote.firmware.status import status

    _fake_node_root(tmp_path)
    st = status(root=str(tmp_path))
    assert st["config"] == "ok" and st["board_profile"] == "ok" and st["node_id"] == "n-1"
    assert st["log"]["next_seq"] == 3 and st["log"]["last_boot"]["seq"] == 1
    assert [r["kind"] for r in st["log"]["recent"]] == ["boot", "sensor_fault"]
    bad = tmp_path / "bad"
    _fake_node_root(bad, cfg={"node_id": "n-2", "trigger": {"on": 99}})
    assert status(root=str(bad))["config"].startswith("invalid: trigger.on")


@pytest.mark.micropython
def test_status_helper_runs_on_the_micropython_vm(tmp_path):
    from seismote.host_tools import mpvm

    try:
        mpvm.node_binary()
    except mpvm.VMUnavailable as e:
        pytest.skip(str(e))
    _fake_node_root(tmp_path)
    proc = mpvm.run("from seismote.firmware.status import status_json\nprint(status_json(root='/n'))",
                    mounts=mpvm.firmware_mounts({str(tmp_path): "/n"}))
    assert proc.returncode == 0, proc.stderr
    st = json.loads(proc.stdout.strip().splitlines()[-1])
    assert st["implementation"] == "micropython" and st["config"] == "ok"
    assert st["log"]["last_boot"]["seq"] == 1 and st["heap_free"] > 0


# -- against a node: the virtual node, or a real board with SEISMOTE_HIL_PORT ---------------------------

HIL_PORT = os.environ.get("SEISMOTE_HIL_PORT")  # e.g. /dev/ttyUSB0: these tests on a real board


@pytest.fixture
def node():
    """A node's port: a fresh virtual node per test (skipped without Node.js and the VM)."""
    if HIL_PORT:  # a real board on a test rig: its config is put back afterwards
        saved = _node_file(HIL_PORT, "/config.json")
        yield SimpleNamespace(port=HIL_PORT, vn=None)
        if saved is not None:
            _put_node_file(HIL_PORT, "/config.json", saved)
        return
    try:
        from seismote.host_tools import mpvm
        from seismote.host_tools.virtual_node import VirtualNode

        mpvm.node_binary()
    except Exception as e:  # ImportError (no virtual node yet) or VMUnavailable
        pytest.skip("no virtual node: %s" % e)
    vn = VirtualNode()
    vn.start()
    try:
        yield SimpleNamespace(port=vn.port, vn=vn)
    finally:
        vn.stop()


def _node_file(port, path) -> bytes | None:
    from seismote.host_tools.transport import Transport

    with Transport.connect(port) as t:
        try:
            return t.read_file(path)
        except OSError:
            return None


def _put_node_file(port, path, data: bytes) -> None:
    """A file changed behind seismote's back (by hand, or a flash fault)."""
    from seismote.host_tools.transport import Transport

    with Transport.connect(port) as t:
        t.write_file(path, data)


def _mpy(tmp_path, source: str) -> bytes:
    src = tmp_path / "othersrc"
    src.mkdir()
    (src / "other.py").write_text(source)
    out = deploy.build_mpy(tmp_path / "other", source=src)
    return next(f.local.read_bytes() for f in out.files if f.node_path.endswith("/other.mpy"))


@pytest.mark.hil
def test_status_against_the_node(node):
    res = run_cli("status", "--port", node.port, "--json")
    assert res.exit_code == 0, res.output
    st = json.loads(res.stdout)
    assert st["implementation"] == "micropython" and st["config"] == "ok" and st["board_profile"] == "ok"
    assert st["log"]["last_boot"] is not None and st["heap_free"] > 0
    res = run_cli("status", "--port", node.port)
    assert res.exit_code == 0 and "event log" in res.stdout and st["node_id"] in res.stdout


@pytest.mark.hil
def test_flash_uploads_only_what_changed_and_the_node_boots_it(node, tmp_path):
    build = tmp_path / "build"
    first = deploy.deploy(node.port, BOARD, build_dir=build)
    st = first.status
    assert st["build"] == first.build_id and st["config"] == "ok" and not st["warnings"]
    assert "/lib/seismote/firmware/node.mpy" in first.upload.uploaded or HIL_PORT
    assert _node_file(node.port, "/lib/seismote/firmware/node.py") is None  # no .py shadows the .mpy
    # the model, its settings and the golden vectors the node checks its kernels with, side by side
    for path, local in (("/model.tflite", deploy.MODEL_FILE), ("/model.json", deploy.MODEL_FILE.with_suffix(".json")),
                        ("/model.golden.bin", deploy.GOLDEN_FILE)):
        assert _node_file(node.port, path) == local.read_bytes(), path
    again = deploy.deploy(node.port, BOARD, build_dir=build)
    assert again.upload.uploaded == [] and again.upload.removed == []
    assert again.status["log"]["last_boot"]["seq"] > st["log"]["last_boot"]["seq"]  # booted again
    # A module changed on the node is found by its hash and replaced; nothing else is sent. (A
    # valid .mpy of other code: a truncated one hangs MicroPython's .mpy loader, on boards too,
    # which is why uploads go to a temporary name and are renamed only after their sha256 checks.)
    _put_node_file(node.port, "/lib/seismote/firmware/trigger.mpy", _mpy(tmp_path, "X = 1\n"))
    third = deploy.deploy(node.port, BOARD, build_dir=build)
    assert third.upload.uploaded == ["/lib/seismote/firmware/trigger.mpy"]


@pytest.mark.hil
def test_flash_cli_reports_and_json(node):
    res = run_cli("flash", "--port", node.port, "--board", BOARD)
    assert res.exit_code == 0, res.output
    assert "uploaded" in res.stdout and "booted" in res.stdout
    res = run_cli("flash", "--port", node.port, "--board", BOARD, "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["upload"]["uploaded"] == [] and report["status"]["config"] == "ok"


@pytest.mark.hil
def test_config_get_from_the_node(node):
    assert run_cli("config", "get", "trigger.on", "--port", node.port).stdout.strip() == "2.5"
    res = run_cli("config", "get", "--port", node.port, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["sensor"]["type"] == "adxl355"


@pytest.mark.hil
def test_config_push_writes_keeps_a_backup_and_the_node_boots_with_it(node, tmp_path):
    old = _node_file(node.port, "/config.json")
    cfg = tmp_path / "site.json"
    cfg.write_text(json.dumps({"node_id": "site-07", "trigger": {"on": 3.0}}))
    res = run_cli("config", "push", cfg, "--port", node.port, "--json")
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert result["written"] and result["status"]["node_id"] == "site-07" and result["status"]["config"] == "ok"
    assert _node_file(node.port, "/config.json.bak") == old
    assert run_cli("config", "get", "trigger.on", "--port", node.port).stdout.strip() == "3.0"
    res = run_cli("config", "push", cfg, "--port", node.port)  # the same again: nothing to write
    assert res.exit_code == 0 and "already has this config" in res.stdout


@pytest.mark.hil
def test_config_push_for_another_sensor_is_refused_and_the_node_keeps_its_config(node, tmp_path):
    before = _node_file(node.port, "/config.json")
    cfg = tmp_path / "mpu.json"
    cfg.write_text(json.dumps({"node_id": "site-07", "sensor": {"type": "mpu6050"}}))
    res = run_cli("config", "push", cfg, "--port", node.port)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "invalid config: sensor.type" in res.stderr and "nothing was written" in res.stderr
    assert _node_file(node.port, "/config.json") == before


@pytest.mark.hil
def test_invalid_config_on_the_node_is_reported_and_not_replaced(node):
    bad = json.dumps({"node_id": "site-07", "trigger": {"on": 99}}).encode()
    _put_node_file(node.port, "/config.json", bad)  # edited by hand
    res = run_cli("status", "--port", node.port, "--json")
    assert res.exit_code == 1 and json.loads(res.stdout)["config"].startswith("invalid: trigger.on")
    res = run_cli("config", "get", "trigger.on", "--port", node.port)
    assert res.exit_code == 1 and res.stdout.strip() == "99" and "invalid config: trigger.on" in res.stderr
    res = run_cli("flash", "--port", node.port, "--board", BOARD)  # no --config: keep, do not overwrite
    assert res.exit_code == 2 and "/config.json is invalid" in res.stderr and "--config" in res.stderr
    assert _node_file(node.port, "/config.json") == bad


@pytest.mark.hil
def test_a_node_that_does_not_boot_is_exit_1_and_flash_repairs_it(node, tmp_path):
    deploy.deploy(node.port, BOARD, build_dir=tmp_path / "b")
    _put_node_file(node.port, "/lib/seismote/firmware/node.mpy", b"not a module")
    cfg = tmp_path / "site.json"
    cfg.write_text(json.dumps({"node_id": "site-08"}))
    res = run_cli("config", "push", cfg, "--port", node.port)
    assert res.exit_code == 1 and "did not boot" in res.stderr and "Traceback" not in res.output
    res = run_cli("flash", "--port", node.port, "--board", BOARD, "--config", cfg, "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert "/lib/seismote/firmware/node.mpy" in report["upload"]["uploaded"]
    assert report["status"]["node_id"] == "site-08"


@pytest.mark.hil
def test_busy_node_port_is_a_clear_error(node):
    held = serial.Serial(node.port, exclusive=True)
    try:
        res = run_cli("status", "--port", node.port)
    finally:
        held.close()
    assert res.exit_code == 2 and "busy" in res.stderr and "another program" in res.stderr


@pytest.mark.hil
def test_flash_with_an_image_end_to_end(node, tmp_path, monkeypatch):
    """`seismote flash --firmware`: esptool writes the image into the in-memory ESP32 of
    tests/test_flash.py (the virtual node has no ROM bootloader), then the MicroPython part
    (upload, config, restart, status) goes to the virtual node on the same --port."""
    if HIL_PORT:
        pytest.skip("would erase the real board; run seismote flash by hand")
    from tests.test_flash import FakeEsp32, flashed, make_image

    image = make_image()
    img = tmp_path / "firmware.bin"
    img.write_bytes(image)
    cfg = tmp_path / "site.json"
    cfg.write_text(json.dumps({"node_id": "site-09", "location": {"lat": 16.3, "lon": -98.1}}))
    esp = FakeEsp32()
    monkeypatch.setattr(deploy, "open_serial", lambda port, baud=115200: esp)
    res = run_cli("flash", "--port", node.port, "--board", BOARD, "--firmware", img, "--config", cfg, "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert flashed(esp, image) and report["flash"]["verified"] and report["flash"]["baud"] == 460800
    assert report["image"]["version"] == "v1.27.0"
    assert report["status"]["node_id"] == "site-09" and report["status"]["build"] == report["build_id"]


@pytest.mark.hil
def test_flash_to_a_port_without_a_bootloader_loses_nothing(node, tmp_path):
    """Pointing `flash --firmware` at a running node's port: esptool cannot reach a bootloader,
    the command says so, and the node's files are as before."""
    if HIL_PORT:
        pytest.skip("would erase the real board")
    from tests.test_flash import make_image

    img = tmp_path / "firmware.bin"
    img.write_bytes(make_image())
    before = _node_file(node.port, "/config.json")
    res = run_cli("flash", "--port", node.port, "--board", BOARD, "--firmware", img)
    assert res.exit_code == 2 and "did not enter the bootloader" in res.stderr and "hold BOOT" in res.stderr
    assert _node_file(node.port, "/config.json") == before


def _flaky(t, fail_on: set):
    """Make the transport's n-th file-system command (in fail_on) fail as a dropped link would."""
    from seismote.host_tools.transport import LinkError

    real = t._fs
    count = {"n": 0}

    def fs(code, path, timeout=10.0):
        count["n"] += 1
        if count["n"] in fail_on:
            raise LinkError("the node on %s stopped answering (simulated)" % t.port)
        return real(code, path, timeout)

    t._fs = fs


@pytest.mark.hil
def test_a_write_cut_by_the_link_is_retried_and_checked(node):
    from seismote.host_tools.transport import Transport

    data = os.urandom(5000)
    with Transport.connect(node.port) as t:
        _flaky(t, {3})  # mkdir, open, [the first chunk fails]; then the whole file again
        t.write_file("/lib/seismote/test.bin", data)
        assert t.read_file("/lib/seismote/test.bin") == data


@pytest.mark.hil
def test_an_interrupted_upload_keeps_the_old_file_and_the_next_upload_cleans_up(node, tmp_path):
    from seismote.host_tools.transport import LinkError, Transport

    first = deploy.deploy(node.port, BOARD, build_dir=tmp_path / "b")
    old = _node_file(node.port, "/config.json")
    with Transport.connect(node.port) as t:
        _flaky(t, set(range(3, 100)))  # the link dies after the first chunk, for good
        with pytest.raises(LinkError):
            t.write_file("/config.json", b'{"node_id": "half"}' * 200, retries=1)
    assert _node_file(node.port, "/config.json") == old  # the old file is whole
    # Files left half-written (as *.part) are removed by the next upload; nothing else changes.
    _put_node_file(node.port, "/lib/seismote/firmware/node.mpy.part", b"M\x06")
    again = deploy.deploy(node.port, BOARD, build_dir=tmp_path / "b")
    assert again.upload.removed == ["/config.json.part", "/lib/seismote/firmware/node.mpy.part"]
    assert again.upload.uploaded == []
    assert again.status["build"] == first.build_id
