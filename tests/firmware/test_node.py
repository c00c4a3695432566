"""The node main loop on a host board with register models of the chips: boot, detection,
faults and recovery, telemetry. Portable: runs on CPython and on the MicroPython VM."""

from seismote.firmware import eventlog
from seismote.firmware.board import HostBoard
from seismote.firmware.chipmodels.adxl345 import ADXL345Model
from seismote.firmware.chipmodels.adxl355 import ADXL355Model
from seismote.firmware.chipmodels.mpu6050 import MPU6050Model
from seismote.firmware.errors import ConfigError
from seismote.firmware.node import Node
from tests.firmware.support import raises, rmtree, synthetic_counts, tmpdir


def make(chip=None, cfg=None, i2c=False, send=None):
    chip = chip or ADXL355Model()
    d = tmpdir("node")
    if i2c:
        board = HostBoard(chip, None, address=chip.address, data_dir=d + "/data", unix_time=1700000000)
    else:
        board = HostBoard(chip.spi, chip.cs, data_dir=d + "/data", unix_time=1700000000)
    doc = {"node_id": "t1", "telemetry": {"heartbeat_s": 10}}
    for k in cfg or {}:
        doc[k] = cfg[k]
    node = Node(board, doc, send)
    return node, chip, board, d


def feed(node, chip, board, samples, rate, step_ms=100):
    """Push samples into the chip at its rate, running one node step every `step_ms` of chip time."""
    per_step = rate * step_ms // 1000
    k = 0
    for i in range(0, len(samples), 3):
        chip.push(samples[i], samples[i + 1], samples[i + 2])
        k += 1
        if k == per_step:
            k = 0
            board.sleep_ms(step_ms)
            node.step()


def status_kinds(node):
    return [r.json()["kind"] for r in node.log.records() if r.type == eventlog.T_STATUS]


def test_boot_then_detect_an_earthquake_logged_and_reported():
    node, chip, board, d = make()
    node.boot()
    assert node.sensor is not None and node.sensor.name == "adxl355"
    assert status_kinds(node) == ["boot"]
    # 40 s at 250 Hz: quiet, then ~19 gal of shaking from 30 s.
    feed(node, chip, board, synthetic_counts(10000, 250, quake_at=7500, quake_amp=5000), 250)
    assert node.stats["detections"] == 1 and node.stats["faults"] == 0
    events = [r.json() for r in node.log.records() if r.type == eventlog.T_EVENT]
    assert events and 15 <= events[0]["pga_gal"] <= 21
    assert 29.5 <= events[0]["onset_s"] <= 31.0
    dets = [m for m in node.outbox.items if m["type"] == "detection"]
    assert len(dets) == 1 and dets[0]["node"] == "t1" and dets[0]["seq"] == node.last_detection
    beats = [m for m in node.outbox.items if m["type"] == "heartbeat"]
    assert len(beats) >= 3
    # Achieved sample rate as the heartbeat reports it.
    assert 245 <= beats[-1]["rate_hz"] <= 255 and beats[-1]["sensor"] == "ok"
    rmtree(d)


def test_missing_sensor_is_logged_and_retried_with_backoff():
    chip = ADXL355Model()
    chip.present = False
    node, chip, board, d = make(chip)
    node.boot()
    assert node.sensor is None
    tries = [board.ticks_ms()]
    for _ in range(80):  # 8 s
        board.sleep_ms(100)
        before = node.stats["faults"]
        node.step()
        if node.stats["faults"] != before:
            tries.append(board.ticks_ms())
    # Retries 1 s, then 2 s, then 4 s later: exponential backoff, not a busy loop.
    gaps = [tries[i + 1] - tries[i] for i in range(len(tries) - 1)]
    assert gaps[:3] == [1000, 2000, 4000], gaps
    faults = [r.json() for r in node.log.records() if r.type == eventlog.T_STATUS and r.json()["kind"] == "sensor_fault"]
    assert "ADXL355" in faults[0]["error"]
    # Heartbeats go on while the sensor is missing, and say so.
    beats = [m for m in node.outbox.items if m["type"] == "heartbeat"]
    assert beats and beats[-1]["sensor"] == "fault"
    chip.present = True
    feed(node, chip, board, synthetic_counts(3000, 250), 250)  # 12 s: past the next retry at 15 s
    assert node.sensor is not None and "sensor_reinit" in status_kinds(node)
    rmtree(d)


def test_wrong_sensor_is_a_clear_fault():
    node, chip, board, d = make(ADXL345Model())  # an ADXL345 where the config says ADXL355
    node.boot()
    assert node.sensor is None
    err = [r.json() for r in node.log.records() if r.type == eventlog.T_STATUS][-1]
    assert err["kind"] == "sensor_fault" and "No ADXL355" in err["error"]
    rmtree(d)


def test_stalled_sensor_is_reinitialised():
    node, chip, board, d = make()
    node.boot()
    feed(node, chip, board, synthetic_counts(500, 250), 250)
    for _ in range(30):  # the chip stops delivering samples for 3 s
        board.sleep_ms(100)
        node.step()
    assert node.stats["faults"] == 1
    faults = [r.json() for r in node.log.records() if r.type == eventlog.T_STATUS and r.json()["kind"] == "sensor_fault"]
    assert "no samples" in faults[0]["error"]
    feed(node, chip, board, synthetic_counts(1000, 250), 250)
    assert node.sensor is not None and node.stats["reinits"] == 1
    rmtree(d)


def test_fifo_overflow_is_counted_logged_and_reported():
    node, chip, board, d = make(MPU6050Model(), {"sensor": {"type": "mpu6050", "odr_hz": 100}}, i2c=True)
    node.boot()
    feed(node, chip, board, synthetic_counts(300, 100, gravity=16384), 100)
    for i in range(200):  # 2 s with no read: more than the 1024-byte FIFO holds
        chip.push(0, 0, 16384)
    node.step()
    assert node.sensor.overflows >= 1 and node.sensor.lost >= 1
    feed(node, chip, board, synthetic_counts(1000, 100, gravity=16384), 100)  # past the next heartbeat
    assert "fifo_overflow" in status_kinds(node) and node.stats["faults"] == 0
    assert node.outbox.items[-1]["overflows"] >= 1
    rmtree(d)


def test_invalid_config_refused_at_boot_naming_the_field():
    node, chip, board, d = make(cfg={"trigger": {"on": 0.5}})
    e = raises(ConfigError, node.boot)
    assert e.field == "trigger.on"
    rmtree(d)


def test_telemetry_is_buffered_while_offline():
    sent = []
    online = [False]

    def send(data):
        if not online[0]:
            raise OSError(113)  # EHOSTUNREACH
        sent.append(data)

    node, chip, board, d = make(send=send)
    node.boot()
    feed(node, chip, board, synthetic_counts(7500, 250), 250)  # 30 s: heartbeats at 0.1, 10.1, 20.1 s
    assert sent == [] and len(node.outbox.items) == 3
    queued = list(node.outbox.items)
    online[0] = True
    board.sleep_ms(100)
    node.step()
    # The 3 queued ones go out first, in order (then the heartbeat this step made), and none stays.
    import json

    assert len(sent) == 4 and node.outbox.items == []
    assert [json.loads(m)["uptime_ms"] for m in sent[:3]] == [m["uptime_ms"] for m in queued]
    rmtree(d)


def test_reboot_keeps_the_log_and_its_sequence():
    node, chip, board, d = make()
    node.boot()
    first = node.log.stats()["next_seq"]
    again = Node(board, {"node_id": "t1"})
    again.boot()
    kinds = status_kinds(again)
    assert kinds.count("boot") == 2 and again.log.stats()["next_seq"] > first
    rmtree(d)
