"""Tests for the scenario engine, its metrics and `seismote simulate`.

- zero-noise mode reproduces the analytic warning times (S at the site minus the k-th P arrival)
  and the blind-zone radius exactly, with a constant and with a layered velocity model;
- the same seed gives the same result, another seed another;
- faults degrade the metrics as they should (nodes offline, a telemetry outage, clock errors);
- a bad scenario file is refused naming the field; the bundled example is the default scenario;
- the command runs on its default (the OpenEEW network and the 2017 Puebla earthquake).

Layouts are small synthetic grids around a synthetic quake, so every test runs in well under a second.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import click
import numpy as np
import pytest
import simpy
from click.testing import CliRunner

from seismote.host_tools import simulate_cli
from seismote.simulator import engine, layouts, metrics, nodes, physics
from seismote.simulator.policy import PolicyConfig
from seismote.simulator.scenarios import Quake, ScenarioError

QUAKE = Quake("test", None, 18.0, -98.0, 10.0, 6.5)
BOX = (17.3, 18.7, -98.7, -97.3)
EXAMPLE = Path(engine.__file__).with_name("data") / "puebla2017_openeew.toml"


def _cfg(zero_noise=True, velocity="constant", **sections) -> engine.ScenarioConfig:
    cfg = engine.ScenarioConfig().with_(scenario={"zero_noise": zero_noise, "name": "test"},
                                        physics={"velocity": velocity}, targets={"points": ()})
    cfg = replace(cfg, policy=PolicyConfig())
    return cfg.with_(**sections) if sections else cfg


@pytest.fixture(scope="module")
def grid():
    return layouts.grid_layout(BOX, 8.0)


def _analytic_warning(res, layout, quake, k, vm):
    node_epi = physics.epicentral_km(layout.lat, layout.lon, quake.lat, quake.lon)
    return physics.warning_time_analytic(res.target_epi_km, quake.depth_km, node_epi, k=k, model=vm)


# --- node behaviour ------------------------------------------------------------------------------
def test_detection_depends_on_the_sensor_noise_and_the_shaking():
    sensors = np.array([0, 1, 2], dtype=np.int8)  # adxl355, mpu6050, adxl345
    noise = nodes.noise_rms_gal(sensors, np.array([0, 0, 0], np.int8), layouts.SENSORS, layouts.SITE_CLASSES)
    assert noise[0] < 0.1 < 1.0 < noise[2] < noise[1]  # 22.5 vs ~360 and 400 ug/sqrt(Hz)
    det = nodes.StaLtaDetector()
    pga = np.geomspace(0.1, 100.0, 50)
    for s in range(3):
        p = det.p_detect(pga, np.full(50, noise[s]))
        assert np.all(np.diff(p) >= 0) and p[0] < 0.01 and p[-1] > 0.99
    assert det.threshold_gal(noise)[0] == 1.0  # the ADXL355 is limited by min_pga_gal, not its noise
    # Draws: reproducible, and a weak P wave can still be detected on the S wave (later).
    n = 20000
    a = det.sample(np.full(n, 5.0), np.full(n, 4.0), np.full(n, noise[0]), np.random.default_rng(1))
    b = det.sample(np.full(n, 5.0), np.full(n, 4.0), np.full(n, noise[0]), np.random.default_rng(1))
    assert np.array_equal(a.delay_s, b.delay_s)
    assert 0.0 < a.on_s[a.detected].mean() < 1.0
    assert np.median(a.delay_s[a.detected & (a.on_s == 0)]) > det.confirm_s


def test_false_triggers_are_poisson_per_node_day_by_site_class():
    site = np.repeat(np.arange(4, dtype=np.int8), 2500)
    rates = nodes.false_rates_per_day(site, layouts.SITE_CLASSES)
    node, t = nodes.false_triggers(rates, 0.0, 10 * 86400.0, np.random.default_rng(0))
    assert np.all(np.diff(t) >= 0)
    per_class = np.bincount(site[node], minlength=4) / 2500 / 10.0
    assert per_class == pytest.approx([nodes.FALSE_PER_DAY[c] for c in layouts.SITE_CLASSES], rel=0.05)


def test_telemetry_latency_loss_and_outages():
    n = 50000
    send = np.linspace(0.0, 100.0, n)
    node = np.arange(n)
    links = np.zeros(n, np.int8)
    links[n // 2:] = 1
    rng = np.random.default_rng(2)
    arr = nodes.deliver(send, node, links, nodes.DEFAULT_LINKS, (), np.zeros((0, n)), rng)
    lat = arr - send
    assert np.nanmedian(lat[: n // 2]) == pytest.approx(0.25, rel=0.05)
    assert np.nanmedian(lat[n // 2:]) == pytest.approx(0.6, rel=0.05)
    assert np.isnan(arr[: n // 2]).mean() == pytest.approx(0.01, abs=0.003)
    out = (nodes.Outage(10.0, 20.0), nodes.Outage(50.0, 60.0, mode="drop", link="lte", fraction=0.5))
    u = np.random.default_rng(3).random((2, n))
    arr = nodes.deliver(send, node, links, nodes.DEFAULT_LINKS, out, u, rng, zero_latency=True)
    held = (send >= 10.0) & (send < 20.0)
    assert np.all(arr[held] == 20.0) and np.array_equal(arr[~held & (send < 50)], send[~held & (send < 50)])
    dropped = np.isnan(arr)
    assert dropped.any() and np.all((send[dropped] >= 50.0) & (send[dropped] < 60.0) & (links[dropped] == 1))
    assert dropped.sum() == pytest.approx(0.5 * ((send >= 50) & (send < 60) & (links == 1)).sum(), rel=0.1)


# --- zero noise: the analytic limit, exactly ------------------------------------------------------
@pytest.mark.parametrize("velocity", ["constant", "default_mexico"])
@pytest.mark.parametrize("k", [1, 4])
def test_zero_noise_reproduces_the_analytic_warning_times_exactly(grid, velocity, k):
    cfg = _cfg(velocity=velocity, policy={"k": k, "mmi_threshold": 2.0, "min_mag": 0.0})
    res = engine.run_scenario(grid, QUAKE, cfg)
    vm = cfg.physics.velocity_model()
    t_k = physics.alert_time_analytic(physics.epicentral_km(grid.lat, grid.lon, QUAKE.lat, QUAKE.lon), QUAKE.depth_km,
                                      k=k, model=vm)
    assert res.kth_p_t == t_k
    assert res.first_alert_t == t_k  # the alert goes out at the k-th P arrival, exactly
    first = res.alert_t == t_k
    assert first.sum() > 0.9 * first.size  # (nearly) every site is alerted by that first alert
    warn = res.target_ts - res.alert_t
    assert np.array_equal(warn[first], _analytic_warning(res, grid, QUAKE, k, vm)[first])
    sc = metrics.score(res)
    assert sc["first_alert_after_origin_s"] == round(t_k, 2)
    assert sc["oracle"]["alert_after_origin_s"] == round(t_k, 2)


def test_zero_noise_blind_zone_radius_is_the_analytic_one():
    # A sparse grid, so the S wave is at the surface (and spreading) when the alert goes out.
    lay = layouts.grid_layout(BOX, 25.0)
    cfg = _cfg(policy={"k": 4, "radius_km": 60.0, "mmi_threshold": 2.0, "min_mag": 0.0})
    res = engine.run_scenario(lay, QUAKE, cfg)
    t_alert = res.first_alert_t - QUAKE.t0
    vm = cfg.physics.velocity_model()
    r = metrics.blind_zone_km(vm, QUAKE.depth_km, t_alert)
    assert r == physics.blind_zone_radius(QUAKE.depth_km, 6.5, 3.7, t_alert)
    assert r > 5.0
    # The sites: no positive warning inside the radius, a positive one outside.
    warn = res.target_ts - res.alert_t
    alerted = np.isfinite(res.alert_t)
    assert np.all(warn[alerted & (res.target_epi_km < r)] <= 0)
    assert np.all(warn[alerted & (res.target_epi_km > r + 1e-9)] > 0)
    assert metrics.score(res)["blind_zone_km"] == round(r, 1)


def test_layered_blind_zone_inverts_the_s_time():
    vm = physics.VelocityModel.default_mexico()
    r = metrics.blind_zone_km(vm, 20.0, 30.0)
    assert float(vm.s_time(np.array([r]), 20.0)[0]) == pytest.approx(30.0, abs=1e-9)
    assert metrics.blind_zone_km(vm, 20.0, 1.0) == 0.0


# --- determinism ---------------------------------------------------------------------------------
def _noisy(grid, seed):
    cfg = _cfg(zero_noise=False, nodes={"false_per_day": {"quiet": 200.0, "residential": 200.0, "urban": 200.0, "industrial": 200.0}})
    res = engine.run_scenario(grid, QUAKE, cfg, seed=seed)
    sc = metrics.score(res)
    sc.pop("timings_s")
    return res, sc


def test_same_seed_same_result_other_seed_other_result(grid):
    a, sa = _noisy(grid, 11)
    b, sb = _noisy(grid, 11)
    c, sc = _noisy(grid, 12)
    assert sa == sb
    assert np.array_equal(a.alert_t, b.alert_t) and np.array_equal(a.target_pga_gal, b.target_pga_gal)
    assert a.counts["false_triggers"] > 0
    assert sa != sc and not np.array_equal(a.target_pga_gal, c.target_pga_gal)


def test_a_realtime_environment_gives_the_same_result(grid):
    cfg = _cfg(policy={"mmi_threshold": 3.0})
    log_a: list = []
    log_b: list = []
    a = engine.run_scenario(grid, QUAKE, cfg, log=log_a)
    env = simpy.rt.RealtimeEnvironment(factor=1e-4, strict=False)
    b = engine.run_scenario(grid, QUAKE, cfg, env=env, log=log_b)
    assert np.array_equal(a.alert_t, b.alert_t)
    assert log_a == log_b
    first = next(row for row in log_a if row[2])  # (time, messages, alerts, targets)
    assert first[0] == a.kth_p_t and first[3] > 0


# --- faults degrade the metrics ------------------------------------------------------------------
def _run(grid, seed=0, **sections):
    res = engine.run_scenario(grid, QUAKE, _cfg(**sections), seed=seed)
    return res, metrics.score(res)


def _t(x):
    return math.inf if x is None else x


def test_nodes_offline_delay_the_alert_and_shorten_warnings(grid):
    rows = [_run(grid, faults={"offline_fraction": f}) for f in (0.0, 0.3, 0.6, 0.9)]
    first = [_t(s["first_alert_after_origin_s"]) for _, s in rows]
    oracle = [s["oracle"]["alert_after_origin_s"] for _, s in rows]
    true4 = [s["thresholds"]["4"]["true"]["n"] for _, s in rows]
    up = [r.counts["nodes_online"] for r, _ in rows]
    assert up == sorted(up, reverse=True) and up[-1] < 0.2 * up[0]
    assert first == sorted(first) and first[-1] > first[0]
    assert oracle == sorted(oracle) and first == oracle  # zero noise: the limit, with fewer nodes
    assert true4 == sorted(true4, reverse=True)


@pytest.mark.parametrize("mode", ["buffer", "drop"])
def test_a_telemetry_outage_delays_or_loses_the_alert(grid, mode):
    rows = []
    for end in (0.0, 5.0, 10.0, 20.0):
        outages = (nodes.Outage(-5.0, end, mode=mode),) if end else ()
        rows.append(_run(grid, telemetry={"outages": outages}))
    first = [_t(s["first_alert_after_origin_s"]) for _, s in rows]
    true4 = [s["thresholds"]["4"]["true"]["n"] for _, s in rows]
    bad4 = [s["thresholds"]["4"]["late"]["n"] + s["thresholds"]["4"]["missed"]["n"] for _, s in rows]
    assert first == sorted(first) and first[-1] > first[0]
    assert true4 == sorted(true4, reverse=True) and true4[-1] < true4[0]
    assert bad4 == sorted(bad4)
    if mode == "buffer":  # held messages go out when the link is back: the alert follows at once
        assert first[1:] == [5.0, 10.0, 20.0]
    else:
        assert math.isinf(first[-1])  # the first P waves are lost and the rest does not confirm


def test_clock_errors_degrade_location_and_timing(grid):
    def errs(c):
        out = []
        for seed in range(4):
            _, s = _run(grid, seed=seed, faults={"clock_error_s": c})
            fa = s["estimate"].get("first_alert")
            out.append(fa["location_error_km"] if fa else 500.0)
        return float(np.mean(out))

    e0, e1, e3 = errs(0.0), errs(0.3), errs(3.0)
    assert e0 < 1.0
    assert e0 < e1 < e3


def test_telemetry_latency_and_processing_delay_the_alert(grid):
    _, zero = _run(grid)
    res, noisy = _run(grid, seed=1, scenario={"zero_noise": False, "name": "n"}, nodes={"false_per_day": {
        "quiet": 0.0, "residential": 0.0, "urban": 0.0, "industrial": 0.0}})
    assert noisy["first_alert_after_origin_s"] > zero["first_alert_after_origin_s"]
    assert noisy["oracle"]["alert_after_origin_s"] <= noisy["first_alert_after_origin_s"]
    assert noisy["warning_s"]["p50"] < zero["warning_s"]["p50"]


# --- long runs of false triggers ------------------------------------------------------------------
def test_false_alerts_per_year_is_deterministic_and_counts_events():
    lay = layouts.random_layout(1000, (19.0, 19.6, -99.4, -98.8), seed=1, site_class="industrial")
    cfg = _cfg(zero_noise=False)
    a = metrics.false_alerts_per_year(lay, cfg, years=0.005, seed=3)
    assert 6000 < a["false_triggers"] < 8500  # 1000 nodes x 4 per day x 1.83 days
    assert a["candidates"] > 0 and a["events_per_year"] > 0  # dense enough for clusters to form
    assert a["alerting_events_per_year"] == 0  # scattered false triggers never confirm
    b = metrics.false_alerts_per_year(lay, cfg, years=0.005, seed=3)
    c = metrics.false_alerts_per_year(lay, cfg, years=0.005, seed=3, chunk_triggers=1000)  # in 8 stretches
    for r in (a, b, c):
        r.pop("seconds")
    assert a == b
    assert 6000 < c["false_triggers"] < 8500 and c["events_per_year"] > 0


# --- scenario files --------------------------------------------------------------------------------
def test_the_bundled_example_is_the_default_scenario():
    assert engine.load_scenario(EXAMPLE) == engine.ScenarioConfig()


def test_a_scenario_file_sets_what_it_names(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('quake = "pinotepa2018"\n[policy]\nk = 6\n[[telemetry.outages]]\nstart_s = 0\nend_s = 10\nmode = "drop"\n'
                 "[layout]\nsource = \"grid\"\nspacing_km = 20.0\nsensor = { adxl355 = 0.5, mpu6050 = 0.5 }\n")
    cfg = engine.load_scenario(p)
    assert cfg.policy.k == 6 and cfg.policy.radius_km == engine.OPENEEW_POLICY["radius_km"]
    assert engine.build_quake(cfg).name == "pinotepa2018"
    assert cfg.telemetry.outages == (nodes.Outage(0.0, 10.0, 1.0, None, "drop"),)
    lay = engine.build_layout(cfg)
    assert set(np.unique(lay.sensor)) == {0, 1}


@pytest.mark.parametrize("text, message", [
    ("[policy]\nk = 0\n", "s.toml: policy.k: expected an integer >= 1"),
    ("[policy]\nk = 2.5\n", "s.toml: policy.k: expected an integer >= 1"),
    ("[policy]\nmethod = \"knn\"\n", 's.toml: policy.method: expected one of "radius", "cells", "plum"'),
    ("[policy]\nkk = 3\n", "s.toml: policy.kk: unknown field"),
    ("[polcy]\nk = 3\n", "s.toml: polcy: unknown field"),
    ("[scenario]\nzero_noise = 1\n", "s.toml: scenario.zero_noise: expected true or false"),
    ("[scenario]\nduration_s = -1\n", "s.toml: scenario.duration_s: expected a number > 0"),
    ("[layout]\noutage_p = 1.5\n", "s.toml: layout.outage_p: expected a number in [0, 1]"),
    ("[layout]\nbbox = [1, 2, 3]\n", "s.toml: layout.bbox: expected [lat0, lat1, lon0, lon1]"),
    ("[layout]\nsite_class = \"noisy\"\n", "s.toml: layout.site_class: expected one of"),
    ("[nodes]\nfalse_per_day = { rural = 1.0 }\n", "s.toml: nodes.false_per_day.rural: unknown field"),
    ("[telemetry]\nwifi = { median_s = -0.1 }\n", "s.toml: telemetry.wifi.median_s: expected a number >= 0"),
    ("[[telemetry.outages]]\nstart_s = 10\nend_s = 5\n", "s.toml: telemetry.outages[0].end_s: expected a number > start_s"),
    ("[[telemetry.outages]]\nend_s = 5\n", "s.toml: telemetry.outages[0].start_s: missing"),
    ("[[targets.points]]\nname = \"x\"\nlat = 95\nlon = 0\n", "s.toml: targets.points[0].lat: expected a number in [-90, 90]"),
    ("[metrics]\nmmi_thresholds = [3, 11]\n", "s.toml: metrics.mmi_thresholds[1]: expected a number in [1, 10]"),
    ("[quake]\nbuiltin = \"tohoku\"\n", "s.toml: quake.builtin: expected one of"),
    ("[quake]\nbuiltin = \"\"\nlat = 18.0\n", "s.toml: quake.lon: missing"),
    ("[policy\nk = 3\n", "s.toml: not valid TOML"),
])
def test_a_bad_scenario_file_is_refused_naming_the_field(tmp_path, text, message):
    p = tmp_path / "s.toml"
    p.write_text(text)
    with pytest.raises(ScenarioError) as e:
        engine.load_scenario(p)
    assert str(e.value).startswith(message)


def test_bad_layout_and_detector_files_are_named(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[layout]\nsource = "file"\npath = "nodes.csv"\n')
    (tmp_path / "nodes.csv").write_text("lat,lon\n18.0,-98.0\n95.0,-98.0\n")
    with pytest.raises(ScenarioError, match=r"layout: nodes.csv row 3: lat 95.0 is outside -90..90"):
        engine.build_layout(engine.load_scenario(p))
    p.write_text('[nodes]\ndetector = "curve.json"\n')
    (tmp_path / "curve.json").write_text('{"pga_gal": [1, 10], "p_detect": [0.5, 1.5], "delay_s": [2, 1]}')
    cfg = engine.load_scenario(p)
    with pytest.raises(ScenarioError, match=r"nodes.detector: .*curve.json: p_detect: expected values in \[0, 1\]"):
        engine.run_scenario(layouts.grid_layout(BOX, 30.0), QUAKE, replace(cfg, scenario=replace(cfg.scenario, zero_noise=False)))


def test_a_detection_curve_file_drives_detection(tmp_path, grid):
    curve = tmp_path / "curve.json"
    curve.write_text(json.dumps({"pga_gal": [1.0, 10.0, 100.0], "p_detect": [0.0, 0.0, 0.0], "delay_s": [2.0, 1.5, 1.0]}))
    deaf = _cfg(zero_noise=False, nodes={"detector": str(curve)})
    res = engine.run_scenario(grid, QUAKE, deaf)
    assert res.counts["nodes_detected"] == 0 and math.isinf(res.first_alert_t)
    curve.write_text(json.dumps({"adxl355": {"pga_gal": [0.1, 1.0], "p_detect": [1.0, 1.0], "delay_s": [0.5, 0.5]}}))
    res = engine.run_scenario(grid, QUAKE, deaf)
    assert res.counts["nodes_detected"] > 0.9 * res.counts["nodes_online"]


# --- the command ---------------------------------------------------------------------------------
@pytest.fixture
def runner():
    @click.group()
    def cli() -> None:
        pass

    simulate_cli.register(cli)
    return lambda *args: CliRunner().invoke(cli, ["simulate", *args])


def test_the_command_runs_its_default_scenario(runner):
    r = runner()
    assert r.exit_code == 0, r.output
    assert "puebla2017" in r.output and "Mexico City" in r.output and "physical limit" in r.output
    r = runner("--json", "--seed", "3")
    out = json.loads(r.output)
    assert out["nodes"] == 30 and out["seed"] == 3 and out["quake"]["name"] == "puebla2017"
    assert out["first_alert_after_origin_s"] >= out["oracle"]["alert_after_origin_s"]
    assert "Mexico City" in out["points"]


def test_the_command_options(runner, tmp_path):
    r = runner("--nodes", "3000", "--zero-noise", "--json", "--false-years", "0.01")
    out = json.loads(r.output)
    assert out["nodes"] == 3000 and out["zero_noise"] and "false_alerts" in out
    assert out["first_alert_after_origin_s"] == out["oracle"]["alert_after_origin_s"]
    p = tmp_path / "bad.toml"
    p.write_text("[policy]\nk = 0\n")
    r = runner(str(p))
    assert r.exit_code == 2
    assert "seismote: bad.toml: policy.k: expected an integer >= 1" in r.output
    r = runner(str(EXAMPLE), "--json")
    assert r.exit_code == 0 and json.loads(r.output)["scenario"] == "puebla2017-openeew"
