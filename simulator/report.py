"""Reports a person would rather look at than read: maps and plots (PNG, matplotlib) in a
Markdown page.

    from seismote.simulator import report
    report.write_report(engine_result, "out/")      # one scenario run: maps + warning-time histogram
    report.write_report(sweep_result, "out/")       # a sweep: metric vs parameter plots, the summary
                                                    # table, and the maps of one of its runs

One scenario run (`engine.Result`):
- network.png: the nodes (detected / up but not detected / offline), the epicentre, the named
  points and the blind zone (simulated: where the S wave is when the first alert goes out; the
  physical limit: the same at the k-th P arrival with no latency);
- warning_map.png: the warning time at every target that needed one (MMI >= the policy's
  threshold), late and missed targets marked;
- footprint.png: who was alerted beside who needed it: in time, late, missed, false alert;
- warning_hist.png: the warning-time distribution beside the physical limit's.
Maps are in longitude/latitude with the aspect of a local equal-distance map and a km scale bar.

A sweep (`sweep.SweepResult`): sweep_<parameter>.png for each swept parameter (median warning time
with its p10-p90 band, the share of MMI >= mmi sites warned in time, the first alert time beside
the physical limit, missed and false site alerts; one line per combination of the other
parameters), and the maps above for run 0 of parameter point 0 (re-run here: same seed, same run).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

_KM_PER_DEG = 111.195
_COLORS = {"in time": "#1a9850", "late": "#fdae61", "missed": "#d73027", "false alert": "#7b3294",
           "no alert, none needed": "#c8c8c8"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --- maps -----------------------------------------------------------------------------------------
def _circle(lat: float, lon: float, r_km: float, n: int = 181) -> tuple[np.ndarray, np.ndarray]:
    th = np.linspace(0.0, 2 * math.pi, n)
    dlat = r_km / _KM_PER_DEG * np.sin(th)
    dlon = r_km / (_KM_PER_DEG * max(math.cos(math.radians(lat)), 1e-6)) * np.cos(th)
    return lat + dlat, lon + dlon


def _nice_km(span_km: float) -> float:
    target = span_km / 5.0
    p = 10 ** math.floor(math.log10(max(target, 1e-3)))
    for m in (1, 2, 5, 10):
        if m * p >= target:
            return m * p
    return 10 * p


def _map_axes(ax, lat: np.ndarray, lon: np.ndarray, quake) -> None:
    """Equal-distance aspect, lat/lon labels, limits around the sites and the epicentre, a km bar."""
    la = np.concatenate([np.asarray(lat, float), [quake.lat]])
    lo = np.concatenate([np.asarray(lon, float), [quake.lon]])
    la0, la1, lo0, lo1 = float(la.min()), float(la.max()), float(lo.min()), float(lo.max())
    pad_la = max(0.05 * (la1 - la0), 0.05)
    pad_lo = max(0.05 * (lo1 - lo0), 0.05)
    ax.set_xlim(lo0 - pad_lo, lo1 + pad_lo)
    ax.set_ylim(la0 - pad_la, la1 + pad_la)
    mid = 0.5 * (la0 + la1)
    ax.set_aspect(1.0 / max(math.cos(math.radians(mid)), 1e-6))
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.grid(True, lw=0.3, alpha=0.5)
    # scale bar, lower left
    kx = _KM_PER_DEG * math.cos(math.radians(mid))
    span_km = (lo1 - lo0 + 2 * pad_lo) * kx
    bar = _nice_km(span_km)
    x0 = lo0 - pad_lo + 0.05 * (lo1 - lo0 + 2 * pad_lo)
    y0 = la0 - pad_la + 0.05 * (la1 - la0 + 2 * pad_la)
    ax.plot([x0, x0 + bar / kx], [y0, y0], color="k", lw=3, solid_capstyle="butt", zorder=6)
    ax.text(x0 + 0.5 * bar / kx, y0, "%g km\n" % bar, ha="center", va="bottom", fontsize=8, zorder=6)


def _epicentre(ax, quake) -> None:
    ax.plot(quake.lon, quake.lat, marker="*", ms=18, mfc="gold", mec="k", ls="none", zorder=7,
            label="epicentre, M%.1f, %.0f km deep" % (quake.mag, quake.depth_km))


def _blind_zones(ax, quake, sim_km, oracle_km) -> None:
    for r, style, what in ((sim_km, "-", "blind zone, simulated"), (oracle_km, "--", "blind zone, physical limit")):
        if r is None or not math.isfinite(r):
            ax.plot([], [], color="crimson", ls=style, label="%s: no alert" % what)
            continue
        if r > 0:
            y, x = _circle(quake.lat, quake.lon, r)
            ax.plot(x, y, color="crimson", ls=style, lw=1.5, zorder=5, label="%s: %.0f km" % (what, r))
        else:
            ax.plot([], [], color="crimson", ls=style, label="%s: 0 km (alert before S reaches the surface)" % what)


def _points(ax, res) -> None:
    t = res.targets
    named = np.flatnonzero(t.node_index < 0)[: len(t.names)]
    for j, name in zip(named, t.names):
        ax.plot(t.lon[j], t.lat[j], marker="^", ms=9, mfc="white", mec="k", ls="none", zorder=8)
        ax.annotate(name, (t.lon[j], t.lat[j]), xytext=(6, 6), textcoords="offset points", fontsize=9, zorder=8,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.7, "lw": 0})


def _node_positions(res, layout):
    if layout is not None and len(layout) == res.n_nodes:
        return np.asarray(layout.lat), np.asarray(layout.lon)
    t = res.targets
    idx = t.node_index
    if np.count_nonzero(idx >= 0) == res.n_nodes:
        lat = np.empty(res.n_nodes)
        lon = np.empty(res.n_nodes)
        lat[idx[idx >= 0]] = t.lat[idx >= 0]
        lon[idx[idx >= 0]] = t.lon[idx >= 0]
        return lat, lon
    from . import engine

    lay = engine.build_layout(res.cfg)
    if len(lay) == res.n_nodes:
        return np.asarray(lay.lat), np.asarray(lay.lon)
    return None, None


def _msize(n: int) -> float:
    return float(np.clip(15000.0 / max(n, 1), 0.5, 30.0))


def _finish_map(fig, ax, res, q, blind_zones, extent, title, path):
    """The parts every scenario map shares: epicentre, blind zones, named points, axes, title, legend."""
    _epicentre(ax, q)
    _blind_zones(ax, q, *blind_zones)
    _points(ax, res)
    _map_axes(ax, extent[0], extent[1], q)
    ax.set_title(_title(res, title))
    _legend(ax)
    return _save(fig, path)


def _legend(ax, ncol: int = 2):
    """Below the map, so it never hides data; markers at a readable size whatever the map's."""
    leg = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=ncol, fontsize=8, frameon=False)
    for h in leg.legend_handles:
        if hasattr(h, "set_sizes"):
            h.set_sizes([30.0])
        elif hasattr(h, "set_markersize") and h.get_marker() not in (None, "None", ""):
            h.set_markersize(min(h.get_markersize(), 12.0))
    return leg


def _title(res, what: str) -> str:
    return "%s\n%s: M%.1f, %d nodes, seed %d" % (what, res.cfg.scenario.name, res.quake.mag, res.n_nodes, res.seed)


def scenario_figures(res, out_dir, layout=None, prefix: str = "") -> dict:
    """The four PNGs of one scenario run; returns {name: path}."""
    from . import metrics

    plt = _plt()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = metrics.score(res)
    q = res.quake
    sim_bz, or_bz = m["blind_zone_km"], m["oracle"]["blind_zone_km"]
    thr = res.cfg.policy.mmi_threshold
    paths = {}

    # network
    nlat, nlon = _node_positions(res, layout)
    if nlat is not None:
        fig, ax = plt.subplots(figsize=(8, 8.2), dpi=110)
        s = _msize(res.n_nodes)
        groups = (("offline", ~res.node_online, "#9e9e9e"),
                  ("up, did not detect", res.node_online & ~res.node_detected, "#e66101"),
                  ("detected the quake", res.node_detected, "#2c7bb6"))
        for label, mask, c in groups:
            ax.scatter(nlon[mask], nlat[mask], s=s, c=c, lw=0, rasterized=True, zorder=3,
                       label="%s (%d)" % (label, int(mask.sum())))
        paths["network"] = _finish_map(fig, ax, res, q, (sim_bz, or_bz), (nlat, nlon), "Node layout and blind zone",
                                       out / (prefix + "network.png"))

    t = res.targets
    need = res.target_mmi >= thr
    alerted = np.isfinite(res.alert_t)
    warn = res.target_ts - res.alert_t
    ok = need & alerted & (warn > 0)
    s = _msize(t.lat.size)

    # warning time per site
    fig, ax = plt.subplots(figsize=(8.8, 8.2), dpi=110)
    below = ~need
    ax.scatter(t.lon[below], t.lat[below], s=s, c="#dddddd", lw=0, rasterized=True, zorder=2,
               label="MMI < %g (no warning needed, %d)" % (thr, int(below.sum())))
    bad = need & ~ok
    ax.scatter(t.lon[bad], t.lat[bad], s=max(s, 4), c="crimson", marker="x", lw=0.8, rasterized=True, zorder=3,
               label="MMI >= %g, late or missed (%d)" % (thr, int(bad.sum())))
    if ok.any():
        vmax = float(np.percentile(warn[ok], 99)) if ok.sum() > 10 else float(warn[ok].max())
        sc = ax.scatter(t.lon[ok], t.lat[ok], s=max(s, 2), c=warn[ok], cmap="viridis", vmin=0, vmax=max(vmax, 1.0),
                        lw=0, rasterized=True, zorder=4, label="warned in time (%d)" % int(ok.sum()))
        cb = fig.colorbar(sc, ax=ax, shrink=0.8, pad=0.02)
        cb.set_label("warning time before the S wave (s)")
    paths["warning_map"] = _finish_map(fig, ax, res, q, (sim_bz, or_bz), (t.lat, t.lon),
                                       "Warning time per site (MMI >= %g)" % thr, out / (prefix + "warning_map.png"))

    # alert footprint
    fig, ax = plt.subplots(figsize=(8, 8.2), dpi=110)
    cats = (("no alert, none needed", ~need & ~alerted), ("false alert", ~need & alerted), ("in time", ok),
            ("late", need & alerted & (warn <= 0)), ("missed", need & ~alerted))
    for label, mask in cats:
        ax.scatter(t.lon[mask], t.lat[mask], s=max(s, 2), c=_COLORS[label], lw=0, rasterized=True, zorder=3,
                   label="%s (%d)" % (label, int(mask.sum())))
    paths["footprint"] = _finish_map(fig, ax, res, q, (sim_bz, or_bz), (t.lat, t.lon),
                                     "Alert footprint: alerted vs. shaking MMI >= %g" % thr, out / (prefix + "footprint.png"))

    # warning-time histogram vs. the oracle
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    ow = res.target_ts - res.kth_p_t
    ow = ow[need & (ow > 0)] if math.isfinite(res.kth_p_t) else np.zeros(0)
    w = warn[ok]
    hi = max([1.0] + [float(x.max()) for x in (w, ow) if x.size])
    bins = np.linspace(0.0, hi, 41)
    ax.hist(ow, bins=bins, color="#bbbbbb", label="physical limit (k-th P, no latency): %d sites" % ow.size)
    ax.hist(w, bins=bins, histtype="stepfilled", alpha=0.75, color="#2c7bb6",
            label="simulated: %d of %d sites in time" % (w.size, int(need.sum())))
    for x, c, what in ((w, "#08306b", "simulated"), (ow, "#555555", "limit")):
        if x.size:
            med = float(np.median(x))
            ax.axvline(med, color=c, ls="--", lw=1.2, label="median, %s: %.1f s" % (what, med))
    ax.set_xlabel("warning time before the S wave (s)")
    ax.set_ylabel("sites with MMI >= %g" % thr)
    ax.set_title(_title(res, "Warning-time distribution"))
    ax.legend(fontsize=8)
    ax.grid(True, lw=0.3, alpha=0.5)
    paths["warning_hist"] = _save(fig, out / (prefix + "warning_hist.png"))
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    _plt().close(fig)
    return path


# --- sweeps ---------------------------------------------------------------------------------------
def _numeric(vals) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)


def _g(d: dict, k: str) -> float:
    v = d.get(k)
    return math.nan if v is None else float(v)


def sweep_figures(sres, out_dir) -> dict:
    """One PNG per swept parameter: four metrics against it, one line per combination of the rest."""
    plt = _plt()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = sres.summary
    pts = s["points"]
    keys = list(s["grid"])
    paths = {}
    panels = (("warning_s", "median warning time (s)", "p50", "p10", "p90", "oracle_warning_s"),
              ("in_time_fraction", "share of MMI >= %g sites warned in time" % s["mmi"], "pooled", "p10", "p90", None),
              ("first_alert_s", "first alert after origin (s)", "p50", "p10", "p90", "oracle_first_alert_s"),
              ("missed", "sites per run (mean)", "mean", None, None, None))
    for key in keys:
        vals = s["grid"][key]
        others = [k for k in keys if k != key]
        combos: dict = {}
        for p in pts:
            label = ", ".join("%s=%s" % (k, p["params"][k]) for k in others) or "all"
            combos.setdefault(label, []).append(p)
        numeric = _numeric(vals)
        xpos = {repr(v): (v if numeric else i) for i, v in enumerate(vals)}
        fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), dpi=100)
        cmap = plt.get_cmap("tab10")
        for ci, (label, group) in enumerate(list(combos.items())[:10]):
            group = sorted(group, key=lambda p: xpos[repr(p["params"][key])])
            x = np.array([xpos[repr(p["params"][key])] for p in group], float)
            c = cmap(ci % 10)
            for ax, (metric, ylabel, mid, lo, hi, oracle) in zip(axes.flat, panels):
                if metric == "missed":
                    y = np.array([_g(p["missed"], "mean") for p in group])
                    ax.plot(x, y, "o-", color=c, label=label if ci < 10 else None)
                    y2 = np.array([_g(p["false_site_alerts"], "mean") for p in group])
                    ax.plot(x, y2, "s:", color=c)
                    continue
                y = np.array([_g(p[metric], mid) for p in group])
                ax.plot(x, y, "o-", color=c, label=label)
                if lo:
                    ax.fill_between(x, [_g(p[metric], lo) for p in group], [_g(p[metric], hi) for p in group],
                                    color=c, alpha=0.15, lw=0)
                if oracle:
                    ax.plot(x, [_g(p[oracle], "p50") for p in group], "--", color=c, lw=1, alpha=0.8)
        for ax, (metric, ylabel, *_r) in zip(axes.flat, panels):
            ax.set_xlabel(key)
            ax.set_ylabel(ylabel)
            ax.grid(True, lw=0.3, alpha=0.5)
            if not numeric:
                ax.set_xticks(range(len(vals)), [str(v) for v in vals])
        axes[0, 0].set_title("Warning time at MMI >= %g sites\n(band p10-p90; dashed: physical limit)" % s["mmi"], fontsize=10)
        axes[0, 1].set_title("Warned in time (pooled; band p10-p90 over runs)", fontsize=10)
        axes[1, 0].set_title("First alert (median; band p10-p90 over runs;\ndashed: k-th P arrival, no latency)", fontsize=10)
        axes[1, 1].set_title("Missed (o, solid) and false site alerts (s, dotted)", fontsize=10)
        axes[0, 1].set_ylim(-0.02, 1.02)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        if others:
            fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8,
                       title=", ".join(others), title_fontsize=8)
        fig.suptitle("%s: metrics vs. %s (%d runs per point, seed %d)" % (s["sweep"], key, sres.cfg.runs * len(sres.cfg.quake_set()), s["seed"]))
        fig.tight_layout(rect=(0, 0.08 if others else 0, 1, 0.97))
        name = "sweep_%s.png" % key.replace(".", "_")
        fig.savefig(out / name)
        plt.close(fig)
        paths["sweep_" + key] = out / name
    return paths


# --- Markdown -------------------------------------------------------------------------------------
def _fmt(x, nd: int = 1, unit: str = "") -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else "%.*f%s" % (nd, x, unit)


def _scenario_md(res, paths: dict, heading: str = "#") -> list[str]:
    from . import metrics

    m = metrics.score(res)
    o = m["oracle"]
    q = m["quake"]
    thr = m["policy_mmi_threshold"]
    t = m["thresholds"].get("%g" % thr)
    lines = ["%s Scenario %s" % (heading, m["scenario"]), "",
             "%s M%.1f at %.2f, %.2f, %.0f km deep; %d nodes (%d up, %d detected it), %d targets, seed %d%s." % (
                 q["name"], q["mag"], q["lat"], q["lon"], q["depth_km"], m["nodes"], m["counts"]["nodes_online"],
                 m["counts"]["nodes_detected"], m["targets"], m["seed"], ", zero noise" if m["zero_noise"] else ""), "",
             "| | simulated | physical limit |", "| --- | --- | --- |",
             "| first alert after origin | %s | %s |" % (_fmt(m["first_alert_after_origin_s"], 1, " s"), _fmt(o["alert_after_origin_s"], 1, " s")),
             "| blind zone radius | %s | %s |" % (_fmt(m["blind_zone_km"], 0, " km"), _fmt(o["blind_zone_km"], 0, " km")),
             "| median warning, MMI >= %g | %s (%d sites) | %s (%d sites) |" % (
                 thr, _fmt(m["warning_s"].get("p50"), 1, " s"), m["warning_s"]["n"], _fmt(o["warning_s"].get("p50"), 1, " s"),
                 o["warning_s"]["n"]), ""]
    if t is not None:
        lines += ["Sites with MMI >= %g: %d need a warning; %d in time, %d late, %d missed; %d false site alerts; "
                  "%d false events." % (thr, t["need"]["n"], t["true"]["n"], t["late"]["n"], t["missed"]["n"],
                                       t["false"]["n"], m["false_events"]), ""]
    captions = {"network": "Nodes, epicentre and blind zone", "warning_map": "Warning time per site",
                "footprint": "Alert footprint", "warning_hist": "Warning time vs. the physical limit"}
    for k, cap in captions.items():
        if k in paths:
            lines += ["![%s](%s)" % (cap, Path(paths[k]).name), ""]
    return lines


def write_report(obj, out_dir, layout=None) -> Path:
    """report.md and its PNGs in out_dir, for an engine.Result or a sweep.SweepResult; returns the
    path of report.md."""
    from . import engine

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(obj, engine.Result):
        paths = scenario_figures(obj, out, layout)
        lines = _scenario_md(obj, paths)
    else:
        lines = _sweep_md(obj, out)
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _sweep_md(sres, out: Path) -> list[str]:
    s = sres.summary
    figs = sweep_figures(sres, out)
    mc = s["montecarlo"]
    quakes = mc["quakes"] if isinstance(mc["quakes"], str) else ", ".join(mc["quakes"])
    lines = ["# Sweep %s" % s["sweep"], "",
             "Base scenario %s; %d parameter points x %d runs (quakes: %s), %d runs in all, seed %d. "
             "Scored at the sites whose shaking reaches MMI %g. Warning time: before the S wave, at the sites warned "
             "in time; physical limit: an alert at the k-th P arrival with no latency." % (
                 s["scenario"], len(s["points"]), mc["runs"], quakes, s["tasks"], s["seed"], s["mmi"]), ""]
    keys = list(s["grid"])
    head = keys + ["warning p50 [p10-p90] (s)", "limit p50 (s)", "in time", "missed", "false site alerts",
                   "first alert (s)", "location error (km)", "M error"]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for p in s["points"]:
        w = p["warning_s"]
        cells = [str(p["params"][k]) for k in keys] + [
            "%s [%s-%s]" % (_fmt(w.get("p50")), _fmt(w.get("p10")), _fmt(w.get("p90"))),
            _fmt(p["oracle_warning_s"].get("p50")),
            _fmt(None if p["in_time_fraction"]["pooled"] is None else 100 * p["in_time_fraction"]["pooled"], 0, "%"),
            _fmt(p["missed"].get("mean")), _fmt(p["false_site_alerts"].get("mean")),
            _fmt(p["first_alert_s"].get("p50")) + ("" if not p["first_alert_s"]["no_alert_runs"] else
                                                   " (%d runs no alert)" % p["first_alert_s"]["no_alert_runs"]),
            _fmt(p["location_error_km"].get("p50")), _fmt(p["mag_error"].get("p50"), 2)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for key in keys:
        lines += ["## %s" % key, "", "![metrics vs. %s](%s)" % (key, figs["sweep_" + key].name), ""]
    if sres.rows:
        res = sres.rerun(0, 0, 0)
        paths = scenario_figures(res, out, prefix="run0_")
        params = ", ".join("%s = %s" % kv for kv in s["points"][0]["params"].items())
        lines += ["## One run: point 0%s, run 0 (re-run with its seed)" % (" (%s)" % params if params else ""), ""]
        lines += _scenario_md(res, paths, "###")[1:]
    lines += ["Tables: `runs.parquet` / `runs.csv` (one row per run), `summary.json` (per point)."]
    return lines
