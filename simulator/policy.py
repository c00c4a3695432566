"""The network policy: association, location, magnitude and the alert decision.

ONE piece of code for the simulator and for the live aggregator, so what is planned is what runs.
Nothing here knows about SimPy or about the truth of a scenario: the aggregator gets detection
messages (`Detection`, or `Detections` in columns), with their time of processing `now`, and
returns the alerts it issues. Everything is deterministic: the same input in the same order gives
the same output.

    agg = Aggregator(PolicyConfig(k=4), VelocityModel.default_mexico(), AlertPolicy(lat, lon, vs30))
    alerts = agg.ingest(Detections.from_list([Detection(node=7, t=..., lat=..., lon=..., pga_gal=...)]), now)

Pieces, usable on their own:
- `Associator`: declares an event from unassociated detections. "radius": k detections (of distinct
  nodes) within `radius_km` and `window_s` of the newest; "cells" (MyShake-style): k detections in a
  3x3 block of `cell_km` cells within `window_s`, and at least `cell_fraction` of the block's active
  nodes; "plum" (PLUM-like): k stations whose observed intensity reaches `plum_mmi`.
- `locate`: grid search on the onset times with a velocity model (L1 misfit, origin time solved per
  grid point, coarse to fine, the grid walks when the best point is on its edge).
- `magnitude`: inverts the Boore & Atkinson (2008) median for PGA at the stations' distances.
- `AlertPolicy`: the targets whose predicted MMI reaches the threshold (source-based), or that lie
  within `plum_radius_km` of a strongly shaking station (PLUM-like).
- `Aggregator`: the above in sequence, with event updates at most every `update_s` and re-alerting
  only when the magnitude or the location changed materially (as ShakeAlert updates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import physics
from .physics import epicentral_km

G_GAL = 980.665
_KM_PER_DEG = math.pi * physics.EARTH_R_KM / 180.0
METHODS = ("radius", "cells", "plum")
_REACH_R = np.geomspace(5.0, 5000.0, 301)
_NYA_SAMPLE = 500  # nodes per disc of radius_km looked at by the not-yet-arrived check


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Epicentral distance between two points (km), scalars."""
    return float(epicentral_km(np.array([lat1]), np.array([lon1]), lat2, lon2)[0])


def config_field(default, kind, lo=None, hi=None, choices=None, lo_open=False):
    """A field with its validation spec (read by engine.load_scenario)."""
    meta = {"kind": kind, "lo": lo, "hi": hi, "choices": choices, "lo_open": lo_open}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class PolicyConfig:
    """Parameters of the network policy (the `[policy]` table of a scenario file).

    Defaults suit a dense network (nodes a few km apart). An event is declared by the association
    rule, and alerts go out once it is CONFIRMED: its onsets fit one hypocentre (mean absolute
    residual <= max_misfit_s, with 4 onsets or more) and, "not yet arrived" check, at least
    nya_fraction of the active nodes within radius_km of the epicentre whose P wave is due
    (predicted P + nya_wait_s <= now, predicted P-wave PGA >= nya_min_pga_gal or half the prediction
    at the event's own stations) have triggered, in the event's P-to-S window.
    Random false triggers scattered over radius_km fail that check; a real event passes it. Once
    confirmed an event stays confirmed; an event still unconfirmed confirm_timeout_s after it was
    declared is dropped. A detection that several events could claim goes to the one whose
    predicted P time it fits best. Until it is confirmed, an event only claims detections within
    radius_km of its own stations (it grows as a local cluster, and cannot take a distant real
    event's first detections).
    """

    method: str = config_field("radius", "str", choices=METHODS)
    k: int = config_field(4, "int", 1)  # detections needed to declare an event
    radius_km: float = config_field(30.0, "float", 0.0, lo_open=True)
    window_s: float = config_field(10.0, "float", 0.0, lo_open=True)
    cell_km: float = config_field(10.0, "float", 0.0, lo_open=True)  # method "cells"
    cell_fraction: float = config_field(0.0, "float", 0.0, 1.0)  # method "cells": share of active nodes
    plum_mmi: float = config_field(4.0, "float", 1.0, 10.0)  # method "plum": observed MMI at a station
    plum_radius_km: float = config_field(30.0, "float", 0.0, lo_open=True)
    mmi_threshold: float = config_field(4.0, "float", 1.0, 10.0)  # alert targets with predicted MMI >= this
    min_mag: float = config_field(4.0, "float", 0.0, 10.0)  # no alert for smaller estimates
    p_pga_ratio: float = config_field(physics.P_PGA_RATIO, "float", 0.0, 1.0, lo_open=True)  # PGA at a P detection / final PGA
    depths_km: tuple = config_field((10.0, 30.0, 50.0, 70.0), "floats", 0.0)
    grid_half_km: float = config_field(100.0, "float", 0.0, lo_open=True)
    grid_step_km: float = config_field(10.0, "float", 0.0, lo_open=True)  # refined to a 125th of this
    loc_max: int = config_field(32, "int", 1)  # onsets used to locate (and magnitudes), the earliest
    assoc_tol_s: float = config_field(5.0, "float", 0.0)  # onset between P - tol and S + tol joins an event
    p_tol_s: float = config_field(2.0, "float", 0.0)  # onset within P +- tol counts as a P onset
    coda_s: float = config_field(30.0, "float", 0.0)  # a confirmed event also claims onsets up to S + this
    max_assoc_km: float = config_field(1500.0, "float", 0.0, lo_open=True)
    event_s: float = config_field(300.0, "float", 0.0, lo_open=True)  # an event closes this long after its origin
    update_s: float = config_field(1.0, "float", 0.0)  # at most one update per event per this interval
    update_dmag: float = config_field(0.1, "float", 0.0)  # re-decide alerts when M moved this much
    update_dloc_km: float = config_field(5.0, "float", 0.0)  # ... or the epicentre this far
    confirm_timeout_s: float = config_field(15.0, "float", 0.0, lo_open=True)  # unconfirmed events drop after
    max_misfit_s: float = config_field(1.0, "float", 0.0, lo_open=True)  # confirm: mean |onset residual|
    nya_fraction: float = config_field(0.4, "float", 0.0, 1.0)  # confirm: share of due nodes that triggered
    nya_wait_s: float = config_field(3.0, "float", 0.0)  # a node is due this long after its predicted P
    nya_min_pga_gal: float = config_field(2.0, "float", 0.0)  # ... if its predicted P-wave PGA reaches this (or
    # half the prediction at the event's own stations, if lower)
    mech: str = config_field("U", "str", choices=("U", "SS", "NS", "RS"))


# --- detections ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Detection:
    """One detection message. `t`: the onset (pick) time on the node's clock; `t_det`: when the node
    declared the detection (the message's own time stamp; default `t`); `pga_gal`: the PGA it had seen
    by then; `vs30` of the node's site; `id`: the message's identifier."""

    node: int
    t: float
    lat: float
    lon: float
    pga_gal: float
    vs30: float = 760.0
    t_det: float | None = None
    id: int = -1


class Detections:
    """Detections in columns (numpy arrays of equal length)."""

    COLS = ("node", "t", "lat", "lon", "pga", "vs30", "t_det", "id")
    __slots__ = COLS

    def __init__(self, node, t, lat, lon, pga, vs30=760.0, t_det=None, id=None):
        self.node = np.asarray(node, dtype=np.int64)
        n = self.node.shape[0]
        self.t = np.asarray(t, dtype=np.float64)
        self.lat = np.asarray(lat, dtype=np.float64)
        self.lon = np.asarray(lon, dtype=np.float64)
        self.pga = np.asarray(pga, dtype=np.float64)
        self.vs30 = np.broadcast_to(np.asarray(vs30, dtype=np.float64), (n,))
        self.t_det = self.t if t_det is None else np.asarray(t_det, dtype=np.float64)
        self.id = np.arange(n, dtype=np.int64) if id is None else np.asarray(id, dtype=np.int64)
        for c in self.COLS:
            if getattr(self, c).shape != (n,):
                raise ValueError("Detections: column %s has shape %s, expected (%d,)" % (c, getattr(self, c).shape, n))

    @classmethod
    def _raw(cls, cols) -> "Detections":
        """From checked columns, without conversion (internal: take and concat)."""
        d = object.__new__(cls)
        for c, v in zip(cls.COLS, cols):
            object.__setattr__(d, c, v)
        return d

    @classmethod
    def from_list(cls, dets: list[Detection]) -> "Detections":
        return cls(
            [d.node for d in dets], [d.t for d in dets], [d.lat for d in dets], [d.lon for d in dets],
            [d.pga_gal for d in dets], [d.vs30 for d in dets], [d.t if d.t_det is None else d.t_det for d in dets],
            [d.id if d.id >= 0 else i for i, d in enumerate(dets)],
        )

    @classmethod
    def empty(cls) -> "Detections":
        z = np.zeros(0)
        return cls(np.zeros(0, np.int64), z, z, z, z, z, z, np.zeros(0, np.int64))

    def __len__(self) -> int:
        return self.node.shape[0]

    def take(self, idx) -> "Detections":
        return Detections._raw([self.node[idx], self.t[idx], self.lat[idx], self.lon[idx], self.pga[idx],
                                self.vs30[idx], self.t_det[idx], self.id[idx]])

    @staticmethod
    def concat(parts: list["Detections"]) -> "Detections":
        parts = [p for p in parts if len(p)]
        if not parts:
            return Detections.empty()
        if len(parts) == 1:
            return parts[0]
        return Detections._raw([np.concatenate([getattr(p, c) for p in parts]) for c in Detections.COLS])


# --- association ---------------------------------------------------------------------------------
class Associator:
    """Declares events from detections that no event has claimed.

    `add(dets)` takes detections (in the order given: sort them by onset) one at a time into its pool
    and stops at the first that completes a cluster: it returns (the cluster, how many it took). The
    caller then lets the new event claim what it can of the rest before adding the remainder. Pool
    entries older than `keep_s` before the newest onset are forgotten.

    method "cells" needs the network (`node_lat`, `node_lon`, `active`) for its `cell_fraction` rule.
    """

    def __init__(self, k: int = 4, radius_km: float = 30.0, window_s: float = 10.0, method: str = "radius",
                 cell_km: float = 10.0, cell_fraction: float = 0.0, plum_mmi: float = 4.0,
                 node_lat=None, node_lon=None, active=None, keep_s: float = 60.0):
        if method not in METHODS:
            raise ValueError("method %r: one of %s" % (method, ", ".join(METHODS)))
        self.k = int(k)
        self.radius_km = float(radius_km)
        self.window_s = float(window_s)
        self.method = method
        self.cell_km = float(cell_km)
        self.cell_fraction = float(cell_fraction)
        self.plum_mmi = float(plum_mmi)
        self.keep_s = max(float(keep_s), self.window_s)
        self.pool = Detections.empty()
        self._newest = -math.inf
        self._cell_count: dict[tuple[int, int], int] = {}
        if method == "cells" and node_lat is not None:
            la = np.asarray(node_lat, dtype=np.float64)
            lo = np.asarray(node_lon, dtype=np.float64)
            if active is not None:
                act = np.asarray(active, dtype=bool)
                la, lo = la[act], lo[act]
            iy, ix = self.cells(la, lo)
            u, c = np.unique(np.stack([iy, ix], axis=1), axis=0, return_counts=True)
            self._cell_count = {(int(a), int(b)): int(n) for (a, b), n in zip(u, c)}

    @classmethod
    def from_config(cls, cfg: PolicyConfig, node_lat=None, node_lon=None, active=None) -> "Associator":
        return cls(cfg.k, cfg.radius_km, cfg.window_s, cfg.method, cfg.cell_km, cfg.cell_fraction, cfg.plum_mmi,
                   node_lat, node_lon, active)

    def cells(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """Cell indices (row, column) of a fixed grid of `cell_km` (columns narrowed by cos(latitude))."""
        d = self.cell_km / _KM_PER_DEG
        iy = np.floor(np.asarray(lat) / d).astype(np.int64)
        lat_c = (iy + 0.5) * d
        ix = np.floor(np.asarray(lon) * np.cos(np.radians(lat_c)) / d).astype(np.int64)
        return iy, ix

    def eligible(self, dets: Detections) -> np.ndarray:
        """Detections this rule considers at all (PLUM: observed intensity >= plum_mmi)."""
        if self.method == "plum":
            return physics.mmi_from_pga(dets.pga, dtype=np.float64) >= self.plum_mmi
        return np.ones(len(dets), dtype=bool)

    def screen_km(self) -> float:
        """An upper bound of the distance between the newest detection and any other of its cluster."""
        if self.method == "cells":
            return 2.0 * math.sqrt(2.0) * self.cell_km * 1.01 + 1.0
        return self.radius_km

    def add(self, dets: Detections) -> tuple[Detections | None, int]:
        ok = self.eligible(dets)
        for i in range(len(dets)):
            if not ok[i]:
                continue
            d = dets.take(slice(i, i + 1))
            cluster = self._add_one(d)
            if cluster is not None:
                return cluster, i + 1
        return None, len(dets)

    def _add_one(self, d: Detections) -> Detections | None:
        t = float(d.t[0])
        if t > self._newest:
            self._newest = t
            if len(self.pool) and self.pool.t.min() < t - self.keep_s:
                self.pool = self.pool.take(self.pool.t >= t - self.keep_s)
        p = self.pool
        near = (np.abs(p.t - t) <= self.window_s) & (p.node != d.node[0])
        if self.method == "cells":
            iy, ix = self.cells(p.lat, p.lon)
            jy, jx = self.cells(d.lat, d.lon)
            near &= (np.abs(iy - jy[0]) <= 1) & (np.abs(ix - jx[0]) <= 1)
        elif near.any():
            near[near] = epicentral_km(p.lat[near], p.lon[near], float(d.lat[0]), float(d.lon[0])) <= self.radius_km
        nodes = np.unique(p.node[near])
        if nodes.size + 1 >= self.k and (self.method != "cells" or self._fraction_ok(d, nodes.size + 1)):
            cluster = Detections.concat([p.take(near), d])
            self.pool = p.take(~near)
            return cluster
        self.pool = Detections.concat([p, d])
        return None

    def _fraction_ok(self, d: Detections, count: int) -> bool:
        if self.cell_fraction <= 0 or not self._cell_count:
            return True
        jy, jx = self.cells(d.lat, d.lon)
        total = sum(self._cell_count.get((int(jy[0]) + a, int(jx[0]) + b), 0) for a in (-1, 0, 1) for b in (-1, 0, 1))
        return total > 0 and count >= self.cell_fraction * total

    def forget(self, ids: np.ndarray) -> None:
        """Drop pool entries that an event has claimed since they were added."""
        if len(self.pool):
            self.pool = self.pool.take(~np.isin(self.pool.id, ids))


def screen(t: np.ndarray, lat: np.ndarray, lon: np.ndarray, node: np.ndarray, k: int, radius_km: float,
           window_s: float) -> np.ndarray:
    """Which detections have at least k-1 others (of other nodes) within `window_s` and `radius_km`:
    a necessary condition for any detection to complete a cluster. Vectorised over time-sorted `t`.

    Used to skip, in long runs of false triggers, the stretches where no event can form.
    """
    n = t.shape[0]
    count = np.zeros(n, dtype=np.int64)
    if n < 2 or k <= 1:
        return np.ones(n, dtype=bool) if k <= 1 else count > 0
    j = 1
    while j < n:
        close = (t[j:] - t[:-j]) <= window_s
        if not close.any():
            break
        i = np.flatnonzero(close)
        i = i[node[i] != node[i + j]]
        i = i[epicentral_km(lat[i], lon[i], lat[i + j], lon[i + j]) <= radius_km]
        count += np.bincount(i, minlength=n)
        count += np.bincount(i + j, minlength=n)
        j += 1
    return count >= k - 1


class GridIndex:
    """Points bucketed in cells of about `cell_km`, for "which points lie within r of here" queries."""

    def __init__(self, lat, lon, cell_km: float):
        self.lat = np.asarray(lat, dtype=np.float64)
        self.lon = np.asarray(lon, dtype=np.float64)
        self.dlat = cell_km / _KM_PER_DEG
        top = float(np.abs(self.lat).max()) if self.lat.size else 0.0
        self.dlon = self.dlat / max(math.cos(math.radians(min(top, 89.0))), 1e-6)
        iy = np.floor(self.lat / self.dlat).astype(np.int64)
        ix = np.floor((self.lon + 180.0) / self.dlon).astype(np.int64)
        self._ny = int(math.ceil(360.0 / self.dlon)) + 2
        key = iy * self._ny + ix
        self.order = np.argsort(key, kind="stable")
        self.keys = key[self.order]

    def near(self, lat: float, lon: float, radius_km: float) -> np.ndarray:
        """Indices of the points within radius_km of (lat, lon), ascending."""
        r_lat = radius_km / _KM_PER_DEG
        r_lon = r_lat / max(math.cos(math.radians(min(abs(lat) + r_lat, 89.0))), 1e-6)
        y0, y1 = math.floor((lat - r_lat) / self.dlat), math.floor((lat + r_lat) / self.dlat)
        x0, x1 = math.floor((lon - r_lon + 180.0) / self.dlon), math.floor((lon + r_lon + 180.0) / self.dlon)
        rows = np.arange(y0, y1 + 1, dtype=np.int64) * self._ny
        a = np.searchsorted(self.keys, rows + x0, side="left")
        b = np.searchsorted(self.keys, rows + x1, side="right")
        if not (b > a).any():
            return np.zeros(0, np.int64)
        idx = np.concatenate([self.order[i:j] for i, j in zip(a, b) if j > i])
        idx = idx[epicentral_km(self.lat[idx], self.lon[idx], lat, lon) <= radius_km]
        return np.sort(idx)


# --- location -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Location:
    lat: float
    lon: float
    depth_km: float
    t0: float  # origin time
    misfit_s: float  # mean absolute onset residual
    n: int


def _offsets(clat: float, clon: float, x_km: np.ndarray, y_km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return clat + y_km / _KM_PER_DEG, clon + x_km / (_KM_PER_DEG * max(math.cos(math.radians(clat)), 1e-6))


def _best_on_grid(lat, lon, t, vm, glat, glon, depths) -> tuple[int, float, float, float]:
    dist = epicentral_km(lat[None, :], lon[None, :], glat[:, None], glon[:, None])
    best = (math.inf, 0, 0.0, 0.0)
    for z in depths:
        r = t[None, :] - vm.p_time(dist, z)
        t0 = np.median(r, axis=1)
        mis = np.abs(r - t0[:, None]).mean(axis=1)
        g = int(np.argmin(mis))
        if mis[g] < best[0] - 1e-12:
            best = (float(mis[g]), g, float(z), float(t0[g]))
    return best[1], best[2], best[3], best[0]


def locate(lat, lon, t, vm, depths_km=(10.0, 30.0, 50.0, 70.0), half_km: float = 100.0, step_km: float = 10.0,
           levels: int = 4, center: tuple[float, float] | None = None, max_walk: int = 6) -> Location:
    """Epicentre, depth and origin time from onset times `t` at stations (lat, lon) by grid search.

    For each grid point and depth the origin time is the median of t - P(distance), the misfit the
    mean absolute residual. A square grid of +-half_km at step_km around `center` (default: the
    earliest station) is searched, then refined `levels - 1` times around the best point at a fifth
    of the step (+-5 steps); at every level the grid is re-centred while the best point lies on its
    edge (up to `max_walk` times).
    One or two stations cannot be located: their mean position is returned.
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    n = t.shape[0]
    if n == 0:
        raise ValueError("locate: no onsets")
    depths = tuple(float(z) for z in depths_km)
    if n < 3:
        clat, clon = float(lat.mean()), float(lon.mean())
        z = depths[0]
        r = t - vm.p_time(epicentral_km(lat, lon, clat, clon), z)
        return Location(clat, clon, z, float(np.median(r)), float(np.abs(r - np.median(r)).mean()), n)
    if center is None:
        i0 = int(np.argmin(t))
        center = (float(lat[i0]), float(lon[i0]))
    clat, clon = center
    step = float(step_km)
    m = int(math.ceil(half_km / step))
    for level in range(levels):
        if level:
            step /= 5.0
            m = 5
        ax = step * np.arange(-m, m + 1)
        gx, gy = np.meshgrid(ax, ax)
        gx, gy = gx.ravel(), gy.ravel()
        # Re-centre while the best point lies on the grid's edge: a source outside the network
        # sits at the end of a long, narrow valley of the misfit.
        for _ in range(max_walk + 1):
            glat, glon = _offsets(clat, clon, gx, gy)
            g, z, t0, mis = _best_on_grid(lat, lon, t, vm, glat, glon, depths)
            clat, clon = float(glat[g]), float(glon[g])
            if abs(gx[g]) < m * step and abs(gy[g]) < m * step:
                break
    return Location(clat, clon, z, t0, mis, n)


# --- magnitude ------------------------------------------------------------------------------------
_MAGS = np.round(np.arange(2.0, 9.0001, 0.1), 6)


def _mag_misfit(mags: np.ndarray, y: np.ndarray, epi: np.ndarray, vs30: np.ndarray, mech: str) -> np.ndarray:
    m = mags[:, None]
    med, _ = physics.ba08(m, physics.rjb_point_source(epi[None, :], m), vs30[None, :], mech=mech, dtype=np.float64)
    return ((y[None, :] - np.log(med)) ** 2).sum(axis=1)


def magnitude(pga_gal, epi_km, vs30=760.0, mech: str = "U") -> float:
    """Magnitude that best explains the stations' PGA (gal) at their epicentral distances: the least
    squares fit of ln PGA to the BA08 median over M in 2..9 (0.1 steps, then 0.002 around the best)."""
    pga = np.asarray(pga_gal, dtype=np.float64)
    epi = np.asarray(epi_km, dtype=np.float64)
    vs = np.broadcast_to(np.asarray(vs30, dtype=np.float64), pga.shape)
    if pga.size == 0:
        return math.nan
    y = np.log(np.maximum(pga, 1e-12) / G_GAL)
    m0 = float(_MAGS[int(np.argmin(_mag_misfit(_MAGS, y, epi, vs, mech)))])
    fine = np.clip(m0 + 0.002 * np.arange(-50, 51), 2.0, 9.0)
    return float(fine[int(np.argmin(_mag_misfit(fine, y, epi, vs, mech)))])


# --- alerts ---------------------------------------------------------------------------------------
@dataclass
class Alert:
    """Targets (indices into the AlertPolicy's targets) alerted by one event at time `t`."""

    event: int
    t: float
    targets: np.ndarray
    mmi: np.ndarray  # predicted (source-based) or observed (PLUM-like) intensity


class AlertPolicy:
    """Which targets to alert for an event estimate: predicted MMI >= `mmi_threshold` (BA08 median
    PGA at the target's Vs30, Worden et al. 2012), for magnitudes >= `min_mag`; or, PLUM-like, the
    targets within `plum_radius_km` of stations that observed MMI >= the threshold."""

    def __init__(self, lat, lon, vs30=760.0, mmi_threshold: float = 4.0, min_mag: float = 4.0, mech: str = "U",
                 plum_radius_km: float = 30.0):
        self.lat = np.asarray(lat, dtype=np.float64)
        self.lon = np.asarray(lon, dtype=np.float64)
        self.vs30 = np.broadcast_to(np.asarray(vs30, dtype=np.float32), self.lat.shape)
        self.mmi_threshold = float(mmi_threshold)
        self.min_mag = float(min_mag)
        self.mech = mech
        self.plum_radius_km = float(plum_radius_km)
        n = self.lat.shape[0]
        lo, hi = (float(self.vs30.min()), float(self.vs30.max())) if n else (760.0, 760.0)
        self._vs_grid = np.unique(np.geomspace(lo, hi, 17)) if hi > lo else np.array([lo])
        self._r_grid = np.concatenate([[0.0], np.geomspace(0.5, 5000.0, 400)])
        self._grid: GridIndex | None = None

    def __len__(self) -> int:
        return self.lat.shape[0]

    def predicted_mmi(self, qlat: float, qlon: float, mag: float, idx=None) -> np.ndarray:
        la = self.lat if idx is None else self.lat[idx]
        lo = self.lon if idx is None else self.lon[idx]
        vs = self.vs30 if idx is None else self.vs30[idx]
        epi = epicentral_km(la, lo, qlat, qlon)
        med, _ = physics.ba08(mag, physics.rjb_point_source(epi, mag), vs, mech=self.mech)
        return physics.mmi_from_pga(med * np.float32(G_GAL))

    def reach_km(self, mag: float) -> float:
        """A distance beyond which no target reaches the threshold (max over the targets' Vs30 range)."""
        r = self._r_grid[:, None]
        med, _ = physics.ba08(mag, physics.rjb_point_source(r, mag), self._vs_grid[None, :], mech=self.mech, dtype=np.float64)
        ok = (physics.mmi_from_pga(med * G_GAL, dtype=np.float64) >= self.mmi_threshold).any(axis=1)
        if not ok.any():
            return -1.0
        last = int(np.flatnonzero(ok)[-1])
        return float(self._r_grid[min(last + 1, self._r_grid.size - 1)]) * 1.05 + 1.0

    def decide(self, qlat: float, qlon: float, mag: float, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(target indices, predicted MMI) reaching the threshold, less those in the boolean `exclude`."""
        if not (mag >= self.min_mag) or len(self) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        reach = self.reach_km(mag)
        if reach < 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        # Cheap box first (degrees), then the model only for targets that can reach the threshold.
        dlat = reach / _KM_PER_DEG
        dlon = reach / (_KM_PER_DEG * max(math.cos(math.radians(min(abs(qlat) + dlat, 89.9))), 1e-6))
        box = (np.abs(self.lat - qlat) <= dlat) & (np.abs(((self.lon - qlon) + 180.0) % 360.0 - 180.0) <= dlon)
        if exclude is not None:
            box &= ~exclude
        idx = np.flatnonzero(box)
        mmi = self.predicted_mmi(qlat, qlon, mag, idx)
        keep = mmi >= self.mmi_threshold
        return idx[keep], mmi[keep]

    def decide_plum(self, st_lat, st_lon, st_mmi, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """PLUM-like: targets within plum_radius_km of a station with observed MMI >= threshold; each
        target gets the highest such observed MMI."""
        st_mmi = np.asarray(st_mmi, dtype=np.float32)
        strong = st_mmi >= self.mmi_threshold
        out = np.full(len(self), -np.inf, dtype=np.float32)
        if self._grid is None:
            self._grid = GridIndex(self.lat, self.lon, self.plum_radius_km)
        for la, lo, mm in zip(np.asarray(st_lat)[strong], np.asarray(st_lon)[strong], st_mmi[strong]):
            near = self._grid.near(float(la), float(lo), self.plum_radius_km)
            out[near] = np.maximum(out[near], mm)
        hit = np.isfinite(out)
        if exclude is not None:
            hit &= ~exclude
        idx = np.flatnonzero(hit)
        return idx, out[idx]


# --- the aggregator ----------------------------------------------------------------------------------
@dataclass
class Event:
    """An event the network declared, with its current estimate."""

    id: int
    declared_at: float
    lat: float
    lon: float
    depth_km: float
    t0: float
    mag: float
    n: int = 0  # detections associated
    core: Detections = field(default_factory=Detections.empty)  # the earliest onsets: locate, magnitude
    member_ids: list = field(default_factory=list)  # id arrays of every associated detection
    last_update: float = -math.inf
    alert_mag: float = math.nan  # estimate at the last alert decision
    alert_lat: float = math.nan
    alert_lon: float = math.nan
    alerted: np.ndarray | None = None  # bool over targets
    n_alerted: int = 0
    first_alert_t: float = math.inf
    first_estimate: tuple | None = None  # (t, lat, lon, depth, t0, mag) at the first alert
    history: list = field(default_factory=list)  # (t, lat, lon, depth_km, t0, mag, n)
    fresh: list = field(default_factory=list)  # PLUM-like: strong stations not yet looked at
    misfit_s: float = math.nan
    reach_km: float = math.inf  # until confirmed, claim no onset farther (no node could detect it)
    confirmed: bool = False
    closed: bool = False
    _loc_n: int = 0

    def ids(self) -> np.ndarray:
        return np.concatenate(self.member_ids) if self.member_ids else np.zeros(0, np.int64)


class Aggregator:
    """The network side: detections in, alerts out (`ingest`), event state kept in between."""

    def __init__(self, cfg: PolicyConfig, vm, alert_policy: AlertPolicy, node_lat=None, node_lon=None, active=None):
        self.cfg = cfg
        self.vm = vm
        self.policy = alert_policy
        self.assoc = Associator.from_config(cfg, node_lat, node_lon, active)
        self.events: list[Event] = []
        self.alerts: list[Alert] = []
        # The network as the aggregator knows it (from heartbeats): for the not-yet-arrived check.
        self.node_lat = None if node_lat is None else np.asarray(node_lat, dtype=np.float64)
        self.node_lon = None if node_lon is None else np.asarray(node_lon, dtype=np.float64)
        self.node_active = None if active is None else np.asarray(active, dtype=bool)
        self._grid: GridIndex | None = None
        self._nya_nodes = np.zeros(0, np.int64)
        # Latest onset reported by each node (any event, or none): for the not-yet-arrived check.
        self.last_onset = None if node_lat is None else np.full(self.node_lat.shape[0], -np.inf)

    def active(self) -> list[Event]:
        return [e for e in self.events if not e.closed]

    def next_update(self, now: float) -> float:
        """When the aggregator next needs its input: at once while idle, else at the next update."""
        act = self.active()
        if not act:
            return now
        return max(now, min(e.last_update for e in act) + self.cfg.update_s)

    def ingest(self, dets: Detections, now: float) -> list[Alert]:
        """Process detection messages received by `now`; return the alerts issued."""
        cfg = self.cfg
        for e in self.active():
            if now > e.t0 + cfg.event_s or (not e.confirmed and now > e.declared_at + cfg.confirm_timeout_s):
                e.closed = True
                e.alerted = None
        if self.last_onset is not None and len(dets):
            np.maximum.at(self.last_onset, dets.node, dets.t)
        if len(dets) > 1:
            dets = dets.take(np.argsort(dets.t, kind="stable"))
        changed: list[Event] = []
        rest = self._claim(dets, changed)
        while len(rest):
            cluster, used = self.assoc.add(rest)
            rest = rest.take(slice(used, None))
            if cluster is None:
                break
            ev = self._declare(cluster, now)
            changed.append(ev)
            rest = self._claim(rest, changed, only=ev)
        out: list[Alert] = []
        for ev in changed:
            a = self._update(ev, now)
            if a is not None:
                out.append(a)
        self.alerts.extend(out)
        return out

    # -- internals --
    def _claim(self, dets: Detections, changed: list, only: Event | None = None) -> Detections:
        """Let active events claim the detections consistent with their P-to-S window; a detection
        that fits several goes to the event whose predicted P it fits best."""
        events = [only] if only is not None else self.active()
        if not len(dets) or not events:
            return dets
        cfg = self.cfg
        best = np.full(len(dets), -1, dtype=np.int64)
        best_r = np.full(len(dets), np.inf)
        for k, ev in enumerate(events):
            if cfg.method == "plum":
                hit = (dets.t >= ev.t0 - cfg.window_s) & self.assoc.eligible(dets)
                r = np.where(hit, np.abs(dets.t - ev.t0), np.inf)
            else:
                epi = epicentral_km(dets.lat, dets.lon, ev.lat, ev.lon)
                tp = ev.t0 + self.vm.p_time(epi, ev.depth_km)
                ts = ev.t0 + self.vm.s_time(epi, ev.depth_km)
                late = ts + cfg.assoc_tol_s + (cfg.coda_s if ev.confirmed else 0.0)
                reach = cfg.max_assoc_km if ev.confirmed else min(cfg.max_assoc_km, ev.reach_km)
                hit = (dets.t >= tp - cfg.assoc_tol_s) & (dets.t <= late) & (epi <= reach)
                if not ev.confirmed and hit.any():
                    hit[hit] = self._near_core(ev, dets.lat[hit], dets.lon[hit])
                r = np.where(hit, np.abs(dets.t - tp), np.inf)
            better = r < best_r
            best[better] = k
            best_r[better] = r[better]
        free = best < 0
        for k, ev in enumerate(events):
            mine = best == k
            if mine.any():
                self._attach(ev, dets.take(mine))
                if ev not in changed:
                    changed.append(ev)
        return dets if free.all() else dets.take(free)

    def _near_core(self, ev: Event, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Which points lie within the association distance of one of the event's core stations."""
        c = ev.core
        r = self.assoc.screen_km()
        dlat = r / _KM_PER_DEG
        dlon = dlat / max(math.cos(math.radians(min(float(np.abs(c.lat).max()) + dlat, 89.0))), 1e-6)
        out = np.zeros(lat.shape[0], dtype=bool)
        box = (lat >= c.lat.min() - dlat) & (lat <= c.lat.max() + dlat) & (lon >= c.lon.min() - dlon) & (lon <= c.lon.max() + dlon)
        i = np.flatnonzero(box)
        for la, lo in zip(c.lat, c.lon):
            if not i.size:
                break
            hit = epicentral_km(lat[i], lon[i], float(la), float(lo)) <= r
            out[i[hit]] = True
            i = i[~hit]
        return out

    def _attach(self, ev: Event, got: Detections) -> None:
        ev.n += len(got)
        ev.member_ids.append(got.id)
        self.assoc.forget(got.id)
        if self.cfg.method == "plum":
            ev.fresh.append(got)
        if len(ev.core) < self.cfg.loc_max:
            ev.core = Detections.concat([ev.core, got])
            if len(ev.core) > self.cfg.loc_max:
                ev.core = ev.core.take(np.argsort(ev.core.t, kind="stable")[: self.cfg.loc_max])

    def _declare(self, cluster: Detections, now: float) -> Event:
        ev = Event(id=len(self.events), declared_at=now, lat=math.nan, lon=math.nan, depth_km=self.cfg.depths_km[0],
                   t0=math.nan, mag=math.nan)
        self.events.append(ev)
        self._attach(ev, cluster)
        self._relocate(ev)
        return ev

    def _p_onsets(self, ev: Event) -> np.ndarray:
        c = ev.core
        epi = epicentral_km(c.lat, c.lon, ev.lat, ev.lon)
        return np.abs(c.t - (ev.t0 + self.vm.p_time(epi, ev.depth_km))) <= self.cfg.p_tol_s

    def _relocate(self, ev: Event) -> None:
        c = ev.core
        cfg = self.cfg
        if cfg.method == "plum":
            ev.lat, ev.lon = float(c.lat.mean()), float(c.lon.mean())
            ev.t0 = float(c.t.min())
            ev._loc_n = len(c)
            return
        use = np.ones(len(c), dtype=bool) if math.isnan(ev.t0) else self._p_onsets(ev)
        if use.sum() < 3 and len(c) >= 3:
            use[:] = True
        loc = locate(c.lat[use], c.lon[use], c.t[use], self.vm, cfg.depths_km, cfg.grid_half_km, cfg.grid_step_km)
        ev.lat, ev.lon, ev.depth_km, ev.t0, ev.misfit_s = loc.lat, loc.lon, loc.depth_km, loc.t0, loc.misfit_s
        ev._loc_n = len(c)

    def _update(self, ev: Event, now: float) -> Alert | None:
        cfg = self.cfg
        if len(ev.core) > ev._loc_n:
            self._relocate(ev)
        ev.last_update = now
        if cfg.method == "plum":
            # PLUM looks at every strong station of the event, not only the core.
            c = Detections.concat(ev.fresh)
            ev.fresh = []
            ev.history.append((now, ev.lat, ev.lon, ev.depth_km, ev.t0, math.nan, ev.n))
            obs = physics.mmi_from_pga(c.pga, dtype=np.float64)
            idx, mmi = self.policy.decide_plum(c.lat, c.lon, obs, ev.alerted)
            return self._issue(ev, idx, mmi, now)
        c = ev.core
        p_on = self._p_onsets(ev)
        if not p_on.any():
            p_on[:] = True
        epi = epicentral_km(c.lat, c.lon, ev.lat, ev.lon)
        ts = ev.t0 + self.vm.s_time(epi, ev.depth_km)
        # Before the S wave the node has seen the P wave only: scale its PGA up by the P/final ratio.
        pga = np.where(c.t_det < ts, c.pga / cfg.p_pga_ratio, c.pga)
        ev.mag = magnitude(pga[p_on], epi[p_on], c.vs30[p_on], cfg.mech)
        ev.reach_km = self._reach(ev.mag)
        ev.history.append((now, ev.lat, ev.lon, ev.depth_km, ev.t0, ev.mag, ev.n))
        if not ev.confirmed:
            ev.confirmed = self._confirm(ev, now)
            if not ev.confirmed:
                return None
        moved = math.isnan(ev.alert_mag) or abs(ev.mag - ev.alert_mag) >= cfg.update_dmag or \
            _km(ev.lat, ev.lon, ev.alert_lat, ev.alert_lon) >= cfg.update_dloc_km
        if not moved:
            return None
        ev.alert_mag, ev.alert_lat, ev.alert_lon = ev.mag, ev.lat, ev.lon
        idx, mmi = self.policy.decide(ev.lat, ev.lon, ev.mag, ev.alerted)
        return self._issue(ev, idx, mmi, now)

    def _confirm(self, ev: Event, now: float) -> bool:
        """The event's onsets fit one source, and enough of the nodes it should have reached triggered."""
        cfg = self.cfg
        if ev._loc_n >= 4 and ev.misfit_s > cfg.max_misfit_s:
            return False
        if cfg.nya_fraction <= 0 or self.node_lat is None or not math.isfinite(ev.mag):
            return True
        if self._grid is None:
            self._grid = self._nya_grid()
        # Nodes near the epicentre and near the first onsets of the event: an event located away
        # from its stations must also explain why the nodes between them and it stayed quiet.
        c = ev.core
        first = np.argsort(c.t, kind="stable")[:4]
        lats = np.concatenate([[ev.lat], c.lat[first]])
        lons = np.concatenate([[ev.lon], c.lon[first]])
        sub = np.unique(np.concatenate([self._grid.near(float(la), float(lo), cfg.radius_km) for la, lo in zip(lats, lons)]))
        idx = self._nya_nodes[sub]
        epi = epicentral_km(self.node_lat[idx], self.node_lon[idx], ev.lat, ev.lon)
        tp = ev.t0 + self.vm.p_time(epi, ev.depth_km)
        due = tp + cfg.nya_wait_s <= now
        if due.any():
            # Due only where the P wave is strong enough to trigger: nya_min_pga_gal, or half what
            # the event's own stations are predicted to see (scale-free, whatever the magnitude).
            core_epi = epicentral_km(c.lat, c.lon, ev.lat, ev.lon)
            med_c, _ = physics.ba08(ev.mag, physics.rjb_point_source(core_epi, ev.mag), 760.0, mech=cfg.mech, dtype=np.float64)
            thr = min(cfg.nya_min_pga_gal, 0.5 * float(np.median(med_c)) * G_GAL * cfg.p_pga_ratio)
            med, _ = physics.ba08(ev.mag, physics.rjb_point_source(epi[due], ev.mag), 760.0, mech=cfg.mech, dtype=np.float64)
            due[due] = med * G_GAL * cfg.p_pga_ratio >= thr
        if not due.any():
            return True
        # Triggered by THIS event: an onset in its P-to-S window (not an earlier quake's).
        ts = ev.t0 + self.vm.s_time(epi[due], ev.depth_km)
        last = self.last_onset[idx[due]]
        triggered = (last >= tp[due] - cfg.assoc_tol_s) & (last <= ts + cfg.assoc_tol_s)
        return float(triggered.mean()) >= cfg.nya_fraction

    def _reach(self, mag: float) -> float:
        """Distance beyond which even a quarter of nya_min_pga_gal is not expected in the P wave."""
        if not math.isfinite(mag):
            return math.inf
        r = _REACH_R
        med, _ = physics.ba08(mag, physics.rjb_point_source(r, mag), 760.0, mech=self.cfg.mech, dtype=np.float64)
        ok = np.flatnonzero(med * G_GAL * self.cfg.p_pga_ratio >= 0.25 * self.cfg.nya_min_pga_gal)
        return float(r[min(ok[-1] + 1, r.size - 1)]) if ok.size else float(r[0])

    def _nya_grid(self) -> GridIndex:
        """A spatial index over the active nodes, thinned (every m-th node) to about _NYA_SAMPLE
        nodes per disc of radius_km: the check looks at a share, which a regular subsample keeps."""
        idx = np.arange(self.node_lat.shape[0]) if self.node_active is None else np.flatnonzero(self.node_active)
        if idx.size:
            la, lo = self.node_lat[idx], self.node_lon[idx]
            h = max(float(la.max() - la.min()), 1e-3) * _KM_PER_DEG
            w = max(float(lo.max() - lo.min()), 1e-3) * _KM_PER_DEG * math.cos(math.radians(float(np.abs(la).mean())))
            per_disc = idx.size * math.pi * self.cfg.radius_km ** 2 / (h * w)
            idx = idx[:: max(1, int(per_disc // _NYA_SAMPLE))]
        self._nya_nodes = idx
        return GridIndex(self.node_lat[idx], self.node_lon[idx], self.cfg.radius_km)

    def _issue(self, ev: Event, idx: np.ndarray, mmi: np.ndarray, now: float) -> Alert | None:
        if not idx.size:
            return None
        if ev.alerted is None:
            ev.alerted = np.zeros(len(self.policy), dtype=bool)
        ev.alerted[idx] = True
        ev.n_alerted += int(idx.size)
        if ev.first_estimate is None:
            ev.first_alert_t = now
            ev.first_estimate = (now, ev.lat, ev.lon, ev.depth_km, ev.t0, ev.mag)
        return Alert(ev.id, now, idx, mmi)

