"""Hardware in the loop (marker `hil`): run against a real board with `pytest -m hil --port P`,
against the virtual node otherwise (firmware on the MicroPython VM behind a pty, same protocol).

- an earthquake injected into the sensor is found as a detection in the pulled event log;
- power cut in the middle of a log write: after the reset every complete record is still there,
  the torn one is never returned, and the node logs the recovery.
(Flash/upload and the config round trip are the `hil` tests in test_deploy.py.)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from seismote.firmware import eventlog
from seismote.host_tools import logs
from seismote.host_tools.cli import DEMO_RECORD
from seismote.host_tools.transport import Transport

HIL_PORT = os.environ.get("SEISMOTE_HIL_PORT")
pytestmark = pytest.mark.hil


def _virtual(**kw):
    from seismote.host_tools import mpvm
    from seismote.host_tools.virtual_node import VirtualNode

    try:
        mpvm.node_binary()
    except mpvm.VMUnavailable as e:
        pytest.skip(str(e))
    return VirtualNode(**kw)


def _pull_all(port: str, out: Path):
    with Transport.connect(port, soft_reset=False) as t:
        logs.pull(t, out)
    return logs.load(out)


def test_injected_earthquake_is_found_in_the_pulled_log(tmp_path: Path) -> None:
    if HIL_PORT:
        pytest.skip("a real board's sensor cannot be fed a record: use the shake table (hardware/hil-rig.md)")
    # The 2018 Mw 7.2 Pinotepa record (OpenEEW / Grillo, CC BY-SA 4.0): P at ~309.5 s.
    with _virtual(waveform=[str(p) for p in DEMO_RECORD], speed=30, start_s=260) as vn:
        deadline = time.monotonic() + 60
        while True:
            with Transport.connect(vn.port, soft_reset=False) as t:
                n = int(t.exec("import seismote_vnode as v\nprint(v.node.stats['detections'] if v.node else 0)").strip())
            if n >= 1:
                break
            assert time.monotonic() < deadline, "no detection within 60 s:\n" + vn.log_text()[-2000:]
            time.sleep(0.5)
        pulled = _pull_all(vn.port, tmp_path / "pull")
    events = [r.json() for r in pulled.records if r.type == eventlog.T_EVENT]
    assert events and 0.5 <= events[0]["pga_gal"] <= 3.0, events
    assert pulled.corrupt_bytes == 0
    seqs = [r.seq for r in pulled.records]
    assert seqs == sorted(set(seqs))


TEAR = """
from seismote.firmware import eventlog
import os
d = '/data'
names = sorted(n for n in os.listdir(d) if n.startswith('ev'))
rec = eventlog.encode(eventlog.T_EVENT, 4000000, 0, b'{"torn": true}')
with open(d + '/' + names[-1], 'ab') as f:
    f.write(rec[:%d])
print(names[-1])
"""


@pytest.mark.parametrize("cut", [3, 11, 20])
def test_power_cut_mid_write_loses_no_complete_record(tmp_path: Path, cut: int) -> None:
    ctx = _virtual() if not HIL_PORT else None
    vn = ctx.__enter__() if ctx else None
    port = HIL_PORT or vn.port
    try:
        before = _pull_all(port, tmp_path / "before")
        assert before.records, "the node has written nothing yet"
        with Transport.connect(port, soft_reset=False) as t:
            t.exec(TEAR % cut)  # the first `cut` bytes of a record reach flash, then the power goes
            t.reset()
        after = _pull_all(port, tmp_path / "after")
    finally:
        if ctx:
            ctx.__exit__(None, None, None)
    raw_before = {r.seq: (r.type, r.time, r.payload) for r in before.records}
    raw_after = {r.seq: (r.type, r.time, r.payload) for r in after.records}
    # Every complete record survived, byte for byte; the torn one was never returned.
    assert all(raw_after.get(s) == v for s, v in raw_before.items())
    assert 4000000 not in raw_after and not any(b'"torn"' in p for _, _, p in raw_after.values())
    kinds = [r.json().get("kind") for r in after.records if r.type == eventlog.T_STATUS]
    assert "log_recovered" in kinds
    recovered = [r.json() for r in after.records if r.type == eventlog.T_STATUS and r.json().get("kind") == "log_recovered"]
    assert recovered[-1]["torn_bytes"] == cut
    # and the node is logging again after the recovery
    assert max(raw_after) > max(raw_before)
