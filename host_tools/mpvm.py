"""Run code on the real MicroPython VM (WebAssembly port under Node.js).

Used by the firmware tests, the benchmarks and the virtual node, so that firmware code is exercised
on the interpreter the boards run, not only on CPython.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
SCRIPT = Path(__file__).with_name("mpvm.mjs")
# Where the firmware package lives inside the VM (and under /lib on a board).
VM_PACKAGE = "/lib/seismote/firmware"


class VMUnavailable(RuntimeError):
    """Node.js or the MicroPython WebAssembly package is not installed."""


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise VMUnavailable("Node.js is not on PATH; run `make setup` (README)")
    if not (ROOT / "node_modules" / "@micropython" / "micropython-webassembly-pyscript").is_dir():
        raise VMUnavailable("the MicroPython VM is not installed; run `npm ci` in %s" % ROOT)
    return node


def firmware_mounts(extra: dict[str, str] | None = None) -> list[str]:
    """Mount arguments that place firmware/ at seismote.firmware inside the VM."""
    mounts = ["%s:%s" % (FIRMWARE, VM_PACKAGE)]
    for host, vm in (extra or {}).items():
        mounts.append("%s:%s" % (host, vm))
    return mounts


def run(code: str | list[str], mounts: list[str] | None = None, heap: int = 1 << 20, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `code` on the VM with `mounts` ("HOST:VM" pairs); returns the finished process.

    A list of chunks runs as consecutive top-level calls in one VM; the VM frees garbage only
    between chunks (see mpvm.mjs), so measure the heap in a chunk after the one being measured.
    """
    chunks = [code] if isinstance(code, str) else list(code)
    cmd = [node_binary(), str(SCRIPT), "--heap", str(heap)]
    for m in mounts if mounts is not None else firmware_mounts():
        cmd += ["--mount", m]
    # /lib/seismote needs an __init__: MicroPython has no namespace packages.
    chunks[0] = "try:\n    open('/lib/seismote/__init__.py', 'a').close()\nexcept OSError:\n    pass\n" + chunks[0]
    for c in chunks:
        cmd += ["--code", c]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
