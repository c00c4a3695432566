"""`seismote model ...`: build the data set, train, export and evaluate the on-node detector.

    seismote model build-data [--small] [--seed 0]       # -> build/model/data/
    seismote model train                                 # -> build/model/train/ (model.keras, train.json)
    seismote model export [--out firmware/model]         # -> model.tflite, model.json, golden.*, ATTRIBUTION.md
    seismote model evaluate [--out build/model/report]   # -> report.md + PNGs; metrics into model.json
    seismote model calibrate [--model firmware/model]    # choose an exported model's decision rule again
    seismote model all                                   # the four in a row (one command, reproducible)

A thin parser over build_dataset / train.train / export.export / evaluate.evaluate. The host CLI
adds the group with `register(cli)`; `python -m seismote.model_export.cli` runs it on its own.
Errors the user can act on print `seismote: ...` and exit with status 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "model"
ARTIFACT = ROOT / "firmware" / "model"


class ModelError(click.ClickException):
    exit_code = 2

    def show(self, file=None) -> None:
        click.echo("seismote: %s" % self.message, err=True)


def _progress():
    """Progress bars on stderr: stdout carries the results (JSON), for a pipe or a file."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), transient=False, console=Console(stderr=True))


def _stages(bar):
    """A progress(stage, done, total) callback with a bar per stage."""
    tasks: dict[str, int] = {}

    def hook(stage, done, total):
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total, info="")
        bar.update(tasks[stage], completed=done, total=total)

    return hook


def _load_dataset(data_dir: Path, small: bool | None = None, seed: int | None = None, progress=None, records: Path | str | None = None,
                  real_mix: int | None = None):
    """The data set of `data_dir`: built with the options given, or with those its config.json saved
    (seed, small, the records catalogue, real_mix) by the last build-data. records "": no catalogue."""
    from .dataset import DatasetConfig, build_dataset
    from .real import CatalogError

    cfg_file = data_dir / "config.json"
    saved = json.loads(cfg_file.read_text()) if cfg_file.is_file() else {}
    kw = {"seed": saved.get("seed", 0) if seed is None else seed, "small": saved.get("small", False) if small is None else small}
    catalog = saved.get("records", "") if records is None else str(Path(records).resolve()) if records else ""
    if catalog:
        kw["records"] = catalog
    mix = saved.get("real_mix", 0) if real_mix is None else real_mix
    if mix:
        kw["real_mix"] = mix
    try:
        ds = build_dataset(DatasetConfig(**kw), data_dir, progress=progress)
    except (CatalogError, OSError) as e:
        if not catalog:
            raise
        raise ModelError("records: %s" % e) from None
    cfg_file.write_text(json.dumps(kw))
    return ds


def _check_trained_on(meta: dict, ds, model_dir: Path, data_dir: Path) -> None:
    """Refuse a data set other than the one the model was trained on: the same content (data_sha256),
    or, for a model that predates that record, the same fingerprint."""
    training = meta.get("training", {})
    if training.get("data_sha256"):
        want, have, what = training["data_sha256"], ds.content_sha256(), "content"
    else:
        want, have, what = training.get("data_fingerprint"), ds.fingerprint, "fingerprint"
    if want != have:
        raise ModelError("%s was trained on a data set of %s %s, %s holds %s: build that data set first (seismote model build-data)"
                         % (model_dir, what, str(want)[:16], data_dir, have[:16]))


def _group():
    from ..firmware.config import SENSOR_RANGES
    from .evaluate import CAL_HOURS, MAX_LOOKBACK, TARGET_FPH

    _max_lookback = click.option("--max-lookback", type=click.IntRange(0, MAX_LOOKBACK), default=0, show_default=True,
                                 help="Let the rule score up to this many windows at the trigger's onset, ending at it and "
                                      "before it (detector.lookback), where calibration finds it better.")

    @click.group("model")
    def model() -> None:
        """The on-node detector: data set, training, int8 export, evaluation."""

    @model.command("build-data")
    @click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=WORK / "data", show_default=True)
    @click.option("--small", is_flag=True, help="The small data set (tests, quick runs).")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--records", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="A CSV catalogue of your own real records (any format replay reads) to add, split by event "
                       "(model_export/real.py says how); train, export and evaluate use it from then on.")
    @click.option("--real-mix", type=click.IntRange(0, 64), default=0, show_default=True,
                  help="More passes of each real quake record of the train events, scaled and over another background "
                       "(DatasetConfig.real_mix; off for the bundled model: dataset.py says why).")
    def build_data(data_dir: Path, small: bool, seed: int, records: Path | None, real_mix: int) -> None:
        """Build (or load from the cache) the training data set."""
        data_dir.mkdir(parents=True, exist_ok=True)
        with _progress() as bar:
            task = bar.add_task("data set", total=None, info="")

            def hook(done, total, what=""):
                bar.update(task, completed=done, total=total, info=str(what))

            ds = _load_dataset(data_dir, small, seed, hook, records or "", real_mix)
            bar.update(task, completed=1, total=1)
        split = ds.split
        click.echo(json.dumps({"windows": int(len(ds.y)), "earthquake": int(ds.y.sum()), "train": int((split == "train").sum()),
                               "val": int((split == "val").sum()), "test": int((split == "test").sum()), "fingerprint": ds.fingerprint}))

    @model.command("train")
    @click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=WORK / "data", show_default=True)
    @click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=WORK / "train", show_default=True)
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--epochs", type=int, default=None, help="Maximum epochs (early stopping on val).")
    @click.option("--node-real-passes", type=click.IntRange(0, 64), default=0, show_default=True,
                  help="Also train on the windows the node scores after its trigger on the real records, re-recorded this "
                       "many times (TrainConfig.node_real_passes; off for the bundled model: train.py says why).")
    def train_cmd(data_dir: Path, out_dir: Path, seed: int, epochs: int | None, node_real_passes: int) -> None:
        """Train the network (2 threads, deterministic) on the train split."""
        from .train import TrainConfig, train

        ds = _load_dataset(data_dir)
        cfg = TrainConfig(seed=seed, node_real_passes=node_real_passes)
        if epochs is not None:
            cfg.epochs = epochs
        with _progress() as bar:
            task = bar.add_task("training", total=cfg.epochs, info="")

            def hook(epoch, total, logs):
                bar.update(task, completed=epoch, info="val_loss %.4f  val_auc %.4f" % (logs["val_loss"], logs["val_auc"]))

            res = train(ds, cfg, out_dir, progress=hook, cache_dir=data_dir)
            bar.update(task, completed=cfg.epochs)
        click.echo(json.dumps({k: res[k] for k in ("best_epoch", "best_val_loss", "epochs_run", "seconds", "macs", "params")}))

    @model.command("export")
    @click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=WORK / "data", show_default=True)
    @click.option("--train-dir", type=click.Path(file_okay=False, path_type=Path), default=WORK / "train", show_default=True)
    @click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=ARTIFACT, show_default=True)
    @click.option("--cal-hours", type=float, default=CAL_HOURS, show_default=True,
                  help="Hours per scenario of calibration recordings for the decision rule (0: window-level only).")
    @click.option("--target-fph", type=float, default=TARGET_FPH, show_default=True,
                  help="False detections per hour under activity allowed in calibration (half the 1/h target: margin for held-out data).")
    @click.option("--per-sensor", is_flag=True,
                  help="Also calibrate a decision rule for each other sensor (model.json decision_by_sensor; 3x the calibration time).")
    @_max_lookback
    def export_cmd(data_dir: Path, train_dir: Path, out_dir: Path, cal_hours: float, target_fph: float, per_sensor: bool,
                   max_lookback: int) -> None:
        """Full-int8 TFLite + model.json + golden vectors, checked in TFLM and LiteRT."""
        from .export import ExportError, export

        if not (train_dir / "model.keras").is_file():
            raise ModelError("no trained model in %s: run `seismote model train` first" % train_dir)
        ds = _load_dataset(data_dir)
        steps = ["converting to full int8", "calibrating the decision rule on the val split", "golden vectors", "measuring the TFLM arena",
                 "calibrating the decision rule through the node pipeline"]
        with _progress() as bar:
            task = bar.add_task("export", total=len(steps), info="")

            def say(msg):
                bar.update(task, completed=steps.index(msg) if msg in steps else 0, info=msg)

            try:
                meta = export(ds, train_dir, out_dir, cal_hours=cal_hours, target_fph=target_fph, progress=say, per_sensor=per_sensor,
                              max_lookback=max_lookback)
            except ExportError as e:
                raise ModelError(str(e))
            bar.update(task, completed=len(steps), info="done")
        click.echo(json.dumps({k: meta[k] for k in ("model_bytes", "arena_bytes", "arena_measured_bytes", "macs", "ops")}))
        click.echo(json.dumps(meta["decision"]))
        if meta.get("decision_by_sensor"):
            click.echo(json.dumps({s: {k: d[k] for k in ("on_q", "off_q", "confirm_n", "max_runs")} for s, d in meta["decision_by_sensor"].items()}))

    @model.command("evaluate")
    @click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=WORK / "data", show_default=True)
    @click.option("--model", "model_dir", type=click.Path(file_okay=False, path_type=Path), default=ARTIFACT, show_default=True)
    @click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=WORK / "report", show_default=True)
    @click.option("--hours", type=float, default=None, help="Hours of continuous noise per type (default: the data set's).")
    @click.option("--workers", type=int, default=2, show_default=True)
    def evaluate_cmd(data_dir: Path, model_dir: Path, out_dir: Path, hours: float | None, workers: int) -> None:
        """Held-out report (Markdown + PNG): model vs OpenEEW and rsudp STA/LTA; metrics into model.json."""
        from .evaluate import evaluate

        if not (model_dir / "model.tflite").is_file():
            raise ModelError("no model in %s: run `seismote model export` first" % model_dir)
        ds = _load_dataset(data_dir)
        with _progress() as bar:
            hook = _stages(bar)
            res = evaluate(ds, model_dir, out_dir, hours=hours, workers=workers, progress=hook)
        click.echo("report: %s" % (out_dir / "report.md"))
        click.echo(json.dumps(res["summary"], indent=1))

    @model.command("score-records")
    @click.argument("catalog", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--model", "model_dir", type=click.Path(file_okay=False, path_type=Path), default=ARTIFACT, show_default=True)
    @click.option("--workers", type=int, default=2, show_default=True)
    @click.option("--sensor", type=click.Choice(sorted(SENSOR_RANGES)), default="adxl355", show_default=True,
                  help="The node's sensor: the records are replayed in its counts, range and rate.")
    def score_records_cmd(catalog: Path, model_dir: Path, workers: int, sensor: str) -> None:
        """Run the records of a catalogue (as for build-data --records) through the node, with the model and
        the STA/LTA baselines, and score them as `evaluate` scores the real test records: one JSON line per
        record (delay after P per method, false detections), then a summary line."""
        from .evaluate import plain, score_records
        from .real import CatalogError

        if not (model_dir / "model.tflite").is_file():
            raise ModelError("no model in %s: run `seismote model export` first" % model_dir)
        try:
            with _progress() as bar:
                res = score_records(str(catalog), model_dir, workers, _stages(bar), sensor)
        except CatalogError as e:
            raise ModelError(str(e)) from None
        for row in res["records"]:
            click.echo(json.dumps(plain(row)))
        click.echo(json.dumps({"summary": plain(res["summary"])}))

    @model.command("calibrate")
    @click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=WORK / "data", show_default=True)
    @click.option("--model", "model_dir", type=click.Path(file_okay=False, path_type=Path), default=ARTIFACT, show_default=True)
    @click.option("--cal-hours", type=float, default=CAL_HOURS, show_default=True,
                  help="Hours per scenario of calibration recordings.")
    @click.option("--target-fph", type=float, default=TARGET_FPH, show_default=True,
                  help="False detections per hour under activity allowed in calibration.")
    @click.option("--per-sensor", is_flag=True, help="Also calibrate a decision rule for each other sensor.")
    @click.option("--workers", type=int, default=2, show_default=True)
    @click.option("--table", type=click.Path(dir_okay=False, path_type=Path), default=WORK / "calibration.json", show_default=True,
                  help="Where every rule tried is written, with its figures.")
    @_max_lookback
    def calibrate_cmd(data_dir: Path, model_dir: Path, cal_hours: float, target_fph: float, per_sensor: bool, workers: int,
                      table: Path, max_lookback: int) -> None:
        """Choose an exported model's decision rule again, as `export` does (after a change to the rule's
        options or the calibration); model.json's metrics are cleared: run `evaluate` again."""
        from .export import calibrate_rule, val_scores

        if not (model_dir / "model.tflite").is_file() or not (model_dir / "model.json").is_file():
            raise ModelError("no model in %s: run `seismote model export` first" % model_dir)
        if cal_hours <= 0:
            raise ModelError("--cal-hours must be > 0")
        meta = json.loads((model_dir / "model.json").read_text())
        ds = _load_dataset(data_dir)
        _check_trained_on(meta, ds, model_dir, data_dir)
        qv, yv = val_scores(ds, (model_dir / "model.tflite").read_bytes())
        with _progress() as bar:
            hook = _stages(bar)
            calibrate_rule(ds, model_dir, meta, qv, yv, cal_hours=cal_hours, target_fph=target_fph, workers=workers,
                           per_sensor=per_sensor, progress=hook, max_lookback=max_lookback, table=table)
        click.echo(json.dumps(meta["decision"]))

    @model.command("all")
    @click.option("--small", is_flag=True)
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.pass_context
    def all_cmd(ctx: click.Context, small: bool, seed: int) -> None:
        """build-data, train, export and evaluate with the defaults."""
        ctx.invoke(build_data, small=small, seed=seed)
        ctx.invoke(train_cmd, seed=seed)
        ctx.invoke(export_cmd)
        ctx.invoke(evaluate_cmd)

    return model


def register(cli: click.Group) -> None:
    """Add the `model` group to the host CLI (host_tools/cli.py)."""
    cli.add_command(_group())


def main() -> None:
    _group()(prog_name="seismote model")


if __name__ == "__main__":
    main()
