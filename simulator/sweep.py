"""Sweeps: one scenario over a grid of parameters and a Monte-Carlo set of runs, in parallel with
Dask, deterministic by seed, results as tables (Parquet and CSV) and a JSON summary.

    from seismote.simulator import sweep
    cfg = sweep.load_sweep("sweep.toml")                 # or sweep.parse_sweep(doc)
    res = sweep.run_sweep(cfg)                           # a local Dask cluster, cfg.workers processes
    res = sweep.run_sweep(cfg, client=my_client)         # any distributed.Client (many machines)
    paths = sweep.write_tables(res, "out/")              # runs.parquet, runs.csv, summary.json

A sweep file (TOML):

    name = "k-and-trigger"
    seed = 1                     # everything random in the sweep follows from this
    base = "puebla2017_openeew.toml"   # a scenario file (relative to this file), or an inline
                                 # [base] table holding scenario tables ([base.policy] k = 4, ...);
                                 # neither: the default scenario
    mmi = 4.0                    # the shaking that needs a warning, for the summary figures

    [grid]                       # parameter -> values; the sweep runs every combination
    "policy.k" = [3, 4, 6]       # any scenario field, "section.field"
    "nodes.on" = [2.0, 3.0]      # the nodes' STA/LTA trigger ratio
    "layout.density_per_km2" = [0.001, 0.01]   # random nodes per km^2 over layout.bbox (needs
                                 # layout.source = "random"; sets layout.n)

    [montecarlo]
    runs = 4                     # runs per parameter point (and per quake of a list)
    quakes = "base"              # the base scenario's quake; or a list of built-ins
                                 # ["puebla2017", "oaxaca2020"] (each gets `runs` runs); or
                                 # "gutenberg_richter": one random quake per run, from
    [montecarlo.gutenberg_richter]   # b, mmin, mmax, bbox (default layout.bbox), depth_km [min, max]
    vary_layout = true           # random layouts are drawn anew for each run (else layout.seed)

    [dask]
    scheduler = ""               # "" a local cluster; "tcp://host:8786" an existing one
    workers = 2                  # local worker processes; 0 runs in this process, serially
    threads_per_worker = 1

    [output]
    dir = "sweep-out"            # relative to the current directory
    formats = ["parquet", "csv"]
    report = true                # also write report.md with plots (simulator.report)

Every field is checked and a bad one is refused naming it, as scenario files are:
"sweep.toml: grid.policy.k[1]: expected an integer >= 1".

Determinism. A task is (parameter point, quake, run). Its seed comes from (seed, quake index, run)
through numpy's SeedSequence, and so do the Gutenberg-Richter quake and the random layout of the
run: never from the worker, the order of completion or the number of workers. Run r of every
parameter point sees the same quake and the same random draws wherever the parameters do not change
what is drawn (common random numbers), so differences between points are the parameters' doing,
not noise. Rows are sorted by (point, quake, run) before they are written.

Figures per task (one row): alert time and blind zone beside the oracle's (the physical limit:
alert at the k-th P arrival, no latency); at MMI >= `mmi`: sites that needed a warning, got it in
time, late, missed, false site alerts (alerted, weaker shaking); false events; warning-time
statistics; location and magnitude error at the first alert. Warning times also go into fixed
histograms (0.25 s bins) so that pooled percentiles per point cost the same at 10^6 nodes as at 10.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import zlib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np

from . import engine, metrics, physics
from .engine import ScenarioConfig, _known, _number, _table, _value
from .scenarios import BUILTIN, Quake, ScenarioError

HIST_STEP_S = 0.25
HIST_MAX_S = 300.0
_N_BINS = int(HIST_MAX_S / HIST_STEP_S)
_TOP = ("name", "seed", "base", "mmi", "grid", "montecarlo", "dask", "output")
_PSEUDO = {"layout.density_per_km2": ("float", 0.0, None, True)}  # not a scenario field, sets layout.n
_NOT_SWEPT = ("scenario.seed", "scenario.name", "metrics.mmi_thresholds")
FORMATS = ("parquet", "csv")


# --- configuration ------------------------------------------------------------------------------
@dataclass(frozen=True)
class GutenbergRichter:
    """One random quake per run: truncated Gutenberg-Richter magnitude, uniform epicentre, depth."""

    b: float = 1.0
    mmin: float = 5.5
    mmax: float = 7.5
    bbox: tuple = engine.OPENEEW_BBOX
    depth_km: tuple = (5.0, 40.0)

    def draw(self, rng: np.random.Generator, name: str) -> Quake:
        lat0, lat1, lon0, lon1 = self.bbox
        u = rng.random(4)
        m = self.mmin - math.log10(1.0 - u[0] * (1.0 - 10.0 ** (-self.b * (self.mmax - self.mmin)))) / self.b
        s0, s1 = math.sin(math.radians(lat0)), math.sin(math.radians(lat1))
        lat = math.degrees(math.asin(s0 + u[1] * (s1 - s0)))
        lon = lon0 + u[2] * (lon1 - lon0)
        dep = self.depth_km[0] + u[3] * (self.depth_km[1] - self.depth_km[0])
        return Quake(name, None, round(lat, 4), round(lon, 4), round(dep, 2), round(m, 2))


@dataclass
class SweepConfig:
    """A validated sweep file (see the module docstring); `parse_sweep` / `load_sweep` build it."""

    name: str = "sweep"
    seed: int = 0
    base: ScenarioConfig = field(default_factory=ScenarioConfig)
    mmi: float = 4.0
    grid: dict = field(default_factory=dict)  # "section.field" -> tuple of values, in file order
    runs: int = 1
    quakes: object = "base"  # "base", "gutenberg_richter" or a tuple of built-in names
    gutenberg_richter: GutenbergRichter | None = None
    vary_layout: bool = True
    scheduler: str = ""
    workers: int = 2
    threads_per_worker: int = 1
    out_dir: str = "sweep-out"
    formats: tuple = FORMATS
    report: bool = True
    src: str = "sweep"

    def points(self) -> list[dict]:
        """Every combination of the grid's values, in file order (the last key varies fastest)."""
        keys = list(self.grid)
        return [dict(zip(keys, vals)) for vals in itertools.product(*(self.grid[k] for k in keys))]

    def quake_set(self) -> list[str]:
        """Names of the Monte-Carlo quake set (one entry per quake index)."""
        if isinstance(self.quakes, tuple):
            return list(self.quakes)
        return [str(self.quakes)]

    def tasks(self) -> list["Task"]:
        """Every (point, quake, run), in the order of the result rows."""
        out = []
        for p, params in enumerate(self.points()):
            cfg = apply_params(self.base, params, self.src)
            for qi, qname in enumerate(self.quake_set()):
                for r in range(self.runs):
                    seed = task_seed(self.seed, qi, r)
                    quake = self._quake(cfg, qi, qname, r)
                    c = cfg
                    if self.vary_layout and c.layout.source == "random":
                        c = c.with_(layout={"seed": task_seed(self.seed, qi, r, "layout")})
                    out.append(Task(p, qi, r, seed, params, c, quake, self.mmi))
        return out

    def _quake(self, cfg: ScenarioConfig, qi: int, qname: str, run: int) -> Quake:
        if self.quakes == "base":
            return engine.build_quake(cfg)
        if self.quakes == "gutenberg_richter":
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, qi, run, 0x5157]))
            return self.gutenberg_richter.draw(rng, "gr-%04d" % run)
        return BUILTIN[qname]


def task_seed(seed: int, quake_index: int, run: int, what: str = "scenario") -> int:
    """The seed of one run: from (seed, quake index, run, what), never from a worker or an order."""
    key = [int(seed), int(quake_index), int(run), zlib.crc32(what.encode())]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def _field_spec(key: str, where: str) -> tuple[str, str, dict]:
    if key in _PSEUDO:
        kind, lo, hi, lo_open = _PSEUDO[key]
        sec, name = key.split(".")
        return sec, name, {"kind": kind, "lo": lo, "hi": hi, "choices": None, "lo_open": lo_open}
    sec, _, name = key.partition(".")
    sections = {f.name: f for f in fields(ScenarioConfig)}
    if sec not in sections or not name:
        raise ScenarioError("%s: unknown parameter (expected \"section.field\", sections: %s)" % (where, ", ".join(sections)))
    specs = {f.name: f for f in fields(type(getattr(ScenarioConfig(), sec)))}
    if name not in specs:
        known = list(specs) + [k.split(".")[1] for k in _PSEUDO if k.startswith(sec + ".")]
        raise ScenarioError("%s: unknown field (known in %s: %s)" % (where, sec, ", ".join(known)))
    if key in _NOT_SWEPT:
        raise ScenarioError("%s: cannot be swept (seeds come from the sweep's seed; use the summary's mmi)" % where)
    return sec, name, dict(specs[name].metadata)


def _flatten(doc: dict, prefix: str = "") -> dict:
    """{"policy": {"k": [..]}} (unquoted TOML keys) and {"policy.k": [..]} both give "policy.k"."""
    out = {}
    for k, v in doc.items():
        key = prefix + k
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def apply_params(base: ScenarioConfig, params: dict, src: str = "sweep") -> ScenarioConfig:
    """The base scenario with one parameter point's values set."""
    changes: dict = {}
    for key, v in params.items():
        if key == "layout.density_per_km2":
            continue
        sec, name = key.split(".", 1)
        changes.setdefault(sec, {})[name] = v
    cfg = base.with_(**changes) if changes else base
    if "layout.density_per_km2" in params:
        if cfg.layout.source != "random":
            raise ScenarioError('%s: grid.layout.density_per_km2: needs layout.source = "random" (it is "%s")'
                                % (src, cfg.layout.source))
        n = max(1, int(round(params["layout.density_per_km2"] * bbox_area_km2(cfg.layout.bbox))))
        cfg = cfg.with_(layout={"n": n})
    if cfg.quake.builtin == "" and any(math.isnan(getattr(cfg.quake, f)) for f in ("lat", "lon", "depth_km", "mag")):
        raise ScenarioError("%s: grid: quake.builtin = \"\" needs quake lat, lon, depth_km and mag" % src)
    return cfg


def bbox_area_km2(bbox) -> float:
    lat0, lat1, lon0, lon1 = bbox
    r = physics.EARTH_R_KM
    return r * r * (math.sin(math.radians(lat1)) - math.sin(math.radians(lat0))) * math.radians(lon1 - lon0)


def _grid(doc, src: str, base_dir: Path | None) -> dict:
    t = _table(doc, "%s: grid" % src)
    out = {}
    for key, vals in _flatten(t).items():
        where = "%s: grid.%s" % (src, key)
        _, _, meta = _field_spec(key, where)
        if not isinstance(vals, list) or not vals:
            raise ScenarioError("%s: expected a non-empty list of values" % where)
        vs = tuple(_value(v, meta, "%s[%d]" % (where, i), base_dir) for i, v in enumerate(vals))
        if len(set(map(repr, vs))) != len(vs):
            raise ScenarioError("%s: a value appears twice" % where)
        out[key] = vs
    return out


def _gutenberg_richter(doc, where: str, bbox) -> GutenbergRichter:
    t = _table(doc, where)
    _known(t, ("b", "mmin", "mmax", "bbox", "depth_km"), where)
    b = _number(t.get("b", 1.0), where + ".b", "float", 0.0, None, True)
    mmin = _number(t.get("mmin", 5.5), where + ".mmin", "float", -2.0, 10.0, False)
    mmax = _number(t.get("mmax", 7.5), where + ".mmax", "float", -2.0, 10.0, False)
    if mmax <= mmin:
        raise ScenarioError("%s.mmax: expected a number above mmin (%g)" % (where, mmin))
    box = bbox
    if "bbox" in t:
        box = _value(t["bbox"], {"kind": "bbox", "lo": None, "hi": None, "choices": None, "lo_open": False},
                     where + ".bbox", None)
    d = t.get("depth_km", [5.0, 40.0])
    if isinstance(d, (int, float)) and not isinstance(d, bool):
        d = [d, d]
    if not isinstance(d, list) or len(d) != 2:
        raise ScenarioError("%s.depth_km: expected a depth or [min, max]" % where)
    d0 = _number(d[0], where + ".depth_km[0]", "float", 0.0, 800.0, False)
    d1 = _number(d[1], where + ".depth_km[1]", "float", 0.0, 800.0, False)
    if d1 < d0:
        raise ScenarioError("%s.depth_km: expected [min, max] with min <= max" % where)
    return GutenbergRichter(b, mmin, mmax, tuple(box), (d0, d1))


def parse_sweep(doc: dict, src: str = "sweep", base_dir: Path | None = None) -> SweepConfig:
    """A SweepConfig from a parsed TOML document; ScenarioError names the bad field."""
    if not isinstance(doc, dict):
        raise ScenarioError("%s: expected a table" % src)
    _known(doc, _TOP, src, ": ")
    out = SweepConfig(src=src)
    if "name" in doc:
        if not isinstance(doc["name"], str):
            raise ScenarioError("%s: name: expected a string" % src)
        out.name = doc["name"]
    out.seed = _number(doc.get("seed", 0), "%s: seed" % src, "int", 0, None, False)
    out.mmi = _number(doc.get("mmi", 4.0), "%s: mmi" % src, "float", 1.0, 10.0, False)
    base = doc.get("base")
    if isinstance(base, str):
        p = Path(base)
        if not p.is_absolute() and base_dir is not None:
            p = base_dir / p
        if not p.is_file():
            raise ScenarioError("%s: base: no scenario file %s" % (src, p))
        out.base = engine.load_scenario(p)
    elif base is not None:
        out.base = engine.parse_scenario(_table(base, "%s: base" % src), "%s: base" % src, base_dir)
    out.grid = _grid(doc.get("grid", {}), src, base_dir)
    mc = _table(doc.get("montecarlo", {}), "%s: montecarlo" % src)
    _known(mc, ("runs", "quakes", "gutenberg_richter", "vary_layout"), "%s: montecarlo" % src)
    out.runs = _number(mc.get("runs", 1), "%s: montecarlo.runs" % src, "int", 1, None, False)
    q = mc.get("quakes", "base")
    wq = "%s: montecarlo.quakes" % src
    if isinstance(q, str):
        if q not in ("base", "gutenberg_richter"):
            raise ScenarioError('%s: expected "base", "gutenberg_richter" or a list of built-in quakes (%s)'
                                % (wq, ", ".join(BUILTIN)))
        out.quakes = q
    elif isinstance(q, list) and q:
        for i, name in enumerate(q):
            if not isinstance(name, str) or name not in BUILTIN:
                raise ScenarioError("%s[%d]: expected one of %s" % (wq, i, ", ".join('"%s"' % b for b in BUILTIN)))
        if len(set(q)) != len(q):
            raise ScenarioError("%s: a quake appears twice" % wq)
        out.quakes = tuple(q)
    else:
        raise ScenarioError('%s: expected "base", "gutenberg_richter" or a non-empty list of built-in quakes' % wq)
    wgr = "%s: montecarlo.gutenberg_richter" % src
    if "gutenberg_richter" in mc and out.quakes != "gutenberg_richter":
        raise ScenarioError('%s: only with quakes = "gutenberg_richter"' % wgr)
    if out.quakes == "gutenberg_richter":
        out.gutenberg_richter = _gutenberg_richter(mc.get("gutenberg_richter", {}), wgr, out.base.layout.bbox)
    if "vary_layout" in mc:
        out.vary_layout = _value(mc["vary_layout"], {"kind": "bool", "lo": None, "hi": None, "choices": None,
                                                     "lo_open": False}, "%s: montecarlo.vary_layout" % src, None)
    if out.quakes != "base":
        for key in out.grid:
            if key.startswith("quake."):
                raise ScenarioError("%s: grid.%s: the quake comes from montecarlo.quakes; sweep it there" % (src, key))
    dk = _table(doc.get("dask", {}), "%s: dask" % src)
    _known(dk, ("scheduler", "workers", "threads_per_worker"), "%s: dask" % src)
    sch = dk.get("scheduler", "")
    if not isinstance(sch, str) or (sch and "://" not in sch):
        raise ScenarioError('%s: dask.scheduler: expected "" (a local cluster) or an address like "tcp://host:8786"' % src)
    out.scheduler = sch
    out.workers = _number(dk.get("workers", 2), "%s: dask.workers" % src, "int", 0, None, False)
    out.threads_per_worker = _number(dk.get("threads_per_worker", 1), "%s: dask.threads_per_worker" % src, "int", 1, None, False)
    ot = _table(doc.get("output", {}), "%s: output" % src)
    _known(ot, ("dir", "formats", "report"), "%s: output" % src)
    if "dir" in ot:
        if not isinstance(ot["dir"], str) or not ot["dir"]:
            raise ScenarioError("%s: output.dir: expected a folder name" % src)
        out.out_dir = ot["dir"]
    if "formats" in ot:
        f = ot["formats"]
        if not isinstance(f, list) or not f or any(x not in FORMATS for x in f):
            raise ScenarioError("%s: output.formats: expected a non-empty list of %s" % (src, ", ".join('"%s"' % x for x in FORMATS)))
        out.formats = tuple(dict.fromkeys(f))
    if "report" in ot:
        if not isinstance(ot["report"], bool):
            raise ScenarioError("%s: output.report: expected true or false" % src)
        out.report = ot["report"]
    # Every point must make a scenario (e.g. density needs a random layout): refuse it now, not in a worker.
    for params in out.points():
        cfg = apply_params(out.base, params, src)
        if out.quakes == "base":
            engine.build_quake(cfg)
    return out


def load_sweep(path) -> SweepConfig:
    """Read and validate a sweep TOML file; relative paths in it are relative to the file."""
    return parse_sweep(*engine.read_toml(path))


# --- one task --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    point: int
    quake_index: int
    run: int
    seed: int
    params: dict
    cfg: ScenarioConfig
    quake: Quake
    mmi: float


def _stats(x: np.ndarray) -> tuple:
    if x.size == 0:
        return (math.nan,) * 4
    p = np.percentile(x, (10, 50, 90))
    return float(x.mean()), float(p[0]), float(p[1]), float(p[2])


def _hist(x: np.ndarray) -> np.ndarray:
    b = np.clip((x / HIST_STEP_S).astype(np.int64), 0, _N_BINS - 1)
    return np.bincount(b, minlength=_N_BINS).astype(np.int64)


def _cell(v):
    return v if isinstance(v, (bool, int, float, str)) else json.dumps(list(v) if isinstance(v, tuple) else v)


def run_scenario_task(task: Task) -> engine.Result:
    """The scenario run of a task (what `run_task` scores); deterministic, so a report can redo it."""
    layout = engine.build_layout(task.cfg)
    return engine.run_scenario(layout, task.quake, task.cfg, seed=task.seed)


def row_of(task: Task, res: engine.Result) -> dict:
    """The task's flat row and its warning-time histograms (simulated, oracle)."""
    m = metrics.score(res, thresholds=(task.mmi,))
    q = res.quake
    need = res.target_mmi >= task.mmi
    alerted = np.isfinite(res.alert_t)
    warn = res.target_ts - res.alert_t
    ok = need & alerted & (warn > 0)
    w = warn[ok]
    ow_all = res.target_ts - res.kth_p_t
    ow = ow_all[need & (ow_all > 0)] if math.isfinite(res.kth_p_t) else np.zeros(0)
    thr = m["thresholds"]["%g" % task.mmi]
    est = m["estimate"].get("first_alert", {})
    nan = math.nan
    f = (lambda x: nan if x is None else float(x))
    wmean, w10, w50, w90 = _stats(w)
    n_need = int(need.sum())
    row = {"point": task.point, "quake_index": task.quake_index, "run": task.run}
    row.update({k: _cell(v) for k, v in task.params.items()})
    row.update({
        "seed": task.seed, "quake": q.name, "mag": q.mag, "lat": q.lat, "lon": q.lon, "depth_km": q.depth_km,
        "nodes": res.n_nodes, "nodes_online": res.counts["nodes_online"], "nodes_detected": res.counts["nodes_detected"],
        "targets": int(res.target_ts.size), "messages": res.counts["messages"], "false_triggers": res.counts["false_triggers"],
        "first_alert_s": f(m["first_alert_after_origin_s"]), "blind_zone_km": f(m["blind_zone_km"]),
        "oracle_first_alert_s": f(m["oracle"]["alert_after_origin_s"]), "oracle_blind_zone_km": f(m["oracle"]["blind_zone_km"]),
        "need": n_need, "in_time": thr["true"]["n"], "late": thr["late"]["n"], "missed": thr["missed"]["n"],
        "false_site_alerts": thr["false"]["n"], "in_time_fraction": thr["true"]["n"] / n_need if n_need else nan,
        "oracle_in_time": int(ow.size), "false_events": m["false_events"],
        "warning_n": int(w.size), "warning_sum_s": float(w.sum()), "warning_mean_s": wmean, "warning_p10_s": w10,
        "warning_p50_s": w50, "warning_p90_s": w90, "oracle_warning_p50_s": _stats(ow)[2],
        "oracle_warning_sum_s": float(ow.sum()),
        "location_error_km": f(est.get("location_error_km")), "mag_error": f(est.get("mag_error")),
    })
    return {"row": row, "hist": _hist(w), "oracle_hist": _hist(ow)}


def run_task(task: Task) -> dict:
    """One task: run the scenario and score it. A plain function of its input (what Dask ships)."""
    return row_of(task, run_scenario_task(task))


# --- the sweep -------------------------------------------------------------------------------------
@dataclass
class SweepResult:
    cfg: SweepConfig
    rows: list  # one dict per task, sorted by (point, quake_index, run)
    hist: np.ndarray  # (points, bins) pooled warning-time histogram, simulated
    oracle_hist: np.ndarray
    summary: dict
    wall_s: float = 0.0
    workers: int = 0

    def columns(self) -> dict:
        keys = list(self.rows[0]) if self.rows else []
        return {k: [r[k] for r in self.rows] for k in keys}

    def table(self):
        """The rows as a pyarrow Table."""
        import pyarrow as pa

        return pa.Table.from_pydict(self.columns())

    def task(self, point: int = 0, run: int = 0, quake_index: int = 0) -> Task:
        for t in self.cfg.tasks():
            if (t.point, t.run, t.quake_index) == (point, run, quake_index):
                return t
        raise IndexError("no task (point %d, quake %d, run %d)" % (point, quake_index, run))

    def rerun(self, point: int = 0, run: int = 0, quake_index: int = 0) -> engine.Result:
        """The scenario run of one task again, in this process (the same seed gives the same run)."""
        return run_scenario_task(self.task(point, run, quake_index))


def _client_for(cfg: SweepConfig):
    """(client, closers) for the configured scheduler; None for in-process serial."""
    if cfg.scheduler:
        from distributed import Client

        c = Client(cfg.scheduler)
        return c, [c]
    if cfg.workers == 0:
        return None, []
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=cfg.workers, threads_per_worker=cfg.threads_per_worker, processes=True,
                           dashboard_address=None, silence_logs=40)
    c = Client(cluster)
    return c, [c, cluster]


def run_sweep(cfg: SweepConfig, client=None, progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Run every task of the sweep and summarise. `client`: a distributed.Client to use (left open);
    without one, the sweep's [dask] settings: a scheduler address, a LocalCluster of `workers`
    processes (closed afterwards), or with workers = 0 in this process, one task after another.
    `progress(done, total)` is called as tasks finish. The result does not depend on which."""
    tasks = cfg.tasks()
    total = len(tasks)
    t0 = time.perf_counter()
    closers: list = []
    outs: list = []
    n_workers = 0
    try:
        if client is None:
            client, closers = _client_for(cfg)
        if client is None:
            for i, t in enumerate(tasks):
                outs.append(run_task(t))
                if progress:
                    progress(i + 1, total)
        else:
            from distributed import as_completed

            n_workers = len(client.scheduler_info().get("workers", {}))
            futs = client.map(run_task, tasks, pure=False)
            for done, fut in enumerate(as_completed(futs), 1):
                outs.append(fut.result())
                fut.release()
                if progress:
                    progress(done, total)
    finally:
        for c in closers:
            c.close()
    wall = time.perf_counter() - t0
    outs.sort(key=lambda o: (o["row"]["point"], o["row"]["quake_index"], o["row"]["run"]))
    n_points = len(cfg.points())
    hist = np.zeros((n_points, _N_BINS), np.int64)
    ohist = np.zeros((n_points, _N_BINS), np.int64)
    for o in outs:
        hist[o["row"]["point"]] += o["hist"]
        ohist[o["row"]["point"]] += o["oracle_hist"]
    rows = [o["row"] for o in outs]
    res = SweepResult(cfg, rows, hist, ohist, {}, wall, n_workers)
    res.summary = summarise(res)
    return res


# --- summary -----------------------------------------------------------------------------------------
def hist_percentile(h: np.ndarray, q: float) -> float:
    """Percentile q (0-100) of values binned in `h` (0.25 s bins from 0), linear inside a bin."""
    n = int(h.sum())
    if n == 0:
        return math.nan
    c = np.cumsum(h)
    target = q / 100.0 * n
    i = int(np.searchsorted(c, target, side="left"))
    i = min(i, h.size - 1)
    before = c[i - 1] if i > 0 else 0
    frac = (target - before) / h[i] if h[i] else 0.0
    return (i + float(frac)) * HIST_STEP_S


def _r(x, nd: int = 3):
    return None if x is None or not math.isfinite(float(x)) else round(float(x), nd)


def _spread(xs: list) -> dict:
    a = np.array([x for x in xs if x is not None and math.isfinite(x)], dtype=np.float64)
    out = {"n": int(a.size)}
    if a.size:
        p = np.percentile(a, (10, 50, 90))
        out.update({"mean": _r(a.mean()), "p10": _r(p[0]), "p50": _r(p[1]), "p90": _r(p[2])})
    return out


def summarise(res: SweepResult) -> dict:
    """Per parameter point: pooled warning times (simulated and oracle), in-time fraction, missed,
    false alerts, first alert time, blind zone, location and magnitude error, over its runs."""
    cfg = res.cfg
    pts = []
    for p, params in enumerate(cfg.points()):
        rows = [r for r in res.rows if r["point"] == p]
        col = (lambda k: [r[k] for r in rows])
        need, ok = sum(col("need")), sum(col("in_time"))
        wn, on = sum(col("warning_n")), sum(col("oracle_in_time"))
        first = col("first_alert_s")
        pts.append({
            "point": p,
            "params": {k: _cell(v) for k, v in params.items()},
            "runs": len(rows),
            "warning_s": {"n": wn, "mean": _r(sum(col("warning_sum_s")) / wn if wn else math.nan),
                          **{"p%d" % q: _r(hist_percentile(res.hist[p], q), 2) for q in (10, 50, 90)}},
            "oracle_warning_s": {"n": on, "mean": _r(sum(col("oracle_warning_sum_s")) / on if on else math.nan),
                                 **{"p%d" % q: _r(hist_percentile(res.oracle_hist[p], q), 2) for q in (10, 50, 90)}},
            "in_time_fraction": {"pooled": _r(ok / need if need else math.nan), **_spread(col("in_time_fraction"))},
            "need": need,
            "missed": _spread(col("missed")),
            "late": _spread(col("late")),
            "false_site_alerts": _spread(col("false_site_alerts")),
            "false_events": _spread(col("false_events")),
            "first_alert_s": {**_spread(first), "no_alert_runs": sum(1 for x in first if not math.isfinite(x))},
            "oracle_first_alert_s": _spread(col("oracle_first_alert_s")),
            "blind_zone_km": _spread(col("blind_zone_km")),
            "oracle_blind_zone_km": _spread(col("oracle_blind_zone_km")),
            "location_error_km": _spread(col("location_error_km")),
            "mag_error": _spread(col("mag_error")),
        })
    mc = {"runs": cfg.runs, "quakes": list(cfg.quakes) if isinstance(cfg.quakes, tuple) else cfg.quakes}
    if cfg.gutenberg_richter is not None:
        g = cfg.gutenberg_richter
        mc["gutenberg_richter"] = {"b": g.b, "mmin": g.mmin, "mmax": g.mmax, "bbox": list(g.bbox), "depth_km": list(g.depth_km)}
    return {
        "sweep": cfg.name,
        "seed": cfg.seed,
        "mmi": cfg.mmi,
        "scenario": cfg.base.scenario.name,
        "grid": {k: [_cell(v) for v in vs] for k, vs in cfg.grid.items()},
        "montecarlo": mc,
        "tasks": len(res.rows),
        "points": pts,
    }


def write_tables(res: SweepResult, out_dir, formats=None) -> dict:
    """runs.parquet / runs.csv (one row per task) and summary.json in out_dir; returns their paths."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    formats = res.cfg.formats if formats is None else formats
    table = res.table()
    paths = {}
    if "parquet" in formats:
        paths["parquet"] = out / "runs.parquet"
        pq.write_table(table, paths["parquet"])
    if "csv" in formats:
        paths["csv"] = out / "runs.csv"
        pacsv.write_csv(table, paths["csv"])
    doc = dict(res.summary)
    doc["run"] = {"wall_s": round(res.wall_s, 3), "workers": res.workers, "scheduler": res.cfg.scheduler or "local"}
    paths["summary"] = out / "summary.json"
    paths["summary"].write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    np.savez_compressed(out / "warning_hist.npz", step_s=HIST_STEP_S, sim=res.hist, oracle=res.oracle_hist)
    paths["hist"] = out / "warning_hist.npz"
    return paths
