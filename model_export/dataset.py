"""The detector's data set: windows exactly as the node computes them, deterministic and cached.

    ds = build_dataset(DatasetConfig(seed=0), Path("build/data"))   # second call: loads the cache
    ds.x (N, 200, 3) int8, ds.y (N,) uint8, ds.split, ds.kind, ds.meta, ds.fingerprint
    train = ds.subset("train")

What the model sees is what the node computes (the representation contract):
  acceleration (gal) -> + gravity (a nearly level node, small tilt) + the sensor's zero-g offset
  -> counts: rint(a * COUNTS_PER_G / g), clipped to the sensor's full scale (firmware/config.py)
  -> conditioner at the 50 Hz pipeline rate (`condition`: bit-identical to
     firmware/conditioner.Conditioner, which tests/test_model_data.py checks on random data)
  -> the last WINDOW = 200 samples x 3 channels, scaled to int8 by the window's peak
     (`quantize_windows`: bit-identical to firmware/detector_input.quantize).
Channels are [Z, N, E] = the node's [x, y, z] with the vertical first, as `seismote replay` feeds
OpenEEW records (their vertical axis is x). Every signal already contains the sensor's self-noise.

Examples (`kind`, label y):
- "quake" (1): synthetic earthquakes (synth_quake: Boore 2003 stochastic method, M 2.5-8, 1-300 km)
  mixed into a background: synthetic noise of most kinds (ambient most often) or, with probability
  REAL_BACKGROUND_P, real OpenEEW noise from events of the same split. Amplitude scaling (x0.5-2) and
  time shifts (P at 12-18 s, window ends drawn per stratum) augment them. Per record: 3 windows whose
  end lies 0.1-1, 1-2 and 2-3 s after P, 1 ending 3-20 s after P (S and coda) and, where S comes
  within 20 s of P, 1 ending 0.1-3 s after S (where the node triggers on distant events), and
  TRIGGER_WINDOWS ending 0.1-2.5 s after an STA/LTA onset in [P - 0.5 s, P + 20 s] (the windows the
  node scores first: its detector runs from its trigger on, at P or at S or later). A window
  is only kept as positive if the quake is visible in it: peak |quake| in the window after P >=
  SNR_MIN x the background's rms over the record (DC removed as the node does, quantisation noise
  included); the node would not trigger on the others, and they look like noise (`meta["snr"]`).
  Distance is half log-uniform in 1-300 km, half uniform in 10-300 km; magnitude lies between the
  smallest whose median PGA (Boore & Atkinson 2008) is 3-15x the background's rms and 8 (weighted
  towards the small end), so records are mostly visible on their sensor, with PGA from a few gal up.
- "quake:pre-p" (0): one window per synthetic quake record that ends >= 0.1 s before P.
- "noise:<kind>" (0): synth_noise records of every NOISE_KINDS kind; per record up to 2 windows
  ending 0.1-4 s after an event onset, 1 ending 0.1-3 s after an STA/LTA trigger (what the node
  would run its detector on), and random ones to make about 4.
- "real:quake" (1): OpenEEW visible/weak records, windows ending 0.1-3 s (P refined by a pick) or
  3-20 s (any) after P, and after an STA/LTA onset in [P - 0.5 s, P + 60 s] as for the synthetic
  ones, with the same visibility rule (peak after P >= SNR_MIN x pre-event rms).
- "real:pre-p" (0): their windows ending before P (>= 3 s before a refined P, 5 s otherwise).
- "real:buried" (0): "earthquake_not_visible(below noise)" records: hard negatives, any window.
- "real:noise" (0): "pre_event_noise(P after file end)" records.
Real records are resampled to 50 Hz with `Record.resampled(50.0)` and replayed REAL_PASSES times as
different sensors (random sensor, horizontal rotation, gain x0.7-1.4: `real_pass`); with
`DatasetConfig.real_mix`, the train events' quake records that many times more, scaled x0.5-2 over
a background drawn as the synthetic quakes' (off by default).

Splits: synthetic records go to train/val/test with probabilities SPLIT_P (by record: all windows of
a record share its split); real records by event (`real.split_events(seed)`), and the real noise
mixed under synthetic quakes comes from events of the same split. `meta["event_id"]` is the event
folder ("2018_2_16") for real windows and "syn-q<index>" / "syn-n<index>" for synthetic records.

Fingerprint: sha256 of the config (without `workers`, `real_root`), CODE_VERSION, the source of the
modules that shape the data, and the content of records.csv and every OpenEEW file used. The set is
saved as one NPZ, `<cache_dir>/seismote-data-<fingerprint[:16]>.npz`; the next call with the same
fingerprint loads it. A trained model records the fingerprint and `Dataset.content_sha256()`, the
hash of the windows themselves: `seismote model calibrate` accepts a data set with the model's
content even when an edit of the data code (a refactor, an option off by default) changed the
fingerprint.

`continuous_records` yields long continuous synthetic recordings (an hour of a home, office, street,
factory, tower, carried phone or quiet site, with labelled quake insertions) for measuring false
detections per hour and detection delay through the full node pipeline.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from ..firmware import config as fwconfig
from ..firmware import detector_input
from ..firmware.config import PIPELINE_RATE_HZ
from ..host_tools.waveforms import Record, Segment
from . import real as realmod
from .synth_noise import NOISE_KINDS, SENSOR_NOISE_UG, ambient, sensor_noise, synth_noise_events
from .synth_quake import G_GAL, ba08_pga_g, synth_quake

CODE_VERSION = "data-2"
RATE = float(PIPELINE_RATE_HZ)
WINDOW = detector_input.WINDOW
CHANNELS = detector_input.CHANNELS
SPLIT_P = (("train", 0.8), ("val", 0.1), ("test", 0.1))
SNR_MIN = 4.0  # positives: peak after P >= 4x the background rms (6x: fewer weak real positives, 33% vs 72% of the real test records)
REAL_BACKGROUND_P = 0.3
REAL_PASSES = 4
WARMUP = 150  # samples after the record start before a window may end (DC removal settles)
EARLY_STRATA = ((0.1, 1.0), (1.0, 2.0), (2.0, 3.0))
TRIGGER_WINDOWS = 2  # positive windows after the node's trigger, per quake record
TRIGGER_AFTER_S = (0.1, 2.5)
LATE_RANGE = (3.0, 20.0)
_K1 = 7  # firmware/conditioner.py _K1, _K2
_K2 = 3
# Backgrounds for synthetic quakes (synthetic part), with weights. Carried phones and knocks on the
# node are left out: a node being carried or hit is not recording an earthquake.
BACKGROUNDS = (("sensor", 0.12), ("ambient", 0.45), ("footsteps", 0.08), ("traffic", 0.1), ("machinery", 0.08),
               ("sway", 0.05), ("construction", 0.05), ("tools", 0.04), ("door", 0.03))
ZERO_G_OFFSET_G = {"adxl355": 0.025, "mpu6050": 0.05, "adxl345": 0.05}
_MODULES = ("synth_quake.py", "synth_noise.py", "real.py", "dataset.py")
_FIRMWARE = ("conditioner.py", "detector_input.py", "config.py")
META_DTYPE = np.dtype([
    ("mag", "f4"), ("dist_km", "f4"), ("depth_km", "f4"), ("sensor", "U8"), ("pga_gal", "f4"),
    ("t_after_p_s", "f4"), ("snr", "f4"), ("window_peak_gal", "f4"), ("event_id", "U24"),
    ("record", "i4"), ("background", "U16"), ("source", "U48"),
])


# ---------------------------------------------------------------------------------------------
# The node's signal path in numpy


def counts_per_g(sensor, range_g=2):
    return fwconfig.COUNTS_PER_G[sensor][range_g]


def to_counts(acc_gal, sensor, range_g=2, rng=None, gravity=True):
    """Acceleration (n, 3) gal [Z, N, E] -> the sensor's raw counts (int64), as the driver reads them.

    With `gravity`, +1 g on a nearly level node (tilt 0-5 degrees) and a zero-g offset are added
    (`rng` draws them; None = level, no offset). Clipped at the full scale, rounded to integers.
    """
    cpg = counts_per_g(sensor, range_g)
    full = range_g * cpg
    a = np.asarray(acc_gal, dtype=float)
    if gravity:
        g = np.array([G_GAL, 0.0, 0.0])
        if rng is not None:
            tilt = math.radians(rng.uniform(0.0, 5.0))
            az = rng.uniform(0.0, 2 * math.pi)
            g = G_GAL * np.array([math.cos(tilt), math.sin(tilt) * math.cos(az), math.sin(tilt) * math.sin(az)])
            g = g + G_GAL * ZERO_G_OFFSET_G[sensor] * rng.uniform(-1.0, 1.0, 3)
        a = a + g
    return np.clip(np.rint(a * (cpg / G_GAL)), -full, full).astype(np.int64)


def condition(counts, decimation=1, band=False):
    """firmware/conditioner.Conditioner over whole records, bit-identical, vectorised over lanes.

    `counts`: int (n, 3) or a batch (B, n, 3) of equally long records. Returns y (int64, same layout
    with n // decimation samples) and, with `band`, also the trigger-band signal. The recursion is
    integer arithmetic with arithmetic shifts and floor division, as on the node; it runs over time
    with all records and axes of the batch at once.
    """
    c = np.asarray(counts)
    single = c.ndim == 2
    if single:
        c = c[None]
    if not np.issubdtype(c.dtype, np.integer):
        raise TypeError("counts must be integers")
    b, n, k = c.shape
    d = int(decimation)
    if d < 1:
        raise ValueError("Invalid decimation: %d" % d)
    m = n // d
    v = c[:, :m * d].astype(np.int64).reshape(b, m, d, k).sum(axis=2) // d
    v = np.ascontiguousarray(v.transpose(1, 0, 2).reshape(m, b * k))
    y = np.empty_like(v)
    bd = np.empty_like(v) if band else None
    if m:
        dc = v[0] << _K1
        lp = np.zeros(b * k, dtype=np.int64)
        for i in range(m):
            w = v[i] - (dc >> _K1)
            dc += w
            y[i] = w
            if band:
                bb = w - (lp >> _K2)
                lp += bb
                bd[i] = bb
    y = y.reshape(m, b, k).transpose(1, 0, 2)
    if band:
        bd = bd.reshape(m, b, k).transpose(1, 0, 2)
    if single:
        y = y[0]
        bd = bd[0] if band else None
    return (y, bd) if band else y


def quantize_windows(w):
    """detector_input.quantize over windows (..., 200, 3) of counts: (int8 array, peak per window)."""
    w = np.asarray(w, dtype=np.int64)
    axes = (-2, -1)
    peak = np.maximum(np.abs(w).max(axis=axes), 1)
    p = peak[..., None, None]
    half = p >> 1
    a = np.abs(w)
    q = (a * 127 + half) // p
    q = np.where(w >= 0, q, -q)
    return q.astype(np.int8), peak


def windows_at(y, ends):
    """Windows of WINDOW samples ending (inclusive) at each index in `ends`: (len(ends), 200, 3)."""
    ends = np.asarray(ends, dtype=np.int64)
    idx = ends[:, None] + np.arange(-WINDOW + 1, 1)[None, :]
    return y[idx]


def _hp(x):
    """Float version of the conditioner's DC removal (primed at the first sample), per column."""
    a = 1.0 - 2.0 ** -_K1
    return lfilter([1.0, -1.0], [1.0, -a], x - x[:1], axis=0)


def trigger_points(band, rate=RATE, sta_s=1.0, lta_s=20.0, on=2.5, warm_s=4.0):
    """Approximate STA/LTA onsets (sample indices) on the trigger-band signal (n, 3).

    Float recursive averages of cf = |b_x| + |b_y| + |b_z| (the node's characteristic function);
    used only to choose where negative windows end, where the node would run its detector.
    """
    cf = np.abs(np.asarray(band, dtype=float)).sum(axis=1)
    n = len(cf)
    if n < 4:
        return np.zeros(0, dtype=np.int64)
    ns, nl = max(1, int(sta_s * rate)), max(2, int(lta_s * rate))
    c0 = cf[:nl].mean()
    sta = lfilter([1.0 / ns], [1.0, -(1.0 - 1.0 / ns)], cf, zi=[c0 * (1 - 1.0 / ns)])[0]
    lta = lfilter([1.0 / nl], [1.0, -(1.0 - 1.0 / nl)], cf, zi=[c0 * (1 - 1.0 / nl)])[0]
    r = sta / np.maximum(lta, 1e-9 + 1e-3 * max(c0, 1.0))
    up = np.flatnonzero((r[1:] >= on) & (r[:-1] < on)) + 1
    return up[up >= int(warm_s * rate)]


# ---------------------------------------------------------------------------------------------
# Configuration, fingerprint, the Dataset


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    seed: int = 0
    n_quake: int = 3000  # synthetic quake records (~4-5 windows each)
    n_noise: int = 3300  # synthetic noise records, spread evenly over NOISE_KINDS (4 windows each)
    sensors: tuple = ("adxl355", "mpu6050", "adxl345")
    include_real: bool = True
    real_root: str = str(realmod.OPENEEW_ROOT)
    records: str = ""  # a catalogue of your own real records (real.read_catalog), "" for none
    small: bool = False  # a few hundred windows, for tests
    range_g: int = 2
    snr_min: float = SNR_MIN
    real_passes: int = REAL_PASSES
    # more passes of each real quake record of the train split, each scaled x0.5-2 and added to a
    # background drawn as the synthetic quakes' (`_background`: real noise of other train records or
    # synthetic activity): real P waves under footsteps, traffic, machinery (meta background = its name).
    # 16 (+5,194 windows; real quake windows in train 599 -> 2,385, within 1 s of P 63 -> 224; trained as
    # committed, 51 epochs, 13.8 min of fitting):
    # on the calibration recordings 87.4% of the quakes, 11 of 12 real val records at 0.50 false/h,
    # 1.89 s after P (confirm_n 4), against the committed model's 88.2%, 12 of 12, 0.44/h, 1.38 s; real
    # val median 5.7 s after P against 3.96 s (benchmarks/real_delay.py --split val). Off.
    real_mix: int = 0
    workers: int = 2  # processes (small builds run in-process); does not change the result

    def effective(self):
        """The sizes actually built (small=True shrinks them)."""
        if not self.small:
            return self
        return dataclasses.replace(self, n_quake=min(self.n_quake, 40), n_noise=min(self.n_noise, 2 * len(NOISE_KINDS)),
                                   real_passes=1)


def _sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _real_files(cfg):
    root = Path(cfg.real_root)
    rows = realmod.read_index(root)
    files = sorted({r["file"] for r in rows})
    return root, files


def fingerprint(cfg: DatasetConfig) -> str:
    """sha256 of what determines the data set: config, code version and source, input files."""
    doc = dataclasses.asdict(cfg)
    doc.pop("workers")
    doc.pop("real_root")
    for name in ("records", "real_mix"):  # the data of a build without them are those of the code before them
        if not doc[name]:
            doc.pop(name)
    doc["sensors"] = list(cfg.sensors)
    here = Path(__file__).resolve().parent
    fw = here.parent / "firmware"
    src = {name: _sha_file(here / name) for name in _MODULES}
    src.update({"firmware/" + name: _sha_file(fw / name) for name in _FIRMWARE})
    src["host_tools/waveforms.py"] = _sha_file(here.parent / "host_tools" / "waveforms.py")
    inputs = {}
    if cfg.include_real:
        root, files = _real_files(cfg)
        inputs["records.csv"] = _sha_file(root / "records.csv")
        for f in files:
            inputs[f] = _sha_file(root / f)
    if cfg.records:  # the catalogue and its files by content, not by where they are
        doc["records"] = _sha_file(cfg.records)
        for r in realmod.read_catalog(cfg.records):
            for p in r["paths"]:
                inputs["records:%d:%s" % (r["line"], p.name)] = _sha_file(p)
    blob = json.dumps({"config": doc, "code": CODE_VERSION, "source": src, "inputs": inputs}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclasses.dataclass
class Dataset:
    x: np.ndarray  # (N, 200, 3) int8, channels Z, N, E
    y: np.ndarray  # (N,) uint8, 1 = earthquake
    split: np.ndarray  # (N,) "train" / "val" / "test"
    kind: np.ndarray  # (N,) e.g. "quake", "noise:door", "real:quake"
    meta: np.ndarray  # (N,) structured, META_DTYPE
    fingerprint: str
    config: dict
    info: dict = dataclasses.field(default_factory=dict)

    def __len__(self):
        return len(self.y)

    def subset(self, which):
        """A Dataset of one split ("train", "val", "test") or of a boolean mask."""
        mask = (self.split == which) if isinstance(which, str) else np.asarray(which, dtype=bool)
        return Dataset(self.x[mask], self.y[mask], self.split[mask], self.kind[mask], self.meta[mask],
                       self.fingerprint, self.config, dict(self.info))

    def content_sha256(self):
        """sha256 of the windows, labels, splits, kinds and metadata: the data's identity. The
        fingerprint keys the cache by what builds the data (code, config, inputs), so any edit of the
        data code changes it; a model records this too, so it stays tied to data built again unchanged."""
        h = hashlib.sha256()
        for a in (self.x, self.y, self.split, self.kind, self.meta):
            a = np.ascontiguousarray(a)
            h.update(("%s%s" % (a.dtype.descr, a.shape)).encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def summary(self):
        """Counts per split and label, and per kind."""
        out = {"n": int(len(self)), "positive": int(self.y.sum()), "fingerprint": self.fingerprint}
        for s in ("train", "val", "test"):
            m = self.split == s
            out[s] = {"n": int(m.sum()), "positive": int(self.y[m].sum())}
        kinds, counts = np.unique(self.kind, return_counts=True)
        out["kinds"] = {str(k): int(c) for k, c in zip(kinds, counts)}
        return out

    def save(self, path):
        np.savez_compressed(path, x=self.x, y=self.y, split=self.split, kind=self.kind, meta=self.meta,
                            fingerprint=np.array(self.fingerprint), config=np.array(json.dumps(self.config)),
                            info=np.array(json.dumps(self.info)))

    @classmethod
    def load(cls, path):
        with np.load(path, allow_pickle=False) as z:
            return cls(z["x"], z["y"], z["split"], z["kind"], z["meta"], str(z["fingerprint"]),
                       json.loads(str(z["config"])), json.loads(str(z["info"])))


def cache_path(cfg: DatasetConfig, cache_dir) -> Path:
    return Path(cache_dir) / ("seismote-data-%s.npz" % fingerprint(cfg)[:16])


def build_dataset(cfg: DatasetConfig = DatasetConfig(), cache_dir="build/data", progress=None) -> Dataset:
    """Build (or load from `cache_dir`) the data set described by `cfg`.

    `progress`, if given, is called as progress(done, total, what) while building (jobs done).
    """
    fp = fingerprint(cfg)
    cache_dir = Path(cache_dir)
    path = cache_dir / ("seismote-data-%s.npz" % fp[:16])
    if path.exists():
        ds = Dataset.load(path)
        if ds.fingerprint == fp:
            ds.info["cache"] = "hit"
            return ds
    t0 = time.perf_counter()
    ds = _build(cfg, fp, progress)
    ds.info["build_s"] = round(time.perf_counter() - t0, 2)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".%d.tmp.npz" % os.getpid())
    ds.save(tmp)
    os.replace(tmp, path)
    ds.info["cache"] = "built"
    return ds


# ---------------------------------------------------------------------------------------------
# Building


def _rng(seed, *stream):
    return np.random.default_rng([int(seed), *[int(s) for s in stream]])


def choose_split(rng):
    """"train", "val" or "test" with the SPLIT_P probabilities, from one draw of `rng`."""
    u = rng.random()
    acc = 0.0
    for name, p in SPLIT_P:
        acc += p
        if u < acc:
            return name
    return SPLIT_P[-1][0]


def _weighted(rng, pairs):
    names = [p[0] for p in pairs]
    w = np.array([p[1] for p in pairs], dtype=float)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def _lsb_gal(sensor, range_g):
    return G_GAL / counts_per_g(sensor, range_g)


def _real_pool(cfg):
    """OpenEEW examples (and the catalogue's) resampled to 50 Hz, by split: list of dicts with 'data' and the P index."""
    split = realmod.split_events(cfg.seed, cfg.real_root, cfg.records)
    where = {e: s for s, evs in split.items() for e in evs}
    ex = realmod.examples(root=cfg.real_root, catalog=cfg.records)
    if cfg.small:  # two records per event: its best quake record and one other
        keep = []
        for ev in sorted({e["event_id"] for e in ex}):
            mine = [e for e in ex if e["event_id"] == ev]
            pos = [e for e in mine if e["positive"] and e["p_refined"]] or [e for e in mine if e["positive"]]
            neg = [e for e in mine if not e["positive"]]
            keep += pos[:1] + neg[:1]
        ex = keep
    out = []
    for i, e in enumerate(ex):
        rec = e["record"].resampled(RATE)
        for seg in rec.segments:
            if len(seg.data) < WINDOW + WARMUP + 50:
                continue
            p_index = int(round((e["p_offset_s"] - seg.offset_s) * RATE))
            data = seg.data if seg.data.shape[1] == 3 else np.pad(seg.data, ((0, 0), (0, 3 - seg.data.shape[1])))
            out.append(dict(data=np.ascontiguousarray(data), p_index=p_index, split=where[e["event_id"]],
                            event_id=e["event_id"], label=e["label"], positive=e["positive"],
                            refined=e["p_refined"], mag=e["mag"], epi_km=e["epi_km"], index=i,
                            source="%s/%s" % (e["event_id"], e["device"])))
    return out


def _noise_segments(pool):
    """Real noise for mixing, by split: pre-P parts (ending 5 s before P) and noise-only records."""
    by = {"train": [], "val": [], "test": []}
    for r in pool:
        if r["label"] == realmod.NOISE_LABEL:
            seg = r["data"]
        elif r["positive"]:
            seg = r["data"][:max(0, r["p_index"] - int(5 * RATE))]
        else:
            continue
        if len(seg) >= int(45 * RATE):
            by[r["split"]].append(seg)
    return by


_POOL: dict = {}


def _init_worker(noise_by_split):
    _POOL["noise"] = noise_by_split


def _empty_rows():
    return {"x": [], "y": [], "split": [], "kind": [], "meta": []}


def _add(rows, y_cond, ends, label, split, kind, metas, lsb):
    if not len(ends):
        return
    q, peak = quantize_windows(windows_at(y_cond, ends))
    rows["x"].append(q)
    rows["y"] += [label] * len(ends)
    rows["split"] += [split] * len(ends)
    rows["kind"] += [kind] * len(ends)
    for m, p in zip(metas, peak):
        m = dict(m)
        m["window_peak_gal"] = float(p) * lsb
        rows["meta"].append(m)


def _meta(**kw):
    base = dict(mag=np.nan, dist_km=np.nan, depth_km=np.nan, sensor="", pga_gal=np.nan, t_after_p_s=np.nan,
                snr=np.nan, window_peak_gal=np.nan, event_id="", record=-1, background="", source="")
    base.update(kw)
    return base


def _rescale(rng):
    """An amplitude factor, log-uniform in 0.5-2: the rescaling of quakes and of real noise."""
    return float(np.exp(rng.uniform(math.log(0.5), math.log(2.0))))


def _background(rng, split, sensor, n):
    """(acceleration (n, 3) gal, its name) to put a quake in: real noise of the split's events with
    probability REAL_BACKGROUND_P (rescaled x0.5-2, plus the sensor's self-noise), else synthetic
    noise of a BACKGROUNDS kind (self-noise included)."""
    real_noise = [r for r in _POOL.get("noise", {}).get(split, []) if len(r) >= n]
    if real_noise and rng.random() < REAL_BACKGROUND_P:
        src = real_noise[int(rng.integers(len(real_noise)))]
        a0 = int(rng.integers(0, len(src) - n + 1))
        bg = src[a0:a0 + n] * _rescale(rng)
        return bg + sensor_noise(sensor, n, RATE, rng), "real"
    background = _weighted(rng, BACKGROUNDS)
    return synth_noise_events(background, sensor, RATE, n / RATE, rng)[0], background


def _quake_record(cfg, i):
    """Synthesise quake record i: (counts, info) with the float quake and background for the SNR."""
    rng = _rng(cfg.seed, 1, i)
    split = choose_split(rng)
    sensor = cfg.sensors[int(rng.integers(len(cfg.sensors)))]
    p_at = float(rng.uniform(12.0, 18.0))
    dur = p_at + LATE_RANGE[1] + 2.0
    n = int(round(dur * RATE))
    bg, background = _background(rng, split, sensor, n)
    bg_hp = _hp(bg)
    lsb = _lsb_gal(sensor, cfg.range_g)
    sigma = math.sqrt(float(np.mean(bg_hp[WARMUP:] ** 2)) + lsb * lsb / 12.0)
    need = sigma * float(rng.uniform(3.0, 15.0))
    mag, dist = _visible_mag_dist(rng, need)
    depth = float(rng.uniform(3.0, 25.0) if mag < 7 else rng.uniform(8.0, 35.0))
    q, qm = synth_quake(mag, dist, depth, rate=RATE, duration_s=dur, p_at_s=p_at, rng=rng)
    if rng.random() < 0.5:  # amplitude scaling
        s = _rescale(rng)
        q = q * s
        qm["pga_gal"] *= s
    counts = to_counts(q + bg, sensor, cfg.range_g, rng)
    info = dict(rng=rng, split=split, sensor=sensor, p=qm["p_index"], s=qm["s_index"], q_hp=_hp(q), sigma=sigma,
                lsb=lsb,
                meta=dict(mag=mag, dist_km=dist, depth_km=depth, sensor=sensor, pga_gal=qm["pga_gal"],
                          event_id="syn-q%06d" % i, record=i, background=background, source="synth_quake"))
    return counts, info


def _after_triggers(rng, trig, p, n_pick=TRIGGER_WINDOWS, lo_s=-0.5, hi_s=LATE_RANGE[1]):
    """Offsets after P (s) of windows ending TRIGGER_AFTER_S after STA/LTA onsets in [P + lo_s, P + hi_s].

    These are the windows the node scores first: its detector runs from its trigger on, which comes at
    P for near events and with the S wave or later for distant ones.
    """
    near = [t for t in trig if p + lo_s * RATE <= t <= p + hi_s * RATE]
    out = []
    for j in rng.permutation(len(near))[:1]:
        out += [(near[j] - p) / RATE + rng.uniform(*TRIGGER_AFTER_S) for _ in range(n_pick)]
    return out


def _quake_windows(cfg, rows, y, band, info):
    rng, p, n = info["rng"], info["p"], len(y)
    ends, ts, snrs = [], [], []
    offsets = [rng.uniform(lo, hi) for lo, hi in EARLY_STRATA + (LATE_RANGE,)]
    sp = (info["s"] - p) / RATE  # and one window 0.1-3 s after S, where distant events trigger
    if sp + 0.1 <= LATE_RANGE[1]:
        offsets.append(min(LATE_RANGE[1], sp + rng.uniform(0.1, 3.0)))
    offsets += [o for o in _after_triggers(rng, trigger_points(band), p) if o >= 0.1]
    for off in offsets:
        e = p + int(round(off * RATE))
        if e >= n or e - WINDOW + 1 < WARMUP or e in ends:
            continue
        seg = info["q_hp"][max(p, e - WINDOW + 1):e + 1]
        snr = float(np.abs(seg).max()) / info["sigma"] if len(seg) else 0.0
        if snr >= cfg.snr_min:
            ends.append(e)
            ts.append((e - p) / RATE)
            snrs.append(snr)
    metas = [_meta(t_after_p_s=t, snr=s, **info["meta"]) for t, s in zip(ts, snrs)]
    _add(rows, y, ends, 1, info["split"], "quake", metas, info["lsb"])
    hi = p - int(0.1 * RATE)
    lo = WINDOW - 1 + WARMUP
    if hi > lo:
        e = int(rng.integers(lo, hi + 1))
        _add(rows, y, [e], 0, info["split"], "quake:pre-p", [_meta(t_after_p_s=(e - p) / RATE, **info["meta"])],
             info["lsb"])


def _min_mag(dist, pga_gal, lo=2.5, hi=8.0):
    """Smallest magnitude whose BA08 median PGA at `dist` reaches `pga_gal` (hi + 1 if none)."""
    if ba08_pga_g(hi, dist) * G_GAL < pga_gal:
        return hi + 1.0
    if ba08_pga_g(lo, dist) * G_GAL >= pga_gal:
        return lo
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        if ba08_pga_g(mid, dist) * G_GAL >= pga_gal:
            hi = mid
        else:
            lo = mid
    return hi


def _visible_mag_dist(rng, need_gal, m_max=8.0):
    """Distance half log-uniform in 1-300 km, half uniform in 10-300 km (the distances a network's
    nodes see most events from; redrawn while nothing up to m_max reaches `need_gal`), then a
    magnitude between the smallest that does and m_max, weighted towards the small end (u**2)."""
    for _ in range(100):
        if rng.random() < 0.5:
            dist = float(math.exp(rng.uniform(0.0, math.log(300.0))))
        else:
            dist = float(rng.uniform(10.0, 300.0))
        m_min = _min_mag(dist, need_gal, hi=m_max)
        if m_min <= m_max - 0.1:
            break
    m_min = min(m_min, m_max - 0.1)
    return float(m_min + (m_max - m_min) * rng.random() ** 2), dist


def _noise_record(cfg, i):
    rng = _rng(cfg.seed, 2, i)
    split = choose_split(rng)
    kind = NOISE_KINDS[i % len(NOISE_KINDS)]
    sensor = cfg.sensors[int(rng.integers(len(cfg.sensors)))]
    dur = float(rng.uniform(24.0, 36.0))
    acc, onsets = synth_noise_events(kind, sensor, RATE, dur, rng)
    counts = to_counts(acc, sensor, cfg.range_g, rng)
    peak = float(np.abs(acc - acc[:1]).max())
    info = dict(rng=rng, split=split, kind=kind, onsets=onsets, lsb=_lsb_gal(sensor, cfg.range_g),
                meta=dict(sensor=sensor, pga_gal=peak, event_id="syn-n%06d" % i, record=i, background=kind,
                          source="synth_noise"))
    return counts, info


def _negative_ends(rng, n, anchors, n_anchor, n_random, lo=None, hi=None, after_s=(0.1, 3.0)):
    """Window ends: up to n_anchor at `after_s` seconds after anchor samples, n_random uniform."""
    lo = WINDOW - 1 + WARMUP if lo is None else max(lo, WINDOW - 1 + WARMUP)
    hi = n - 1 if hi is None else min(hi, n - 1)
    if hi < lo:
        return []
    ends = []
    anchors = [a for a in anchors if lo <= a + int(after_s[0] * RATE) <= hi]
    if anchors and n_anchor:
        for j in rng.permutation(len(anchors))[:n_anchor]:
            ends.append(min(hi, anchors[j] + int(round(rng.uniform(*after_s) * RATE))))
    if n_random:
        ends += [int(v) for v in rng.integers(lo, hi + 1, n_random)]
    return sorted(set(e for e in ends if lo <= e <= hi))


def _noise_windows(cfg, rows, y, band, info):
    """Up to 2 windows after known event onsets, 1 after an STA/LTA trigger, the rest at random."""
    rng = info["rng"]
    onsets = sorted(set(int(round(t * RATE)) for t in info["onsets"]))
    ends = _negative_ends(rng, len(y), onsets, 2, 0, after_s=(0.1, 4.0))
    ends += _negative_ends(rng, len(y), list(trigger_points(band)), 1, 0)
    ends += _negative_ends(rng, len(y), [], 0, max(1, 4 - len(ends)))
    ends = sorted(set(ends))
    metas = [_meta(**info["meta"]) for _ in ends]
    _add(rows, y, ends, 0, info["split"], "noise:" + info["kind"], metas, info["lsb"])


def _pad_batch(counts_list):
    n = max(len(c) for c in counts_list)
    out = np.zeros((len(counts_list), n, 3), dtype=np.int64)
    for j, c in enumerate(counts_list):
        out[j, :len(c)] = c
        out[j, len(c):] = c[-1]
    return out


def _synthetic_job(args):
    cfg, which, indices = args
    rows = _empty_rows()
    recs = [(_quake_record if which == "quake" else _noise_record)(cfg, i) for i in indices]
    ys, bands = condition(_pad_batch([c for c, _ in recs]), band=True)
    for (c, info), y, b in zip(recs, ys, bands):
        y, b = y[:len(c)], b[:len(c)]
        if which == "quake":
            _quake_windows(cfg, rows, y, b, info)
        else:
            _noise_windows(cfg, rows, y, b, info)
    return _pack(rows)


def _real_job(args):
    cfg, recs = args
    rows = _empty_rows()
    prepared = []
    for r in recs:
        mix = cfg.real_mix if r["positive"] and r["split"] == "train" else 0
        for k in range(cfg.real_passes + mix):
            rng = _rng(cfg.seed, 3, r["index"], k)
            d, sensor, background = real_pass(cfg, r, rng, k, mixed=k >= cfg.real_passes)
            prepared.append((to_counts(d, sensor, cfg.range_g, rng), r, rng, sensor, background))
    if prepared:
        ys, bands = condition(_pad_batch([p[0] for p in prepared]), band=True)
        for (c, r, rng, sensor, background), y, band in zip(prepared, ys, bands):
            _real_windows(cfg, rows, y[:len(c)], band[:len(c)], r, rng, sensor, background)
    return _pack(rows)


def real_pass(cfg, r, rng, k, mixed=False):
    """Real record `r` (a `_real_pool` item) as recorded again: (acceleration gal, sensor, background).

    Pass 0 is the record on the first sensor; the others a random sensor, the horizontals rotated,
    and either the gain x0.7-1.4 or (`mixed`) the quake in another place: scaled as the synthetic
    ones (x0.5-2) over a background drawn as theirs (`_background`). The sensor's self-noise is added.
    """
    sensor = cfg.sensors[int(rng.integers(len(cfg.sensors)))] if k else cfg.sensors[0]
    az = rng.uniform(0, 2 * math.pi)
    d = r["data"].copy()
    h = d[:, 1] * math.cos(az) - d[:, 2] * math.sin(az), d[:, 1] * math.sin(az) + d[:, 2] * math.cos(az)
    d[:, 1], d[:, 2] = h
    if not mixed:
        gain = float(np.exp(rng.uniform(math.log(0.7), math.log(1.4)))) if k else 1.0
        return d * gain + sensor_noise(sensor, len(d), RATE, rng), sensor, "real"
    bg, background = _background(rng, r["split"], sensor, len(d))
    return d * _rescale(rng) + bg, sensor, background


def p_trust_s(refined):
    """How far a real record's P is trusted, in s: (how long before it a noise window must end, how
    long after it a quake window may end). A P not refined by a pick is trusted to a few seconds."""
    return (3.0, 0.1) if refined else (5.0, 2.0)


def _real_windows(cfg, rows, y, band, r, rng, sensor, background="real"):
    n, p = len(y), r["p_index"]
    lsb = _lsb_gal(sensor, cfg.range_g)
    base = dict(mag=r["mag"], dist_km=r["epi_km"], sensor=sensor, event_id=r["event_id"], record=r["index"],
                background=background, source=r["source"])
    trig = list(trigger_points(band))
    if r["positive"] and p < n:
        pre = y[max(0, p - int(12 * RATE)):max(0, p - int(2 * RATE))]
        sigma = float(np.sqrt(np.mean(pre.astype(float) ** 2))) if len(pre) > 50 else math.inf
        ends, ts, snrs = [], [], []
        strata = (EARLY_STRATA if r["refined"] else ()) + (LATE_RANGE, LATE_RANGE, (3.0, 8.0))
        offsets = [rng.uniform(lo, hi) for lo, hi in strata]
        before_s, after_s = p_trust_s(r["refined"])
        offsets += [o for o in _after_triggers(rng, trig, p, hi_s=60.0) if o >= after_s]
        for off in offsets:
            e = p + int(round(off * RATE))
            if e >= n or e - WINDOW + 1 < WARMUP or e in ends:
                continue
            seg = y[max(p, e - WINDOW + 1):e + 1]
            snr = float(np.abs(seg).max()) / max(sigma, 0.5) if len(seg) else 0.0
            if snr >= cfg.snr_min:
                ends.append(e)
                ts.append((e - p) / RATE)
                snrs.append(snr)
        pga = float(np.abs(y[p:min(n, p + int(60 * RATE))]).max()) * lsb if p >= 0 else np.nan
        metas = [_meta(t_after_p_s=t, snr=s, pga_gal=pga, **base) for t, s in zip(ts, snrs)]
        _add(rows, y, ends, 1, r["split"], "real:quake", metas, lsb)
        margin = int(before_s * RATE)
        ends = _negative_ends(rng, n, trig, 3, 4, hi=p - margin)
        metas = [_meta(t_after_p_s=(e - p) / RATE, **base) for e in ends]
        _add(rows, y, ends, 0, r["split"], "real:pre-p", metas, lsb)
    else:
        kind = "real:buried" if r["label"] == realmod.BURIED_LABEL else "real:noise"
        ends = _negative_ends(rng, n, trig, 4, 6)
        metas = [_meta(t_after_p_s=(e - p) / RATE, **base) for e in ends]
        _add(rows, y, ends, 0, r["split"], kind, metas, lsb)


def _pack(rows):
    if rows["x"]:
        x = np.concatenate(rows["x"])
    else:
        x = np.zeros((0, WINDOW, CHANNELS), dtype=np.int8)
    meta = np.zeros(len(rows["meta"]), dtype=META_DTYPE)
    for j, m in enumerate(rows["meta"]):
        meta[j] = tuple(m[name] for name in META_DTYPE.names)
    return (x, np.array(rows["y"], dtype=np.uint8), np.array(rows["split"], dtype="U5"),
            np.array(rows["kind"], dtype="U24"), meta)


def _build(cfg, fp, progress=None):
    eff = cfg.effective()
    for s in eff.sensors:
        if s not in SENSOR_NOISE_UG:
            raise ValueError("Invalid sensor: %r" % (s,))
    if eff.records and not eff.include_real:
        raise ValueError("records %s: a catalogue of real records needs include_real" % eff.records)
    pool = _real_pool(eff) if eff.include_real else []
    noise_by_split = _noise_segments(pool)
    chunk = 25
    jobs = []
    for which, count in (("quake", eff.n_quake), ("noise", eff.n_noise)):
        for a in range(0, count, chunk):
            jobs.append((_synthetic_job, (eff, which, list(range(a, min(count, a + chunk))))))
    real_chunk = 12
    for a in range(0, len(pool), real_chunk):
        jobs.append((_real_job, (eff, pool[a:a + real_chunk])))
    parts = []

    def done(part):
        parts.append(part)
        if progress is not None:
            progress(len(parts), len(jobs), "windows")

    if eff.workers > 1 and len(jobs) > 1 and not eff.small and _can_spawn():
        with ProcessPoolExecutor(eff.workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                 initargs=(noise_by_split,)) as ex:
            for part in ex.map(_call, jobs):
                done(part)
    else:
        _init_worker(noise_by_split)
        try:
            for job in jobs:
                done(_call(job))
        finally:
            _POOL.clear()
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    split = np.concatenate([p[2] for p in parts])
    kind = np.concatenate([p[3] for p in parts])
    meta = np.concatenate([p[4] for p in parts])
    doc = dataclasses.asdict(cfg)
    doc["sensors"] = list(cfg.sensors)
    info = {"code_version": CODE_VERSION, "real_split": realmod.split_events(cfg.seed, cfg.real_root, cfg.records)
            if cfg.include_real else None, "window": WINDOW, "rate_hz": RATE, "channels": ["Z", "N", "E"],
            "licence": "windows of kind real:* and quakes mixed into real noise derive from OpenEEW data "
                       "(OpenEEW / Grillo, CC BY-SA 4.0)" + (" and from the records of %s (their own terms)" % cfg.records
                                                             if cfg.records else "")}
    return Dataset(x, y, split, kind, meta, fp, doc, info)


def _can_spawn():
    """Worker processes are started with "spawn" (safe after TensorFlow has started its threads); a
    spawned child re-imports the parent's main script, which fails when it came from stdin."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return path is None or os.path.exists(path)


def _call(job):
    fn, args = job
    return fn(args)


# ---------------------------------------------------------------------------------------------
# Continuous records for false-detection and delay measurements


SCENARIOS = {
    # ambient rms range (gal), continuous sources, and events per hour by kind
    "quiet": dict(ambient=(0.002, 0.01), continuous=(), events={"footsteps": 2, "door": 1}),
    "home": dict(ambient=(0.005, 0.05), continuous=(), events={"footsteps": 30, "door": 12, "machinery": 3,
                                                                "bump": 2, "tools": 1}),
    "office": dict(ambient=(0.01, 0.1), continuous=("machinery",), events={"footsteps": 60, "door": 20,
                                                                            "traffic": 10, "bump": 3}),
    "street": dict(ambient=(0.02, 0.2), continuous=(), events={"traffic": 120, "footsteps": 20,
                                                               "construction": 4, "door": 6}),
    "industrial": dict(ambient=(0.05, 0.5), continuous=("machinery",), events={"construction": 20, "tools": 20,
                                                                                "traffic": 20, "machinery": 10}),
    "tower": dict(ambient=(0.005, 0.05), continuous=("sway",), events={"footsteps": 20, "door": 6}),
    "phone": dict(ambient=(0.005, 0.05), continuous=(), events={"carried": 20, "bump": 10, "footsteps": 10}),
}


@dataclasses.dataclass
class ContinuousRecord:
    """A long synthetic recording with known quakes.

    acc_gal (n, 3) [Z, N, E] includes the sensor's self-noise; quakes: dicts with p_s, s_s, end_s
    (seconds from the first sample), mag, dist_km, depth_km, pga_gal, snr (peak of the quake over the
    rms of the 30 s before its P: what "clearly visible" is judged by); activities: dicts with kind,
    t_s, dur_s. A detection outside every [p_s - 2, end_s] is a false detection.
    """

    name: str
    scenario: str
    sensor: str
    rate: float
    acc_gal: np.ndarray
    quakes: list
    activities: list

    @property
    def duration_s(self):
        return len(self.acc_gal) / self.rate

    def counts(self, range_g=2, seed=0):
        """The sensor's raw counts (gravity, tilt and offset included), int64 (n, 3)."""
        return to_counts(self.acc_gal, self.sensor, range_g, np.random.default_rng(seed))

    def to_record(self):
        """As a waveforms.Record (gal), for host_tools.replay.replay_record."""
        return Record(source=self.name, rate=self.rate, start_utc=None, components=("Z", "N", "E"), units="gal",
                      segments=[Segment(0.0, self.acc_gal)], gaps=[], notes=["synthetic: %s" % self.scenario])


def continuous_records(seed=0, hours=1.0, scenarios=tuple(SCENARIOS), sensor="adxl355", rate=RATE,
                       quakes_per_hour=4.0, mag_range=(3.0, 7.5), min_snr=8.0):
    """Yield one ContinuousRecord per scenario: `hours` of activity with quakes inserted.

    The record of a scenario depends on (seed, scenario, hours, sensor, rate, ...) only, not on
    which other scenarios are asked for.
    Quakes are placed at random (>= 90 s apart, none in the first 60 s so the node's STA/LTA is warm)
    with magnitude (`mag_range`) and distance (1-300 km, log-uniform) drawn until the expected PGA
    (Boore & Atkinson 2008 median) is >= `min_snr` x the background's rms (activity and self-noise),
    so that most are visible; each quake dict carries its own pga_gal to judge that. `rate` may be the
    sensor's ODR to replay the full-rate path.
    """
    for name in scenarios:
        sc = SCENARIOS[name]
        rng = _rng(seed, 4, zlib.crc32(name.encode()))  # a scenario's record does not depend on the others
        n = int(round(hours * 3600 * rate))
        dur = n / rate
        acc = ambient(rng, n, rate, float(np.exp(rng.uniform(*np.log(sc["ambient"])))))
        activities = []
        for kind in sc["continuous"]:
            acc += synth_noise_events(kind, sensor, rate, dur, rng, with_background=False)[0]
            activities.append(dict(kind=kind, t_s=0.0, dur_s=dur))
        for kind, per_hour in sc["events"].items():
            for _ in range(int(rng.poisson(per_hour * hours))):
                d = float(rng.uniform(10.0, 40.0))
                t0 = float(rng.uniform(0.0, max(1.0, dur - d)))
                x, onsets = synth_noise_events(kind, sensor, rate, d, rng, with_background=False)
                m = len(x)
                taper = np.minimum(1.0, np.minimum(np.arange(m), np.arange(m)[::-1]) / (0.5 * rate))
                i0 = int(t0 * rate)
                m = min(m, n - i0)
                acc[i0:i0 + m] += (x * taper[:, None])[:m]
                activities.append(dict(kind=kind, t_s=t0 + (onsets[0] if onsets else 0.0), dur_s=d))
        # the quiet background level (robust rms: activity bursts excluded) plus the self-noise
        self_noise = G_GAL * 1e-6 * max(SENSOR_NOISE_UG[sensor]) * math.sqrt(rate / 2)
        bg_rms = float(np.sqrt(np.median(_hp(acc[: min(n, int(600 * rate))]) ** 2) / 0.455)) + self_noise
        quakes = []
        t = 60.0 + float(rng.exponential(3600.0 / quakes_per_hour)) if quakes_per_hour > 0 else dur
        while t < dur - 60.0:
            best = None
            for _ in range(200):
                mag = float(rng.uniform(*mag_range))
                dist = float(np.exp(rng.uniform(0.0, math.log(300.0))))
                pga = ba08_pga_g(mag, dist) * G_GAL
                if best is None or pga > best[0]:
                    best = (pga, mag, dist)
                if pga >= min_snr * bg_rms:
                    break
            _, mag, dist = best
            depth = float(rng.uniform(3.0, 30.0))
            qd = min(dur - t + 5.0, 240.0)
            q, qm = synth_quake(mag, dist, depth, rate=rate, duration_s=qd, p_at_s=5.0, rng=rng)
            i0 = int(round((t - 5.0) * rate))
            m = min(len(q), n - i0)
            # measured visibility: the quake's peak (DC removed as the node does) over the rms of
            # everything else in the 30 s before P (activity under way included, self-noise added)
            ip = i0 + int(round(5.0 * rate))
            pre = _hp(acc[max(0, ip - int(30 * rate)):ip])
            snr = float(np.abs(_hp(q[:m])).max()) / math.sqrt(float(np.mean(pre ** 2)) + self_noise ** 2)
            acc[i0:i0 + m] += q[:m]
            env = np.abs(q).max(axis=1)
            loud = np.flatnonzero(env > 3 * bg_rms)
            end = (loud[-1] / rate if len(loud) else qm["s_s"]) + t - 5.0
            quakes.append(dict(p_s=t, s_s=t - 5.0 + qm["s_s"], end_s=float(max(end, t + 10.0)), mag=mag,
                               dist_km=dist, depth_km=depth, pga_gal=qm["pga_gal"], snr=round(snr, 2)))
            t = max(quakes[-1]["end_s"] + 90.0, t + float(rng.exponential(3600.0 / quakes_per_hour)))
        acc += sensor_noise(sensor, n, rate, rng)
        yield ContinuousRecord("synthetic-%s-%d" % (name, seed), name, sensor, float(rate), acc, quakes, activities)
