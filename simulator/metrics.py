"""Figures of merit of a scenario run, beside the physical limit, and false alerts per year.

`score(result)` -> a JSON-able dict:
- per MMI threshold, over the targets (population-weighted too when the targets carry population):
  `true` (alert delivered before the S wave), `late` (alerted, S first), `missed` (shaking reached
  the threshold, no alert), `false` (alerted, shaking stayed below the threshold);
- the warning-time distribution of the true alerts at the policy's threshold;
- the blind-zone radius: the epicentral distance the S wave has reached when the first alert goes
  out (analytic, from the velocity model), and the farthest late-alerted target;
- the time from origin to the first alert (issued, and delivered to the first target);
- location and magnitude error at the first alert and at the last update;
- the ORACLE beside all of it: the physical limit of the network, an alert with zero latency at the
  k-th P arrival over the nodes that are up, to every target whose shaking reaches the threshold.

`false_alerts_per_year(layout, cfg, years, seed)`: a long run of false triggers (no earthquake)
through the same policy: events declared, events that alerted, targets alerted, per year. The
Poisson streams are generated vectorised; a vectorised screen keeps only the stretches where k
detections come close enough in time and space to form an event, and SimPy runs those through the
aggregator (`policy.screen` gives a necessary condition, so no event is lost, unless a message is
delayed by more than a minute).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from . import engine, nodes, physics
from .engine import Result, ScenarioConfig
from .layouts import SITE_CLASSES, Layout
from .policy import Detections, screen

_PCTS = (5, 25, 50, 75, 95)
_SECONDS_PER_YEAR = 365.25 * 86400.0


def blind_zone_km(vm: physics.VelocityModel, depth_km: float, t_after_origin: float) -> float:
    """Epicentral radius the S wave has reached `t_after_origin` seconds after the origin.

    Constant velocities: physics.blind_zone_radius, exactly. Layered: S time inverted by bisection.
    """
    if not math.isfinite(t_after_origin):
        return math.inf if t_after_origin > 0 else 0.0
    if vm.is_constant:
        _, vp, vs = vm.layers[0]
        return float(physics.blind_zone_radius(depth_km, vp, vs, t_after_origin))
    lo, hi = 0.0, 5000.0
    if float(vm.s_time(np.array([0.0]), depth_km)[0]) >= t_after_origin:
        return 0.0
    if float(vm.s_time(np.array([hi]), depth_km)[0]) <= t_after_origin:
        return hi
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if float(vm.s_time(np.array([mid]), depth_km)[0]) < t_after_origin:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _pct(x: np.ndarray) -> dict:
    if x.size == 0:
        return {"n": 0}
    q = np.percentile(x, _PCTS)
    out = {"n": int(x.size), "mean": round(float(x.mean()), 2)}
    out.update({"p%d" % p: round(float(v), 2) for p, v in zip(_PCTS, q)})
    return out


def _count(mask: np.ndarray, w: np.ndarray | None) -> dict:
    out: dict = {"n": int(mask.sum())}
    if w is not None:
        out["population"] = round(float(w[mask].sum()), 1)
    return out


def _r(x: float, nd: int = 2):
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def _km(lat1, lon1, lat2, lon2) -> float:
    return float(physics.epicentral_km(np.array([lat1]), np.array([lon1]), lat2, lon2)[0])


def oracle(res: Result, thresholds=None) -> dict:
    """The physical limit: zero latency, perfect knowledge, alert at the k-th P arrival."""
    thresholds = res.cfg.metrics.mmi_thresholds if thresholds is None else thresholds
    q = res.quake
    vm = res.cfg.physics.velocity_model()
    t_k = res.kth_p_t
    warn = res.target_ts - t_k
    w = res.targets.population
    out = {"alert_after_origin_s": _r(t_k - q.t0), "blind_zone_km": _r(blind_zone_km(vm, q.depth_km, t_k - q.t0), 1),
           "thresholds": {}}
    for thr in thresholds:
        need = res.target_mmi >= thr
        out["thresholds"]["%g" % thr] = {"need": _count(need, w), "true": _count(need & (warn > 0), w),
                                         "late": _count(need & (warn <= 0), w)}
    pol = res.cfg.policy.mmi_threshold
    need = res.target_mmi >= pol
    out["warning_s"] = _pct(warn[need & (warn > 0)])
    return out


def score(res: Result, thresholds=None) -> dict:
    """Metrics of a scenario run (see the module docstring), with the oracle beside them."""
    thresholds = res.cfg.metrics.mmi_thresholds if thresholds is None else thresholds
    q = res.quake
    vm = res.cfg.physics.velocity_model()
    w = res.targets.population
    alerted = np.isfinite(res.alert_t)
    warn = res.target_ts - res.alert_t
    per = {}
    for thr in thresholds:
        need = res.target_mmi >= thr
        per["%g" % thr] = {"need": _count(need, w), "true": _count(need & alerted & (warn > 0), w),
                           "late": _count(need & alerted & (warn <= 0), w), "missed": _count(need & ~alerted, w),
                           "false": _count(~need & alerted, w)}
    pol = res.cfg.policy.mmi_threshold
    need = res.target_mmi >= pol
    first_issued = res.first_alert_t
    first_delivered = float(res.alert_t[alerted].min()) if alerted.any() else math.inf
    late = need & alerted & (warn <= 0)
    true_events = [e for e, ok in zip(res.events, res.event_true) if ok]
    ev = true_events[0] if true_events else None
    est: dict = {}
    if ev is not None:
        if ev.first_estimate is not None:
            _, la, lo, z, t0, m = ev.first_estimate
            est["first_alert"] = {"location_error_km": _r(_km(la, lo, q.lat, q.lon), 1), "depth_km": _r(z, 1),
                                  "origin_error_s": _r(t0 - q.t0), "mag": _r(m), "mag_error": _r(m - q.mag)}
        est["final"] = {"location_error_km": _r(_km(ev.lat, ev.lon, q.lat, q.lon), 1), "depth_km": _r(ev.depth_km, 1),
                        "origin_error_s": _r(ev.t0 - q.t0), "mag": _r(ev.mag), "mag_error": _r(ev.mag - q.mag),
                        "detections": ev.n, "updates": len(ev.history)}
    false_events = [e for e, ok in zip(res.events, res.event_true) if not ok]
    points = {}
    n_named = len(res.targets.names)
    if n_named:
        first_named = int(np.flatnonzero(res.targets.node_index < 0)[0])
        for i, name in enumerate(res.targets.names):
            j = first_named + i
            points[name] = {"epi_km": _r(res.target_epi_km[j], 1), "mmi": _r(res.target_mmi[j], 1),
                            "s_after_origin_s": _r(res.target_ts[j] - q.t0),
                            "alert_after_origin_s": _r(res.alert_t[j] - q.t0),
                            "warning_s": _r(warn[j]) if alerted[j] else None,
                            "oracle_warning_s": _r(res.target_ts[j] - res.kth_p_t)}
    return {
        "scenario": res.cfg.scenario.name,
        "quake": {"name": q.name, "mag": q.mag, "lat": q.lat, "lon": q.lon, "depth_km": q.depth_km},
        "seed": res.seed,
        "zero_noise": res.zero_noise,
        "nodes": res.n_nodes,
        "targets": int(res.target_ts.size),
        "population_weighted": w is not None,
        "first_alert_after_origin_s": _r(first_issued - q.t0),
        "first_delivery_after_origin_s": _r(first_delivered - q.t0),
        "blind_zone_km": _r(blind_zone_km(vm, q.depth_km, first_issued - q.t0), 1),
        "late_alert_max_km": _r(float(res.target_epi_km[late].max()), 1) if late.any() else None,
        "thresholds": per,
        "policy_mmi_threshold": pol,
        "warning_s": _pct(warn[need & alerted & (warn > 0)]),
        "estimate": est,
        "false_events": len(false_events),
        "false_event_site_alerts": int(sum(e.n_alerted for e in false_events)),
        "points": points,
        "oracle": oracle(res, thresholds),
        "counts": res.counts,
        "timings_s": {k: round(v, 4) for k, v in res.timings.items()},
    }


def _windows(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge [start, end] intervals (starts sorted)."""
    if not starts.size:
        return starts, ends
    top = np.maximum.accumulate(ends)
    brk = np.flatnonzero(starts[1:] > top[:-1]) + 1
    return starts[np.concatenate([[0], brk])], top[np.concatenate([brk - 1, [ends.size - 1]])]


def _inside(t: np.ndarray, s_m: np.ndarray, e_m: np.ndarray) -> np.ndarray:
    """Which times fall in one of the merged windows [s_m, e_m]."""
    if not s_m.size or not t.size:
        return np.zeros(t.shape[0], dtype=bool)
    k = np.searchsorted(s_m, t, side="right") - 1
    return (k >= 0) & (t <= e_m[np.maximum(k, 0)])


def false_alerts_per_year(layout: Layout, cfg: ScenarioConfig | None = None, years: float = 1.0, seed: int = 0,
                          chunk_triggers: int = 1_000_000) -> dict:
    """False events and false alerts per year from a long run of false triggers (no earthquake).

    The nodes' false triggers (Poisson by site class, thinned by each node's uptime 1 - outage_p)
    go through the telemetry and the same aggregator as a scenario. Zero-noise mode is ignored
    (false triggers are noise). The run is generated and screened in stretches of about
    `chunk_triggers` triggers (memory stays flat); a stretch also screens the end of the one before,
    so no cluster across a boundary is missed. What passes the screen, from every stretch, then goes
    through SimPy in one run.
    """
    cfg = ScenarioConfig() if cfg is None else cfg
    cfg = replace(cfg, scenario=replace(cfg.scenario, zero_noise=False))
    clock = time.perf_counter
    t_begin = clock()
    rs = engine.Streams(seed)
    t_end = float(years) * _SECONDS_PER_YEAR
    up = layout.outage_p.astype(np.float64)
    vm = cfg.physics.velocity_model()
    targets = engine.build_targets(layout, cfg)
    agg = engine.make_aggregator(cfg, vm, targets, layout, None)
    pc = cfg.policy
    margin = pc.window_s + 60.0  # messages up to a minute late still meet their cluster
    rate = float(nodes.false_rates_per_day(layout.site_class, SITE_CLASSES, cfg.nodes.false_per_day).sum()) / 86400.0
    n_parts = max(1, int(math.ceil(rate * t_end / chunk_triggers)))
    edges = np.linspace(0.0, t_end, n_parts + 1)
    carry = Detections.empty()
    carry_arr = np.zeros(0)
    win_s, win_e = np.zeros(0), np.zeros(0)
    picked, picked_arr = [], []
    n_triggers = n_cand = 0
    t_screen = 0.0
    for i in range(n_parts):
        msgs = engine.node_messages(layout, cfg, float(edges[i]), float(edges[i + 1]), rs.part(i), online=None,
                                    false_triggers=True)
        dets, arrival = msgs["dets"], msgs["arrival"]
        dets.id = dets.id + (i << 40)  # unique over the run
        if np.any(up > 0):  # a node is down a share outage_p of the time: thin its triggers
            keep = rs.part(i)("uptime").random(len(dets)) >= up[dets.node]
            dets, arrival = dets.take(keep), arrival[keep]
        n_triggers += len(dets)
        t0 = clock()
        # Screen this stretch together with the end of the previous one.
        both = Detections.concat([carry, dets])
        both_arr = np.concatenate([carry_arr, arrival])
        e_idx = np.flatnonzero(agg.assoc.eligible(both))
        order = e_idx[np.argsort(both.t[e_idx], kind="stable")]
        cand = screen(both.t[order], both.lat[order], both.lon[order], both.node[order], pc.k,
                      agg.assoc.screen_km(), pc.window_s)
        n_cand += int(cand[order >= len(carry)].sum())
        ca = np.sort(both_arr[order[cand]])
        s_new, e_new = ca - margin, ca + pc.event_s + margin
        ws = np.concatenate([win_s, s_new])
        o = np.argsort(ws, kind="stable")
        win_s, win_e = _windows(ws[o], np.concatenate([win_e, e_new])[o])
        sel = _inside(both_arr, win_s, win_e)
        if sel.any():
            picked.append(both.take(sel))
            picked_arr.append(both_arr[sel])
        tail = both.t >= float(edges[i + 1]) - margin
        carry, carry_arr = both.take(tail), both_arr[tail]
        t_screen += clock() - t0
    del carry, carry_arr
    t_gen = clock() - t_begin - t_screen
    t_sim0 = clock()
    dets = Detections.concat(picked)
    arrival = np.concatenate(picked_arr) if picked_arr else np.zeros(0)
    _, first = np.unique(dets.id, return_index=True)  # a message picked in two stretches
    o = first[np.argsort(arrival[first], kind="stable")]
    run = engine.run_aggregator(dets.take(o), arrival[o], agg, cfg.alert.processing_s, 0.0)
    t_sim = clock() - t_sim0
    pop = targets.population
    site_alerts = sum(int(a.targets.size) for a in agg.alerts)
    pop_alerts = sum(float(pop[a.targets].sum()) for a in agg.alerts) if pop is not None else None
    alerting = {a.event for a in agg.alerts}
    per_year = 1.0 / float(years)
    return {
        "nodes": len(layout),
        "years": float(years),
        "seed": seed,
        "false_triggers": int(n_triggers),
        "false_triggers_per_node_day": round(n_triggers / max(len(layout), 1) / (t_end / 86400.0), 3),
        "screened_messages": int(o.size),
        "candidates": n_cand,
        "events_per_year": round(len(agg.events) * per_year, 3),
        "alerting_events_per_year": round(len(alerting) * per_year, 3),
        "site_alerts_per_year": round(site_alerts * per_year, 3),
        "population_alerts_per_year": None if pop_alerts is None else round(pop_alerts * per_year, 1),
        "aggregator_cycles": run["cycles"],
        "seconds": {"generate": round(t_gen, 3), "screen": round(t_screen, 3), "simpy": round(t_sim, 3),
                    "total": round(clock() - t_begin, 3)},
    }
