"""Tests for sweeps (simulator.sweep), reports (simulator.report) and `seismote sweep`.

- the grid expands to every combination, in file order; density sets layout.n over the bbox;
- the same seed gives identical tables in-process, in another order, and on a 2-worker LocalCluster;
  another seed gives other tables;
- a bad sweep file is refused naming the field;
- runs.parquet, runs.csv and summary.json are written and read back;
- report.md and its PNGs exist and are real pictures (size, dimensions);
- `seismote sweep` runs (and `seismote simulate --report`).

Scenarios are small (a few hundred random nodes around the 2017 Puebla quake) so everything runs in seconds.
"""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from seismote.host_tools import simulate_cli, sweep_cli
from seismote.simulator import engine, report, sweep
from seismote.simulator.scenarios import ScenarioError

EXAMPLE = Path(sweep.__file__).with_name("data") / "sweep_example.toml"


def _doc(**over) -> dict:
    doc = {
        "name": "t",
        "seed": 3,
        "base": {"layout": {"source": "random", "n": 300, "bbox": [17.5, 19.5, -99.8, -97.6]},
                 "policy": {"radius_km": 40.0, "window_s": 10.0}},
        "grid": {"policy.k": [3, 5], "nodes.min_pga_gal": [1.0, 4.0]},
        "montecarlo": {"runs": 2},
        "dask": {"workers": 0},
    }
    doc.update(over)
    return doc


def _cfg(**over) -> sweep.SweepConfig:
    return sweep.parse_sweep(_doc(**over), "t.toml")


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


# --- configuration ---------------------------------------------------------------------------------
def test_grid_expands_every_combination_in_file_order():
    cfg = _cfg()
    pts = cfg.points()
    assert pts == [{"policy.k": 3, "nodes.min_pga_gal": 1.0}, {"policy.k": 3, "nodes.min_pga_gal": 4.0},
                   {"policy.k": 5, "nodes.min_pga_gal": 1.0}, {"policy.k": 5, "nodes.min_pga_gal": 4.0}]
    tasks = cfg.tasks()
    assert len(tasks) == 8
    assert [(t.point, t.run) for t in tasks[:3]] == [(0, 0), (0, 1), (1, 0)]
    assert tasks[2].cfg.policy.k == 3 and tasks[2].cfg.nodes.min_pga_gal == 4.0
    # run r has the same seed at every point (common random numbers), runs differ
    assert tasks[0].seed == tasks[2].seed != tasks[1].seed


def test_unquoted_keys_and_density():
    cfg = _cfg(grid={"policy": {"k": [4]}, "layout.density_per_km2": [0.001, 0.004]})
    assert list(cfg.grid) == ["policy.k", "layout.density_per_km2"]
    n = [t.cfg.layout.n for t in cfg.tasks()[::2]]
    area = sweep.bbox_area_km2((17.5, 19.5, -99.8, -97.6))
    assert n == [round(0.001 * area), round(0.004 * area)]
    assert 40_000 < area < 60_000


def test_quake_sets():
    cfg = _cfg(montecarlo={"runs": 2, "quakes": ["puebla2017", "oaxaca2020"]}, grid={})
    assert [(t.quake.name, t.run) for t in cfg.tasks()] == [("puebla2017", 0), ("puebla2017", 1),
                                                             ("oaxaca2020", 0), ("oaxaca2020", 1)]
    gr = {"runs": 5, "quakes": "gutenberg_richter",
          "gutenberg_richter": {"b": 1.0, "mmin": 5.0, "mmax": 7.0, "depth_km": [10, 50]}}
    q1 = [t.quake for t in _cfg(montecarlo=gr, grid={"policy.k": [3, 4]}).tasks()]
    q2 = [t.quake for t in _cfg(montecarlo=gr, grid={"policy.k": [3, 4]}).tasks()]
    assert q1 == q2 and q1[:5] == q1[5:]  # deterministic, and the same quakes at every point
    assert len({q.mag for q in q1[:5]}) == 5
    assert all(5.0 <= q.mag <= 7.0 and 10 <= q.depth_km <= 50 and 17.5 <= q.lat <= 19.5 for q in q1)


@pytest.mark.parametrize("over, message", [
    ({"grid": {"policy.k": [3, 0]}}, "t.toml: grid.policy.k[1]: expected an integer >= 1"),
    ({"grid": {"policy.kk": [3]}}, "t.toml: grid.policy.kk: unknown field"),
    ({"grid": {"polcy.k": [3]}}, "t.toml: grid.polcy.k: unknown parameter"),
    ({"grid": {"policy.k": []}}, "t.toml: grid.policy.k: expected a non-empty list"),
    ({"grid": {"policy.k": 3}}, "t.toml: grid.policy.k: expected a non-empty list"),
    ({"grid": {"scenario.seed": [1, 2]}}, "t.toml: grid.scenario.seed: cannot be swept"),
    ({"grid": {"nodes.on": ["high"]}}, "t.toml: grid.nodes.on[0]: expected a number >= 1"),
    ({"montecarlo": {"runs": 0}}, "t.toml: montecarlo.runs: expected an integer >= 1"),
    ({"montecarlo": {"quakes": ["puebla2017", "kobe"]}}, "t.toml: montecarlo.quakes[1]: expected one of"),
    ({"montecarlo": {"quakes": "gutenberg_richter", "gutenberg_richter": {"mmin": 7, "mmax": 6}}},
     "t.toml: montecarlo.gutenberg_richter.mmax: expected a number above mmin"),
    ({"montecarlo": {"runs": 1, "rnus": 2}}, "t.toml: montecarlo.rnus: unknown field"),
    ({"dask": {"workers": -1}}, "t.toml: dask.workers: expected an integer >= 0"),
    ({"dask": {"scheduler": "localhost"}}, "t.toml: dask.scheduler: expected"),
    ({"output": {"formats": ["xlsx"]}}, "t.toml: output.formats: expected"),
    ({"seed": -1}, "t.toml: seed: expected an integer >= 0"),
    ({"sed": 1}, "t.toml: sed: unknown field"),
    ({"base": {"policy": {"k": 0}}}, "t.toml: base: policy.k: expected an integer >= 1"),
    ({"base": "nope.toml"}, "t.toml: base: no scenario file"),
    ({"base": {}, "grid": {"layout.density_per_km2": [0.01]}}, 'grid.layout.density_per_km2: needs layout.source = "random"'),
])
def test_bad_fields_are_named(over, message):
    with pytest.raises(ScenarioError) as e:
        _cfg(**over)
    assert message in str(e.value)


def test_load_sweep_file_errors(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[grid]\n"policy.k" = [3, "x"]\n')
    with pytest.raises(ScenarioError, match=r"s.toml: grid.policy.k\[1\]: expected an integer"):
        sweep.load_sweep(p)
    p.write_text("[grid\n")
    with pytest.raises(ScenarioError, match="s.toml: not valid TOML"):
        sweep.load_sweep(p)
    (tmp_path / "base.toml").write_text("[policy]\nk = 5\n")
    p.write_text('base = "base.toml"\n[montecarlo]\nruns = 1\n')
    assert sweep.load_sweep(p).base.policy.k == 5


def test_example_file_loads():
    cfg = sweep.load_sweep(EXAMPLE)
    assert len(cfg.points()) == 12 and cfg.runs == 4 and len(cfg.tasks()) == 48
    assert cfg.workers == 2 and cfg.scheduler == ""


# --- running ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def result():
    return sweep.run_sweep(_cfg())


def test_rows_and_summary(result):
    assert len(result.rows) == 8
    r = result.rows[0]
    for k in ("point", "run", "policy.k", "nodes.min_pga_gal", "seed", "first_alert_s", "oracle_first_alert_s",
              "need", "in_time", "missed", "false_site_alerts", "warning_p50_s", "location_error_km", "mag_error"):
        assert k in r
    s = result.summary
    assert len(s["points"]) == 4 and s["tasks"] == 8
    p = s["points"][0]
    assert p["params"] == {"policy.k": 3, "nodes.min_pga_gal": 1.0} and p["runs"] == 2
    w, ow = p["warning_s"], p["oracle_warning_s"]
    assert w["n"] > 0 and w["p10"] <= w["p50"] <= w["p90"]
    assert ow["p50"] >= w["p50"]  # nothing beats the physical limit
    assert 0 < p["in_time_fraction"]["pooled"] <= 1
    assert p["first_alert_s"]["p50"] >= p["oracle_first_alert_s"]["p50"]
    json.dumps(s, allow_nan=False)


def test_hist_percentile_matches_numpy():
    import numpy as np

    x = np.random.default_rng(1).uniform(0, 40, 5000)
    h = sweep._hist(x)
    for q in (10, 50, 90):
        assert abs(sweep.hist_percentile(h, q) - np.percentile(x, q)) < sweep.HIST_STEP_S


def test_same_seed_same_tables_in_any_order(result):
    cfg = _cfg()
    again = sweep.run_sweep(cfg)
    assert again.rows == result.rows and again.summary == result.summary
    # tasks one by one in reverse order (as workers might finish them) give the same rows
    rev = [sweep.run_task(t)["row"] for t in reversed(cfg.tasks())]
    assert sorted(rev, key=lambda r: (r["point"], r["run"])) == result.rows
    other = sweep.run_sweep(replace(cfg, seed=4))
    assert other.rows != result.rows


def test_same_seed_same_tables_on_two_workers(result):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        seen = []
        res = sweep.run_sweep(_cfg(), client=client, progress=lambda d, n: seen.append((d, n)))
    assert res.workers == 2
    assert res.rows == result.rows and res.summary == result.summary
    assert seen[-1] == (8, 8) and len(seen) == 8


def test_tables_written_and_readable(result, tmp_path):
    paths = sweep.write_tables(result, tmp_path)
    t = pq.read_table(paths["parquet"])
    assert t.num_rows == 8 and t.column("policy.k").to_pylist() == [3, 3, 3, 3, 5, 5, 5, 5]
    assert t.column_names == list(result.rows[0])
    assert t.column("in_time").to_pylist() == [r["in_time"] for r in result.rows]
    assert t.column("seed").to_pylist() == [r["seed"] for r in result.rows]
    c = pacsv.read_csv(paths["csv"])
    assert c.num_rows == 8 and c.column_names == t.column_names
    s = json.loads(paths["summary"].read_text())
    assert s["points"] == json.loads(json.dumps(result.summary["points"]))
    assert s["run"]["workers"] == 0


def test_rerun_reproduces_a_row(result):
    res = result.rerun(point=1, run=1)
    row = sweep.row_of(result.task(1, 1), res)["row"]
    assert row == result.rows[3]


# --- reports ------------------------------------------------------------------------------------------
def _check_pngs(out: Path, names) -> None:
    for name in names:
        p = out / name
        assert p.exists(), name
        assert p.stat().st_size > 15_000, name  # a real picture, not an empty canvas
        w, h = _png_size(p)
        assert w >= 600 and h >= 400, (name, w, h)


def test_scenario_report(tmp_path):
    res = engine.simulate(engine.ScenarioConfig(), seed=1)
    md = report.write_report(res, tmp_path)
    text = md.read_text()
    names = ["network.png", "warning_map.png", "footprint.png", "warning_hist.png"]
    _check_pngs(tmp_path, names)
    for n in names:
        assert "(%s)" % n in text
    assert "physical limit" in text


def test_sweep_report(result, tmp_path):
    md = report.write_report(result, tmp_path)
    text = md.read_text()
    names = ["sweep_policy_k.png", "sweep_nodes_min_pga_gal.png", "run0_network.png", "run0_warning_map.png",
             "run0_footprint.png", "run0_warning_hist.png"]
    _check_pngs(tmp_path, names)
    for n in names:
        assert "(%s)" % n in text
    assert text.count("\n| 3 | 1.0 |") == 1  # one summary row per point


# --- command line ---------------------------------------------------------------------------------------
def test_cli_sweep(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('seed = 1\n[base.layout]\nsource = "random"\nn = 200\nbbox = [17.5, 19.5, -99.8, -97.6]\n'
                 '[base.policy]\nradius_km = 40.0\n[grid]\n"policy.k" = [3, 4]\n[montecarlo]\nruns = 1\n')
    out = tmp_path / "out"
    r = CliRunner().invoke(sweep_cli.sweep, [str(f), "--workers", "0", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert doc["tasks"] == 2 and len(doc["points"]) == 2
    assert (out / "runs.parquet").exists() and (out / "report.md").exists()
    r = CliRunner().invoke(sweep_cli.sweep, [str(f), "--workers", "0", "--out", str(out), "--no-report"])
    assert r.exit_code == 0 and "warn p50" in r.stdout and "runs.parquet" in r.stdout


def test_cli_sweep_bad_file(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[grid]\n"policy.k" = [0]\n')
    r = CliRunner().invoke(sweep_cli.sweep, [str(f), "--workers", "0"])
    assert r.exit_code == 2
    assert "seismote: s.toml: grid.policy.k[0]: expected an integer >= 1" in r.stderr


def test_cli_simulate_report(tmp_path):
    r = CliRunner().invoke(simulate_cli.simulate, ["--report", str(tmp_path / "rep"), "--json"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "rep" / "report.md").exists() and (tmp_path / "rep" / "footprint.png").exists()
