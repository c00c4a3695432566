"""Node layouts: where the sensors are and what each one is like.

A ``Layout`` is a set of column arrays (one entry per node), cheap to build and slice at 10^6
nodes. Layouts come from files (CSV, GeoJSON, the OpenEEW device list) or from generators (random,
grid, population-weighted from points or a raster). Every per-node attribute can be given to the
generators and to ``load_layout(defaults=...)`` as one value for all nodes, an array with one value
per node, or (for ``sensor`` and ``site_class``) a dict of shares such as
``{"adxl355": 0.7, "mpu6050": 0.3}`` drawn at random (reproducibly, from the layout's seed).

File errors are ``LayoutError`` (a ``ValueError``) naming the file, the row or feature and the
field: ``nodes.csv row 7: lat 95.0 is outside -90..90``. CSV rows are counted as a spreadsheet
shows them (the header is row 1).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from .physics import EARTH_R_KM

SENSORS = ("adxl355", "mpu6050", "adxl345")
SITE_CLASSES = ("quiet", "residential", "urban", "industrial")

# An ideal node unless told otherwise: reference rock, always online, perfect clock.
DEFAULTS = {
    "sensor": "adxl355",
    "site_class": "residential",
    "vs30": 760.0,
    "outage_p": 0.0,
    "clock_err_s": 0.0,
    "population": None,
}
COLUMNS = ("id", "lat", "lon", "sensor", "site_class", "vs30", "outage_p", "clock_err_s", "population")
_ALIASES = {"latitude": "lat", "longitude": "lon", "lng": "lon", "long": "lon", "device_id": "id", "node_id": "id"}
_KM_PER_DEG = math.pi * EARTH_R_KM / 180.0

__all__ = [
    "SENSORS",
    "SITE_CLASSES",
    "DEFAULTS",
    "Layout",
    "LayoutError",
    "load_layout",
    "random_layout",
    "grid_layout",
    "population_layout",
    "population_layout_from_raster",
]


class LayoutError(ValueError):
    """A layout file or argument the user can fix; the message names where and which field."""


@dataclass
class Layout:
    """Column arrays, all of length n. ``sensor`` and ``site_class`` are int8 indices into
    ``SENSORS`` and ``SITE_CLASSES``; ``population`` is None for an unweighted layout."""

    ids: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    sensor: np.ndarray
    site_class: np.ndarray
    vs30: np.ndarray
    outage_p: np.ndarray
    clock_err_s: np.ndarray
    population: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.lat)
        for f in fields(self):
            col = getattr(self, f.name)
            if col is not None and len(col) != n:
                raise LayoutError("column %s has %d entries, lat has %d" % (f.name, len(col), n))

    def __len__(self) -> int:
        return len(self.lat)

    def subset(self, mask) -> "Layout":
        """The nodes selected by a boolean mask or an index array (columns are copied)."""
        m = np.asarray(mask)
        if m.dtype == bool and m.shape != (len(self),):
            raise LayoutError("mask has shape %s, the layout has %d nodes" % (m.shape, len(self)))
        cols: dict[str, Any] = {}
        for f in fields(self):
            col = getattr(self, f.name)
            cols[f.name] = None if col is None else col[m]
        return Layout(**cols)

    @property
    def sensor_names(self) -> np.ndarray:
        return np.asarray(SENSORS, dtype=object)[self.sensor]

    @property
    def site_class_names(self) -> np.ndarray:
        return np.asarray(SITE_CLASSES, dtype=object)[self.site_class]

    def to_csv(self, path) -> None:
        """Write the layout in the CSV format ``load_layout`` reads."""
        cols = ["id", "lat", "lon", "sensor", "site_class", "vs30", "outage_p", "clock_err_s"]
        data = [self.ids, self.lat, self.lon, self.sensor_names, self.site_class_names, self.vs30, self.outage_p, self.clock_err_s]
        if self.population is not None:
            cols.append("population")
            data.append(self.population)
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            w.writerows(zip(*(c.tolist() for c in data)))


# ---------------------------------------------------------------------------------------------
# Building a layout from columns (shared by the loaders and the generators)


def _where(src: str, i) -> str:
    return "%s: " % src if i is None else "%s %s: " % (src, i)


def _codes(name: str, value, n: int, rng, src: str, names: tuple, where=None) -> np.ndarray:
    """int8 codes for a per-node categorical field given as a name, an array of names or codes,
    or a dict of shares."""
    table = {s: i for i, s in enumerate(names)}

    def code(v, i=None):
        loc = _where(src, None if i is None else (where(i) if where else "node %d" % i))
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            if 0 <= v < len(names):
                return int(v)
            raise LayoutError("%s%s code %d is not in 0..%d" % (loc, name, v, len(names) - 1))
        key = str(v).strip().lower()
        if key not in table:
            raise LayoutError("%sunknown %s %r (one of %s)" % (loc, name, str(v).strip(), ", ".join(names)))
        return table[key]

    if isinstance(value, dict):
        keys = [code(k) for k in value]
        p = np.array([float(s) for s in value.values()])
        if not (np.all(p >= 0) and p.sum() > 0):
            raise LayoutError("%s%s shares must be >= 0 and not all 0: %r" % (_where(src, None), name, value))
        return np.asarray(keys, dtype=np.int8)[rng.choice(len(keys), size=n, p=p / p.sum())]
    if isinstance(value, (str, int, np.integer)):
        return np.full(n, code(value), dtype=np.int8)
    arr = np.asarray(value)
    if arr.shape != (n,):
        raise LayoutError("%s%s has %d values for %d nodes" % (_where(src, None), name, arr.size, n))
    if arr.dtype.kind in "iu":
        bad = np.flatnonzero((arr < 0) | (arr >= len(names)))
        if bad.size:
            code(int(arr[bad[0]]), int(bad[0]))
        return arr.astype(np.int8)
    seq = arr.tolist()
    try:
        distinct = set(seq)
    except TypeError:  # unhashable JSON values (lists, objects)
        seq = [str(v) for v in seq]
        distinct = set(seq)
    mapping = {}
    for u in distinct:
        try:
            mapping[u] = code(u)
        except LayoutError:
            code(u, seq.index(u))  # re-raise naming the first row that has it
    return np.fromiter(map(mapping.__getitem__, seq), dtype=np.int8, count=n)


_RANGES = {
    # field: (lowest, highest, lowest inclusive, text)
    "lat": (-90.0, 90.0, True, "is outside -90..90"),
    "lon": (-180.0, 180.0, True, "is outside -180..180"),
    "vs30": (0.0, math.inf, False, "must be > 0 m/s"),
    "outage_p": (0.0, 1.0, True, "is outside 0..1"),
    "clock_err_s": (0.0, math.inf, True, "must be >= 0 s"),
    "population": (0.0, math.inf, True, "must be >= 0"),
}


def _numbers(name: str, value, n: int, dtype, src: str, where=None) -> np.ndarray:
    """A checked numeric column from a scalar or per-node values."""
    if np.ndim(value) == 0:
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise LayoutError("%s%s %r is not a number" % (_where(src, None), name, value)) from None
        if not _ok(name, np.array([x])).all():
            text = _RANGES[name][3] if math.isfinite(x) else "is not finite"
            raise LayoutError("%s%s %r %s" % (_where(src, None), name, value, text))
        return np.full(n, x, dtype=dtype)
    raw = value
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        for i, v in enumerate(raw):
            try:
                float(v)
            except (TypeError, ValueError):
                shown = v.strip() if isinstance(v, str) else v
                raise LayoutError("%s%s %r is not a number" % (_where(src, where(i) if where else "node %d" % i), name, shown)) from None
        raise
    if arr.shape != (n,):
        raise LayoutError("%s%s has %d values for %d nodes" % (_where(src, None), name, arr.size, n))
    ok = _ok(name, arr)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        _, _, _, text = _RANGES[name]
        loc = where(i) if where else "node %d" % i
        raise LayoutError("%s%s %s %s" % (_where(src, loc), name, _fmt(raw[i]), text if math.isfinite(arr[i]) else "is not finite"))
    return arr.astype(dtype, copy=False)


def _fmt(v) -> str:
    return repr(float(v)) if isinstance(v, (float, int, np.floating, np.integer)) else str(v).strip()


def _ok(name: str, arr: np.ndarray) -> np.ndarray:
    lo, hi, lo_inc, _ = _RANGES[name]
    with np.errstate(invalid="ignore"):
        above = arr >= lo if lo_inc else arr > lo
        return np.isfinite(arr) & above & (arr <= hi)


def _build(lat, lon, ids, values: dict, rng, src: str, where=None) -> Layout:
    """Assemble a Layout from lat/lon/ids and a dict of per-node attributes (missing -> DEFAULTS)."""
    unknown = set(values) - set(DEFAULTS)
    if unknown:
        raise LayoutError("%sunknown per-node field(s) %s (known: %s)" % (_where(src, None), ", ".join(sorted(unknown)), ", ".join(DEFAULTS)))
    val = dict(DEFAULTS)
    val.update({k: x for k, x in values.items() if x is not None or k == "population"})
    lat = _numbers("lat", lat, len(lat), np.float64, src, where)
    n = len(lat)
    lon = _numbers("lon", lon, n, np.float64, src, where)
    if ids is None:
        ids = np.arange(n, dtype=np.int64)
    else:
        ids = np.asarray(ids)
        if ids.shape != (n,):
            raise LayoutError("%sids has %d values for %d nodes" % (_where(src, None), ids.size, n))
        if ids.dtype.kind not in "iu":
            ids = np.array([x if type(x) is str else str(x) for x in ids.tolist()], dtype=object)
        seq = ids.tolist()
        if len(set(seq)) != n:
            seen: dict = {}
            for k, x in enumerate(seq):
                if x in seen:
                    here, before = (where(k), where(seen[x])) if where else ("node %d" % k, "node %d" % seen[x])
                    raise LayoutError("%sid %r is used twice (also %s)" % (_where(src, here), str(x), before))
                seen[x] = k
    pop = val["population"]
    return Layout(
        ids=ids,
        lat=lat,
        lon=lon,
        sensor=_codes("sensor", val["sensor"], n, rng, src, SENSORS, where),
        site_class=_codes("site_class", val["site_class"], n, rng, src, SITE_CLASSES, where),
        vs30=_numbers("vs30", val["vs30"], n, np.float32, src, where),
        outage_p=_numbers("outage_p", val["outage_p"], n, np.float32, src, where),
        clock_err_s=_numbers("clock_err_s", val["clock_err_s"], n, np.float32, src, where),
        population=None if pop is None else _numbers("population", pop, n, np.float32, src, where),
    )


# ---------------------------------------------------------------------------------------------
# Files


def load_layout(path, defaults: dict | None = None, ignore_unknown: bool = False) -> Layout:
    """Read a layout from a CSV, GeoJSON or OpenEEW device-list JSON file.

    - CSV: a header with ``lat``, ``lon`` and optionally ``id``, ``sensor``, ``site_class``,
      ``vs30``, ``outage_p``, ``clock_err_s``, ``population`` (also accepted: latitude, longitude,
      lng, device_id, node_id). An empty optional cell takes the default.
    - GeoJSON: a FeatureCollection of Point features ([lon, lat] coordinates); properties as the
      CSV columns (``id`` also from the feature's ``id``).
    - OpenEEW device list (``devices/device_locations.json``): a JSON list of objects with
      ``device_id``, ``latitude``, ``longitude`` (other keys such as ``elev``, ``device_type``,
      ``firmware_version`` are ignored; OpenEEW boards carry an ADXL355, the default sensor).
      Any JSON list of node objects works the same way (our field names or these), and keys it
      does not know are ignored, as device lists carry other metadata.

    ``defaults`` fills fields the file leaves out (same forms as the generators' keywords).
    Unknown CSV columns / GeoJSON properties are errors (a misspelt ``vs_30`` would otherwise be
    silently replaced by the default) unless ``ignore_unknown``.
    """
    p = Path(path)
    src = p.name
    if defaults:
        unknown = set(defaults) - set(DEFAULTS)
        if unknown:
            raise LayoutError("defaults: unknown field(s) %s (known: %s)" % (", ".join(sorted(unknown)), ", ".join(DEFAULTS)))
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise LayoutError("%s: cannot read (%s)" % (src, e.strerror or e)) from None
    suffix = p.suffix.lower()
    head = text[:4096].lstrip()[:1]
    if suffix in (".json", ".geojson") or head in ("{", "["):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise LayoutError("%s line %d: not valid JSON (%s)" % (src, e.lineno, e.msg)) from None
        if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
            return _from_geojson(doc, src, defaults or {}, ignore_unknown)
        if isinstance(doc, dict) and doc.get("type") in ("Feature", "Point"):
            raise LayoutError("%s: a single %s; wrap the nodes in a FeatureCollection" % (src, doc["type"]))
        if isinstance(doc, list):
            return _from_records(doc, src, defaults or {}, ignore_unknown=True, what="entry")
        raise LayoutError("%s: expected a GeoJSON FeatureCollection or a JSON list of devices" % src)
    return _from_csv(text, src, defaults or {}, ignore_unknown)


def _canon(key: str) -> str:
    k = str(key).strip().lower()
    return _ALIASES.get(k, k)


_SKIP_LINE = re.compile(r"^[ \t,]*(#.*)?$")


def _read_csv(text: str, src: str) -> tuple:
    """(header cells or None if empty, header row, list of columns (lists of str), function from
    data index to row number).

    Files without quotes (the usual case) are split with str methods at C speed; quoted files go
    through the csv module. Blank lines, lines of commas only and lines starting with # are
    skipped; row numbers count every line of the file, as a spreadsheet shows them.
    """
    return _read_quoted_csv(text, src) if '"' in text else _read_plain_csv(text, src)


def _read_quoted_csv(text: str, src: str) -> tuple:
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    rows: list[list[str]] = []
    line_of: list[int] = []
    for row in reader:
        if not any(c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        rows.append(row)
        line_of.append(reader.line_num)
    if not rows:
        return None, 0, [], line_of.__getitem__
    header, body = rows[0], rows[1:]
    width = len(header)
    if set(map(len, body)) - {width}:
        k = next(k for k, r in enumerate(body) if len(r) != width)
        raise LayoutError("%s row %d: %d fields, the header has %d" % (src, line_of[k + 1], len(body[k]), width))
    columns = [list(c) for c in zip(*body)] if body else [[] for _ in range(width)]
    return header, line_of[0], columns, lambda i: line_of[i + 1]


def _read_plain_csv(text: str, src: str) -> tuple:
    lines = text.splitlines()
    keep: list[int] | None = None
    # Only lines that are empty or start with a blank, '#' or ',' can be skipped; confirm those.
    maybe = [i for i, ln in enumerate(lines) if not ln or ln[0] in " \t#,"]
    if maybe and any(_SKIP_LINE.match(lines[i]) for i in maybe):
        keep = [i for i, ln in enumerate(lines) if not _SKIP_LINE.match(ln)]
        lines = [lines[i] for i in keep]

    def row_of(i: int) -> int:  # index among kept lines -> row number in the file
        return (keep[i] if keep is not None else i) + 1

    if not lines:
        return None, 0, [], row_of
    header = lines[0].split(",")
    width = len(header)
    body = lines[1:]
    if not body:
        return header, row_of(0), [[] for _ in range(width)], lambda i: row_of(i + 1)
    cells = ",".join(body).split(",")
    if len(cells) != width * len(body):
        k = next(k for k, ln in enumerate(body) if ln.count(",") != width - 1)
        raise LayoutError("%s row %d: %d fields, the header has %d" % (src, row_of(k + 1), body[k].count(",") + 1, width))
    if " " in text or "\t" in text:
        cells = [c.strip() for c in cells]
    columns: list = [cells[i::width] for i in range(width)]
    # Numeric columns through numpy's C parser when every cell parses (no empty cells, no text):
    # 3x faster than float() per cell. Any failure leaves the strings, and the checks that follow
    # name the offending row.
    numeric = [i for i, c in enumerate(header) if _canon(c) in _RANGES]
    if numeric and len(body) > 1000:
        try:
            parsed = np.loadtxt(body, delimiter=",", usecols=numeric, dtype=np.float64, comments=None, ndmin=2)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.shape == (len(body), len(numeric)):
            for k, i in enumerate(numeric):
                columns[i] = parsed[:, k]
    return header, row_of(0), columns, lambda i: row_of(i + 1)


def _from_csv(text: str, src: str, defaults: dict, ignore_unknown: bool) -> Layout:
    raw, header_row, columns, row_of = _read_csv(text, src)
    if raw is None:
        raise LayoutError("%s: empty file (expected a header with lat, lon)" % src)
    header = [_canon(c) for c in raw]
    for i, name in enumerate(header):
        if name in header[:i]:
            raise LayoutError("%s row %d: column %r appears twice" % (src, header_row, name))
    unknown = [c for c in header if c not in COLUMNS]
    if unknown and not ignore_unknown:
        raise LayoutError("%s row %d: unknown column %r (known: %s)" % (src, header_row, unknown[0], ", ".join(COLUMNS)))
    for need in ("lat", "lon"):
        if need not in header:
            raise LayoutError("%s row %d: no %r column (the header must name lat and lon)" % (src, header_row, need))
    cols = {name: columns[i] for i, name in enumerate(header) if name in COLUMNS}
    if "id" in cols:
        cols["id"] = [v.strip() for v in cols["id"]]
    n = len(cols["lat"])
    return _columns_to_layout(cols, n, src, defaults, lambda i: "row %d" % row_of(i), strings=True)


def _first_missing(col, strings: bool = False) -> int | None:
    """Index of the first "" or None in a column, None if there is none (C-speed when complete;
    ``strings``: the column holds only str, as from a CSV file, so skip the slower None test).
    A float array (already parsed) has no missing cells."""
    if isinstance(col, np.ndarray) and col.dtype.kind == "f":
        return None
    if "" not in col and (strings or None not in col):
        return None
    return next(i for i, v in enumerate(col) if v is None or v == "")


def _columns_to_layout(cols: dict, n: int, src: str, defaults: dict, where, strings: bool = False) -> Layout:
    """Columns of strings (or JSON values; "" or None = missing) -> Layout, with defaults."""
    for need in ("lat", "lon"):
        i = _first_missing(cols[need], strings)
        if i is not None:
            raise LayoutError("%s%s is missing" % (_where(src, where(i)), need))
    values = {}
    for name in DEFAULTS:
        default = defaults.get(name, DEFAULTS[name])
        if name not in cols:
            values[name] = default
            continue
        col = cols[name]
        first = _first_missing(col, strings)
        if first is not None:
            if default is None:
                raise LayoutError("%s%s is missing (and has no default)" % (_where(src, where(first)), name))
            if isinstance(default, dict):
                raise LayoutError("%s%s is missing; a dict of shares is not a per-row default" % (_where(src, where(first)), name))
            col = list(col)
            dv = np.asarray(default)
            for i, v in enumerate(col):
                if v is None or v == "":
                    col[i] = default if dv.ndim == 0 else dv[i]
        values[name] = col if isinstance(col, np.ndarray) else np.asarray(col, dtype=object)
    ids = None
    if "id" in cols:
        col = cols["id"] if strings else ["" if v is None else str(v).strip() for v in cols["id"]]
        i = _first_missing(col, True)
        if i is not None:
            raise LayoutError("%sid is missing" % _where(src, where(i)))
        ids = np.asarray(col, dtype=object)
    rng = np.random.default_rng(0)
    lat, lon = (c if isinstance(c, np.ndarray) else np.asarray(c, dtype=object) for c in (cols["lat"], cols["lon"]))
    return _build(lat, lon, ids, values, rng, src, where)


def _from_records(items: list, src: str, defaults: dict, ignore_unknown: bool, what: str) -> Layout:
    cols: dict = {}
    keys_seen: list = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise LayoutError("%s %s %d: expected an object, got %s" % (src, what, i + 1, type(item).__name__))
        canon = {}
        for k, v in item.items():
            c = _canon(k)
            if c not in COLUMNS:
                if not ignore_unknown:
                    raise LayoutError("%s %s %d: unknown field %r (known: %s)" % (src, what, i + 1, k, ", ".join(COLUMNS)))
                continue
            canon[c] = v
        keys_seen.append(canon)
    names = {k for c in keys_seen for k in c}
    for need in ("lat", "lon"):
        if need not in names and items:
            raise LayoutError("%s %s 1: no %s" % (src, what, "latitude" if need == "lat" else "longitude"))
    for name in names:
        cols[name] = [c.get(name) for c in keys_seen]
    if not items:
        cols = {"lat": [], "lon": []}
    return _columns_to_layout(cols, len(items), src, defaults, lambda i: "%s %d" % (what, i + 1))


def _from_geojson(doc: dict, src: str, defaults: dict, ignore_unknown: bool) -> Layout:
    feats = doc.get("features")
    if not isinstance(feats, list):
        raise LayoutError("%s: FeatureCollection without a 'features' list" % src)
    records = []
    for i, f in enumerate(feats):
        loc = "%s feature %d" % (src, i + 1)
        if not isinstance(f, dict) or f.get("type") != "Feature":
            raise LayoutError("%s: not a Feature" % loc)
        g = f.get("geometry")
        if not isinstance(g, dict) or g.get("type") != "Point":
            gt = g.get("type") if isinstance(g, dict) else g
            raise LayoutError("%s: geometry type %r is not 'Point'" % (loc, gt))
        c = g.get("coordinates")
        if not (isinstance(c, list) and len(c) in (2, 3)):
            raise LayoutError("%s: coordinates %r must be [lon, lat] or [lon, lat, elevation]" % (loc, c))
        props = f.get("properties") or {}
        if not isinstance(props, dict):
            raise LayoutError("%s: properties must be an object" % loc)
        rec = {}
        for k, v in props.items():
            ck = _canon(k)
            if ck in ("lat", "lon"):
                continue  # the geometry is authoritative
            if ck not in COLUMNS and not ignore_unknown:
                raise LayoutError("%s: unknown property %r (known: %s)" % (loc, k, ", ".join(COLUMNS[3:] + ("id",))))
            if ck in COLUMNS:
                rec[ck] = v
        if "id" not in rec and f.get("id") is not None:
            rec["id"] = f["id"]
        rec["lon"], rec["lat"] = c[0], c[1]
        records.append(rec)
    return _from_records(records, src, defaults, ignore_unknown=True, what="feature")


# ---------------------------------------------------------------------------------------------
# Generators


def _check_bbox(bbox, src: str = "bbox") -> tuple[float, float, float, float]:
    try:
        lat0, lat1, lon0, lon1 = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise LayoutError("%s must be (lat0, lat1, lon0, lon1), got %r" % (src, bbox)) from None
    if not (-90 <= lat0 < lat1 <= 90):
        raise LayoutError("%s: need -90 <= lat0 < lat1 <= 90, got lat0=%r lat1=%r" % (src, lat0, lat1))
    if not (-180 <= lon0 < lon1 <= 180):
        raise LayoutError("%s: need -180 <= lon0 < lon1 <= 180, got lon0=%r lon1=%r" % (src, lon0, lon1))
    return lat0, lat1, lon0, lon1


def _check_n(n, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise LayoutError("%s must be an integer >= 0, got %r" % (name, n))
    return int(n)


def random_layout(n: int, bbox=(14.5, 20.0, -105.0, -94.0), seed: int = 0, **per_node) -> Layout:
    """n nodes uniformly distributed on the sphere inside bbox = (lat0, lat1, lon0, lon1) degrees
    (uniform in longitude and in sin(latitude), so equal areas get equal numbers). The default box
    covers southern Mexico, where the OpenEEW network is. ``per_node``: sensor, site_class, vs30,
    outage_p, clock_err_s, population. Same seed -> same layout."""
    n = _check_n(n)
    lat0, lat1, lon0, lon1 = _check_bbox(bbox)
    rng = np.random.default_rng(seed)
    s0, s1 = math.sin(math.radians(lat0)), math.sin(math.radians(lat1))
    lat = np.degrees(np.arcsin(rng.uniform(s0, s1, n)))
    lon = rng.uniform(lon0, lon1, n)
    return _build(lat, lon, None, per_node, rng, "random_layout")


def grid_layout(bbox, spacing_km: float, **per_node) -> Layout:
    """Nodes on an (approximately) equal-distance grid inside bbox: rows ``spacing_km`` apart in
    latitude, and along each row nodes ``spacing_km`` apart on that parallel (so the longitude step
    widens towards the poles). Rows and columns are centred in the box."""
    lat0, lat1, lon0, lon1 = _check_bbox(bbox)
    if not (isinstance(spacing_km, (int, float, np.floating, np.integer)) and spacing_km > 0 and math.isfinite(spacing_km)):
        raise LayoutError("spacing_km must be > 0, got %r" % (spacing_km,))
    dlat = spacing_km / _KM_PER_DEG
    nrow = int(math.floor((lat1 - lat0) / dlat)) + 1
    lats = lat0 + 0.5 * ((lat1 - lat0) - (nrow - 1) * dlat) + dlat * np.arange(nrow)
    dlon = dlat / np.maximum(np.cos(np.radians(lats)), 1e-9)
    ncol = np.floor((lon1 - lon0) / dlon).astype(np.int64) + 1
    start = lon0 + 0.5 * ((lon1 - lon0) - (ncol - 1) * dlon)
    total = int(ncol.sum())
    if total > 50_000_000:
        raise LayoutError("spacing_km %r gives %d nodes; use a coarser grid" % (spacing_km, total))
    row = np.repeat(np.arange(nrow), ncol)
    k = np.arange(total) - np.repeat(np.cumsum(ncol) - ncol, ncol)
    lat = lats[row]
    lon = start[row] + k * dlon[row]
    return _build(lat, lon, None, per_node, np.random.default_rng(0), "grid_layout")


def _jitter(lat, lon, jitter_km: float, rng):
    if jitter_km <= 0:
        return lat, lon
    n = len(lat)
    dn = rng.normal(0.0, jitter_km, n) / _KM_PER_DEG
    de = rng.normal(0.0, jitter_km, n) / (_KM_PER_DEG * np.maximum(np.cos(np.radians(lat)), 1e-9))
    lat = np.clip(lat + dn, -90.0, 90.0)
    lon = (lon + de + 180.0) % 360.0 - 180.0
    return lat, lon


def population_layout(n: int, points_lat, points_lon, weights, seed: int = 0, jitter_km: float = 1.0, **per_node) -> Layout:
    """n nodes placed at a point set in proportion to its weights (e.g. census populations of
    towns), each moved by a Gaussian jitter of ``jitter_km`` (std, per horizontal axis) so nodes
    of one town don't coincide. Each node's ``population`` is its point's weight divided by the
    number of nodes that point received (points that receive none are not represented)."""
    n = _check_n(n)
    plat = np.asarray(points_lat, dtype=np.float64).ravel()
    plon = np.asarray(points_lon, dtype=np.float64).ravel()
    w = np.asarray(weights, dtype=np.float64).ravel()
    if not (plat.shape == plon.shape == w.shape):
        raise LayoutError("points_lat, points_lon and weights must have the same length (%d, %d, %d)" % (plat.size, plon.size, w.size))
    if plat.size == 0 or not (np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0):
        raise LayoutError("weights must be finite, >= 0 and not all 0")
    _numbers("lat", plat, plat.size, np.float64, "population_layout", lambda i: "point %d" % i)
    _numbers("lon", plon, plon.size, np.float64, "population_layout", lambda i: "point %d" % i)
    if not (isinstance(jitter_km, (int, float)) and jitter_km >= 0):
        raise LayoutError("jitter_km must be >= 0, got %r" % (jitter_km,))
    rng = np.random.default_rng(seed)
    pick = rng.choice(plat.size, size=n, p=w / w.sum())
    counts = np.bincount(pick, minlength=plat.size)
    lat, lon = _jitter(plat[pick], plon[pick], float(jitter_km), rng)
    per_node.setdefault("population", (w[pick] / counts[pick]).astype(np.float32))
    return _build(lat, lon, None, per_node, rng, "population_layout")


def population_layout_from_raster(n: int, raster, bbox, seed: int = 0, **per_node) -> Layout:
    """n nodes drawn from a population raster covering bbox = (lat0, lat1, lon0, lon1): cells are
    chosen in proportion to their value and the node placed uniformly inside its cell. ``raster[0,
    0]`` is the north-west cell (image / GeoTIFF order: rows run south, columns east). Each node's
    ``population`` is its cell's value divided by the nodes that cell received."""
    n = _check_n(n)
    lat0, lat1, lon0, lon1 = _check_bbox(bbox)
    r = np.asarray(raster, dtype=np.float64)
    if r.ndim != 2 or r.size == 0:
        raise LayoutError("raster must be a non-empty 2-D array, got shape %s" % (r.shape,))
    flat = np.nan_to_num(r, nan=0.0).ravel()
    if not (np.all(flat >= 0) and np.all(np.isfinite(flat)) and flat.sum() > 0):
        raise LayoutError("raster values must be finite, >= 0 and not all 0")
    nrow, ncol = r.shape
    rng = np.random.default_rng(seed)
    cell = rng.choice(flat.size, size=n, p=flat / flat.sum())
    counts = np.bincount(cell, minlength=flat.size)
    row, col = np.divmod(cell, ncol)
    dlat = (lat1 - lat0) / nrow
    dlon = (lon1 - lon0) / ncol
    top = lat1 - row * dlat
    s_hi, s_lo = np.sin(np.radians(top)), np.sin(np.radians(top - dlat))
    lat = np.degrees(np.arcsin(s_lo + rng.random(n) * (s_hi - s_lo)))
    lon = lon0 + (col + rng.random(n)) * dlon
    per_node.setdefault("population", (flat[cell] / counts[cell]).astype(np.float32))
    return _build(lat, lon, None, per_node, rng, "population_layout_from_raster")
