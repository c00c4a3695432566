"""The `seismote` command line: a thin parser over the library API (host_tools.*).

Errors the user can act on print one line `seismote: ...` on stderr, no traceback: an invalid
config or option exits with status 2; `replay` names each unreadable file, replays the others,
and exits with status 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..firmware import config as fwconfig
from ..firmware.errors import ConfigError

DATA = Path(__file__).with_name("data")
DEMO_RECORD = [DATA / "openeew" / "2018_2_16_001_35.jsonl", DATA / "openeew" / "2018_2_16_001_40.jsonl"]


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file=None) -> None:
        click.echo("seismote: %s" % self.message, err=True)


def load_config(path: str | None) -> dict:
    if path is None:
        return fwconfig.default("replay")
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise UserError("cannot read config %s: %s" % (path, e.strerror))
    try:
        return fwconfig.loads(text)
    except ConfigError as e:
        raise UserError("%s: invalid config: %s" % (path, e))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="seismote")
def cli() -> None:
    """seismote: low-cost earthquake early warning nodes, host tools and planning."""


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--units", type=click.Choice(["gal", "g", "m/s2", "counts"]), help="Units of the data (default: from the file).")
@click.option("--gain", type=float, help="With --units counts: counts per m/s^2 (instrument sensitivity).")
@click.option("--rate", type=float, help="Sampling rate in Hz, for files that do not carry one.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Node configuration JSON (default: built-in).")
@click.option("--ends", is_flag=True, help="Also print event ends (and rejected triggers) with final features.")
@click.option("--model/--no-model", "use_model", default=True, show_default=True,
              help="Confirm triggers with the bundled int8 detector model (firmware/model), as a node whose firmware has "
                   "TFLite Micro does; --no-model: the node's rule.")
@click.option("--model-dir", "model_dir", type=click.Path(file_okay=False), help="Confirm with the model in this folder (model.tflite + model.json).")
def replay(files: tuple[str, ...], units: str | None, gain: float | None, rate: float | None, config_path: str | None, ends: bool,
           use_model: bool = True, model_dir: str | None = None) -> None:
    """Run recorded waveforms through the node pipeline; print one JSON object per line.

    Detections are confirmed by the bundled int8 detector model in the TFLite Micro kernels, as on
    a node with TFLM (without tflite-micro installed: the rule, with a note). --no-model uses the
    node's rule (sustained shaking above the trigger level): it detects more weak distant events
    but fires on footsteps, doors and traffic (firmware/model/model.json "metrics").
    """
    from . import replay as rp
    from .waveforms import WaveformError, read_record, read_records

    chosen = Path(model_dir) if model_dir else (rp.MODEL_DIR if use_model else None)
    node = rp.NodeModel(load_config(config_path), chosen)
    if node.model_dir is not None:
        try:
            node.detector()
        except rp.ModelUnavailable as e:
            if model_dir is not None:
                raise UserError(str(e))
            click.echo("seismote: note: %s; detections by the rule" % e, err=True)
            node.model_dir = None
    failed = []
    good = list(files)
    try:
        records = read_records(good, units=units, gain=gain, rate=rate)
    except WaveformError:
        # Find the unreadable files one by one, then replay the others.
        records = None
        ok = []
        for f in files:
            try:
                read_record(f, units=units, gain=gain, rate=rate)
                ok.append(f)
            except WaveformError as e:
                failed.append(f)
                click.echo("seismote: %s" % e, err=True)
        good = ok
    if records is None and good:
        try:
            records = read_records(good, units=units, gain=gain, rate=rate)
        except WaveformError:
            # Each file reads alone but some do not join (OpenEEW buckets of one device that
            # disagree, e.g. in rate): add them one at a time, leaving out those that break a join.
            joined: list[str] = []
            for f in good:
                try:
                    read_records(joined + [f], units=units, gain=gain, rate=rate)
                    joined.append(f)
                except WaveformError as e:
                    failed.append(f)
                    click.echo("seismote: %s" % e, err=True)
            records = read_records(joined, units=units, gain=gain, rate=rate) if joined else []
    for rec in records or []:
        for note in rec.notes:
            click.echo("seismote: note: %s: %s" % (rec.source, note), err=True)
        try:
            for obj in rp.replay_record(rec, node, ends=ends):
                click.echo(json.dumps(obj))
        except WaveformError as e:
            failed.append(rec.source)
            click.echo("seismote: %s" % e, err=True)
    if failed:
        sys.exit(1)


@cli.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Replay the bundled OpenEEW record of the 2018 Mw 7.2 Pinotepa earthquake (no hardware needed)."""
    click.echo("seismote demo: replaying %s (OpenEEW / Grillo, CC BY-SA 4.0)" % " + ".join(p.name for p in DEMO_RECORD), err=True)
    ctx.invoke(replay, files=tuple(str(p) for p in DEMO_RECORD))


@cli.group("config")
def config_group() -> None:
    """Node configuration documents."""


@config_group.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def config_validate(file: str) -> None:
    """Check a node configuration; print the complete document with defaults filled in."""
    click.echo(json.dumps(load_config(file), indent=2))


@config_group.command("default")
@click.option("--node-id", default="seismote-0")
def config_default(node_id: str) -> None:
    """Print the default configuration."""
    try:
        click.echo(json.dumps(fwconfig.default(node_id), indent=2))
    except ConfigError as e:
        raise UserError(str(e))


def _register_subcommands() -> None:
    # Each area keeps its commands in its own module; they attach to the one `seismote` group.
    from ..model_export.cli import register as register_model
    from .cli_device import register as register_device
    from .cli_logs import register as register_logs
    from .simulate_cli import register as register_simulate
    from .sweep_cli import register as register_sweep
    from .virtual_node import register as register_virtual

    for register in (register_simulate, register_sweep, register_model, register_device, register_logs, register_virtual):
        register(cli)


_register_subcommands()


def main() -> None:
    cli(prog_name="seismote")


if __name__ == "__main__":
    main()
