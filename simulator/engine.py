"""Run one earthquake scenario over a network: vectorised physics and node behaviour, SimPy for the
sparse events (detection messages through the network policy), targets scored vectorised.

    from seismote.simulator import engine
    cfg = engine.load_scenario("scenario.toml")          # or engine.ScenarioConfig()
    res = engine.run_scenario(engine.build_layout(cfg), engine.build_quake(cfg), cfg, seed=1)

What is vectorised over nodes (one numpy pass each, no Python loop over nodes): distances, P and S
times, ground motion with its variability (one inter-event term shared by every site), intensity,
node state (offline), detection draws, onset and detection times, clock offsets, false triggers,
telemetry latency, loss and outages. What SimPy runs: one process feeding the detection messages to
the aggregator from an array sorted by arrival time, and one process for the aggregator, which
takes all messages that arrived while it was busy or waiting for its next update, and runs them
through the network policy (policy.Aggregator, the code the live aggregator runs). The number of
SimPy events grows with the number of aggregator cycles, not with the number of nodes.

Zero-noise mode (`[scenario] zero_noise = true`): ground motion at its median, every node up and
detecting at its P arrival with no delay and no onset error, no latency anywhere, no loss, no
clock errors, no false triggers. The alert then goes out at the k-th P arrival, exactly (when the
first k nodes to feel the P wave satisfy the association rule), and the warning time of a site
alerted then is S(site) - that time. Explicit faults (`[faults]`, `telemetry.outages`) still apply
in zero-noise mode.

Time: seconds on the scenario clock, the quake's origin at quake.t0 (0 unless set). The run covers
[t0 - pre_s, t0 + duration_s]; messages arriving later are not processed.

Scenario files (TOML, `load_scenario`): tables [scenario], [quake], [layout], [targets], [physics],
[nodes], [telemetry], [faults], [policy], [alert], [metrics], whose fields are those of the
dataclasses below; a field left out keeps the default scenario's value (`ScenarioConfig()`: the
OpenEEW Mexico network and the 2017 Puebla earthquake, written out in data/puebla2017_openeew.toml).
Every field is checked, and a bad one is refused naming it: "s.toml: policy.k: expected an
integer >= 1".
"""

from __future__ import annotations

import math
import time
import tomllib
import zlib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import simpy

from . import layouts, nodes, physics, policy
from .layouts import SENSORS, SITE_CLASSES, Layout, LayoutError
from .policy import PolicyConfig, config_field
from .scenarios import BUILTIN, Quake, ScenarioError

G_GAL = 980.665
DATA = Path(__file__).with_name("data")
OPENEEW_DEVICES = DATA / "openeew_device_locations.json"
OPENEEW_BBOX = (15.0, 20.0, -102.5, -93.5)  # around the OpenEEW Mexico devices (15.7-19.3 N, 93.8-102.2 W)


# --- configuration ------------------------------------------------------------------------------
@dataclass
class RunConfig:
    """[scenario]"""

    name: str = config_field("puebla2017-openeew", "str")
    seed: int = config_field(0, "int", 0)
    zero_noise: bool = config_field(False, "bool")
    duration_s: float = config_field(300.0, "float", 0.0, lo_open=True)
    pre_s: float = config_field(60.0, "float", 0.0)


@dataclass
class QuakeConfig:
    """[quake]: a built-in event (`builtin`), optionally with fields overridden, or every field."""

    builtin: str = config_field("puebla2017", "str", choices=tuple(BUILTIN) + ("",))
    name: str = config_field("", "str")
    origin_utc: str = config_field("", "str")
    lat: float = config_field(math.nan, "float", -90.0, 90.0)
    lon: float = config_field(math.nan, "float", -180.0, 180.0)
    depth_km: float = config_field(math.nan, "float", 0.0, 800.0)
    mag: float = config_field(math.nan, "float", -2.0, 10.0)


@dataclass
class LayoutConfig:
    """[layout]: where the nodes are (source) and what they are like (per-node defaults)."""

    source: str = config_field("openeew", "str", choices=("openeew", "random", "grid", "file"))
    path: str = config_field("", "path")
    n: int = config_field(1000, "int", 1)
    bbox: tuple = config_field(OPENEEW_BBOX, "bbox")
    spacing_km: float = config_field(10.0, "float", 0.0, lo_open=True)
    seed: int = config_field(0, "int", 0)
    sensor: object = config_field("adxl355", "shares", choices=SENSORS)
    site_class: object = config_field("residential", "shares", choices=SITE_CLASSES)
    vs30: float = config_field(760.0, "float", 0.0, lo_open=True)
    outage_p: float = config_field(0.05, "float", 0.0, 1.0)  # a node is down at the time of the event
    clock_err_s: float = config_field(0.05, "float", 0.0)  # std of a node's clock offset (NTP on Wi-Fi)


@dataclass(frozen=True)
class Point:
    name: str
    lat: float
    lon: float
    vs30: float = 760.0
    population: float = 1.0


# Mexico City: the Zocalo; Vs30 of the lake-zone / transition soils (an assumption, BA08's range
# starts at 180 m/s); population: 2020 census of the Ciudad de Mexico (INEGI), 9,209,944.
MEXICO_CITY = Point("Mexico City", 19.4326, -99.1332, 250.0, 9209944.0)


@dataclass
class TargetsConfig:
    """[targets]: where warnings are scored: the node sites, named points, and a grid."""

    include_nodes: bool = config_field(True, "bool")
    points: tuple = config_field((MEXICO_CITY,), "points")
    grid_spacing_km: float = config_field(0.0, "float", 0.0)  # 0: no grid
    grid_bbox: tuple = config_field(OPENEEW_BBOX, "bbox")
    grid_vs30: float = config_field(760.0, "float", 0.0, lo_open=True)


@dataclass
class PhysicsConfig:
    """[physics]"""

    velocity: str = config_field("default_mexico", "str", choices=("default_mexico", "constant"))
    vp: float = config_field(6.5, "float", 0.0, lo_open=True)  # "constant" only
    vs: float = config_field(3.7, "float", 0.0, lo_open=True)
    mech: str = config_field("U", "str", choices=("U", "SS", "NS", "RS"))
    sigma_scale: float = config_field(1.0, "float", 0.0)
    finite_fault: bool = config_field(False, "bool")

    def velocity_model(self) -> physics.VelocityModel:
        if self.velocity == "constant":
            return physics.VelocityModel.constant(self.vp, self.vs)
        return physics.VelocityModel.default_mexico()


@dataclass
class NodesConfig:
    """[nodes]: the detection model and the nodes' noise and false triggers."""

    detector: str = config_field("stalta", "path")  # "stalta" or a curve JSON {pga_gal, p_detect, delay_s}
    on: float = config_field(nodes.TRIGGER_ON, "float", 1.0)
    sta_s: float = config_field(nodes.TRIGGER_STA_S, "float", 0.0)
    confirm_s: float = config_field(nodes.CONFIRM_S, "float", 0.0)
    min_pga_gal: float = config_field(nodes.MIN_PGA_GAL, "float", 0.0)
    beta: float = config_field(0.4, "float", 0.0, lo_open=True)
    p_ratio: float = config_field(physics.P_PGA_RATIO, "float", 0.0, 1.0, lo_open=True)
    p_ratio_sigma: float = config_field(physics.P_PGA_RATIO_SIGMA, "float", 0.0)
    delay_sigma: float = config_field(0.3, "float", 0.0)
    pick_sigma_s: float = config_field(0.05, "float", 0.0)
    bandwidth_hz: float = config_field(15.0, "float", 0.0, lo_open=True)
    false_per_day: dict = config_field(None, "rates", 0.0, choices=SITE_CLASSES)
    site_noise_gal: dict = config_field(None, "rates", 0.0, choices=SITE_CLASSES)

    def __post_init__(self) -> None:
        if self.false_per_day is None:
            self.false_per_day = dict(nodes.FALSE_PER_DAY)
        if self.site_noise_gal is None:
            self.site_noise_gal = dict(nodes.SITE_NOISE_GAL)


@dataclass
class TelemetryConfig:
    """[telemetry]: links (Wi-Fi + MQTT, LTE) and outage windows (times relative to the origin)."""

    lte_fraction: float = config_field(0.0, "float", 0.0, 1.0)
    wifi: nodes.Link = config_field(nodes.DEFAULT_LINKS[0], "link")
    lte: nodes.Link = config_field(nodes.DEFAULT_LINKS[1], "link")
    outages: tuple = config_field((), "outages")


@dataclass
class FaultsConfig:
    """[faults]: applied in zero-noise mode too."""

    offline_fraction: float = config_field(0.0, "float", 0.0, 1.0)
    clock_error_s: float = config_field(0.0, "float", 0.0)


@dataclass
class AlertConfig:
    """[alert]: the aggregator's processing time per cycle and the delivery of alerts to targets."""

    processing_s: float = config_field(0.1, "float", 0.0)
    delivery_median_s: float = config_field(1.0, "float", 0.0)
    delivery_sigma_ln: float = config_field(0.5, "float", 0.0)


@dataclass
class MetricsConfig:
    """[metrics]"""

    mmi_thresholds: tuple = config_field((3.0, 4.0, 5.0, 6.0), "floats", 1.0, 10.0)


# The default network is sparse (30 nodes over ~800 km of coast and inland, 30-100 km apart), so
# the default scenario associates 4 detections within 150 km and 20 s instead of PolicyConfig's
# dense-network 30 km and 10 s. A scenario file's [policy] table starts from these values.
OPENEEW_POLICY: dict = {"k": 4, "radius_km": 150.0, "window_s": 20.0}


@dataclass
class ScenarioConfig:
    scenario: RunConfig = field(default_factory=RunConfig)
    quake: QuakeConfig = field(default_factory=QuakeConfig)
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    targets: TargetsConfig = field(default_factory=TargetsConfig)
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    nodes: NodesConfig = field(default_factory=NodesConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    policy: PolicyConfig = field(default_factory=lambda: PolicyConfig(**OPENEEW_POLICY))
    alert: AlertConfig = field(default_factory=AlertConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    def with_(self, **sections) -> "ScenarioConfig":
        """A copy with some fields changed: cfg.with_(policy={"k": 6}, scenario={"zero_noise": True})."""
        out = replace(self)
        for sec, changes in sections.items():
            setattr(out, sec, replace(getattr(self, sec), **changes))
        return out




# --- loading and validating a scenario file -------------------------------------------------------
_INT = "an integer"
_NUM = "a number"


def _range_text(what: str, lo, hi, lo_open: bool) -> str:
    if lo is not None and hi is not None:
        return "%s in %s%g, %g]" % (what, "(" if lo_open else "[", lo, hi)
    if lo is not None:
        return "%s %s %g" % (what, ">" if lo_open else ">=", lo)
    if hi is not None:
        return "%s <= %g" % (what, hi)
    return what


def _number(v, where: str, kind: str, lo, hi, lo_open: bool) -> float | int:
    is_int = isinstance(v, int) and not isinstance(v, bool)
    ok = is_int if kind == "int" else (is_int or isinstance(v, float))
    if ok:
        x = float(v)
        ok = math.isfinite(x) and (lo is None or (x > lo if lo_open else x >= lo)) and (hi is None or x <= hi)
    if not ok:
        raise ScenarioError("%s: expected %s" % (where, _range_text(_INT if kind == "int" else _NUM, lo, hi, lo_open)))
    return int(v) if kind == "int" else float(v)


def _table(v, where: str) -> dict:
    if not isinstance(v, dict):
        raise ScenarioError("%s: expected a table" % where)
    return v


def _table_list(v, where: str, name: str, keys: tuple, required: tuple):
    """Yield (index, field path, table) for a TOML array of tables [[name]], checking its keys."""
    if not isinstance(v, list):
        raise ScenarioError("%s: expected a list of tables [[%s]]" % (where, name))
    for i, o in enumerate(v):
        w = "%s[%d]" % (where, i)
        t = _table(o, w)
        _known(t, keys, w)
        for need in required:
            if need not in t:
                raise ScenarioError("%s.%s: missing" % (w, need))
        yield i, w, t


def _known(doc: dict, known, where: str, sep: str = ".") -> None:
    for key in doc:
        if key not in known:
            raise ScenarioError("%s%s%s: unknown field (known: %s)" % (where, sep, key, ", ".join(known)))


def _value(v, meta: dict, where: str, base: Path | None):
    kind, lo, hi, choices, lo_open = meta["kind"], meta["lo"], meta["hi"], meta["choices"], meta["lo_open"]
    if kind in ("int", "float"):
        return _number(v, where, kind, lo, hi, lo_open)
    if kind == "bool":
        if not isinstance(v, bool):
            raise ScenarioError("%s: expected true or false" % where)
        return v
    if kind in ("str", "path"):
        if not isinstance(v, str):
            raise ScenarioError("%s: expected a string" % where)
        if choices is not None and v not in choices:
            raise ScenarioError("%s: expected one of %s" % (where, ", ".join('"%s"' % c for c in choices if c)))
        if kind == "path" and v and v != "stalta" and base is not None and not Path(v).is_absolute():
            return str(base / v)
        return v
    if kind == "floats":
        if not isinstance(v, list) or not v:
            raise ScenarioError("%s: expected a non-empty list of numbers" % where)
        return tuple(_number(x, "%s[%d]" % (where, i), "float", lo, hi, lo_open) for i, x in enumerate(v))
    if kind == "bbox":
        if not isinstance(v, list) or len(v) != 4:
            raise ScenarioError("%s: expected [lat0, lat1, lon0, lon1]" % where)
        b = tuple(_number(x, "%s[%d]" % (where, i), "float", None, None, False) for i, x in enumerate(v))
        if not (-90 <= b[0] < b[1] <= 90 and -180 <= b[2] < b[3] <= 180):
            raise ScenarioError("%s: expected [lat0, lat1, lon0, lon1] with lat0 < lat1, lon0 < lon1 in range" % where)
        return b
    if kind == "rates":
        t = _table(v, where)
        _known(t, choices, where)
        return {k: _number(x, "%s.%s" % (where, k), "float", lo, None, False) for k, x in t.items()}
    if kind == "shares":
        if isinstance(v, str):
            if v not in choices:
                raise ScenarioError("%s: expected one of %s, or a table of shares" % (where, ", ".join('"%s"' % c for c in choices)))
            return v
        t = _table(v, where)
        _known(t, choices, where)
        out = {k: _number(x, "%s.%s" % (where, k), "float", 0.0, None, False) for k, x in t.items()}
        if not out or sum(out.values()) <= 0:
            raise ScenarioError("%s: expected shares >= 0, not all 0" % where)
        return out
    if kind == "link":
        t = _table(v, where)
        _known(t, ("median_s", "sigma_ln", "loss_p"), where)
        name = where.rsplit(".", 1)[-1]
        d = nodes.DEFAULT_LINKS[0] if name == "wifi" else nodes.DEFAULT_LINKS[1]
        return nodes.Link(
            name,
            _number(t.get("median_s", d.median_s), where + ".median_s", "float", 0.0, None, False),
            _number(t.get("sigma_ln", d.sigma_ln), where + ".sigma_ln", "float", 0.0, None, False),
            _number(t.get("loss_p", d.loss_p), where + ".loss_p", "float", 0.0, 1.0, False),
        )
    if kind == "outages":
        outs: list = []
        for i, w, t in _table_list(v, where, "telemetry.outages", ("start_s", "end_s", "fraction", "link", "mode"),
                                   ("start_s", "end_s")):
            s = _number(t["start_s"], w + ".start_s", "float", None, None, False)
            e = _number(t["end_s"], w + ".end_s", "float", None, None, False)
            if e <= s:
                raise ScenarioError("%s.end_s: expected a number > start_s (%g)" % (w, s))
            link = t.get("link", "all")
            if link not in ("all", "wifi", "lte"):
                raise ScenarioError('%s.link: expected one of "all", "wifi", "lte"' % w)
            mode = t.get("mode", "buffer")
            if mode not in ("buffer", "drop"):
                raise ScenarioError('%s.mode: expected one of "buffer", "drop"' % w)
            frac = _number(t.get("fraction", 1.0), w + ".fraction", "float", 0.0, 1.0, False)
            outs.append(nodes.Outage(s, e, frac, None if link == "all" else link, mode))
        return tuple(outs)
    if kind == "points":
        pts: list = []
        for i, w, t in _table_list(v, where, "targets.points", ("name", "lat", "lon", "vs30", "population"), ("lat", "lon")):
            name = t.get("name", "point %d" % (i + 1))
            if not isinstance(name, str):
                raise ScenarioError("%s.name: expected a string" % w)
            pts.append(Point(name, _number(t["lat"], w + ".lat", "float", -90.0, 90.0, False),
                             _number(t["lon"], w + ".lon", "float", -180.0, 180.0, False),
                             _number(t.get("vs30", 760.0), w + ".vs30", "float", 0.0, None, True),
                             _number(t.get("population", 1.0), w + ".population", "float", 0.0, None, False)))
        return tuple(pts)
    raise AssertionError("unknown field kind %r" % kind)


def _section(base_obj, doc: dict, where: str, base: Path | None):
    """base_obj with the fields given in doc, each validated."""
    specs = {f.name: f for f in fields(base_obj)}
    _known(doc, tuple(specs), where)
    return replace(base_obj, **{k: _value(v, dict(specs[k].metadata), "%s.%s" % (where, k), base) for k, v in doc.items()})


def parse_scenario(doc: dict, src: str = "scenario", base: Path | None = None) -> ScenarioConfig:
    """A ScenarioConfig from a parsed TOML document; ScenarioError names the bad field.

    Fields a table leaves out keep the default scenario's values. `quake = "pinotepa2018"` names a
    built-in event; a [quake] table with lat, lon, depth_km and mag and no `builtin` is a new one.
    """
    if not isinstance(doc, dict):
        raise ScenarioError("%s: expected a table" % src)
    top = {f.name: f for f in fields(ScenarioConfig)}
    _known(doc, tuple(top), src, ": ")
    out = ScenarioConfig()
    for key, v in doc.items():
        if key == "quake" and isinstance(v, str):
            v = {"builtin": v}
        t = _table(v, "%s: %s" % (src, key))
        cur = getattr(out, key)
        if key == "quake" and "builtin" not in t and all(f in t for f in ("lat", "lon", "depth_km", "mag")):
            cur = replace(cur, builtin="")
        setattr(out, key, _section(cur, t, "%s: %s" % (src, key), base))
    q = out.quake
    if not q.builtin:
        for f in ("lat", "lon", "depth_km", "mag"):
            if math.isnan(getattr(q, f)):
                raise ScenarioError("%s: quake.%s: missing (needed without quake.builtin)" % (src, f))
    return out


def read_toml(path) -> tuple[dict, str, Path]:
    """(document, file name for messages, folder for relative paths) of a TOML file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ScenarioError("%s: cannot read (%s)" % (p.name, e.strerror or e)) from None
    try:
        return tomllib.loads(text), p.name, p.parent
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError("%s: not valid TOML: %s" % (p.name, e)) from None


def load_scenario(path) -> ScenarioConfig:
    """Read and validate a scenario TOML file; relative paths in it are relative to the file."""
    return parse_scenario(*read_toml(path))


# --- building the scenario's parts -------------------------------------------------------------------
def build_quake(cfg: ScenarioConfig) -> Quake:
    q = cfg.quake
    if q.builtin:
        b = BUILTIN[q.builtin]
        vals = {f: getattr(b, f) for f in ("name", "origin_utc", "lat", "lon", "depth_km", "mag")}
    else:
        vals = {"name": "quake", "origin_utc": None}
    for f in ("lat", "lon", "depth_km", "mag"):
        if not math.isnan(getattr(q, f)):
            vals[f] = getattr(q, f)
    if q.name:
        vals["name"] = q.name
    if q.origin_utc:
        vals["origin_utc"] = q.origin_utc
    return Quake(**vals)


def _per_node(cfg: LayoutConfig) -> dict:
    return {"sensor": cfg.sensor, "site_class": cfg.site_class, "vs30": cfg.vs30, "outage_p": cfg.outage_p,
            "clock_err_s": cfg.clock_err_s}


def build_layout(cfg: ScenarioConfig, n: int | None = None) -> Layout:
    """The layout the scenario names; with `n`, n random nodes over the layout's area instead."""
    lc = cfg.layout
    try:
        if n is not None:
            return layouts.random_layout(n, lc.bbox, lc.seed, **_per_node(lc))
        if lc.source == "openeew":
            return layouts.load_layout(OPENEEW_DEVICES, defaults=_per_node(lc))
        if lc.source == "random":
            return layouts.random_layout(lc.n, lc.bbox, lc.seed, **_per_node(lc))
        if lc.source == "grid":
            return layouts.grid_layout(lc.bbox, lc.spacing_km, **_per_node(lc))
        if not lc.path:
            raise ScenarioError("layout.path: missing (needed with layout.source = \"file\")")
        return layouts.load_layout(lc.path, defaults=_per_node(lc))
    except LayoutError as e:
        raise ScenarioError("layout: %s" % e) from None


@dataclass
class Targets:
    """Where warnings are scored: node sites (node_index >= 0) first, then the named points, then a
    grid. `population` (None: unweighted) is what each target stands for in population-weighted
    figures: the layout's population at node sites (0 if it has none), the points' own, 0 on a grid."""

    lat: np.ndarray
    lon: np.ndarray
    vs30: np.ndarray
    population: np.ndarray | None
    names: list  # one per named point, in order after the node sites
    node_index: np.ndarray  # node index of a node-site target, -1 otherwise


def build_targets(layout: Layout, cfg: ScenarioConfig) -> Targets:
    tc = cfg.targets
    lat, lon, vs, pop, idx = [], [], [], [], []
    n = len(layout)
    if tc.include_nodes:
        lat.append(layout.lat)
        lon.append(layout.lon)
        vs.append(layout.vs30.astype(np.float32))
        # A node site stands for its population if the layout has one, for nobody otherwise.
        pop.append(np.zeros(n, np.float32) if layout.population is None else layout.population.astype(np.float32))
        idx.append(np.arange(n, dtype=np.int64))
    if tc.points:
        lat.append(np.array([p.lat for p in tc.points]))
        lon.append(np.array([p.lon for p in tc.points]))
        vs.append(np.array([p.vs30 for p in tc.points], np.float32))
        pop.append(np.array([p.population for p in tc.points], np.float32))
        idx.append(np.full(len(tc.points), -1, np.int64))
    if tc.grid_spacing_km > 0:
        g = layouts.grid_layout(tc.grid_bbox, tc.grid_spacing_km, vs30=tc.grid_vs30)
        lat.append(g.lat)
        lon.append(g.lon)
        vs.append(g.vs30.astype(np.float32))
        pop.append(np.zeros(len(g), np.float32))
        idx.append(np.full(len(g), -1, np.int64))
    weighted = layout.population is not None or any(p.population != 1.0 for p in tc.points)
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt, copy=False) if xs else np.zeros(0, dt))
    return Targets(cat(lat, np.float64), cat(lon, np.float64), cat(vs, np.float32),
                   cat(pop, np.float32) if weighted else None, [p.name for p in tc.points], cat(idx, np.int64))


# --- random streams ------------------------------------------------------------------------------------
class Streams:
    """Independent, named random streams from one seed: a change in one part of a scenario (more false
    triggers, a wider outage) leaves the draws of every other part as they were.

    `part(i)`: the streams of the i-th stretch of a long run: draws per message (false triggers,
    latency, loss) are new in each stretch, draws per node (links, clocks, outages) stay the same."""

    PER_MESSAGE = ("false", "false_amp", "latency", "uptime")

    def __init__(self, seed: int, part: int | None = None):
        self.seed = int(seed)
        self._part = part

    def part(self, i: int) -> "Streams":
        return Streams(self.seed, int(i))

    def key(self, name: str) -> list[int]:
        k = [self.seed, zlib.crc32(name.encode())]
        if self._part is not None and name in self.PER_MESSAGE:
            k.append(self._part)
        return k

    def __call__(self, name: str) -> np.random.Generator:
        return np.random.default_rng(self.key(name))

    def int(self, name: str) -> int:
        return int(np.random.SeedSequence(self.key(name)).generate_state(1)[0])


# --- the event-driven part: SimPy ---------------------------------------------------------------------
class Inbox:
    """The broker's queue towards the aggregator, fed by ONE process from arrival times sorted
    ascending. `get(not_before)` returns an event that fires with (i, j, t): messages [i, j) are
    every message that arrived by t = max(next arrival, not_before). Times are on the scenario
    clock; the SimPy clock is that minus `t_start`."""

    def __init__(self, env: simpy.Environment, arrival: np.ndarray, t_start: float):
        self.env = env
        self.arrival = arrival
        self.t_start = t_start
        self.i = 0
        self.done = False
        self._want: tuple | None = None
        self._idle: simpy.Event | None = None
        self.cycles = 0

    def get(self, not_before: float) -> simpy.Event:
        ev = self.env.event()
        if self.done:
            ev.succeed(None)
            return ev
        self._want = (ev, not_before)
        if self._idle is not None and not self._idle.triggered:
            self._idle.succeed()
        return ev

    def feed(self):
        env, arr = self.env, self.arrival
        n = arr.shape[0]
        while self.i < n:
            if self._want is None:
                self._idle = env.event()
                yield self._idle
                continue
            ev, nb = self._want
            t = max(float(arr[self.i]), nb)
            wait = (t - self.t_start) - env.now
            if wait > 0:
                yield env.timeout(wait)
            j = int(np.searchsorted(arr, t, side="right"))
            self._want = None
            self.cycles += 1
            ev.succeed((self.i, j, t))
            self.i = j
        self.done = True
        if self._want is not None:
            self._want[0].succeed(None)
            self._want = None


def aggregator_process(env: simpy.Environment, inbox: Inbox, agg: policy.Aggregator, dets: policy.Detections,
                       processing_s: float, log: list | None = None):
    """The aggregator: wait for messages (or for its next update), process them, repeat.
    `log` (optional) gets (time, messages, alerts, targets alerted) per cycle."""
    now = -math.inf
    while True:
        batch = yield inbox.get(agg.next_update(now))
        if batch is None:
            return
        i, j, t = batch
        if processing_s > 0:
            yield env.timeout(processing_s)
        now = t + processing_s
        alerts = agg.ingest(dets.take(slice(i, j)), now)
        if log is not None:
            log.append((now, j - i, len(alerts), sum(int(a.targets.size) for a in alerts)))


def run_aggregator(dets: policy.Detections, arrival: np.ndarray, agg: policy.Aggregator, processing_s: float,
                   t_start: float, env: simpy.Environment | None = None, log: list | None = None) -> dict:
    """Run messages (sorted by `arrival`) through `agg` in SimPy; return counters. The SimPy clock
    reads scenario time minus `t_start` (plus the environment's own start time)."""
    env = simpy.Environment() if env is None else env
    t_env0 = env.now
    inbox = Inbox(env, arrival, t_start - t_env0)
    env.process(inbox.feed())
    env.process(aggregator_process(env, inbox, agg, dets, processing_s, log))
    env.run()
    return {"cycles": inbox.cycles, "messages": int(arrival.shape[0])}


# --- the scenario ---------------------------------------------------------------------------------------
@dataclass
class Result:
    """Everything a scenario run produced; metrics.score() turns it into figures."""

    quake: Quake
    cfg: ScenarioConfig
    seed: int
    zero_noise: bool
    n_nodes: int
    # per node
    node_epi_km: np.ndarray
    node_tp: np.ndarray  # P arrival (scenario clock)
    node_online: np.ndarray
    node_detected: np.ndarray  # detected the quake (whether or not the message arrived)
    # per target
    targets: Targets
    target_epi_km: np.ndarray
    target_ts: np.ndarray  # S arrival
    target_pga_gal: np.ndarray
    target_mmi: np.ndarray
    alert_issued: np.ndarray  # first alert of a true event for the target (inf: none)
    alert_t: np.ndarray  # ... delivered
    # network
    events: list
    event_true: np.ndarray  # bool per event: mostly detections of the quake
    alerts: list
    kth_p_t: float  # the oracle's alert time: the k-th P arrival over the nodes that are up
    counts: dict
    timings: dict

    @property
    def first_alert_t(self) -> float:
        """Issue time of the first alert of a true event (inf if none)."""
        ts = [a.t for a in self.alerts if self.event_true[a.event]]
        return min(ts) if ts else math.inf


def _detector_models(cfg: NodesConfig) -> dict:
    if cfg.detector in ("", "stalta"):
        m = nodes.StaLtaDetector(cfg.on, cfg.sta_s, cfg.confirm_s, cfg.min_pga_gal, cfg.beta, cfg.p_ratio,
                                 cfg.p_ratio_sigma, cfg.delay_sigma)
        return {i: m for i in range(len(SENSORS))}
    try:
        curves = nodes.load_curve(cfg.detector, SENSORS, cfg.p_ratio, cfg.delay_sigma)
    except ValueError as e:
        raise ScenarioError("nodes.detector: %s" % e) from None
    default = _detector_models(replace(cfg, detector="stalta"))
    return {i: curves.get(s, default[i]) for i, s in enumerate(SENSORS)}


def node_messages(layout: Layout, cfg: ScenarioConfig, t_start: float, t_end: float, rs: Streams, *,
                  quake: Quake | None = None, phys: dict | None = None, online: np.ndarray | None = None,
                  false_triggers: bool = True) -> dict:
    """Detection messages of every node over [t_start, t_end], vectorised: the quake's (from `phys`)
    and false triggers; with the telemetry applied. Returns columns sorted by arrival time."""
    nc, tc = cfg.nodes, cfg.telemetry
    zn = cfg.scenario.zero_noise
    n = len(layout)
    noise = nodes.noise_rms_gal(layout.sensor, layout.site_class, SENSORS, SITE_CLASSES, nc.bandwidth_hz,
                                site_noise_gal=nc.site_noise_gal)
    if online is None:
        online = np.ones(n, dtype=bool)
    std = np.sqrt((0.0 if zn else layout.clock_err_s.astype(np.float64) ** 2) + cfg.faults.clock_error_s ** 2)
    offset = std * rs("clock").standard_normal(n) if np.any(std > 0) else np.zeros(n)
    parts = []  # (node, pick, det, pga, is_quake)
    if quake is not None:
        if phys is None:
            raise ValueError("node_messages: a quake needs its physics (phys)")
        tp, ts, pga = phys["tp"], phys["ts"], phys["pga_gal"]
        if zn:
            det = online.copy()
            on_s = np.zeros(n, np.int8)
            delay = np.zeros(n)
            seen = np.full(n, nc.p_ratio)
        else:
            d = nodes.sample_detections(_detector_models(nc), layout.sensor, pga.astype(np.float64), ts - tp, noise,
                                        rs.int("detect"))
            det, on_s, delay, seen = d.detected & online, d.on_s, d.delay_s, d.amp_ratio
        phase = np.where(on_s == 1, ts, tp)
        pick = phase if zn or nc.pick_sigma_s == 0 else phase + nc.pick_sigma_s * rs("pick").standard_normal(n)
        t_det = np.maximum(phase + delay, pick)
        phys["detected"] = det
        i = np.flatnonzero(det & (t_det <= t_end))
        parts.append((i, pick[i], t_det[i], pga[i].astype(np.float64) * seen[i], np.ones(i.size, bool)))
    n_false = 0
    if false_triggers and not zn:
        rates = nodes.false_rates_per_day(layout.site_class, SITE_CLASSES, nc.false_per_day)
        fn, ft = nodes.false_triggers(rates, t_start, t_end, rs("false"))
        keep = online[fn]
        fn, ft = fn[keep], ft[keep]
        n_false = int(fn.size)
        thr = np.maximum(nc.min_pga_gal, nc.on * noise[fn])
        famp = nodes.false_amplitude(thr, rs("false_amp"))
        parts.append((fn, ft, ft + nc.confirm_s + nc.sta_s, famp, np.zeros(fn.size, bool)))
    node = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    pick = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
    t_det = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0)
    pga = np.concatenate([p[3] for p in parts]) if parts else np.zeros(0)
    is_quake = np.concatenate([p[4] for p in parts]) if parts else np.zeros(0, bool)
    links = nodes.assign_links(n, tc.lte_fraction, rs("links"))
    t0 = quake.t0 if quake is not None else 0.0
    outages = tuple(replace(o, start_s=o.start_s + t0, end_s=o.end_s + t0) for o in tc.outages)
    ou = rs("outage").random((len(outages), n)) if outages else np.zeros((0, n))
    arrival = nodes.deliver(t_det, node, links, (tc.wifi, tc.lte), outages, ou, rs("latency"), zero_latency=zn)
    lost = int(np.isnan(arrival).sum())
    ok = np.flatnonzero(np.isfinite(arrival) & (arrival <= t_end))
    order = ok[np.argsort(arrival[ok], kind="stable")]
    node = node[order]
    dets = policy.Detections(node, pick[order] + offset[node], layout.lat[node], layout.lon[node], pga[order],
                             layout.vs30[node], t_det[order] + offset[node], order)
    return {"dets": dets, "arrival": arrival[order], "is_quake": is_quake, "n_false": n_false, "lost": lost}


def ground_motion(lat: np.ndarray, lon: np.ndarray, vs30: np.ndarray, quake: Quake, cfg: ScenarioConfig,
                  vm: physics.VelocityModel, rs: Streams) -> dict:
    """Distances, P/S times, PGA (gal, with variability unless zero-noise) and MMI at sites."""
    pc = cfg.physics
    epi = physics.epicentral_km(lat, lon, quake.lat, quake.lon)
    tp = quake.t0 + vm.p_time(epi, quake.depth_km)
    ts = quake.t0 + vm.s_time(epi, quake.depth_km)
    rjb = physics.rjb_point_source(epi, quake.mag, finite_fault=pc.finite_fault)
    med, _ = physics.ba08(quake.mag, rjb, vs30, mech=pc.mech)
    _, tau, phi = physics.ba08_sigma(pc.mech)
    y = physics.sample_ground_motion(med, tau * pc.sigma_scale, phi * pc.sigma_scale, rs("motion"),
                                     zero_noise=cfg.scenario.zero_noise)
    pga = y * np.float32(G_GAL)
    return {"epi": epi, "tp": tp, "ts": ts, "pga_gal": pga, "mmi": physics.mmi_from_pga(pga)}


def node_online(layout: Layout, cfg: ScenarioConfig, rs: Streams) -> np.ndarray:
    n = len(layout)
    up = np.ones(n, bool) if cfg.scenario.zero_noise else nodes.online(layout.outage_p, rs("online"))
    if cfg.faults.offline_fraction > 0:
        up &= rs("offline").random(n) >= cfg.faults.offline_fraction
    return up


def make_aggregator(cfg: ScenarioConfig, vm, targets: Targets, layout: Layout, active: np.ndarray | None) -> policy.Aggregator:
    pc = cfg.policy
    ap = policy.AlertPolicy(targets.lat, targets.lon, targets.vs30, pc.mmi_threshold, pc.min_mag, pc.mech, pc.plum_radius_km)
    return policy.Aggregator(pc, vm, ap, layout.lat, layout.lon, active)


def run_scenario(layout: Layout, quake: Quake, cfg: ScenarioConfig | None = None, seed: int | None = None,
                 env: simpy.Environment | None = None, log: list | None = None) -> Result:
    """Run one scenario; the same (layout, quake, cfg, seed) gives the same Result.

    `env`: the SimPy environment for the event-driven part (default a new `simpy.Environment()`;
    a `simpy.rt.RealtimeEnvironment` paces it in wall-clock time). `log`: a list that gets one
    (time, messages, alerts, targets alerted) tuple per aggregator cycle.
    """
    cfg = ScenarioConfig() if cfg is None else cfg
    seed = cfg.scenario.seed if seed is None else int(seed)
    zn = cfg.scenario.zero_noise
    rs = Streams(seed)
    clock = time.perf_counter
    t_run = clock()
    vm = cfg.physics.velocity_model()
    n = len(layout)
    targets = build_targets(layout, cfg)
    # Physics at the nodes and at the targets that are not nodes, in one pass (one inter-event term).
    extra = np.flatnonzero(targets.node_index < 0)
    sites_lat = np.concatenate([layout.lat, targets.lat[extra]])
    sites_lon = np.concatenate([layout.lon, targets.lon[extra]])
    sites_vs = np.concatenate([layout.vs30.astype(np.float32), targets.vs30[extra]])
    ph = ground_motion(sites_lat, sites_lon, sites_vs, quake, cfg, vm, rs)
    del sites_lat, sites_lon, sites_vs
    t_phys = clock()
    online = node_online(layout, cfg, rs)
    t_start, t_end = quake.t0 - cfg.scenario.pre_s, quake.t0 + cfg.scenario.duration_s
    node_ph = {"tp": ph["tp"][:n], "ts": ph["ts"][:n], "pga_gal": ph["pga_gal"][:n]}
    msgs = node_messages(layout, cfg, t_start, t_end, rs, quake=quake, phys=node_ph, online=online)
    t_nodes = clock()
    agg = make_aggregator(cfg, vm, targets, layout, online)
    sim = run_aggregator(msgs["dets"], msgs["arrival"], agg, 0.0 if zn else cfg.alert.processing_s, t_start, env, log)
    t_sim = clock()
    # Targets: map to site rows (node sites share the node's physics).
    rows = np.where(targets.node_index >= 0, targets.node_index, 0)
    rows[extra] = n + np.arange(extra.size)
    is_quake = msgs["is_quake"]
    event_true = np.array([bool(is_quake[e.ids()].mean() >= 0.5) if e.n else False for e in agg.events], dtype=bool)
    issued = np.full(rows.size, np.inf)
    for a in agg.alerts:
        if event_true[a.event]:
            issued[a.targets] = np.minimum(issued[a.targets], a.t)
    if zn or cfg.alert.delivery_median_s == 0:
        delivered = issued.copy()
    else:
        z = rs("delivery").standard_normal(rows.size)
        delivered = issued + cfg.alert.delivery_median_s * np.exp(cfg.alert.delivery_sigma_ln * z)
    tp_up = ph["tp"][:n][online]
    k = cfg.policy.k
    kth = float(np.partition(tp_up, k - 1)[k - 1]) if tp_up.size >= k else math.inf
    t_done = clock()
    counts = {"messages": int(len(msgs["dets"])), "quake_messages": int(is_quake[msgs["dets"].id].sum()),
              "false_triggers": msgs["n_false"], "lost": msgs["lost"], "aggregator_cycles": sim["cycles"],
              "events": len(agg.events), "true_events": int(event_true.sum()), "nodes_online": int(online.sum()),
              "nodes_detected": int(node_ph["detected"].sum())}
    timings = {"physics_s": t_phys - t_run, "nodes_telemetry_s": t_nodes - t_phys, "simpy_s": t_sim - t_nodes,
               "scoring_s": t_done - t_sim, "total_s": t_done - t_run}
    return Result(quake, cfg, seed, zn, n, ph["epi"][:n], ph["tp"][:n], online, node_ph["detected"], targets,
                  ph["epi"][rows], ph["ts"][rows], ph["pga_gal"][rows], ph["mmi"][rows], issued, delivered,
                  agg.events, event_true, agg.alerts, kth, counts, timings)


def simulate(cfg: ScenarioConfig | None = None, seed: int | None = None, n_nodes: int | None = None) -> Result:
    """The scenario as configured: its layout (or `n_nodes` random nodes over the layout's area) and
    its quake."""
    cfg = ScenarioConfig() if cfg is None else cfg
    return run_scenario(build_layout(cfg, n_nodes), build_quake(cfg), cfg, seed)
