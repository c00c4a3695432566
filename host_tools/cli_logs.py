"""`seismote logs pull|show|export` and `seismote monitor`: thin click commands over host_tools.logs
and host_tools.monitor. `register(cli)` adds them to the `seismote` group.

Exit status: 0 done; 1 a transfer that stopped early (everything received is kept: run the same
command again to resume) or a node that failed; 2 a bad option, port or directory.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .cli_errors import CommandError, user_errors



def _connect(port: str | None, baud: int):
    from .transport import Transport

    # No soft reset: on a board Ctrl-C has stopped main.py already; the virtual node keeps running.
    return Transport.connect(port, baudrate=baud, soft_reset=False)


def register(cli: click.Group) -> None:
    cli.add_command(logs_group)
    cli.add_command(monitor_cmd)


@click.group("logs")
def logs_group() -> None:
    """Read a node's event log: pull it over USB, show it, export it."""


@logs_group.command("pull")
@click.option("--port", "-p", help="Serial port of the node (default: the one ESP32 board plugged in).")
@click.option("--baud", default=115200, show_default=True, help="Baud rate.")
@click.option("--out", "-o", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the local copy (records.bin, state.json); pull again to resume or to update.")
@click.option("--since", type=click.IntRange(min=1), help="Start at this seq (default: after the last record already in --out).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "mseed"]), help="Also export everything in --out (records.jsonl, events.csv or snippets.mseed).")
@click.option("--restart/--no-restart", default=True, show_default=True, help="Restart the node (main.py) after the pull.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@user_errors
def logs_pull(port, baud, out_dir, since, fmt, restart, as_json) -> None:
    """Download the node's event log and waveform snippets (resumable, CRC-checked).

    On a board, pulling stops the node's main loop (main.py) while it runs; the board is
    soft-rebooted into main.py afterwards. --no-restart leaves it at the REPL (if main.py had
    started the node's watchdog, that resets the board within 30 s anyway).
    """
    from . import logs

    t = _connect(port, baud)
    err = None
    res = None
    live = False
    try:
        live = logs.node_runs_between_commands(t)
        res = logs.pull(t, out_dir, since=since, progress=None if as_json else _progress())
    except logs.PullError as e:
        err = e
        res = e.result
    finally:
        if not as_json:
            click.echo("", err=True)
        logs.finish(t, restart=restart and not live)  # a board: back to main.py
    if res is not None:
        if as_json:
            click.echo(json.dumps(res.as_dict()))
        else:
            rate = res.wire_bytes / res.seconds if res.seconds > 0 else 0
            click.echo("%s: %d new records (%d already kept), %d bytes in %.1f s (%.0f B/s); next pull starts at seq %d"
                       % (res.node or "node", res.kept, res.duplicates, res.record_bytes, res.seconds, rate, res.next_seq), err=True)
            for note in res.notes:
                click.echo("seismote: note: %s" % note, err=True)
    if err is None and fmt:
        _export_dir(out_dir, fmt, None)
    if err is not None:
        if isinstance(err, logs.StoreError):
            raise CommandError(str(err), exit_code=2)
        raise CommandError(str(err), "run the same command again to resume", exit_code=1)


def _progress():
    state = {"n": 0}

    def cb(res) -> None:
        state["n"] += 1
        if state["n"] % 10 == 0:
            click.echo("\rpulled %d records, %d bytes" % (res.received, res.record_bytes), err=True, nl=False)

    return cb


_DEFAULT_NAMES = {"jsonl": "records.jsonl", "csv": "events.csv", "mseed": "snippets.mseed"}


def _load(out_dir: str):
    from . import logs

    try:
        return logs.load(out_dir)
    except logs.StoreError as e:
        raise CommandError(str(e)) from None


def _export_dir(out_dir: str, fmt: str, output: str | None) -> None:
    from . import logs

    pulled = _load(out_dir)
    dest = output or str(Path(out_dir) / _DEFAULT_NAMES[fmt])
    if dest == "-":
        if fmt == "mseed":
            raise CommandError("miniSEED is binary: give a file with -o")
        logs.export(pulled.records, fmt, sys.stdout, node_id=pulled.node)
        return
    n = logs.export(pulled.records, fmt, dest, node_id=pulled.node)
    click.echo("seismote: wrote %d %s to %s" % (n, {"jsonl": "records", "csv": "events", "mseed": "traces"}[fmt], dest), err=True)


@logs_group.command("show")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--last", type=click.IntRange(min=1), help="Only the newest N records.")
@user_errors
def logs_show(out_dir, last) -> None:
    """Print a pulled log as a table: time, kind, PGA, score, status, gaps, resets."""
    from . import logs

    pulled = _load(out_dir)
    for note in ([("%d torn bytes cut from the end of the copy" % pulled.torn_bytes)] if pulled.torn_bytes else []):
        click.echo("seismote: note: %s" % note, err=True)
    logs.show(pulled.records, title="node %s, %s" % (pulled.node or "?", out_dir), last=last)


@logs_group.command("export")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", required=True, type=click.Choice(["jsonl", "csv", "mseed"]))
@click.option("--output", "-o", help="File to write ('-' for stdout with jsonl/csv; default: stdout for jsonl/csv, OUT_DIR/snippets.mseed).")
@user_errors
def logs_export(out_dir, fmt, output) -> None:
    """Export a pulled log: JSON Lines (every record), CSV (events), miniSEED (waveform snippets)."""
    if output is None and fmt != "mseed":
        output = "-"
    _export_dir(out_dir, fmt, output)


@click.command("monitor")
@click.option("--port", "-p", help="Serial port of the node (default: the one ESP32 board plugged in).")
@click.option("--baud", default=115200, show_default=True, help="Baud rate.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per update instead of the live view.")
@click.option("--once", is_flag=True, help="One update, then exit.")
@click.option("--interval", default=0.5, show_default=True, type=click.FloatRange(min=0.05), help="Seconds between updates.")
@click.option("--seconds", type=click.FloatRange(min=0), help="Stop after this long (default: until Ctrl-C).")
@user_errors
def monitor_cmd(port, baud, as_json, once, interval, seconds) -> None:
    """Live status of a node: sample rate, FIFO overflows, STA/LTA, heap, uptime, link, last detection, waveform."""
    from . import monitor

    try:
        monitor.run(port, baud=baud, as_json=as_json, once=once, interval=interval, seconds=seconds)
    except monitor.MonitorError as e:
        raise CommandError(str(e), getattr(e, "hint", None), exit_code=1) from None
