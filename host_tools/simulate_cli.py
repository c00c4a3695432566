"""`seismote simulate`: a thin click command over seismote.simulator (engine, metrics).
`register(cli)` adds it to the `seismote` group.

Exit status: 0 done; 2 a bad scenario file or option (the message names the field, no traceback).
"""

from __future__ import annotations

import json
import math

import click


class CommandError(click.ClickException):
    """Printed as `seismote: message`, no traceback."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo("seismote: %s" % self.message, err=True)


def register(cli: click.Group) -> None:
    cli.add_command(simulate)


@click.command("simulate")
@click.argument("scenario", required=False, type=click.Path(dir_okay=False))
@click.option("--nodes", type=click.IntRange(min=1), help="N random nodes over the scenario's area instead of its layout "
              "(without SCENARIO: with the dense-network policy defaults, 4 detections within 30 km and 10 s).")
@click.option("--seed", type=click.IntRange(min=0), help="Random seed (default: the scenario's, 0).")
@click.option("--zero-noise", is_flag=True, help="No variability, no latency, perfect detection at the P arrival: "
              "the analytic warning times.")
@click.option("--false-years", type=click.FloatRange(min=0, min_open=True), help="Also run this many years of false "
              "triggers (no earthquake) through the same policy: false alerts per year.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), help="Also write report.md with maps and "
              "plots (PNG) to this folder.")
def simulate(scenario, nodes, seed, zero_noise, false_years, as_json, report_dir=None) -> None:
    """Simulate an earthquake over a network: warning times, alerts, errors, beside the physical limit.

    SCENARIO is a TOML file ([scenario], [quake], [layout], [targets], [physics], [nodes],
    [telemetry], [faults], [policy], [alert], [metrics]; see simulator/data/puebla2017_openeew.toml).
    Default: the OpenEEW Mexico network (30 devices) and the 2017 Mw 7.1 Puebla earthquake, scored at
    the node sites and Mexico City.
    """
    from dataclasses import replace

    from ..simulator import engine, metrics
    from ..simulator.policy import PolicyConfig
    from ..simulator.scenarios import ScenarioError

    try:
        if scenario is not None:
            cfg = engine.load_scenario(scenario)
        else:
            cfg = engine.ScenarioConfig()
            if nodes is not None:
                cfg = replace(cfg, policy=PolicyConfig())
        if zero_noise:
            cfg = replace(cfg, scenario=replace(cfg.scenario, zero_noise=True))
        res = engine.simulate(cfg, seed, nodes)
        out = metrics.score(res)
        if false_years:
            layout = engine.build_layout(cfg, nodes)
            out["false_alerts"] = metrics.false_alerts_per_year(layout, cfg, false_years, res.seed)
    except ScenarioError as e:
        raise CommandError(str(e)) from None
    if report_dir is not None:
        from ..simulator import report

        click.echo("seismote: report: %s" % report.write_report(res, report_dir), err=True)
    if as_json:
        click.echo(json.dumps(out))
    else:
        click.echo(summary(out))


def _s(x, unit: str = " s", nd: int = 1) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else ("%.*f%s" % (nd, x, unit))


def summary(m: dict) -> str:
    """A human summary of metrics.score()."""
    q = m["quake"]
    c = m["counts"]
    o = m["oracle"]
    lines = [
        "seismote simulate: %s (seed %d%s)" % (m["scenario"], m["seed"], ", zero noise" if m["zero_noise"] else ""),
        "quake    %s  M%.1f  %.2f, %.2f  depth %.0f km" % (q["name"], q["mag"], q["lat"], q["lon"], q["depth_km"]),
        "network  %d nodes (%d up, %d detected it), %d targets%s; %d messages, %d false triggers, %d lost" % (
            m["nodes"], c["nodes_online"], c["nodes_detected"], m["targets"],
            " (population-weighted)" if m["population_weighted"] else "", c["messages"], c["false_triggers"], c["lost"]),
        "",
        "%-34s %-14s %s" % ("", "simulated", "physical limit (oracle: k-th P arrival, no latency)"),
        "%-34s %-14s %s" % ("first alert after origin", _s(m["first_alert_after_origin_s"]), _s(o["alert_after_origin_s"])),
        "%-34s %-14s %s" % ("blind zone radius", _s(m["blind_zone_km"], " km"), _s(o["blind_zone_km"], " km")),
    ]
    w, ow = m["warning_s"], o["warning_s"]
    thr = m["policy_mmi_threshold"]
    lines.append("%-34s %-14s %s" % ("median warning, MMI >= %g (n)" % thr,
                                     "%s (%d)" % (_s(w.get("p50")), w["n"]), "%s (%d)" % (_s(ow.get("p50")), ow["n"])))
    lines.append("")
    weighted = m["population_weighted"]
    lines.append("targets by shaking   need alert    true     late   missed    false" + ("   (population)" if weighted else ""))
    for key, t in m["thresholds"].items():
        row = "MMI >= %-5s %14d %8d %8d %8d %8d" % (key, t["need"]["n"], t["true"]["n"], t["late"]["n"], t["missed"]["n"], t["false"]["n"])
        if weighted:
            row += "   (%.0f true, %.0f missed)" % (t["true"]["population"], t["missed"]["population"])
        lines.append(row)
    for name, p in m["points"].items():
        lines.append("")
        if p["warning_s"] is None:
            what = "no alert"
        else:
            what = "alert at %s, warning %s" % (_s(p["alert_after_origin_s"]), _s(p["warning_s"]))
        lines.append("%s (%s, MMI %s): S at %s, %s (limit %s)" % (
            name, _s(p["epi_km"], " km", 0), _s(p["mmi"], "", 1), _s(p["s_after_origin_s"]), what, _s(p["oracle_warning_s"])))
    e = m["estimate"]
    lines.append("")
    if "first_alert" in e:
        f = e["first_alert"]
        lines.append("estimate at first alert: %s off, M %s (error %s)" % (_s(f["location_error_km"], " km"), _s(f["mag"], "", 2), _s(f["mag_error"], "", 2)))
    if "final" in e:
        f = e["final"]
        lines.append("final estimate: %s off, M %s (error %s), %d detections" % (
            _s(f["location_error_km"], " km"), _s(f["mag"], "", 2), _s(f["mag_error"], "", 2), f["detections"]))
    else:
        lines.append("no event declared")
    lines.append("false events: %d (%d site alerts)" % (m["false_events"], m["false_event_site_alerts"]))
    if "false_alerts" in m:
        fa = m["false_alerts"]
        lines.append("false triggers over %g years: %d events/yr declared, %g alerting events/yr, %g site alerts/yr" % (
            fa["years"], round(fa["events_per_year"]), fa["alerting_events_per_year"], fa["site_alerts_per_year"]))
    lines.append("run time %.2f s" % m["timings_s"]["total_s"])
    return "\n".join(lines)
