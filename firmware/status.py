"""The node's health in one JSON document, for the host tools (`seismote status`, the boot check
after `seismote flash` and `seismote config push`).

    from seismote.firmware.status import status_json
    print(status_json())

The host runs those two lines over the raw REPL (main.py is stopped meanwhile) and parses the
printed line. Read-only: nothing on flash is written, so a torn event log is reported, not
repaired (the node repairs it at its next boot). Portable: on CPython or the MicroPython VM,
where there is no `machine`, the hardware fields are None.

Fields: schema, implementation ("micropython"), version ("1.27.0"), machine, build (id of the
uploaded firmware, from the manifest), node_id, config ("ok" | "missing" | "invalid: <field>:
<why>"), board, board_profile (same states), model ({path, bytes} or None), heap_free,
heap_used, fs_free, fs_total, uid, reset_cause, uptime_ms, and log {segments, bytes, next_seq,
corrupt_bytes, last_boot, recent}.
`recent` holds the newest status records (boot, sensor faults, ...) of the newest log segment.
"""

import gc
import json
import os
import sys

from . import eventlog
from .boards import validate_profile
from .compat import ticks_ms
from .config import validate
from .errors import ConfigError

MANIFEST = "/lib/seismote/.manifest.json"


def _read_json(path):
    """(document, None) or (None, "missing" | "not valid JSON")."""
    try:
        f = open(path)
    except OSError:
        return None, "missing"
    try:
        return json.load(f), None
    except ValueError:
        return None, "not valid JSON"
    finally:
        f.close()


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return None


def _hardware():
    """(uid, reset_cause) from `machine`, or (None, None) where there is none."""
    try:
        import binascii

        import machine
    except ImportError:
        return None, None
    uid = binascii.hexlify(machine.unique_id()).decode()
    # One by one, as in board_esp32.py: some machine constants share values on this port.
    cause = machine.reset_cause()
    if cause == machine.PWRON_RESET:
        name = "power_on"
    elif cause == machine.HARD_RESET:
        name = "hard"
    elif cause == machine.WDT_RESET:
        name = "wdt"
    elif cause == machine.DEEPSLEEP_RESET:
        name = "deepsleep"
    elif cause == machine.SOFT_RESET:
        name = "soft"
    else:
        name = "unknown"
    return uid, name


def _segments(data_dir):
    names = []  # type: list
    try:
        listing = os.listdir(data_dir)
    except OSError:
        return names
    for name in listing:
        if name[:2] == "ev" and name[-4:] == ".log" and name[2:-4].isdigit():
            names.append(name)
    names.sort()  # same digit count below 100000 segments: name order is write order
    return names


def _log(data_dir, recent):
    names = _segments(data_dir)
    total = 0
    for name in names:
        total += _size(data_dir + "/" + name) or 0
    keep = []  # type: list
    out = {"segments": len(names), "bytes": total, "next_seq": 1, "corrupt_bytes": 0,
           "last_boot": None, "recent": keep}  # type: dict
    if not names:
        return out
    # The newest segment holds the newest records; the scanner reads it through one small window.
    sc = eventlog._Scanner(path=data_dir + "/" + names[-1])
    while True:
        rec = sc.next()
        if rec is None:
            break
        if rec.type != eventlog.T_STATUS:
            continue
        try:
            info = rec.json()
        except ValueError:
            continue
        item = {"seq": rec.seq, "time": rec.time}
        for key in info:
            item[key] = info[key]
        if info.get("kind") == "boot":
            out["last_boot"] = item
        keep.append(item)
        if len(keep) > recent:
            keep.pop(0)
    out["next_seq"] = sc.top + 1
    out["corrupt_bytes"] = sc.bad
    return out


def status(root="", data_dir="/data", recent=5):
    """The status as a dict; `root` prefixes the node's absolute paths (tests use a folder)."""
    gc.collect()
    impl = sys.implementation
    version = getattr(impl, "version", None)
    st = {
        "schema": 1,
        "implementation": impl.name,
        "version": "%d.%d.%d" % (version[0], version[1], version[2]) if version else None,
        "machine": getattr(impl, "_machine", sys.platform),
        "build": None,
        "node_id": None,
        "config": "missing",
        "board": None,
        "board_profile": "missing",
        "model": None,
    }
    manifest, _ = _read_json(root + MANIFEST)
    if isinstance(manifest, dict):
        st["build"] = manifest.get("build")
    doc, err = _read_json(root + "/config.json")
    model = "/model.tflite"
    if err is not None:
        st["config"] = err
    else:
        try:
            cfg = validate(doc)
            st["config"] = "ok"
            st["node_id"] = cfg["node_id"]
            model = cfg["detector"]["model"]
        except ConfigError as e:
            st["config"] = "invalid: %s" % e
            if isinstance(doc, dict):
                st["node_id"] = doc.get("node_id")
    prof, err = _read_json(root + "/board.json")
    if err is not None:
        st["board_profile"] = err
    else:
        try:
            validate_profile(prof)
            st["board_profile"] = "ok"
        except ConfigError as e:
            st["board_profile"] = "invalid: %s" % e
        if isinstance(prof, dict):
            st["board"] = prof.get("name")
    size = _size(root + model)
    if size is not None:
        st["model"] = {"path": model, "bytes": size}
    st["heap_free"] = gc.mem_free() if hasattr(gc, "mem_free") else None
    st["heap_used"] = gc.mem_alloc() if hasattr(gc, "mem_alloc") else None
    try:
        fs = os.statvfs(root or "/")
        st["fs_free"] = fs[0] * fs[3]
        st["fs_total"] = fs[0] * fs[2]
    except (OSError, AttributeError):
        st["fs_free"] = st["fs_total"] = None
    st["uid"], st["reset_cause"] = _hardware()
    st["uptime_ms"] = ticks_ms()
    st["log"] = _log(root + data_dir, recent)
    return st


def status_json(root="", data_dir="/data", recent=5):
    """status() as one line of JSON."""
    return json.dumps(status(root, data_dir, recent))
