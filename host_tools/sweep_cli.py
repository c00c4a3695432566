"""`seismote sweep`: a thin click command over seismote.simulator.sweep (and report).
`register(cli)` adds it to the `seismote` group.

Exit status: 0 done; 2 a bad sweep file or option (the message names the field, no traceback).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import click

from .simulate_cli import CommandError


def register(cli: click.Group) -> None:
    cli.add_command(sweep)


@click.command("sweep")
@click.argument("sweep_file", metavar="SWEEP.toml", type=click.Path(dir_okay=False))
@click.option("--workers", type=click.IntRange(min=0), help="Local Dask worker processes (0: in this process, "
              "serially; default: the file's [dask] workers, 2).")
@click.option("--scheduler", metavar="ADDR", help="A running Dask scheduler, e.g. tcp://host:8786, for many machines.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Output folder (default: the file's [output] dir).")
@click.option("--no-report", is_flag=True, help="Tables and summary only, no report.md with plots.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def sweep(sweep_file, workers, scheduler, out_dir, no_report, as_json) -> None:
    """Run a scenario over a grid of parameters and Monte-Carlo runs, in parallel with Dask.

    Writes runs.parquet / runs.csv (one row per run), summary.json (per parameter point) and
    report.md with plots. The same seed gives the same tables, whatever the number of workers.
    See simulator/data/sweep_example.toml.
    """
    from ..simulator import report, sweep as sw
    from ..simulator.scenarios import ScenarioError

    try:
        cfg = sw.load_sweep(sweep_file)
    except ScenarioError as e:
        raise CommandError(str(e)) from None
    if workers is not None:
        cfg = replace(cfg, workers=workers)
    if scheduler is not None:
        if "://" not in scheduler:
            raise CommandError("--scheduler: expected an address like tcp://host:8786")
        cfg = replace(cfg, scheduler=scheduler)
    if out_dir is not None:
        cfg = replace(cfg, out_dir=out_dir)
    n = len(cfg.tasks())
    where = cfg.scheduler or ("%d local workers" % cfg.workers if cfg.workers else "this process")
    click.echo("seismote sweep: %s: %d points x %d runs = %d runs on %s" % (
        cfg.name, len(cfg.points()), n // max(len(cfg.points()), 1), n, where), err=True)
    step = max(1, n // 20)

    def progress(done: int, total: int) -> None:
        if done == total or done % step == 0:
            click.echo("  %d/%d" % (done, total), err=True)

    try:
        res = sw.run_sweep(cfg, progress=progress)
    except ScenarioError as e:
        raise CommandError(str(e)) from None
    except OSError as e:
        raise CommandError("cannot reach the Dask scheduler %s: %s" % (cfg.scheduler, e)) from None
    paths = sw.write_tables(res, cfg.out_dir)
    if cfg.report and not no_report:
        paths["report"] = report.write_report(res, cfg.out_dir)
    if as_json:
        doc = dict(res.summary)
        doc["run"] = {"wall_s": round(res.wall_s, 3), "workers": res.workers}
        doc["files"] = {k: str(v) for k, v in paths.items()}
        click.echo(json.dumps(doc))
    else:
        click.echo(summary(res.summary, res.wall_s))
        for k, v in paths.items():
            click.echo("%-8s %s" % (k, v))


def _f(x, nd: int = 1) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else "%.*f" % (nd, x)


def summary(s: dict, wall_s: float) -> str:
    """A human summary of a sweep: one line per parameter point."""
    keys = list(s["grid"])
    wid = {k: max(len(k.split(".")[-1]), 6) for k in keys}
    head = ["%-*s" % (wid[k], k.split(".")[-1]) for k in keys] + ["warn p50 [p10-p90] s", "limit", "in time", "missed", "false", "1st alert"]
    lines = ["%s: %d runs, MMI >= %g, seed %d, %.1f s" % (s["sweep"], s["tasks"], s["mmi"], s["seed"], wall_s),
             "  ".join(head)]
    for p in s["points"]:
        w = p["warning_s"]
        it = p["in_time_fraction"]["pooled"]
        cells = ["%-*s" % (wid[k], p["params"][k]) for k in keys] + [
            "%-20s" % ("%s [%s-%s]" % (_f(w.get("p50")), _f(w.get("p10")), _f(w.get("p90")))),
            "%5s" % _f(p["oracle_warning_s"].get("p50")),
            "%7s" % ("-" if it is None else "%.0f%%" % (100 * it)),
            "%6s" % _f(p["missed"].get("mean")), "%5s" % _f(p["false_site_alerts"].get("mean")),
            "%9s" % _f(p["first_alert_s"].get("p50"))]
        lines.append("  ".join(cells))
    return "\n".join(lines)
