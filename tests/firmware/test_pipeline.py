"""Conditioner, STA/LTA trigger, event features and the pipeline: portable tests."""

from array import array

from seismote.firmware import config, pipeline
from seismote.firmware.conditioner import Conditioner
from seismote.firmware.errors import ConfigError
from seismote.firmware.sampler import Sampler
from seismote.firmware.trigger import StaLta
from tests.firmware.support import ArraySensor, raises, synthetic_counts

RATE = 100


def run(samples, cfg=None, rate=RATE):
    cfg = cfg or config.default()
    p = pipeline.Pipeline(cfg, 256000, rate)
    events = []
    for i in range(0, len(samples), 3):
        s = p.push(samples[i], samples[i + 1], samples[i + 2])
        if s:
            events.append((s, p.n))
    return p, events


def test_conditioner_removes_gravity_and_decimates():
    c = Conditioner(2)
    outs = 0
    for i in range(2000):
        if c.push(10, -20, 256000):
            outs += 1
    assert outs == 1000
    # A constant input (gravity, offsets) conditions to zero.
    assert c.y[0] == 0 and c.y[1] == 0 and c.y[2] == 0


def test_conditioner_passes_earthquake_band():
    import math

    c = Conditioner(1)
    peak = 0
    for i in range(1000):
        v = int(10000 * math.sin(2 * math.pi * 2.0 * i / 50))
        if c.push(v, 0, 0) and i > 500:
            peak = max(peak, abs(c.y[0]))
    # 2 Hz is far above the 0.06 Hz corner: amplitude kept within 2 %.
    assert 9800 <= peak <= 10200


def test_stalta_rejects_bad_parameters():
    raises(ValueError, StaLta, 0, 500, 48, 24, 0)
    raises(ValueError, StaLta, 25, 2000, 48, 24, 0)
    raises(ValueError, StaLta, 25, 500, 24, 48, 0)


def test_stalta_onset_off_and_dead_time():
    t = StaLta(5, 50, 48, 24, 20)
    edges = []
    for i in range(400):
        cf = 1000 if 100 <= i < 130 or 150 <= i < 160 else 100
        e = t.push(cf)
        if e:
            edges.append((e, i))
    # One onset at the step, one switch-off after it, and the second burst falls in the dead time.
    assert edges[0][0] == 1 and 100 <= edges[0][1] <= 103
    assert edges[1][0] == -1 and 130 <= edges[1][1] <= 140
    assert len(edges) == 2


def test_stalta_needs_warm_lta():
    t = StaLta(5, 50, 48, 24, 0)
    for i in range(49):
        assert t.push(100000 if i > 10 else 1) == 0


def test_quiet_noise_does_not_trigger():
    _, events = run(synthetic_counts(6000, RATE))
    assert events == []


def test_quake_triggers_then_detects_after_onset():
    data = synthetic_counts(4000, RATE, quake_at=2500, quake_amp=2000)
    p, events = run(data)
    kinds = [e[0] for e in events]
    assert kinds[0] == pipeline.TRIGGER and pipeline.DETECTION in kinds
    onset = events[0][1] / p.rate
    assert 25.0 <= onset <= 25.5
    det = [e for e in events if e[0] == pipeline.DETECTION][0][1] / p.rate
    assert onset + 1.0 <= det <= onset + 1.5
    ev = p.event()
    # 2000 counts at 256000 counts/g = 7.66 gal peak on x.
    assert 6.5 <= ev["pga_gal"] <= 7.8
    assert ev["score"] >= 3.0 and ev["confirmed"]


def test_short_knock_is_rejected_not_detected():
    data = synthetic_counts(3000, RATE)
    for i in range(2500 * 3, 2504 * 3, 3):  # 40 ms knock
        data[i] += 200000
    _, events = run(data)
    kinds = [e[0] for e in events]
    assert pipeline.TRIGGER in kinds
    assert pipeline.DETECTION not in kinds and pipeline.REJECTED in kinds


def test_small_quake_below_min_pga_is_not_detected():
    data = synthetic_counts(4000, RATE, quake_at=2500, quake_amp=150)  # ~0.6 gal
    _, events = run(data)
    assert pipeline.DETECTION not in [e[0] for e in events]


def test_chunked_equals_batch_and_reset_restarts():
    data = synthetic_counts(4000, RATE, quake_at=2500, quake_amp=2000)
    _, a = run(data)
    p = pipeline.Pipeline(config.default(), 256000, RATE)
    b = []
    sensor = ArraySensor(data, burst=17)
    s = Sampler(sensor, ring_samples=64)
    while s.poll() or s.count:
        while True:
            st = s.drain(p)
            if not st:
                break
            b.append((st, p.n))
    assert a == b and s.dropped == 0 and s.total == 4000


def test_sampler_counts_samples_it_has_no_room_for():
    data = synthetic_counts(100, RATE)
    s = Sampler(ArraySensor(data, burst=32), ring_samples=40)
    s.poll()
    s.poll()
    assert s.count == 40 and s.dropped == 24 and s.total == 40


def test_window_returns_latest_samples_in_order():
    # the conditioned samples as pushed, against the window copied out of the 400-sample ring,
    # ending at, before and across the ring's wrap
    p = pipeline.Pipeline(config.default(), 256000, 50)
    seen = []
    out = array("i", [0] * 30)
    for i in range(830):
        p.push(i * 7 % 1000, -i, i % 13)
        seen.extend(p.cond.y)
        if i in (12, 399, 402, 405, 409, 410, 412, 799, 829):
            p.window(out, 10)
            assert list(out) == seen[-30:]
            p.window(out, 10, 3)
            assert list(out) == seen[-39:-9]
    raises(ValueError, p.window, out, 10000)
    raises(ValueError, p.window, out, 10, 391)


def test_configured_vertical_axis_comes_first_in_the_window():
    # The same motion mounted three ways: the vertical on x, y or z. The detector window is the same.
    wins = []
    for axis in ("x", "y", "z"):
        p = pipeline.Pipeline(config.validate({"node_id": "n", "sensor": {"vertical": axis}}), 256000, 50)
        for i in range(400):
            v, h = (i * 37) % 501 - 250, (i * 11) % 97 - 48  # vertical, one horizontal
            if axis == "x":
                p.push(v, h, 0)
            elif axis == "y":
                p.push(h, v, 0)
            else:
                p.push(0, h, v)
        out = array("i", [0] * 30)
        p.window(out, 10)
        wins.append(list(out))
    assert wins[0] == wins[1] == wins[2]
    assert wins[0][0::3] != wins[0][1::3] and any(wins[0][0::3])  # and it is the vertical that comes first


def test_invalid_sensor_rate_rejected():
    raises(ValueError, pipeline.Pipeline, config.default(), 256000, 75)


def test_config_errors_name_the_field():
    cases = [
        ({"node_id": "n", "trigger": {"on": "high"}}, "trigger.on"),
        ({"node_id": "n", "trigger": {"on": 2.0, "off": 2.5}}, "trigger.off"),
        ({"node_id": "n", "sensor": {"type": "lis3dh"}}, "sensor.type"),
        ({"node_id": "n", "sensor": {"type": "adxl355", "odr_hz": 100}}, "sensor.odr_hz"),
        ({"node_id": "n", "sensor": {"type": "mpu6050", "range_g": 3}}, "sensor.range_g"),
        ({"node_id": "n", "sensor": {"vertical": "up"}}, "sensor.vertical"),
        ({"node_id": "bad id!"}, "node_id"),
        ({}, "node_id"),
        ({"node_id": "n", "telemetry": {"port": 0}}, "telemetry.port"),
        ({"node_id": "n", "telemetry": {"prot": 1}}, "telemetry.prot"),
        ({"node_id": "n", "location": {"lat": 95, "lon": 0}}, "location.lat"),
        ({"node_id": "n", "location": {"lat": 5}}, "location.lon"),
        ({"node_id": "n", "detector": {"confirm_s": True}}, "detector.confirm_s"),
        ({"node_id": "n", "schema": 2}, "schema"),
        ({"node_id": "n", "colour": "red"}, "colour"),
    ]
    for doc, field in cases:
        e = raises(ConfigError, config.validate, doc)
        assert e.field == field, (field, e.field)
    assert raises(ConfigError, config.loads, "{not json").field == "(document)"


def test_config_defaults_fill_in():
    c = config.validate({"node_id": "n1", "trigger": {"on": 4}})
    assert c["trigger"]["on"] == 4 and c["trigger"]["off"] == 1.3
    assert c["sensor"]["odr_hz"] == 250 and c["location"] is None


def test_knocks_of_a_tenth_of_a_second_are_not_detected():
    import math

    amp = 30 * 256000 // 981  # a 30-gal half-sine, 0.1 s long: a door slam or a kick to the node
    for seed in range(1, 6):
        data = synthetic_counts(3000, RATE, seed=seed)
        for k in range(10):
            data[(2500 + k) * 3] += int(amp * math.sin(math.pi * k / 10))
        _, events = run(data)
        kinds = [e[0] for e in events]
        assert pipeline.TRIGGER in kinds and pipeline.DETECTION not in kinds, (seed, kinds)
