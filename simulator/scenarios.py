"""Earthquake scenarios: built-in historic events, catalogue files, Gutenberg-Richter synthetic
catalogues and hypocentres along a fault.

A ``Quake`` is a point source (epicentre, depth, moment magnitude) with an origin time ``t0`` on
the scenario clock (seconds; 0 unless the quake is one of a sequence). Errors in files and
arguments are ``ScenarioError`` (a ``ValueError``) naming the file, the entry or line and the
field: ``catalog.txt line 17 (entry 4): latitude 'x' is not a number``.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .physics import epicentral_km

__all__ = [
    "Quake",
    "ScenarioError",
    "BUILTIN",
    "builtin",
    "load_catalog",
    "gutenberg_richter",
    "fault_hypocentres",
]

DEFAULT_DEPTH_KM = 20.0
_SECONDS_PER_YEAR = 365.25 * 86400.0


class ScenarioError(ValueError):
    """A scenario file or argument the user can fix; the message names where and which field."""


@dataclass(frozen=True)
class Quake:
    """A point-source earthquake. ``origin_utc`` is an ISO 8601 string ("2017-09-19T18:14:40Z")
    or None for synthetic events; ``t0`` is the origin time on the scenario clock in seconds."""

    name: str
    origin_utc: str | None
    lat: float
    lon: float
    depth_km: float
    mag: float
    t0: float = 0.0

    def __post_init__(self) -> None:
        for f, lo, hi in (("lat", -90, 90), ("lon", -180, 180), ("depth_km", 0, 800), ("mag", -2, 10)):
            v = getattr(self, f)
            try:
                ok = math.isfinite(float(v)) and lo <= float(v) <= hi
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ScenarioError("quake %r: %s %r is outside %s..%s" % (self.name, f, v, lo, hi))
        if not math.isfinite(float(self.t0)):
            raise ScenarioError("quake %r: t0 %r is not finite" % (self.name, self.t0))


# Built-in events for the OpenEEW Mexico network. One source for all three: the Servicio
# Sismologico Nacional (SSN, UNAM), whose catalogue OpenEEW uses (data/openeew/catalog_events.txt).
# - puebla2017: SSN special report on the 19 Sep 2017 Mw 7.1 Puebla-Morelos earthquake: 13:14:40
#   local = 18:14:40 UTC, 18.40 N, 98.72 W, depth 57 km, normal faulting in the slab. (USGS
#   ComCat us2000ar20 has 18.550 N 98.489 W, 48-51 km, 18:14:38 UTC.) The OpenEEW catalogue here
#   starts in Dec 2017, so it does not list this event.
# - pinotepa2018: SSN catalogue as bundled (catalog_events.txt, event 8146): 2018-02-16 23:39:39
#   UTC, 16.218 N, 98.013 W, M 7.2; depth 12 km from SSN's report of the event (as quoted by La
#   Jornada, 17 Feb 2018). (USGS us2000d7q6: 16.385 N 97.979 W, 22 km.)
# - oaxaca2020: SSN catalogue as bundled (event 56217): 2020-06-23 15:29:03 UTC, 15.784 N,
#   96.120 W, M 7.4; depth 22.6 km from SSN's special report on the Crucecita earthquake. That
#   depth could not be re-checked with the tools available when this was written (USGS: 20 km
#   final, 26.3 km preliminary; geodetic slip centroid 20-30 km), so treat it as +-5 km.
BUILTIN: dict = {
    "puebla2017": Quake("puebla2017", "2017-09-19T18:14:40Z", 18.40, -98.72, 57.0, 7.1),
    "pinotepa2018": Quake("pinotepa2018", "2018-02-16T23:39:39Z", 16.218, -98.013, 12.0, 7.2),
    "oaxaca2020": Quake("oaxaca2020", "2020-06-23T15:29:03Z", 15.784, -96.120, 22.6, 7.4),
}


def builtin(name: str) -> Quake:
    """The built-in quake called ``name``; the error lists the names there are."""
    try:
        return BUILTIN[name.strip().lower()]
    except KeyError:
        raise ScenarioError("unknown built-in scenario %r (one of %s)" % (name, ", ".join(BUILTIN))) from None


# ---------------------------------------------------------------------------------------------
# Catalogue files

_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
)


def _parse_time(text: str) -> dt.datetime:
    s = text.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1]
    elif re.search(r"[+-]00:?00$", s):
        s = s[:-6] if ":" in s[-6:] else s[:-5]
    for fmt in _TIME_FORMATS:
        try:
            return dt.datetime.strptime(s, fmt).replace(tzinfo=dt.timezone.utc)
        except ValueError:
            pass
    raise ValueError(text)


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if t.microsecond else "%Y-%m-%dT%H:%M:%SZ")


_FIELDS = {
    # canonical name: (aliases, required)
    "name": (("name", "id", "event_id"), True),
    "time": (("time", "origin", "origin_utc", "origin_time"), True),
    "lat": (("lat", "latitude"), True),
    "lon": (("lon", "longitude", "lng"), True),
    "depth_km": (("depth_km", "depth"), False),
    "mag": (("mag", "magnitude", "mw"), True),
}
_ALIAS = {a: k for k, (aliases, _) in _FIELDS.items() for a in aliases}
_SHOWN = {"lat": "latitude", "lon": "longitude", "mag": "magnitude"}  # names as the OpenEEW file spells them


def _quake_from(rec: dict, loc: str, default_depth_km: float, shown: dict) -> tuple[Quake, dt.datetime]:
    """rec: canonical field -> (raw string, location of that value, the key as the file spells it).
    ``shown``: how to name a missing required field."""
    for k, (_, required) in _FIELDS.items():
        if required and k not in rec:
            raise ScenarioError("%s: missing %r" % (loc, shown.get(k, k)))
    vals = {}
    for k in ("lat", "lon", "depth_km", "mag"):
        if k not in rec or (k == "depth_km" and rec[k][0].strip() == ""):
            continue
        raw, where, key = rec[k]
        try:
            x = float(raw)
        except ValueError:
            raise ScenarioError("%s: %s %r is not a number" % (where, key, raw.strip())) from None
        lo, hi = {"lat": (-90, 90), "lon": (-180, 180), "depth_km": (0, 800), "mag": (-2, 10)}[k]
        if not (math.isfinite(x) and lo <= x <= hi):
            raise ScenarioError("%s: %s %s is outside %s..%s" % (where, key, raw.strip(), lo, hi))
        vals[k] = x
    raw, where, key = rec["time"]
    try:
        t = _parse_time(raw)
    except ValueError:
        raise ScenarioError("%s: %s %r is not a date-time like 2018-02-16 23:39:39 (UTC)" % (where, key, raw.strip())) from None
    name = rec["name"][0].strip()
    if not name:
        raise ScenarioError("%s: %s is empty" % (rec["name"][1], rec["name"][2]))
    q = Quake(name, _iso(t), vals["lat"], vals["lon"], vals.get("depth_km", default_depth_km), vals["mag"])
    return q, t


def load_catalog(path, default_depth_km: float = DEFAULT_DEPTH_KM, relative_times: bool = False) -> list[Quake]:
    """Read a catalogue: the OpenEEW format (blocks of ``key = value`` lines — name, time,
    latitude, longitude, magnitude, optionally depth — separated by lines of dashes) or CSV with a
    header (name, time, lat, lon, depth_km, mag; latitude/longitude/depth/magnitude also accepted).

    Times are UTC (``2018-02-16 23:39:39``, ISO 8601 with T/Z also accepted). A missing or empty
    depth takes ``default_depth_km`` (the OpenEEW catalogue has none; its records assume 20 km).
    Each quake has t0 = 0 (every event its own scenario) unless ``relative_times``, then t0 is the
    seconds since the earliest event in the file (one long scenario clock). Magnitudes are used
    as moment magnitudes (the GMPE's input); SSN's catalogue gives Mw for large events but other
    scales for many small ones.
    """
    p = Path(path)
    src = p.name
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ScenarioError("%s: cannot read (%s)" % (src, e.strerror or e)) from None
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    if p.suffix.lower() == ".csv" or ("," in first and "=" not in first):
        parsed = _parse_csv(text, src, default_depth_km)
    else:
        parsed = _parse_blocks(text, src, default_depth_km)
    if not parsed:
        raise ScenarioError("%s: no events" % src)
    if relative_times:
        t_first = min(t for _, t in parsed)
        return [_with_t0(q, (t - t_first).total_seconds()) for q, t in parsed]
    return [q for q, _ in parsed]


def _with_t0(q: Quake, t0: float) -> Quake:
    return Quake(q.name, q.origin_utc, q.lat, q.lon, q.depth_km, q.mag, t0)


_DASHES = re.compile(r"^\s*-{3,}\s*$")


def _parse_blocks(text: str, src: str, default_depth_km: float) -> list:
    out = []
    rec: dict = {}
    start = 0
    entry = 0

    def close():
        nonlocal rec
        if rec:
            loc = "%s entry %d (line %d)" % (src, entry, start)
            out.append(_quake_from(rec, loc, default_depth_km, _SHOWN))
        rec = {}

    for lineno, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if _DASHES.match(s):
            close()
            continue
        if not rec:
            entry += 1
            start = lineno
        where = "%s line %d (entry %d)" % (src, lineno, entry)
        if "=" not in s:
            raise ScenarioError("%s: expected 'key = value' or a line of dashes, got %r" % (where, s[:60]))
        key, _, value = s.partition("=")
        k = _ALIAS.get(key.strip().lower())
        if k is None:
            raise ScenarioError("%s: unknown key %r (known: name, time, latitude, longitude, depth, magnitude)" % (where, key.strip()))
        if k in rec:
            raise ScenarioError("%s: %r given twice in one entry (is a dashes line missing?)" % (where, key.strip()))
        rec[k] = (value, where, key.strip())
    close()
    return out


def _parse_csv(text: str, src: str, default_depth_km: float) -> list:
    reader = csv.reader(text.splitlines())
    header = None
    out = []
    entry = 0
    for row in reader:
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        line = reader.line_num
        if header is None:
            header = []
            spelt = [c.strip() for c in row]
            for c in row:
                k = _ALIAS.get(c.strip().lower())
                if k is None:
                    raise ScenarioError("%s line %d: unknown column %r (known: name, time, lat, lon, depth_km, mag)" % (src, line, c.strip()))
                if k in header:
                    raise ScenarioError("%s line %d: column %r appears twice" % (src, line, c.strip()))
                header.append(k)
            for k, (_, required) in _FIELDS.items():
                if required and k not in header:
                    raise ScenarioError("%s line %d: no %r column" % (src, line, k))
            continue
        entry += 1
        where = "%s line %d (entry %d)" % (src, line, entry)
        if len(row) != len(header):
            raise ScenarioError("%s: %d fields, the header has %d" % (where, len(row), len(header)))
        rec = {k: (v, where, name) for k, v, name in zip(header, row, spelt)}
        out.append(_quake_from(rec, where, default_depth_km, {}))
    return out


# ---------------------------------------------------------------------------------------------
# Synthetic catalogues


def _bbox(bbox) -> tuple[float, float, float, float]:
    try:
        lat0, lat1, lon0, lon1 = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ScenarioError("bbox must be (lat0, lat1, lon0, lon1), got %r" % (bbox,)) from None
    if not (-90 <= lat0 < lat1 <= 90 and -180 <= lon0 < lon1 <= 180):
        raise ScenarioError("bbox %r: need -90 <= lat0 < lat1 <= 90 and -180 <= lon0 < lon1 <= 180" % (bbox,))
    return lat0, lat1, lon0, lon1


def _depths(depth_km, n: int, rng, what: str = "depth_km") -> np.ndarray:
    if np.ndim(depth_km) == 0:
        d = float(depth_km)
        if not (0 <= d <= 800):
            raise ScenarioError("%s %r is outside 0..800" % (what, depth_km))
        return np.full(n, d)
    try:
        lo, hi = (float(v) for v in depth_km)
    except (TypeError, ValueError):
        raise ScenarioError("%s must be a depth or a (min, max) range, got %r" % (what, depth_km)) from None
    if not (0 <= lo <= hi <= 800):
        raise ScenarioError("%s range %r: need 0 <= min <= max <= 800" % (what, depth_km))
    return rng.uniform(lo, hi, n)


def gutenberg_richter(a, b, mmin, mmax, years, bbox, depth_km=(5, 40), seed: int = 0, start_utc: str | None = None) -> list[Quake]:
    """A synthetic catalogue for a region: Poisson number of events, truncated Gutenberg-Richter
    magnitudes, uniform epicentres and origin times.

    a-value convention: ``a`` = log10 of the ANNUAL number of events with M >= 0 in the WHOLE bbox,
    i.e. N(M >= m) per year = 10**(a - b m). The count in [mmin, mmax) over ``years`` is Poisson
    with mean years * (10**(a - b mmin) - 10**(a - b mmax)); magnitudes follow the doubly
    truncated exponential (inverse-CDF sampling); epicentres are uniform on the sphere inside bbox
    = (lat0, lat1, lon0, lon1); depths uniform in ``depth_km`` = (min, max) or fixed; origin times
    uniform over the period, in t0 seconds from its start, sorted. With ``start_utc`` (ISO date)
    each quake also gets origin_utc = start + t0. Names are "gr00001", ... in time order.
    """
    for name, v in (("a", a), ("b", b), ("mmin", mmin), ("mmax", mmax), ("years", years)):
        if not (isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v)):
            raise ScenarioError("%s must be a finite number, got %r" % (name, v))
    if not b > 0:
        raise ScenarioError("b must be > 0, got %r" % (b,))
    if not mmax > mmin:
        raise ScenarioError("mmax (%r) must be above mmin (%r)" % (mmax, mmin))
    if not years > 0:
        raise ScenarioError("years must be > 0, got %r" % (years,))
    lat0, lat1, lon0, lon1 = _bbox(bbox)
    start = None
    if start_utc is not None:
        try:
            start = _parse_time(start_utc)
        except ValueError:
            raise ScenarioError("start_utc %r is not a date-time" % (start_utc,)) from None
    rng = np.random.default_rng(seed)
    rate = years * (10.0 ** (a - b * mmin) - 10.0 ** (a - b * mmax))
    if rate > 5e6:
        raise ScenarioError("a=%r, b=%r, mmin=%r over %r years gives %.3g events on average; raise mmin" % (a, b, mmin, years, rate))
    n = int(rng.poisson(rate))
    u = rng.random(n)
    mags = mmin - np.log10(1.0 - u * (1.0 - 10.0 ** (-b * (mmax - mmin)))) / b
    s0, s1 = math.sin(math.radians(lat0)), math.sin(math.radians(lat1))
    lats = np.degrees(np.arcsin(rng.uniform(s0, s1, n)))
    lons = rng.uniform(lon0, lon1, n)
    deps = _depths(depth_km, n, rng)
    t0 = np.sort(rng.uniform(0.0, years * _SECONDS_PER_YEAR, n))
    out = []
    for i in range(n):
        utc = _iso(start + dt.timedelta(seconds=float(t0[i]))) if start else None
        out.append(Quake("gr%05d" % (i + 1), utc, float(lats[i]), float(lons[i]), float(deps[i]), float(mags[i]), float(t0[i])))
    return out


def fault_hypocentres(trace, depth_km, mags, n: int, seed: int = 0, name: str = "fault") -> list[Quake]:
    """n hypocentres with epicentres uniformly distributed by length along a polyline fault trace
    [(lat, lon), ...] (each segment a straight line in lat/lon, weighted by its great-circle
    length). ``depth_km``: a depth or a (min, max) range drawn uniformly. ``mags``: one magnitude
    for all, or a sequence of n. Each quake has t0 = 0 (one scenario each); names are
    "<name>-001", ...
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ScenarioError("n must be an integer >= 1, got %r" % (n,))
    try:
        pts = np.asarray(trace, dtype=np.float64)
    except (TypeError, ValueError):
        raise ScenarioError("trace must be a list of (lat, lon) points") from None
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2:
        raise ScenarioError("trace must have at least 2 (lat, lon) points, got %r" % (trace,))
    for i, (la, lo) in enumerate(pts):
        if not (-90 <= la <= 90 and -180 <= lo <= 180):
            raise ScenarioError("trace point %d: (%r, %r) is not a valid (lat, lon)" % (i, la, lo))
    if np.ndim(mags) == 0:
        m = np.full(n, float(mags))
    else:
        m = np.asarray(mags, dtype=np.float64).ravel()
        if m.size != n:
            raise ScenarioError("mags has %d values for n=%d hypocentres" % (m.size, n))
    rng = np.random.default_rng(seed)
    seg = epicentral_km(pts[:-1, 0], pts[:-1, 1], pts[1:, 0], pts[1:, 1])
    if seg.sum() <= 0:
        raise ScenarioError("trace has zero length")
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    s = rng.uniform(0.0, cum[-1], n)
    k = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    f = np.where(seg[k] > 0, (s - cum[k]) / np.where(seg[k] > 0, seg[k], 1.0), 0.0)
    lat = pts[k, 0] + f * (pts[k + 1, 0] - pts[k, 0])
    lon = pts[k, 1] + f * (pts[k + 1, 1] - pts[k, 1])
    deps = _depths(depth_km, n, rng)
    return [Quake("%s-%03d" % (name, i + 1), None, float(lat[i]), float(lon[i]), float(deps[i]), float(m[i])) for i in range(n)]

