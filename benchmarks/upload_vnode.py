"""Time to upload the firmware to the virtual node: mpy-cross build, first (full) upload, and a
second upload with nothing changed (only hashes compared). Prints one JSON line.

    python benchmarks/upload_vnode.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seismote.host_tools import deploy  # noqa: E402
from seismote.host_tools.transport import Transport  # noqa: E402
from seismote.host_tools.virtual_node import VirtualNode  # noqa: E402

BOARD = "esp32-devkitc-adxl355"


def main() -> None:
    profile = deploy.load_profile(BOARD)
    with tempfile.TemporaryDirectory() as tmp, VirtualNode() as vn:
        t0 = time.perf_counter()
        build = deploy.build_mpy(Path(tmp) / "build")
        t_build = time.perf_counter() - t0
        runs = []
        for _ in range(2):
            with Transport.connect(vn.port) as t:
                t0 = time.perf_counter()
                rep = deploy.upload(t, build, profile=profile, cfg={"node_id": "bench"})
                runs.append((time.perf_counter() - t0, len(rep.uploaded), rep.bytes_sent))
    print(json.dumps({
        "build_s": round(t_build, 2), "files": len(build.files),
        "first_upload_s": round(runs[0][0], 2), "first_files": runs[0][1], "first_bytes": runs[0][2],
        "first_Bps": round(runs[0][2] / runs[0][0]) if runs[0][0] else None,
        "unchanged_upload_s": round(runs[1][0], 2), "second_files": runs[1][1],
    }))


if __name__ == "__main__":
    main()
