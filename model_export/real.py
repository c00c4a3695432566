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

Records of your own (`seismote model build-data --records catalog.csv`): a CSV catalogue, one row
per record, read by `read_catalog` and joined to the OpenEEW ones by `examples` and `split_events`:

    file,event,label,p_utc,origin_utc,epi_km,depth_km,mag,station,units,gain,split
    2021/ACAP.mseed,us2021abcd,earthquake,2021-09-08T01:47:58.4,,,,7.0,ACAP,counts,4.1e5,
    site3/night.sac,noise-site3,noise,,,,,,site3,m/s2,,train

- `file` (any format `seismote replay` reads: ObsPy's, OpenEEW jsonl, NPZ, CSV; relative to the
  catalogue's folder; files of one OpenEEW device joined with "+"), `event` (the split unit) and
  `label` (`earthquake`: P clearly visible, `weak`, or `noise`) are required.
- An earthquake's P: `p_utc` (a pick), or `p_s` (seconds after the record's first sample), or
  `origin_utc` and `epi_km` (+ `depth_km`, default DEPTH_KM), predicted and refined by `pick_p` as
  for OpenEEW. It must lie inside the record.
- `units`/`gain` as for replay; `mag`, `epi_km`, `station` are reported.
- `split` (train/val/test) is optional: all rows of an event must agree, an OpenEEW event keeps its
  split, and an event without one is placed by a hash of its id and the seed (80/10/10).
Every problem raises CatalogError naming the catalogue, the line and the column.
"""

from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path

import numpy as np
from scipy import signal

from ..host_tools.waveforms import MIN_RATE_HZ, WaveformError, parse_utc, read_records

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


def split_events(seed=0, root=OPENEEW_ROOT, catalog=None):
    """Split the OpenEEW events: {"train": [...], "val": [...], "test": [...]} (event ids, sorted).

    2018_2_16 (Mw 7.2) is always in test, with one other event chosen by `seed`; val gets two.
    With `catalog` (a path, see the module docstring) its events join the split too.
    """
    ids = event_ids(root)
    rest = [e for e in ids if e != TEST_EVENT]
    rng = np.random.default_rng([int(seed), 0x5EED])
    order = [rest[i] for i in rng.permutation(len(rest))]
    test = ([TEST_EVENT] if TEST_EVENT in ids else []) + order[:1]
    val = order[1:3]
    train = order[3:]
    out = {"train": sorted(train), "val": sorted(val), "test": sorted(test)}
    if catalog:
        where = {e: s for s, evs in out.items() for e in evs}
        for ev, split in _catalog_splits(catalog, read_catalog(catalog), where, seed).items():
            if ev not in where:
                out[split] = sorted(out[split] + [ev])
    return out


def predicted_p_s(origin_utc, epi_km, start_utc, depth_km=DEPTH_KM):
    """Seconds after `start_utc` at which P is expected (origin + straight-ray travel time)."""
    return (origin_utc - start_utc).total_seconds() + math.hypot(epi_km, depth_km) / VP_KMS


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


def pick_in_record(rec, predicted_s):
    """`pick_p` in the segment of `rec` that holds the predicted P: (time_s on the record's axis, refined);
    the prediction itself where no segment holds it."""
    for seg in rec.segments:
        if seg.offset_s <= predicted_s < seg.offset_s + len(seg.data) / rec.rate:
            t, refined = pick_p(seg.data, rec.rate, predicted_s - seg.offset_s)
            return t + seg.offset_s, refined
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
        where = "%s (%s)" % (root / "records.csv", row["file"])
        start = rec.start_utc if rec.start_utc is not None else parse_utc(where, row["start_utc"])
        p_pred = predicted_p_s(parse_utc(where, row["origin_utc"], "origin_utc"), float(row["epi_km"]), start)
        p, refined = pick_in_record(rec, p_pred) if label in QUAKE_LABELS else (p_pred, False)
        out.append(dict(record=rec, event_id=ev, catalog_id=row["event_id"], label=label,
                        positive=label in QUAKE_LABELS, p_offset_s=float(p), p_predicted_s=float(p_pred),
                        p_refined=bool(refined), device=dev, file="+".join(r["file"] for r in rs),
                        mag=float(row["mag"]), epi_km=float(row["epi_km"])))
    return out


# --- a catalogue of your own records -------------------------------------------------------------


class CatalogError(ValueError):
    """A records catalogue cannot be used: the message names the catalogue, the line and the column."""


CATALOG_LABELS = {"earthquake": "earthquake_visible", "weak": "earthquake_weak", "noise": NOISE_LABEL}
CATALOG_REQUIRED = ("file", "event", "label")
CATALOG_COLUMNS = CATALOG_REQUIRED + ("p_utc", "p_s", "origin_utc", "epi_km", "depth_km", "mag", "station", "units", "gain", "split")
SPLITS = ("train", "val", "test")
EVENT_ID_CHARS = 24  # dataset.META_DTYPE's event_id


def read_catalog(path) -> list[dict]:
    """The rows of a records catalogue, checked: dicts of the CATALOG_COLUMNS (missing ones ""), plus
    `line` and `paths` (the files, resolved against the catalogue's folder)."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            head = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise CatalogError("%s: unreadable catalogue: %s" % (path, e)) from None
    missing = [c for c in CATALOG_REQUIRED if c not in head]
    if missing:
        raise CatalogError("%s: the header lacks column %s (needs %s)" % (path, ", ".join(missing), ", ".join(CATALOG_REQUIRED)))
    unknown = [c for c in head if c not in CATALOG_COLUMNS]
    if unknown:
        raise CatalogError("%s: unknown column %s (known: %s)" % (path, ", ".join(unknown), ", ".join(CATALOG_COLUMNS)))
    if not rows:
        raise CatalogError("%s: no records listed" % path)
    out = []
    for line, r in enumerate(rows, start=2):
        row = {c: r.get(c, "") for c in CATALOG_COLUMNS}

        def bad(col, why):
            return CatalogError("%s:%d: %s: %s" % (path, line, col, why))

        for c in CATALOG_REQUIRED:
            if not row[c]:
                raise bad(c, "empty")
        if len(row["event"]) > EVENT_ID_CHARS:
            raise bad("event", "%r is longer than %d characters" % (row["event"], EVENT_ID_CHARS))
        if row["label"] not in CATALOG_LABELS:
            raise bad("label", "%r is not one of %s" % (row["label"], ", ".join(CATALOG_LABELS)))
        if row["split"] and row["split"] not in SPLITS:
            raise bad("split", "%r is not one of %s" % (row["split"], ", ".join(SPLITS)))
        for c in ("p_s", "epi_km", "depth_km", "mag", "gain"):
            if row[c]:
                try:
                    v = float(row[c])
                except ValueError:
                    raise bad(c, "%r is not a number" % row[c]) from None
                if not math.isfinite(v) or (c != "mag" and v < 0) or (c == "gain" and v == 0):
                    raise bad(c, "%r is out of range" % row[c])
        for c in ("p_utc", "origin_utc"):
            if row[c]:
                try:
                    parse_utc(str(path), row[c], c)
                except ValueError:
                    raise bad(c, "%r is not an ISO time (2021-09-08T01:47:58.4)" % row[c]) from None
        if row["label"] != "noise" and not (row["p_utc"] or row["p_s"] or (row["origin_utc"] and row["epi_km"])):
            raise bad("p_utc", "an earthquake needs its P: p_utc, p_s, or origin_utc and epi_km")
        row["paths"] = [path.parent / p.strip() for p in row["file"].split("+")]
        for p in row["paths"]:
            if not p.is_file():
                raise bad("file", "%s does not exist" % p)
        row["line"] = line
        out.append(row)
    return out


def _catalog_splits(path, rows, where, seed) -> dict:
    """Each catalogue event's split: its rows' `split`, the OpenEEW split of an OpenEEW event, or drawn
    as the synthetic records' are (dataset.choose_split, 80/10/10) from a hash of the event id and
    the seed. Rows that disagree are an error."""
    from .dataset import choose_split  # dataset imports this module

    out: dict[str, str] = {}
    for r in rows:
        ev, want = r["event"], r["split"] or None
        have = out.get(ev) or where.get(ev)
        if want and have and want != have:
            raise CatalogError("%s:%d: split: event %s is in %s, not %s (an event is never split)" % (path, r["line"], ev, have, want))
        out[ev] = want or have or ""
    for ev, split in out.items():
        if not split:
            out[ev] = choose_split(np.random.default_rng([int(seed), int(hashlib.sha256(ev.encode()).hexdigest()[:15], 16)]))
    return out


def _catalog_p(row, rec, where) -> float:
    """A catalogue row's P on its record's axis: p_s, or p_utc, or origin_utc + travel time."""
    if row["p_s"]:
        return float(row["p_s"])
    if rec.start_utc is None:
        raise CatalogError("%s: p_utc: %s carries no start time: give p_s (seconds after its first sample)" % (where, row["file"]))
    if row["p_utc"]:
        return (parse_utc(where, row["p_utc"], "p_utc") - rec.start_utc).total_seconds()
    origin = parse_utc(where, row["origin_utc"], "origin_utc")
    return predicted_p_s(origin, float(row["epi_km"]), rec.start_utc, float(row["depth_km"] or DEPTH_KM))


def catalog_examples(catalog, events=None) -> list[dict]:
    """One dict per catalogue row, with the keys of `openeew_examples` (device: `station`, or the
    file's name; mag and epi_km NaN where not given)."""
    out = []
    for row in read_catalog(catalog):
        if events is not None and row["event"] not in events:
            continue
        where = "%s:%d" % (catalog, row["line"])
        try:
            recs = read_records([str(p) for p in row["paths"]], units=row["units"] or None,
                                gain=float(row["gain"]) if row["gain"] else None)
        except WaveformError as e:
            raise CatalogError("%s: file: %s" % (where, e)) from None
        if len(recs) != 1:
            raise CatalogError("%s: file: %d records, not one (only OpenEEW files of one device join)" % (where, len(recs)))
        rec = recs[0]
        if rec.rate < MIN_RATE_HZ:
            raise CatalogError("%s: file: %g Hz is below the %g Hz the node's pipeline needs" % (where, rec.rate, MIN_RATE_HZ))
        label = CATALOG_LABELS[row["label"]]
        if label in QUAKE_LABELS:
            p_pred = _catalog_p(row, rec, where)
            # a pick given is a pick; a prediction is refined as OpenEEW's are
            p, refined = (p_pred, True) if row["p_utc"] or row["p_s"] else pick_in_record(rec, p_pred)
            if not 0.0 <= p < rec.duration_s:
                raise CatalogError("%s: P at %.2f s lies outside the record (0-%.2f s)" % (where, p, rec.duration_s))
        else:
            p_pred = p = rec.duration_s + 3600.0  # noise: no P in the record, as OpenEEW's NOISE_LABEL
            refined = False
        out.append(dict(record=rec, event_id=row["event"], catalog_id=row["event"], label=label, positive=label in QUAKE_LABELS,
                        p_offset_s=float(p), p_predicted_s=float(p_pred), p_refined=bool(refined),
                        device=row["station"] or row["paths"][0].stem, file=row["file"],
                        mag=float(row["mag"]) if row["mag"] else math.nan, epi_km=float(row["epi_km"]) if row["epi_km"] else math.nan))
    return out


def examples(events=None, root=OPENEEW_ROOT, catalog=None) -> list[dict]:
    """The OpenEEW examples (`openeew_examples`; none with root None), then the catalogue's, of `events` (None: all)."""
    out = openeew_examples(root, events) if root else []
    if catalog:
        out += catalog_examples(catalog, events)
    return out
