"""Read recorded accelerograms for `seismote replay`.

    rec = read_record("2018_2_16/006/40.jsonl")          # one file -> Record
    recs = read_records(["006/35.jsonl", "006/40.jsonl"])  # OpenEEW buckets of one device -> one Record

Formats (detected from the extension, then the content; `fmt` overrides):

- OpenEEW jsonl (`fmt="openeew"`): one packet a line,
  `{"device_id","x":[..],"y":[..],"z":[..],"device_t","cloud_t","sr"}`, in gal. The vertical axis of
  an OpenEEW node is `x`, so the components are Z = x, N = y, E = z. The horizontal orientation of
  OpenEEW nodes is not documented: "N" and "E" only name the two horizontal axes (y, z), they are
  not known to point north and east. Packets are sorted by (cloud_t, device_t); a packet's time
  stamp is that of its LAST sample. Lines that are not packets are skipped and noted.
- Anything ObsPy reads (miniSEED, SAC, ...): one station, 1 or 3 channels (orientation codes Z/N/E,
  Z/1/2 or 1/2/3; the vertical goes first where it is known). Values are taken to be counts.
- NPZ (`fmt="npz"`): arrays `z`, `n`, `e` (or `data` shaped (n, ncomp), with optional `components`
  labels), `rate` or `sampling_rate`, optional `start_utc` (ISO string) and `units`.
- CSV (`fmt="csv"`): a header row; an optional time column (`t`/`time`: seconds, or ISO time
  stamps); 1 or 3 numeric columns. Comment lines at the top may set `# rate: 100`, `# units: g`,
  `# start_utc: 2018-02-16T23:39:59` (the time of the first sample).

Units (the returned Record is always in gal = cm/s^2):
    units in {"gal", "g", "m/s2", "counts"}; 1 g = 980.665 gal, 1 m/s^2 = 100 gal. Defaults: OpenEEW
    gal; NPZ/CSV the file's own `units`, else gal; ObsPy formats counts. Counts need `gain`, the
    instrument's overall sensitivity in counts per m/s^2; without it reading fails and says to pass
    --units or --gain. `gain` with data that are not counts is an error, as is a `rate` argument that
    disagrees with a rate the file carries.

Gaps, overlaps and bad samples (the contract replay relies on):
    - A gap lasts as long as its missing samples would have (count / rate).
    - A gap of up to 0.1 s (a few lost samples) is filled by linear interpolation between the
      samples on either side, and noted.
    - A longer gap splits the record into Segments; `Record.gaps` lists (offset_s, duration_s) of
      each. Replay restarts the node pipeline at every segment, as a real node re-warms its filters
      and trigger after losing data.
    - Where one component has a long gap and the others have data, those rows are dropped too
      (a segment always holds every component), and noted.
    - Overlapping and duplicate samples are dropped (the copy that comes first is kept), and
      noted.
    - NaN (or infinite) values count as a gap.
    - OpenEEW: a gap between packets is detected from device_t: one exists when more than 1.5
      sample intervals are missing between the end of a packet and the start of the next; otherwise
      packets are joined end to end at the nominal rate. If the node's clock and its nominal rate
      disagree (the 2018 Grillo nodes send 32 samples every ~1.064 s at a nominal 31.25 Hz), the
      drift of offsets against device_t over the record is noted.

`Record.resampled(rate_hz)` refuses records below 20 Hz. Every problem with the input raises
WaveformError (a ValueError) whose message names the file.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import glob
import io
import json
import math
import re
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np

MIN_RATE_HZ = 20.0
MAX_FILL_S = 0.1  # gaps up to this long are interpolated, longer ones split the record
OPENEEW_GAP_SAMPLES = 1.5  # missing samples between OpenEEW packets that make a gap
MIN_SAMPLES = 2
GAL_PER = {"gal": 1.0, "g": 980.665, "m/s2": 100.0}  # counts: 100 / gain
_UNIT_ALIASES = {
    "gal": "gal", "cm/s2": "gal", "cm/s^2": "gal", "cm/s**2": "gal",
    "g": "g",
    "m/s2": "m/s2", "m/s^2": "m/s2", "m/s**2": "m/s2", "ms-2": "m/s2",
    "counts": "counts", "count": "counts",
}
_OWN_FORMATS = {"openeew": "openeew", "jsonl": "openeew", "npz": "npz", "csv": "csv"}
_TIME_COLUMNS = {"t", "time", "t_s", "time_s", "timestamp", "datetime", "utc"}
_MAX_LISTED = 8  # notes list this many items, then summarise
UTC = _dt.timezone.utc


class WaveformError(ValueError):
    """A recorded waveform cannot be used: the message names the file and the problem."""


@dataclasses.dataclass(frozen=True, eq=False)
class Segment:
    """A contiguous piece of a record: `data` is float64 (n, ncomp), the first row at `offset_s`."""

    offset_s: float
    data: np.ndarray


@dataclasses.dataclass(eq=False)
class Record:
    """One sensor's recording, in gal, split into contiguous Segments at gaps.

    `components` labels the columns of every segment's data (vertical first where known).
    `offset_s` of a segment and of a gap counts seconds after the record's first sample, whose UTC
    time is `start_utc` (None when the file does not say).
    """

    source: str
    rate: float
    start_utc: _dt.datetime | None
    components: tuple[str, ...]
    units: str
    segments: list[Segment]
    gaps: list[tuple[float, float]]
    notes: list[str]

    @property
    def n_samples(self) -> int:
        return sum(len(s.data) for s in self.segments)

    @property
    def duration_s(self) -> float:
        """Seconds from the first sample to the end of the last segment, gaps included."""
        last = self.segments[-1]
        return last.offset_s + len(last.data) / self.rate

    def resampled(self, rate_hz: float) -> Record:
        """A new Record with every segment resampled to `rate_hz` (polyphase, anti-aliased)."""
        from scipy.signal import resample_poly

        if not self.rate >= MIN_RATE_HZ:
            raise WaveformError("%s: %g Hz is below the %g Hz minimum" % (self.source, self.rate, MIN_RATE_HZ))
        try:
            rate_hz = float(rate_hz)
        except (TypeError, ValueError):
            raise WaveformError("%s: cannot resample to %r Hz" % (self.source, rate_hz)) from None
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise WaveformError("%s: cannot resample to %r Hz" % (self.source, rate_hz))
        if rate_hz == self.rate:  # a new Record sharing the segments' arrays
            return dataclasses.replace(self, notes=list(self.notes))
        ratio = Fraction(rate_hz / self.rate).limit_denominator(1000)
        up, down = ratio.numerator, ratio.denominator
        segments = []
        for seg in self.segments:
            if len(seg.data) < 2:  # nothing to filter: hold the one sample
                data = np.repeat(seg.data, max(1, math.ceil(len(seg.data) * up / down)), axis=0)
            else:
                data = resample_poly(seg.data, up, down, axis=0, padtype="line")
            segments.append(Segment(seg.offset_s, data))
        notes = list(self.notes)
        note = "resampled %g Hz -> %g Hz (x%d/%d)" % (self.rate, rate_hz, up, down)
        error = abs(self.rate * up / down - rate_hz) / rate_hz
        if error > 1e-9:
            note += "; the ratio is approximate, rates differ by %.1g" % error
        notes.append(note)
        return dataclasses.replace(self, rate=float(rate_hz), segments=segments, notes=notes)


# ---------------------------------------------------------------------------------------------
# Public entry points


def read_record(path, units: str | None = None, gain: float | None = None, rate: float | None = None,
                fmt: str | None = None) -> Record:
    """Read one waveform file (see the module docstring for formats, units and gap rules)."""
    source = str(path)
    kind, obspy_format = _detect_format(source, fmt)
    if kind == "openeew":
        return _openeew_record([_parse_openeew(source)], source, units, gain, rate)
    if kind == "npz":
        return _read_npz(source, units, gain, rate)
    if kind == "csv":
        return _read_csv(source, units, gain, rate)
    return _read_obspy(source, obspy_format, units, gain, rate)


def read_records(paths, units: str | None = None, gain: float | None = None, rate: float | None = None,
                 fmt: str | None = None) -> list[Record]:
    """Read several files; OpenEEW files of the same device_id are joined into one Record.

    The joined record's `source` is the paths joined with "+". Records come back in the order
    their first file was given; other files are read one by one with `read_record`.
    """
    paths = [str(p) for p in paths]
    if not paths:
        raise WaveformError("no waveform files given")
    slots: list = []  # Record, or the device_id of an OpenEEW group
    groups: dict[str, list] = {}
    for source in paths:
        kind, _ = _detect_format(source, fmt)
        if kind != "openeew":
            slots.append(read_record(source, units=units, gain=gain, rate=rate, fmt=fmt))
            continue
        parsed = _parse_openeew(source)
        if parsed.device_id not in groups:
            groups[parsed.device_id] = []
            slots.append(parsed.device_id)
        groups[parsed.device_id].append(parsed)
    out = []
    for slot in slots:
        if isinstance(slot, Record):
            out.append(slot)
        else:
            parts = groups[slot]
            out.append(_openeew_record(parts, "+".join(p.source for p in parts), units, gain, rate))
    return out


# ---------------------------------------------------------------------------------------------
# Format detection


def _detect_format(source: str, fmt: str | None) -> tuple[str, str | None]:
    """("openeew" | "npz" | "csv" | "obspy", ObsPy format name or None); checks the file exists."""
    path = Path(source)
    if not path.exists():
        raise WaveformError("%s: no such file" % source)
    if not path.is_file():
        raise WaveformError("%s: not a file" % source)
    if path.stat().st_size == 0:
        raise WaveformError("%s: the file is empty" % source)
    if fmt:
        key = fmt.strip().lower()
        if key in _OWN_FORMATS:
            return _OWN_FORMATS[key], None
        if key == "obspy":
            return "obspy", None
        return "obspy", fmt.strip().upper()
    ext = path.suffix.lower()
    if ext in (".jsonl", ".json"):
        return "openeew", None
    if ext == ".npz":
        return "npz", None
    if ext in (".csv", ".tsv"):
        return "csv", None
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as e:
        raise WaveformError("%s: unreadable: %s" % (source, e.strerror or e)) from None
    stripped = head.lstrip()
    if stripped.startswith(b"{"):
        return "openeew", None
    if head.startswith(b"PK\x03\x04"):
        return "npz", None
    if ext == ".txt" and not stripped.startswith(b"TIMESERIES"):  # ObsPy's text formats start so
        return "csv", None
    return "obspy", None


# ---------------------------------------------------------------------------------------------
# Units


def _gal_factor(source: str, units: str | None, file_units: str | None, gain: float | None,
               default: str) -> tuple[float, str]:
    """Factor that turns the file's values into gal, and a note saying what was assumed.

    `units` (the caller's) wins over `file_units` (what the file says), which wins over `default`.
    """
    chosen = units or file_units or default
    name = _UNIT_ALIASES.get(chosen.strip().lower().replace(" ", ""))
    if name is None:
        raise WaveformError("%s: unknown units %r (use gal, g, m/s2 or counts)" % (source, chosen))
    if gain is not None:
        try:
            gain = float(gain)
        except (TypeError, ValueError):
            gain = math.nan
        if not (math.isfinite(gain) and gain > 0):
            raise WaveformError("%s: gain must be a positive number of counts per m/s^2" % source)
        if name != "counts":
            raise WaveformError("%s: --gain applies to data in counts, but the data are in %s" % (source, name))
    if name == "counts":
        if gain is None:
            raise WaveformError(
                "%s: the data are in counts; pass --gain (counts per m/s^2, the instrument's overall "
                "sensitivity), or --units gal|g|m/s2 if the file already holds acceleration" % source)
        return 100.0 / gain, "converted counts to gal with gain %g counts per m/s^2" % gain
    where = "as given" if units else "from the file" if file_units else "the format's default"
    if name == "gal":
        return 1.0, "units gal (%s)" % where
    return GAL_PER[name], "converted %s to gal (%s)" % (name, where)


def _check_rate(source: str, value, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise WaveformError("%s: %s %r is not a number" % (source, what, value)) from None
    if not (math.isfinite(value) and value > 0):
        raise WaveformError("%s: %s must be a positive number of Hz, not %r" % (source, what, value))
    return value


def _agree_rate(source: str, file_rate: float | None, arg_rate: float | None) -> float:
    """The rate to use: the file's, or the argument's; both given must agree."""
    if arg_rate is not None:
        arg_rate = _check_rate(source, arg_rate, "rate")
    if file_rate is None:
        if arg_rate is None:
            raise WaveformError("%s: the sample rate is missing; give it in the file or pass --rate" % source)
        return arg_rate
    if arg_rate is not None and abs(file_rate - arg_rate) > 1e-6 * file_rate:
        raise WaveformError("%s: the file says %g Hz but --rate says %g Hz" % (source, file_rate, arg_rate))
    return file_rate


def parse_utc(source: str, value, field: str = "start_utc") -> _dt.datetime:
    """ISO string (naive means UTC) or Unix seconds -> aware UTC datetime; WaveformError naming
    `source` and `field` otherwise."""
    try:
        if isinstance(value, (int, float, np.integer, np.floating)):
            return _dt.datetime.fromtimestamp(float(value), tz=UTC)
        text = str(value).strip()
        when = _dt.datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        raise WaveformError("%s: %s %r is not an ISO time" % (source, field, value)) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# Assembly: pieces on a common sample grid -> segments, gaps, notes


def _component_labels(names: list[str]) -> tuple[list[int], tuple[str, ...], str | None]:
    """Order (vertical first where known), labels, and a note when the vertical is unknown."""
    matches = [re.fullmatch(r"(?:[A-Z0-9]{2}|.*[_\-\s.])?([ZNEzne123])", n.strip()) for n in names]
    letters = [m.group(1).upper() for m in matches if m]
    known = len(letters) == len(names) and len(set(letters)) == len(letters)
    if known and len(letters) == 1:
        return [0], (letters[0],), None
    if known and len(letters) == 3 and set(letters) in ({"Z", "N", "E"}, {"Z", "1", "2"}, {"1", "2", "3"}):
        order = sorted(range(3), key=lambda i: "ZNE123".index(letters[i]))
        labels = tuple(letters[i] for i in order)
        note = None if "Z" in labels else "the vertical component is not known (%s)" % ", ".join(labels)
        return order, labels, note
    labels = tuple(n.strip() for n in names)
    return list(range(len(names))), labels, "component names %s do not say which is vertical" % ", ".join(labels)


def _count_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of every run of True in a 1-D bool array."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _fill_short_runs(col: np.ndarray, max_fill: int) -> np.ndarray:
    """Interpolate interior NaN runs of at most max_fill samples in place; True where filled."""
    bad = np.isnan(col)
    filled = np.zeros(len(col), bool)
    if not bad.any() or max_fill < 1:
        return filled
    starts, ends = _count_runs(bad)
    ok = (starts > 0) & (ends < len(col)) & (ends - starts <= max_fill)
    if ok.any():
        lens = (ends - starts)[ok]
        idx = np.repeat(starts[ok] - np.concatenate(([0], np.cumsum(lens)[:-1])), lens) + np.arange(lens.sum())
        good = np.flatnonzero(~bad)
        col[idx] = np.interp(idx, good, col[good])
        filled[idx] = True
    return filled


def _listing(items: list[str]) -> str:
    if len(items) <= _MAX_LISTED:
        return ", ".join(items)
    return "%s and %d more" % (", ".join(items[:_MAX_LISTED]), len(items) - _MAX_LISTED)


def _assemble(source: str, rate: float, start, labels: tuple[str, ...], pieces: list[list],
              notes: list[str], factor: float) -> Record:
    """Build a Record from pieces on a common sample grid.

    `pieces[c]` lists (start_index, 1-D data) for component c; index 0 is at `start` (an aware
    datetime or None). Applies the gap rules of the module docstring, then multiplies by `factor`.
    """
    ncomp = len(labels)
    max_fill = int(math.floor(MAX_FILL_S * rate + 1e-9))
    overlap = 0
    kept: list[tuple[int, int, np.ndarray]] = []  # (component, start, data)
    for c, chan in enumerate(pieces):
        dropped, end = 0, None
        for s, d in sorted(chan, key=lambda p: p[0]):  # stable: first copy wins
            if end is not None and s < end:
                k = min(end - s, len(d))
                dropped += k
                s, d = s + k, d[k:]
            if len(d):
                kept.append((c, s, d))
                end = s + len(d)
        overlap = max(overlap, dropped)
    if overlap:
        notes.append("dropped %d overlapping or duplicate samples (%.3g s)" % (overlap, overlap / rate))
    if not kept:
        raise WaveformError("%s: the file holds no samples" % source)

    # Islands: stretches where, counting all components, no hole is longer than max_fill. Each gets
    # its own dense grid, so a long gap never costs memory.
    islands: list[list[int]] = []
    for s, e in sorted((s, s + len(d)) for _, s, d in kept):
        if islands and s - islands[-1][1] <= max_fill:
            islands[-1][1] = max(islands[-1][1], e)
        else:
            islands.append([s, e])
    island_starts = np.array([i[0] for i in islands])
    grids = [np.full((e - s, ncomp), np.nan) for s, e in islands]
    for c, s, d in kept:
        i = int(np.searchsorted(island_starts, s, side="right")) - 1
        grids[i][s - islands[i][0]:s - islands[i][0] + len(d), c] = d

    runs: list[tuple[int, np.ndarray]] = []
    filled_gaps, filled_samples, widest, partial = 0, 0, 0, 0
    for (s0, _), grid in zip(islands, grids):
        grid[~np.isfinite(grid)] = np.nan
        filled = np.zeros(len(grid), bool)
        for c in range(ncomp):
            filled |= _fill_short_runs(grid[:, c], max_fill)
        if filled.any():
            a, b = _count_runs(filled)
            filled_gaps += len(a)
            filled_samples += int((b - a).sum())
            widest = max(widest, int((b - a).max()))
        missing = np.isnan(grid)
        complete = ~missing.any(axis=1)
        partial += int((missing.any(axis=1) & ~missing.all(axis=1)).sum())
        for a, b in zip(*_count_runs(complete)):
            runs.append((s0 + int(a), grid[a:b]))
    if filled_gaps:
        notes.append("filled %d short gap%s (%d sample%s, the longest %.3g s) by linear interpolation"
                     % (filled_gaps, "" if filled_gaps == 1 else "s", filled_samples,
                        "" if filled_samples == 1 else "s", widest / rate))
    if partial:
        notes.append("dropped %.3g s where only some components had data" % (partial / rate))
    if not runs or sum(len(d) for _, d in runs) < MIN_SAMPLES:
        raise WaveformError("%s: too few samples (%d)" % (source, sum(len(d) for _, d in runs)))

    first = runs[0][0]
    segments, gaps = [], []
    for i, (s, d) in enumerate(runs):
        if factor != 1.0:
            d *= factor
        segments.append(Segment((s - first) / rate, d))
        if i:
            end = runs[i - 1][0] + len(runs[i - 1][1])
            gaps.append(((end - first) / rate, (s - end) / rate))
    if gaps:
        notes.append("%d gap%s longer than %g s split the record into %d segments: %s" % (
            len(gaps), "" if len(gaps) == 1 else "s", MAX_FILL_S, len(segments),
            _listing(["%.3g s at %.3f s" % (g[1], g[0]) for g in gaps])))
    if start is not None:
        start = start + _dt.timedelta(seconds=first / rate)
    return Record(source=source, rate=float(rate), start_utc=start, components=tuple(labels), units="gal",
                  segments=segments, gaps=gaps, notes=notes)


# ---------------------------------------------------------------------------------------------
# OpenEEW jsonl


@dataclasses.dataclass
class _Packets:
    source: str
    device_id: str
    packets: list  # (cloud_t, device_t, sr, x, y, z)
    notes: list[str]


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _packet_problem(p) -> str | None:
    if not isinstance(p, dict):
        return "not a JSON object"
    for key in ("device_id", "x", "y", "z", "device_t", "sr"):
        if key not in p:
            return "no %r" % key
    if not (_number(p["device_t"]) and _number(p["sr"]) and p["sr"] > 0):
        return "device_t and sr must be numbers"
    if "cloud_t" in p and not _number(p["cloud_t"]):
        return "cloud_t must be a number"
    x, y, z = p["x"], p["y"], p["z"]
    if not (isinstance(x, list) and isinstance(y, list) and isinstance(z, list)):
        return "x, y, z must be lists"
    if not x or len(x) != len(y) or len(x) != len(z):
        return "x, y, z must have the same, non-zero length"
    return None


def _parse_openeew(source: str) -> _Packets:
    """Parse an OpenEEW jsonl file: good packets and notes about lines that were not packets."""
    try:
        with open(source, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise WaveformError("%s: unreadable: %s" % (source, e.strerror or e)) from None
    packets: list = []
    bad: list[tuple[int, str]] = []
    devices: dict[str, int] = {}
    nlines = 0
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        nlines += 1
        try:
            p = json.loads(line)
            problem = _packet_problem(p)
        except (ValueError, UnicodeDecodeError):
            problem = "bad JSON"
        if problem is None:
            try:
                xyz = [np.asarray(p[k], dtype=float) for k in ("x", "y", "z")]
                if any(a.ndim != 1 for a in xyz):
                    raise ValueError
            except (TypeError, ValueError):
                problem = "x, y, z must be lists of numbers"
        if problem is not None:
            bad.append((lineno, problem))
            continue
        device = str(p["device_id"])
        devices[device] = devices.get(device, 0) + 1
        packets.append((float(p.get("cloud_t", p["device_t"])), float(p["device_t"]), float(p["sr"]), *xyz))
    if nlines == 0:
        raise WaveformError("%s: the file is empty" % source)
    notes = ["%s line %d: not a packet (%s), skipped" % (source, n, why) for n, why in bad[:_MAX_LISTED]]
    if len(bad) > _MAX_LISTED:
        notes.append("%s: %d more lines were not packets, skipped" % (source, len(bad) - _MAX_LISTED))
    if not packets:
        first = "; line %d: %s" % bad[0] if bad else ""
        raise WaveformError("%s: no valid OpenEEW packet in %d lines%s" % (source, nlines, first))
    if len(devices) > 1:
        raise WaveformError("%s: packets of several devices (%s); give one device per file"
                            % (source, ", ".join(sorted(devices))))
    return _Packets(source, next(iter(devices)), packets, notes)


# A node clock further than this from the server clock (median over packets) is not trusted.
OPENEEW_CLOCK_TOLERANCE_S = 10.0


def _openeew_record(parts: list[_Packets], source: str, units, gain, rate) -> Record:
    """Join the packets of one device (from one or more files) into a Record."""
    notes = [n for part in parts for n in part.notes]
    packets = sorted((p for part in parts for p in part.packets), key=lambda p: (p[0], p[1]))
    rates = sorted({p[2] for p in packets})
    if len(rates) > 1:
        raise WaveformError("%s: mixed sample rates (%s Hz) in the packets" % (source, ", ".join("%g" % r for r in rates)))
    sr = _agree_rate(source, rates[0], rate)
    factor, unit_note = _gal_factor(source, units, None, gain, "gal")

    # Walk the packets in order, placing each on the sample grid from device_t (the time of its last
    # sample): end to end unless more than 1.5 samples are missing (gap) or it starts early (overlap).
    n = np.array([len(p[3]) for p in packets])
    t = np.array([p[1] for p in packets])

    def place(sr: float):
        pos = np.zeros(len(packets), dtype=np.int64)
        keep = np.ones(len(packets), bool)
        end_pos, end_t, duplicates = int(n[0]), t[0], 0
        for k in range(1, len(packets)):
            if t[k] <= end_t + 0.5 / sr:  # ends no later than what we have: a duplicate or stale packet
                keep[k] = False
                duplicates += 1
                continue
            missing = (t[k] - end_t) * sr - n[k]
            if missing > OPENEEW_GAP_SAMPLES:
                pos[k] = end_pos + int(round(missing))
            elif missing < -0.5:
                pos[k] = end_pos - int(round(-missing))  # overlapping head dropped in _assemble
            else:
                pos[k] = end_pos
            end_pos, end_t = int(pos[k] + n[k]), t[k]
        return pos, keep, end_pos, duplicates

    # Walk the packets in order, placing each on the sample grid from device_t (the time of its last
    # sample): end to end unless more than 1.5 samples are missing (gap) or it starts early (overlap).
    pos, keep, end_pos, duplicates = place(sr)
    t_first = t[0] - (len(packets[0][3]) - 1) / sr
    span = t[keep][-1] - t_first
    drift = span - (end_pos - 1) / sr
    if span > 0 and abs(drift) > max(2.0 / sr, 0.5) and abs(drift) / span > 0.01:
        # The 2017-2018 OpenEEW nodes deliver 32 samples every ~1.064 s (device_t and cloud_t
        # agree): ~30.06 Hz, not the nominal 31.25. Time the samples by the node's clock, so that
        # offsets and UTC stay right to the end of the record instead of drifting by seconds.
        measured = (end_pos - 1) / span
        notes.append(
            "device_t spans %.1f s but the samples fill %.1f s at the nominal %g Hz (%.1f%% apart): "
            "the samples are timed by device_t, at %.4g Hz" % (span, (end_pos - 1) / sr, sr, 100.0 * abs(drift) / span, measured))
        sr = measured
        pos, keep, end_pos, duplicates = place(sr)
        t_first = t[0] - (len(packets[0][3]) - 1) / sr
    if duplicates:
        notes.append("dropped %d packet%s that ended no later than the data before (duplicates, or sent "
                     "out of order)" % (duplicates, "" if duplicates == 1 else "s"))

    kept = [p for p, k in zip(packets, keep) if k]
    pos, n = pos[keep], n[keep]
    xyz = [np.concatenate([p[3 + c] for p in kept]) for c in range(3)]
    bounds = np.concatenate(([0], np.cumsum(n)))
    breaks = np.flatnonzero(pos[1:] != pos[:-1] + n[:-1]) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [len(kept)]))
    pieces = [[(int(pos[a]), xyz[c][bounds[a]:bounds[b]]) for a, b in zip(starts, stops)] for c in range(3)]
    notes.append(unit_note)
    notes.append("OpenEEW device %s: Z = x (vertical); N = y, E = z are the horizontal axes, whose "
                 "orientation OpenEEW does not document" % parts[0].device_id)
    # device_t is the node's own (NTP) clock; cloud_t is the server's receive time. They normally
    # agree within the telemetry latency, but some nodes' clocks were off by tens of minutes: then
    # anchor the record on the server clock (less the typical latency, which is unknown: ~0).
    lag = float(np.median([p[0] - p[1] for p in kept]))
    if abs(lag) > OPENEEW_CLOCK_TOLERANCE_S:
        notes.append("device_t runs %.1f s %s cloud_t (the server's clock): the record is timed by "
                     "cloud_t" % (abs(lag), "behind" if lag > 0 else "ahead of"))
        t_first += lag
    start = _dt.datetime.fromtimestamp(t_first, tz=UTC)
    return _assemble(source, sr, start, ("Z", "N", "E"), pieces, notes, factor)


# ---------------------------------------------------------------------------------------------
# ObsPy formats


def _read_obspy(source: str, obspy_format: str | None, units, gain, rate) -> Record:
    import obspy

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:  # obspy.read takes a glob pattern: escape it so that "a[1].mseed" is just a name
            stream = obspy.read(glob.escape(source), format=obspy_format)
        except Exception as e:  # ObsPy's plugins raise many kinds of errors for foreign or corrupt files
            if obspy_format:
                raise WaveformError("%s: unreadable as %s: %s" % (source, obspy_format, e)) from None
            known = isinstance(e, TypeError) and "nknown format" in str(e)
            raise WaveformError(
                "%s: unknown format%s (not OpenEEW jsonl, NPZ, CSV, or anything ObsPy reads); name the "
                "format with --format if it is one" % (source, "" if known else " or corrupt file: %s" % e)) from None
    traces = [tr for tr in stream if tr.stats.npts > 0]
    if not traces:
        raise WaveformError("%s: the file holds no samples" % source)
    instruments = sorted({"%s.%s.%s.%s?" % (tr.stats.network, tr.stats.station, tr.stats.location,
                                           tr.stats.channel[:-1]) for tr in traces})
    if len(instruments) > 1:
        raise WaveformError("%s: holds several stations or instruments (%s); replay reads one at a time"
                            % (source, ", ".join(instruments)))
    rates = sorted({float(tr.stats.sampling_rate) for tr in traces})
    if len(rates) > 1:
        raise WaveformError("%s: mixed sample rates (%s Hz)" % (source, ", ".join("%g" % r for r in rates)))
    sr = _agree_rate(source, rates[0], rate)
    channels = sorted({tr.stats.channel for tr in traces})
    if len(channels) not in (1, 3):
        raise WaveformError("%s: has %d channels (%s); need 1 or 3" % (source, len(channels), ", ".join(channels)))
    order, labels, label_note = _component_labels(channels)
    factor, unit_note = _gal_factor(source, units, None, gain, "counts")

    t0 = min(tr.stats.starttime for tr in traces)
    pieces: list[list] = [[] for _ in channels]
    shift = 0.0
    for tr in traces:
        exact = (tr.stats.starttime - t0) * sr
        index = int(round(exact))
        shift = max(shift, abs(exact - index))
        data = tr.data  # integer counts are cast to float64 when placed on the grid, not before
        if np.ma.isMaskedArray(data):
            data = np.ma.filled(data.astype(float), np.nan)
        if data.dtype.kind not in "iuf":
            raise WaveformError("%s: trace %s holds %s values, not numbers" % (source, tr.id, data.dtype))
        pieces[order.index(channels.index(tr.stats.channel))].append((index, data))
    notes = ["%s: %s, %d trace%s" % (source, instruments[0][:-1] + "/".join(labels), len(traces),
                                     "" if len(traces) == 1 else "s")]
    notes += sorted({"ObsPy: %s" % w.message for w in caught})
    if shift > 0.01:
        notes.append("moved trace starts by up to %.2f samples onto a common sample grid" % shift)
    if label_note:
        notes.append(label_note)
    notes.append(unit_note)
    start = t0.datetime.replace(tzinfo=UTC)
    return _assemble(source, sr, start, labels, pieces, notes, factor)


# ---------------------------------------------------------------------------------------------
# NPZ


def _scalar(source: str, arr, key: str):
    if arr.shape != ():
        if arr.size != 1:
            raise WaveformError("%s: %r must be a single value" % (source, key))
        arr = arr.reshape(())
    return arr.item()


def _read_npz(source: str, units, gain, rate) -> Record:
    try:
        with np.load(source, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # zip, pickle and format errors
        raise WaveformError("%s: unreadable as NPZ: %s" % (source, e)) from None
    lower = {k.lower(): k for k in arrays}
    notes: list[str] = []
    if "data" in lower:
        data = arrays[lower["data"]]
        if data.ndim == 1:
            data = data[:, None]
        if data.ndim != 2 or data.shape[1] not in (1, 3):
            raise WaveformError("%s: 'data' has shape %s; expected (n, 1) or (n, 3)" % (source, data.shape))
        if "components" in lower:
            names = [str(c) for c in np.atleast_1d(arrays[lower["components"]])]
            if len(names) != data.shape[1]:
                raise WaveformError("%s: %d component names for %d columns" % (source, len(names), data.shape[1]))
        else:
            names = [str(i + 1) for i in range(data.shape[1])]
        columns = [data[:, i] for i in range(data.shape[1])]
    else:
        keys = [k for k in arrays if k.upper() in ("Z", "N", "E", "1", "2", "3")]
        if len(keys) not in (1, 3):
            raise WaveformError("%s: no 'data' array and no 1 or 3 component arrays named z, n, e "
                                "(found: %s)" % (source, ", ".join(sorted(arrays)) or "nothing"))
        names = keys
        columns = [arrays[k] for k in keys]
        if any(c.ndim != 1 for c in columns) or len({len(c) for c in columns}) != 1:
            raise WaveformError("%s: component arrays %s must be 1-D and equally long" % (source, ", ".join(keys)))
    try:
        columns = [np.asarray(c, dtype=float) for c in columns]
    except (TypeError, ValueError):
        raise WaveformError("%s: the component arrays are not numeric" % source) from None
    file_rate = None
    for key in ("rate", "sampling_rate"):
        if key in lower:
            file_rate = _check_rate(source, _scalar(source, arrays[lower[key]], key), key)
            break
    sr = _agree_rate(source, file_rate, rate)
    start = parse_utc(source, _scalar(source, arrays[lower["start_utc"]], "start_utc")) if "start_utc" in lower else None
    file_units = str(_scalar(source, arrays[lower["units"]], "units")) if "units" in lower else None
    order, labels, label_note = _component_labels(names)
    if label_note:
        notes.append(label_note)
    factor, unit_note = _gal_factor(source, units, file_units, gain, "gal")
    notes.append(unit_note)
    pieces = [[(0, columns[i])] for i in order]
    return _assemble(source, sr, start, labels, pieces, notes, factor)


# ---------------------------------------------------------------------------------------------
# CSV


def _split(line: str, delim: str | None) -> list[str]:
    return [f.strip().strip('"').strip("'") for f in (line.split(delim) if delim else line.split())]


def _parse_rows_slowly(source: str, lines: list[str], first_lineno: int, delim, ncols: int,
                       text_col: int | None) -> tuple[list[str], np.ndarray]:
    """Line-by-line parse that names the bad line; empty and 'nan' fields become NaN."""
    times, values, lineno = [], [], first_lineno
    for lineno, line in enumerate(lines, first_lineno):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        fields = _split(s, delim)
        if len(fields) != ncols:
            raise WaveformError("%s: line %d has %d fields, the header %d" % (source, lineno, len(fields), ncols))
        row = []
        for i, field in enumerate(fields):
            if i == text_col:
                times.append(field)
                continue
            try:
                row.append(float(field) if field else math.nan)
            except ValueError:
                raise WaveformError("%s: line %d: %r is not a number" % (source, lineno, field)) from None
        values.append(row)
    return times, np.array(values, dtype=float).reshape(len(values), ncols - (text_col is not None))


def _read_csv(source: str, units, gain, rate) -> Record:
    try:
        with open(source, encoding="utf-8-sig") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise WaveformError("%s: unreadable as CSV text: %s" % (source, e)) from None
    lines = text.splitlines()
    meta: dict[str, str] = {}
    header, body_at = None, len(lines)
    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            key, sep, value = s[1:].partition(":")
            if not sep:
                key, sep, value = s[1:].partition("=")
            if sep:
                meta.setdefault(key.strip().lower(), value.strip())
            continue
        if header is not None:
            body_at = i
            break
        header = (i + 1, s)
    if header is None:
        raise WaveformError("%s: the file is empty (no header row)" % source)
    header_lineno, header_line = header
    delim = next((d for d in (",", ";", "\t") if d in header_line), None)
    names = _split(header_line, delim)
    if all(_is_float(n) for n in names):
        raise WaveformError("%s: line %d is not a header row (expected column names such as t, z, n, e)"
                            % (source, header_lineno))
    if body_at >= len(lines):
        raise WaveformError("%s: no data rows after the header" % source)
    time_cols = [i for i, n in enumerate(names) if n.lower() in _TIME_COLUMNS]
    tcol = time_cols[0] if time_cols else None
    data_names = [n for i, n in enumerate(names) if i != tcol]
    if len(data_names) not in (1, 3):
        raise WaveformError("%s: %d data columns (%s); need 1 or 3" % (source, len(data_names), ", ".join(data_names)))
    first_row = _split(lines[body_at].strip(), delim)
    iso = tcol is not None and tcol < len(first_row) and not _is_float(first_row[tcol])

    body = "\n".join(lines[body_at:])
    times: np.ndarray | None
    try:
        if iso:
            values = np.loadtxt(io.StringIO(body), delimiter=delim, comments="#", ndmin=2,
                                usecols=[i for i in range(len(names)) if i != tcol])
            times = np.loadtxt(io.StringIO(body), delimiter=delim, comments="#", dtype=str, ndmin=1, usecols=tcol)
            times = np.char.strip(np.char.strip(times), "\"'")
        else:
            table = np.loadtxt(io.StringIO(body), delimiter=delim, comments="#", ndmin=2)
            if table.shape[1] != len(names):
                raise ValueError("column count")
            times = table[:, tcol] if tcol is not None else None
            values = np.delete(table, tcol, axis=1) if tcol is not None else table
    except ValueError:
        tlist, values = _parse_rows_slowly(source, lines[body_at:], body_at + 1, delim, len(names), tcol if iso else None)
        if iso:
            times = np.array(tlist)
        elif tcol is not None:
            times, values = values[:, tcol], np.delete(values, tcol, axis=1)
        else:
            times = None

    notes: list[str] = []
    file_rate = _check_rate(source, meta.get("rate", meta.get("sampling_rate")), "rate") \
        if ("rate" in meta or "sampling_rate" in meta) else None
    start = parse_utc(source, meta["start_utc"]) if "start_utc" in meta else None
    n = len(values)
    if n < MIN_SAMPLES:
        raise WaveformError("%s: too few samples (%d)" % (source, n))
    if times is None:
        sr = _agree_rate(source, file_rate, rate)
        index = np.arange(n)
    else:
        if iso:
            seconds, start = _iso_seconds(source, times)
        else:
            seconds = np.asarray(times, dtype=float)
            if not np.isfinite(seconds).all():
                raise WaveformError("%s: the time column has empty or non-numeric values" % source)
        by_time = np.argsort(seconds, kind="stable")
        if (np.diff(by_time) != 1).any():
            notes.append("rows were not in time order; sorted them")
            seconds, values = seconds[by_time], values[by_time]
        seconds = seconds - seconds[0]
        steps = np.diff(seconds)
        step = np.median(steps[steps > 0]) if (steps > 0).any() else 0.0
        if step <= 0:
            raise WaveformError("%s: the time column does not advance" % source)
        regular = steps[(steps > 0.5 * step) & (steps < 1.5 * step)]
        measured = 1.0 / regular.mean()
        declared = _agree_rate(source, file_rate, rate) if (file_rate or rate) else None
        if declared is not None and abs(declared - measured) > 0.01 * declared:
            raise WaveformError("%s: the time column gives %.4g Hz but the rate is set to %g Hz" % (source, measured, declared))
        sr = declared if declared is not None else _round_rate(measured)
        if declared is None:
            notes.append("sample rate %g Hz from the time column" % sr)
        exact = seconds * sr
        index = np.rint(exact).astype(np.int64)
        off = np.abs(exact - index).max()
        if off > 0.25:
            notes.append("time stamps are up to %.2f samples off a regular %g Hz grid; samples were "
                         "placed on the nearest grid point" % (off, sr))
        same = np.flatnonzero(np.diff(index) == 0) + 1
        if len(same):
            index, values = np.delete(index, same), np.delete(values, same, axis=0)
            notes.append("dropped %d samples that share a time stamp with the one before" % len(same))
    breaks = np.flatnonzero(np.diff(index) != 1) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [len(index)]))
    order, labels, label_note = _component_labels(data_names)
    if label_note:
        notes.append(label_note)
    factor, unit_note = _gal_factor(source, units, meta.get("units"), gain, "gal")
    notes.append(unit_note)
    pieces = [[(int(index[a]), values[a:b, i]) for a, b in zip(starts, stops)] for i in order]
    return _assemble(source, sr, start, labels, pieces, notes, factor)


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _round_rate(rate: float) -> float:
    """A measured rate, snapped to a multiple of 0.01 Hz when it is that close (100.0000003 -> 100)."""
    snapped = round(rate, 2)
    return snapped if abs(snapped - rate) <= 1e-5 * rate else rate


def _iso_seconds(source: str, stamps: np.ndarray) -> tuple[np.ndarray, _dt.datetime]:
    """ISO time stamps -> (seconds after the earliest, its UTC datetime); naive stamps are UTC."""
    try:
        plain = np.char.rstrip(stamps.astype(str), "Z")
        if (np.char.str_len(plain) == 0).any():
            raise WaveformError("%s: the time column has empty values" % source)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy only warns about offsets such as +02:00
            ns = plain.astype("datetime64[ns]").astype(np.int64)
    except (ValueError, UserWarning):  # offsets, or not ISO at all: the slow way
        try:
            ns = np.array([int(parse_utc(source, s).timestamp() * 1e6) * 1000 for s in stamps], dtype=np.int64)
        except WaveformError:
            raise WaveformError("%s: the time column holds values that are not ISO times" % source) from None
    first = int(ns.min())
    start = _dt.datetime(1970, 1, 1, tzinfo=UTC) + _dt.timedelta(microseconds=first // 1000)
    return (ns - first) / 1e9, start
