"""`seismote flash`, `seismote status` and `seismote config get|set|push`: thin click commands over
host_tools.deploy and host_tools.transport. `register(cli)` adds them to the `seismote` group and
to its existing `config` group (where `validate` and `default` already live).

Exit status: 0 done; 1 the node took the input but failed a check (flash does not verify, node
does not boot, the node's config is invalid); 2 a bad option, file, image, config or port, or a
board that does not answer. Errors print as `seismote: message` and `hint: ...`, no traceback.
Read commands (`status`, `config get`) print one JSON document with --json.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
from pathlib import Path

import click

from .cli_errors import CommandError, user_errors

from ..firmware import config as fwconfig
from ..firmware.errors import ConfigError

PORT_HELP = "Serial port of the node (default: the one ESP32 USB-serial board plugged in; $SEISMOTE_PORT)."


def _user_errors(fn):
    """user_errors (the library's UserError/NodeError), plus a ConfigError or a node file error -> CommandError."""

    @user_errors
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except ConfigError as e:
            raise CommandError("invalid config: %s" % e) from None
        except OSError as e:  # a node file error, as OSError(errno, path) (transport._fs)
            raise CommandError("%s: %s" % (e.filename or e.args[-1], os.strerror(e.errno) if e.errno else e),
                               exit_code=1) from None

    return wrapper


def register(cli: click.Group) -> None:
    cli.add_command(flash_cmd)
    cli.add_command(status_cmd)
    group = cli.commands.get("config")
    if group is None:  # the group lives in cli.py; only if it ever moves
        group = click.Group("config", help="Node configuration documents.")
        cli.add_command(group)
    for cmd in (config_get, config_set, config_push):
        group.add_command(cmd)


# -- progress -------------------------------------------------------------------------------------


class _Progress:
    """rich progress bars on stderr, one per stage; nothing when stderr is not a terminal."""

    LABELS = {"erase": "Erasing flash", "write": "Writing image", "verify": "Verifying (MD5)",
              "upload": "Uploading files"}
    BYTES = ("write", "upload")  # stages counted in bytes (write: compressed bytes on the wire)

    def __init__(self, enabled: bool = True):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        self.enabled = enabled and console.is_terminal
        self._p = Progress(TextColumn("{task.description:<16}"), BarColumn(), TextColumn("{task.fields[size]}"),
                           TimeElapsedColumn(), console=console, disable=not self.enabled)
        self._tasks: dict[str, int] = {}

    def __enter__(self):
        self._p.__enter__()
        return self

    def __exit__(self, *exc):
        self._p.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int) -> None:
        size = "%.1f/%.1f kB" % (done / 1000, total / 1000) if stage in self.BYTES else ""
        task = self._tasks.get(stage)
        if task is None:
            task = self._tasks[stage] = self._p.add_task(self.LABELS.get(stage, stage), total=max(total, 1), size=size)
        self._p.update(task, completed=done, total=max(total, 1), size=size)


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


# -- flash ----------------------------------------------------------------------------------------


@click.command("flash")
@click.option("--port", "-p", envvar="SEISMOTE_PORT", help=PORT_HELP)
@click.option("--board", required=True, help="Board profile: a name from hardware/boards/ (e.g. esp32-devkitc-adxl355) or a path.")
@click.option("--firmware", type=click.Path(dir_okay=False), help="Combined MicroPython (+TFLM) image to flash first (hardware/firmware-image.md); without it only the seismote files are updated.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Node configuration (default: keep the node's if valid, else a default one).")
@click.option("--dry-run", is_flag=True, help="Check everything and print the plan; touch nothing.")
@click.option("--baud", default=460800, show_default=True, help="Flashing baud rate (falls back to 115200 if the link fails).")
@click.option("--keep-fs", is_flag=True, help="Do not erase the flash before writing the image (keeps the node's files and event log).")
@click.option("--boot-wait", default=3.0, show_default=True, help="Seconds to let the node boot before checking it.")
@click.option("--repl-wait", default=15.0, show_default=True, help="Seconds to wait for MicroPython after flashing (its first boot makes the file system).")
@click.option("--json", "as_json", is_flag=True, help="Print the result (or the plan) as one JSON object.")
@_user_errors
def flash_cmd(port, board, firmware, config_path, dry_run, baud, keep_fs, boot_wait, repl_wait, as_json) -> None:
    """Install seismote on a node: flash the image, upload the firmware, configure, check it boots.

    Steps: erase and write the image through esptool (chip check, verify, reset); compile
    firmware/ with mpy-cross and upload the files whose sha256 differs from the node's; write
    /board.json and /config.json (validated first); restart and read the node's status.
    Erasing deletes the node's event log: pull it first (seismote logs pull) or use --keep-fs.
    """
    from . import deploy

    with _Progress(enabled=not as_json and not dry_run) as progress:
        report = deploy.deploy(port, board, firmware, config_path, dry_run=dry_run, baud=baud, erase=not keep_fs,
                               progress=progress, boot_wait=boot_wait, repl_wait=repl_wait)
    if as_json:
        _echo_json(report.to_json())
        return
    if dry_run:
        click.echo("dry run on %s, board %s: nothing was touched. The plan:" % (report.port, report.board))
        for i, step in enumerate(report.plan, 1):
            click.echo("  %d. %s" % (i, step))
        return
    if report.flash is not None:
        f = report.flash
        click.echo("flashed %s to %s (%s) over %s at %d Bd: MD5 verified by the chip"
                   % (report.image.describe(), f.chip, f.mac, f.port, f.baud))
        for why in f.fallbacks:
            click.echo("  note: gave up %s" % why)
    u = report.upload
    click.echo("uploaded %d files (%d bytes), %d unchanged, %d removed; build %s"
               % (len(u.uploaded), u.bytes_sent, len(u.unchanged), len(u.removed), (u.build_id or "")[:12]))
    _print_boot(report.status)


def _print_boot(st: dict) -> None:
    click.echo("node %s booted: board %s, config %s, %s free heap, reset cause %s"
               % (st.get("node_id"), st.get("board"), st.get("config"), _num(st.get("heap_free")), st.get("reset_cause")))
    for w in st.get("warnings", []):
        click.secho("warning: %s" % w, fg="yellow", err=True)


def _num(n) -> str:
    return "?" if n is None else "{:,}".format(n)


# -- status ---------------------------------------------------------------------------------------


RESTART_OPTION = click.option("--restart/--no-restart", default=True, show_default=True,
                              help="Soft-reboot the node into main.py afterwards (reading stops it).")


@click.command("status")
@click.option("--port", "-p", envvar="SEISMOTE_PORT", help=PORT_HELP)
@RESTART_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
@_user_errors
def status_cmd(port, restart, as_json) -> None:
    """Show a node's health: firmware, config and board checks, memory, file system, recent log.

    Reading stops the node's main loop; it is soft-rebooted into main.py afterwards (that logs a
    "boot" record). Exit status 1 if the node's config or board profile is invalid.
    """
    from .transport import Transport

    with Transport.connect(port) as t:
        t.restart_on_close = restart
        st = t.node_status()
    if as_json:
        _echo_json(st)
    else:
        _status_table(st)
    if st.get("config") != "ok" or st.get("board_profile") != "ok":
        sys.exit(1)


def _status_table(st: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    log = st.get("log") or {}
    table = Table(show_header=False, box=None)
    rows = [
        ("node", st.get("node_id")),
        ("firmware", "%s %s on %s, build %s" % (st.get("implementation"), st.get("version"), st.get("machine"),
                                                 (st.get("build") or "none")[:12])),
        ("config", st.get("config")),
        ("board", "%s (profile %s)" % (st.get("board"), st.get("board_profile"))),
        ("model", "%s (%s bytes)" % (st["model"]["path"], st["model"]["bytes"]) if st.get("model") else "none"),
        ("heap", "%s free, %s used" % (_num(st.get("heap_free")), _num(st.get("heap_used")))),
        ("file system", "%s of %s bytes free" % (_num(st.get("fs_free")), _num(st.get("fs_total")))),
        ("uid / reset", "%s / %s" % (st.get("uid"), st.get("reset_cause"))),
        ("event log", "%d segments, %s bytes, next seq %s, %s corrupt bytes"
         % (log.get("segments", 0), _num(log.get("bytes")), log.get("next_seq"), log.get("corrupt_bytes"))),
    ]
    for key, value in rows:
        style = "red" if key in ("config", "board") and "ok" not in str(value) else None
        table.add_row(key, str(value), style=style)
    console = Console()
    console.print(table)
    recent = log.get("recent") or []
    if recent:
        console.print("recent status records:")
        for rec in recent:
            rest = {k: v for k, v in rec.items() if k not in ("seq", "time", "kind")}
            console.print("  #%s %s %s" % (rec.get("seq"), rec.get("kind"), json.dumps(rest) if rest else ""), markup=False)


# -- config get / set / push -------------------------------------------------------------------


def _lookup(doc, key: str | None):
    if not key:
        return doc
    cur = doc
    done = []
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            here = ".".join(done) or "the document"
            fields = ", ".join(sorted(cur)) if isinstance(cur, dict) else "(not an object)"
            raise CommandError("no field %s in the config" % key, "fields of %s: %s" % (here, fields))
        cur = cur[part]
        done.append(part)
    return cur


def _read_doc(path: str):
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise CommandError("cannot read %s: %s" % (path, e.strerror or e),
                           "`seismote config default > %s` writes a complete default config" % path) from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise CommandError("%s: invalid config: (document): not valid JSON: %s" % (path, e)) from None


@click.command("get")
@click.argument("key", required=False)
@click.option("--file", "-f", "file", type=click.Path(dir_okay=False), help="Read a config file instead of a node.")
@click.option("--port", "-p", envvar="SEISMOTE_PORT", help=PORT_HELP)
@RESTART_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the value as JSON.")
@_user_errors
def config_get(key, file, port, restart, as_json) -> None:
    """Print a node's configuration, or one field of it (dotted KEY, e.g. trigger.on).

    Values come with defaults filled in. A node whose /config.json is invalid gets its stored
    document printed as it is, the problem on stderr, and exit status 1.
    """
    if file is not None:
        doc = _read_doc(file)
        source = file
    else:
        from .transport import Transport

        with Transport.connect(port) as t:
            t.restart_on_close = restart
            try:
                raw = t.read_file("/config.json")
            except OSError:
                raise CommandError("the node on %s has no /config.json" % t.port,
                                   "push one: seismote config push FILE --port %s" % t.port, exit_code=1) from None
            source = "%s:/config.json" % t.port
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise CommandError("%s: not valid JSON: %s" % (source, e), exit_code=1) from None
    invalid = None
    try:
        doc = fwconfig.validate(doc)
    except ConfigError as e:
        invalid = e
    value = _lookup(doc, key)
    if as_json:
        click.echo(json.dumps(value, indent=2))
    elif isinstance(value, (dict, list)):
        click.echo(json.dumps(value, indent=2))
    else:
        click.echo("null" if value is None else json.dumps(value) if isinstance(value, bool) else str(value))
    if invalid is not None:
        raise CommandError("%s: invalid config: %s" % (source, invalid), "values above are as stored, without defaults",
                           exit_code=1 if file is None else 2)


def _parse_assignment(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise CommandError("expected KEY=VALUE, got %r" % text, "e.g. trigger.on=3.0 or node_id=site-07")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise CommandError("bad key %r" % key, "dotted field names, e.g. telemetry.heartbeat_s")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw  # a bare word is a string: node_id=site-07
    return key, value


def _assign(doc: dict, key: str, value) -> object:
    parts = key.split(".")
    cur = doc
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    old = cur.get(parts[-1], None)
    cur[parts[-1]] = value
    return old


@click.command("set")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@_user_errors
def config_set(file, assignments) -> None:
    """Change fields of a config FILE: seismote config set node.json trigger.on=3.0 node_id=site-07.

    VALUE is JSON (3.0, true, null, "text", {...}) or else a plain string. The changed document
    is validated as a whole and written only if valid (atomically); the file keeps only the
    fields it had plus the ones set.
    """
    doc = _read_doc(file)
    if not isinstance(doc, dict):
        raise CommandError("%s: invalid config: (document): expected a JSON object" % file)
    changes = []
    for text in assignments:
        key, value = _parse_assignment(text)
        old = _assign(doc, key, value)
        changes.append((key, old, value))
    try:
        fwconfig.validate(doc)
    except ConfigError as e:
        raise CommandError("%s not changed: invalid config: %s" % (file, e), "nothing was written") from None
    path = Path(file)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=str(path.parent or "."))
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    for key, old, new in changes:
        click.echo("%s: %s -> %s" % (key, json.dumps(old), json.dumps(new)))


@click.command("push")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--port", "-p", envvar="SEISMOTE_PORT", help=PORT_HELP)
@click.option("--restart/--no-restart", default=True, show_default=True, help="Reset the node and check that it boots with the new config (--no-restart: leave it at the REPL; it reads the new config at its next boot).")
@click.option("--boot-wait", default=3.0, show_default=True, help="Seconds to let the node boot before checking it.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@_user_errors
def config_push(file, port, restart, boot_wait, as_json) -> None:
    """Validate a config FILE, write it to the node as /config.json and restart the node.

    The file is checked before the port is opened, and again against the node's board profile
    (board name, sensor type) before anything is written. The previous config is kept on the
    node as /config.json.bak.
    """
    from . import deploy
    from .transport import Transport

    doc = _read_doc(file)
    try:
        fwconfig.validate(doc)
    except ConfigError as e:
        raise CommandError("%s: invalid config: %s" % (file, e), "nothing was sent to the node") from None
    with Transport.connect(port) as t:
        t.restart_on_close = restart  # the node runs again, with the new config or (refused) the old one
        result = deploy.push_config(t, doc, restart=restart, boot_wait=boot_wait)
    if as_json:
        _echo_json(result)
        return
    if result["written"]:
        click.echo("wrote /config.json on %s (node %s)%s" % (result["port"], result["node_id"],
                   ", previous one kept as %s" % result["backup"] if result["backup"] else ""))
    else:
        click.echo("the node on %s already has this config" % result["port"])
    if result["status"] is not None:
        _print_boot(result["status"])
