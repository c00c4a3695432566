"""Real records for the detector's data set: the OpenEEW accelerograms (Mexico, 2017-2020).

    ex = openeew_examples(OPENEEW_ROOT)                  # one dict per device and event
    split = split_events(seed=0)                         # {"train": [...], "val": [...], "test": [...]}

Data: ../shared/data/openeew (OpenEEW / Grillo, CC BY-SA 4.0: anything derived from these files and
shipped, such as a trained model, must carry that attribution and licence). `records.csv` lists one
row per jsonl file with the matched catalogue event and a heuristic label.

The files of one device and event (the 2018_2_16 buckets 35 and 40) are joined into one Record. The
P arrival is located on the record's own time axis: catalogue origin time + hypocentral travel time
(depth DEPTH_KM, vp 6.5 km/s) - the record's `start_utc` (from device_t; the file-name minute and the
rounded start in records.csv can differ from it by a second or more), then refined by an AIC onset
pick (Maeda 1985) on the high-passed vertical within +-PICK_SEARCH_S of the prediction, accepted
only where the pick has a clear STA/LTA step (>= PICK_MIN_RATIO), so a P buried in noise keeps its
prediction (+-2-3 s).

Event ids are the folder names ("2018_2_16"). The split is by event, never by file or device:
`split_events` always puts the Mw 7.2 2018_2_16 Pinotepa earthquake (the README's demo event, 13
devices at 66-408 km) in "test", with one more event drawn by the seed; "val" gets two events and
"train" the other five. So the test set holds whole events the model never saw, including the only
large one.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import numpy as np
from scipy import signal

from ..host_tools.waveforms import read_records

OPENEEW_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "openeew"
DEPTH_KM = 20.0  # the depth records.csv assumes; the catalogue gives none
VP_KMS = 6.5
VS_KMS = 3.7
PICK_SEARCH_S = 3.0
PICK_MIN_RATIO = 2.0
TEST_EVENT = "2018_2_16"
EVENTS = ("2017_12_15", "2017_12_25", "2018_1_8", "2018_2_16", "2018_8_22", "2019_3_9", "2020_1_24",
          "2020_1_30", "2020_3_30")
QUAKE_LABELS = ("earthquake_visible", "earthquake_weak")
BURIED_LABEL = "earthquake_not_visible(below noise)"
NOISE_LABEL = "pre_event_noise(P after file end)"
# When the files of one device are joined, the record takes the most informative of their labels.
_LABEL_RANK = {"earthquake_visible": 0, "earthquake_weak": 1, "earthquake_onset_at_file_end(see 40.jsonl)": 2,
               BURIED_LABEL: 3, NOISE_LABEL: 4}
UTC = dt.timezone.utc


def read_index(root=OPENEEW_ROOT):
    """Rows of records.csv (dicts of strings), in file order."""
    with open(Path(root) / "records.csv", newline="") as f:
        return list(csv.DictReader(f))


def event_ids(root=OPENEEW_ROOT):
    """The event ids (folder names) listed in records.csv, sorted."""
    try:
        return sorted({r["file"].split("/")[0] for r in read_index(root)})
    except OSError:
        return list(EVENTS)


def split_events(seed=0, root=OPENEEW_ROOT):
    """Split the OpenEEW events: {"train": [...], "val": [...], "test": [...]} (event ids, sorted).

    2018_2_16 (Mw 7.2) is always in test, with one other event chosen by `seed`; val gets two.
    """
    ids = event_ids(root)
    rest = [e for e in ids if e != TEST_EVENT]
    rng = np.random.default_rng([int(seed), 0x5EED])
    order = [rest[i] for i in rng.permutation(len(rest))]
    test = ([TEST_EVENT] if TEST_EVENT in ids else []) + order[:1]
    val = order[1:3]
    train = order[3:]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def _utc(text):
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def predicted_p_s(row, start_utc):
    """Seconds after `start_utc` at which P is expected (catalogue origin + straight-ray travel time)."""
    hypo = math.hypot(float(row["epi_km"]), DEPTH_KM)
    return (_utc(row["origin_utc"]) - start_utc).total_seconds() + hypo / VP_KMS


def pick_p(data, rate, predicted_s, search_s=PICK_SEARCH_S):
    """AIC onset pick near `predicted_s` on a (n, ncomp) record, vertical first.

    Returns (time_s, refined): the pick if the STA(1 s)/LTA(5 s) step across it is >= PICK_MIN_RATIO,
    else (predicted_s, False).
    """
    n = len(data)
    i0 = int((predicted_s - search_s - 8.0) * rate)
    i1 = int((predicted_s + search_s + 3.0) * rate)
    if i0 < 0 or i1 > n or i1 - i0 < int(4 * rate):
        return predicted_s, False
    sos = signal.butter(2, [1.0, min(10.0, 0.45 * rate)], btype="band", fs=rate, output="sos")
    x = signal.sosfiltfilt(sos, data[i0:i1, 0])
    m = len(x)
    k = np.arange(1, m - 1)
    c1 = np.cumsum(x * x)
    c0 = np.cumsum(x)
    var1 = (c1[k - 1] - c0[k - 1] ** 2 / k) / k
    tot1, tot0 = c1[-1], c0[-1]
    var2 = ((tot1 - c1[k - 1]) - (tot0 - c0[k - 1]) ** 2 / (m - k)) / (m - k)
    aic = k * np.log(np.maximum(var1, 1e-30)) + (m - k - 1) * np.log(np.maximum(var2, 1e-30))
    lo = int((predicted_s - search_s) * rate) - i0
    hi = int((predicted_s + search_s) * rate) - i0
    j = lo + int(np.argmin(aic[lo - 1:hi - 1]))
    a = np.abs(x)
    before = a[max(0, j - int(5 * rate)):j].mean()
    after = a[j:j + int(1 * rate)].mean()
    if before > 0 and after / before >= PICK_MIN_RATIO:
        return (i0 + j) / rate, True
    return predicted_s, False


def openeew_examples(root=OPENEEW_ROOT, events=None):
    """One dict per (event, device): the joined Record at its native rate and what is known of it.

    Keys: record (waveforms.Record, gal, Z/N/E), event_id, catalog_id, label (records.csv label,
    the most informative of the joined files), positive (label visible or weak), p_offset_s (P on
    the record's own time axis, seconds after its first sample; may lie beyond the record's end),
    p_predicted_s, p_refined (bool), device, file ("a+b" for joined files), mag, epi_km.
    """
    root = Path(root)
    rows = read_index(root)
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        ev = r["file"].split("/")[0]
        if events is not None and ev not in events:
            continue
        groups.setdefault((ev, r["device"]), []).append(r)
    out = []
    for (ev, dev), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["file"])
        rec = read_records([str(root / r["file"]) for r in rs])[0]
        label = min((r["label"] for r in rs), key=lambda s: _LABEL_RANK.get(s, 9))
        row = rs[0]
        start = rec.start_utc if rec.start_utc is not None else _utc(row["start_utc"])
        p_pred = predicted_p_s(row, start)
        p, refined = p_pred, False
        if label in QUAKE_LABELS:
            for seg in rec.segments:
                if seg.offset_s <= p_pred < seg.offset_s + len(seg.data) / rec.rate:
                    t, refined = pick_p(seg.data, rec.rate, p_pred - seg.offset_s)
                    p = t + seg.offset_s
        out.append(dict(record=rec, event_id=ev, catalog_id=row["event_id"], label=label,
                        positive=label in QUAKE_LABELS, p_offset_s=float(p), p_predicted_s=float(p_pred),
                        p_refined=bool(refined), device=dev, file="+".join(r["file"] for r in rs),
                        mag=float(row["mag"]), epi_km=float(row["epi_km"])))
    return out
