"""Scenarios: built-in historic quakes, catalogue files (OpenEEW format and CSV), Gutenberg-Richter
catalogues and hypocentres on a fault; errors that name the file, the entry or line and the field."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from seismote.simulator.physics import epicentral_km
from seismote.simulator.scenarios import (
    BUILTIN,
    Quake,
    ScenarioError,
    builtin,
    fault_hypocentres,
    gutenberg_richter,
    load_catalog,
)

CATALOG = Path(__file__).resolve().parents[2] / "shared" / "data" / "openeew" / "catalog_events.txt"
needs_catalog = pytest.mark.skipif(not CATALOG.is_file(), reason="OpenEEW data folder not present")

BLOCK = "name = {name}\ntime = 2018-02-16 23:39:39\nlatitude = 16.218\nlongitude = -98.013\nmagnitude = 7.2\n"
DASHES = "--------------------------------------------\n"


def _catalog(tmp_path: Path, text: str, name: str = "cat.txt") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _error(path, **kw) -> str:
    with pytest.raises(ScenarioError) as exc:
        load_catalog(path, **kw)
    return str(exc.value)


# ---------------------------------------------------------------------------------------------
# Built-in events


def test_builtin_quakes():
    assert set(BUILTIN) == {"puebla2017", "pinotepa2018", "oaxaca2020"}
    p, q, o = BUILTIN["puebla2017"], BUILTIN["pinotepa2018"], BUILTIN["oaxaca2020"]
    assert (p.mag, q.mag, o.mag) == (7.1, 7.2, 7.4)
    assert p.origin_utc.startswith("2017-09-19T18:14") and q.origin_utc.startswith("2018-02-16T23:39") and o.origin_utc.startswith("2020-06-23T15:29")
    # Puebla was an in-slab event ~120 km south of Mexico City; the other two on the interface.
    assert epicentral_km(19.43, -99.13, p.lat, p.lon) == pytest.approx(120.0, abs=15.0)
    assert p.depth_km > 45 and q.depth_km < 30 and o.depth_km < 30
    assert all(x.t0 == 0.0 for x in BUILTIN.values())
    assert builtin(" Oaxaca2020") is o
    with pytest.raises(ScenarioError, match="one of puebla2017, pinotepa2018, oaxaca2020"):
        builtin("tohoku2011")


@needs_catalog
def test_builtin_quakes_agree_with_the_bundled_ssn_catalogue():
    cat = {q.name: q for q in load_catalog(CATALOG)}
    for key, ev in (("pinotepa2018", "8146"), ("oaxaca2020", "56217")):
        b, c = BUILTIN[key], cat[ev]
        assert (b.lat, b.lon, b.mag, b.origin_utc) == (c.lat, c.lon, c.mag, c.origin_utc)


# ---------------------------------------------------------------------------------------------
# Catalogue files


@needs_catalog
def test_openeew_catalogue_loads():
    cat = load_catalog(CATALOG)
    assert len(cat) == 4086
    first = cat[0]
    assert first == Quake("2625", "2017-12-01T00:28:59Z", 17.57, -101.39, 20.0, 3.6)
    assert all(q.depth_km == 20.0 for q in cat)
    deep = load_catalog(CATALOG, default_depth_km=35.0)
    assert deep[0].depth_km == 35.0
    rel = load_catalog(CATALOG, relative_times=True)
    t0 = np.array([q.t0 for q in rel])
    assert t0.min() == 0.0 and rel[0].t0 == 0.0
    # The file is in time order except its last entry (2020-01-30, after 2020-09-26).
    assert rel[-1].t0 == pytest.approx((np.datetime64("2020-01-30T00:59:32") - np.datetime64("2017-12-01T00:28:59")) / np.timedelta64(1, "s"))


def test_catalogue_blocks_with_depth_and_iso_times(tmp_path):
    text = BLOCK.format(name="a") + "depth = 12.5\n" + DASHES + "\n" + BLOCK.format(name="b").replace("2018-02-16 23:39:39", "2018-02-17T00:00:00.5Z")
    a, b = load_catalog(_catalog(tmp_path, text))
    assert (a.name, a.depth_km, b.depth_km) == ("a", 12.5, 20.0)
    assert b.origin_utc == "2018-02-17T00:00:00.500000Z"
    a2, b2 = load_catalog(_catalog(tmp_path, text), relative_times=True)
    assert (a2.t0, b2.t0) == (0.0, pytest.approx(1221.5))


@pytest.mark.parametrize(
    "text,message",
    [
        (BLOCK.format(name="1") + DASHES + BLOCK.format(name="2").replace("16.218", "abc"), "cat.txt line 9 (entry 2): latitude 'abc' is not a number"),
        (BLOCK.format(name="1").replace("magnitude = 7.2\n", "") + DASHES, "cat.txt entry 1 (line 1): missing 'magnitude'"),
        (BLOCK.format(name="1").replace("16.218", "96.2"), "cat.txt line 3 (entry 1): latitude 96.2 is outside -90..90"),
        (BLOCK.format(name="1").replace("2018-02-16 23:39:39", "yesterday"), "cat.txt line 2 (entry 1): time 'yesterday' is not a date-time"),
        (BLOCK.format(name="1") + "magnitud = 5\n", "cat.txt line 6 (entry 1): unknown key 'magnitud'"),
        (BLOCK.format(name="1") + BLOCK.format(name="2"), "cat.txt line 6 (entry 1): 'name' given twice in one entry (is a dashes line missing?)"),
        (BLOCK.format(name="1") + "depth = -3\n", "cat.txt line 6 (entry 1): depth -3 is outside 0..800"),
        (BLOCK.format(name="1") + "this line is junk\n", "cat.txt line 6 (entry 1): expected 'key = value'"),
        ("\n# nothing\n", "cat.txt: no events"),
    ],
)
def test_catalogue_errors_name_file_entry_line_and_field(tmp_path, text, message):
    assert message in _error(_catalog(tmp_path, text))


def test_csv_catalogue(tmp_path):
    text = "name,time,lat,lon,depth_km,mag\nx,2020-06-23 15:29:03,15.784,-96.12,22.6,7.4\ny,2020-06-24T00:00:00Z,16.0,-97.0,,5.1\n"
    x, y = load_catalog(_catalog(tmp_path, text, "events.csv"))
    assert x == Quake("x", "2020-06-23T15:29:03Z", 15.784, -96.12, 22.6, 7.4)
    assert y.depth_km == 20.0 and y.mag == 5.1
    # Without a depth column every event takes the default depth; the format is sniffed too.
    z = load_catalog(_catalog(tmp_path, "name,time,latitude,longitude,magnitude\nz,2020-06-23 15:29:03,15.7,-96.1,6\n", "events.dat"), default_depth_km=8.0)
    assert z[0].depth_km == 8.0


@pytest.mark.parametrize(
    "text,message",
    [
        ("name,time,lat,lon,mag\nx,2020-06-23 15:29:03,15.7,-96.1,big\n", "events.csv line 2 (entry 1): mag 'big' is not a number"),
        ("name,time,lat,lon,depth_km,mag\nx,2020-06-23 15:29:03,15.7,-96.1,900,6\n", "events.csv line 2 (entry 1): depth_km 900 is outside 0..800"),
        ("name,time,lat,lon\nx,2020-06-23 15:29:03,15.7,-96.1\n", "events.csv line 1: no 'mag' column"),
        ("name,time,lat,lon,mag,colour\n", "events.csv line 1: unknown column 'colour'"),
        ("name,time,lat,lon,mag\nx,2020-06-23 15:29:03,15.7,-96.1\n", "events.csv line 2 (entry 1): 4 fields, the header has 5"),
        ("name,time,lat,lon,mag\n,2020-06-23 15:29:03,15.7,-96.1,6\n", "events.csv line 2 (entry 1): name is empty"),
    ],
)
def test_csv_catalogue_errors(tmp_path, text, message):
    assert message in _error(_catalog(tmp_path, text, "events.csv"))


def test_quake_validates_its_fields():
    with pytest.raises(ScenarioError, match="quake 'q': depth_km -1"):
        Quake("q", None, 16.0, -98.0, -1.0, 6.0)
    with pytest.raises(ScenarioError, match="lat"):
        Quake("q", None, 91.0, -98.0, 10.0, 6.0)


# ---------------------------------------------------------------------------------------------
# Gutenberg-Richter


BOX = (15.0, 19.0, -101.0, -94.0)


def test_gutenberg_richter_same_seed_same_catalogue():
    a = gutenberg_richter(4.0, 1.0, 4.0, 8.0, 20, BOX, seed=11)
    b = gutenberg_richter(4.0, 1.0, 4.0, 8.0, 20, BOX, seed=11)
    c = gutenberg_richter(4.0, 1.0, 4.0, 8.0, 20, BOX, seed=12)
    assert a == b and a != c


def test_gutenberg_richter_counts_magnitudes_places_and_times():
    # a = 5.0 -> N(M >= 3) = 10^(5 - 3) = 100 per year in the whole box.
    years = 30.0
    cat = gutenberg_richter(5.0, 1.0, 3.0, 8.0, years, BOX, depth_km=(5, 40), seed=3)
    expected = years * (10 ** (5.0 - 3.0) - 10 ** (5.0 - 8.0))
    assert len(cat) == pytest.approx(expected, abs=4 * math.sqrt(expected))
    m = np.array([q.mag for q in cat])
    assert m.min() >= 3.0 and m.max() < 8.0
    # Aki's maximum-likelihood b = log10(e) / (mean(M) - Mmin) (truncation at 8 is negligible here).
    assert math.log10(math.e) / (m.mean() - 3.0) == pytest.approx(1.0, rel=0.05)
    assert np.mean(m >= 4.0) == pytest.approx(0.1, abs=0.01)
    lat = np.array([q.lat for q in cat])
    lon = np.array([q.lon for q in cat])
    dep = np.array([q.depth_km for q in cat])
    t0 = np.array([q.t0 for q in cat])
    assert lat.min() >= 15 and lat.max() <= 19 and lon.min() >= -101 and lon.max() <= -94
    assert dep.min() >= 5 and dep.max() <= 40
    assert np.all(np.diff(t0) >= 0) and t0.min() >= 0 and t0.max() <= years * 365.25 * 86400
    assert np.mean(t0 < years * 365.25 * 86400 / 2) == pytest.approx(0.5, abs=0.03)
    assert cat[0].name == "gr00001" and cat[0].origin_utc is None


def test_gutenberg_richter_mean_count_over_seeds_is_the_rate():
    counts = [len(gutenberg_richter(2.0, 1.0, 1.0, 2.0, 1.0, BOX, seed=s)) for s in range(300)]
    rate = 10 ** (2.0 - 1.0) - 10 ** (2.0 - 2.0)  # 9 per year
    assert np.mean(counts) == pytest.approx(rate, abs=0.5)
    assert np.var(counts) == pytest.approx(rate, rel=0.25)  # Poisson: variance = mean


def test_gutenberg_richter_start_date_and_errors():
    cat = gutenberg_richter(3.0, 1.0, 2.0, 6.0, 1.0, BOX, seed=1, start_utc="2024-01-01")
    assert all(q.origin_utc.startswith("2024") or q.origin_utc.startswith("2025-01-01") for q in cat)
    with pytest.raises(ScenarioError, match="b must be > 0"):
        gutenberg_richter(3.0, 0.0, 2.0, 6.0, 1.0, BOX)
    with pytest.raises(ScenarioError, match="mmax"):
        gutenberg_richter(3.0, 1.0, 6.0, 6.0, 1.0, BOX)
    with pytest.raises(ScenarioError, match="bbox"):
        gutenberg_richter(3.0, 1.0, 2.0, 6.0, 1.0, (19.0, 15.0, -101.0, -94.0))
    with pytest.raises(ScenarioError, match="depth_km range"):
        gutenberg_richter(3.0, 1.0, 2.0, 6.0, 1.0, BOX, depth_km=(40, 5))
    with pytest.raises(ScenarioError, match="raise mmin"):
        gutenberg_richter(9.0, 1.0, 0.0, 6.0, 10.0, BOX)


# ---------------------------------------------------------------------------------------------
# Fault


TRACE = [(16.0, -99.0), (15.7, -97.0), (15.5, -95.0)]


def test_fault_hypocentres_lie_on_the_trace_uniformly_by_length():
    qs = fault_hypocentres(TRACE, (10.0, 30.0), 7.0, 4000, seed=2)
    lat = np.array([q.lat for q in qs])
    lon = np.array([q.lon for q in qs])
    # On the polyline: each point is on one of the two straight segments (in lat/lon).
    first = lon <= -97.0
    on1 = np.interp(lon[first], [-99.0, -97.0], [16.0, 15.7])
    on2 = np.interp(lon[~first], [-97.0, -95.0], [15.7, 15.5])
    np.testing.assert_allclose(lat[first], on1, atol=1e-9)
    np.testing.assert_allclose(lat[~first], on2, atol=1e-9)
    seg = epicentral_km(np.array([16.0, 15.7]), np.array([-99.0, -97.0]), np.array([15.7, 15.5]), np.array([-97.0, -95.0]))
    assert np.mean(first) == pytest.approx(seg[0] / seg.sum(), abs=0.025)
    dep = np.array([q.depth_km for q in qs])
    assert dep.min() >= 10 and dep.max() <= 30
    assert all(q.mag == 7.0 and q.t0 == 0.0 for q in qs)
    assert qs[0].name == "fault-001"
    assert fault_hypocentres(TRACE, (10.0, 30.0), 7.0, 4000, seed=2) == qs


def test_fault_hypocentres_magnitudes_and_errors():
    qs = fault_hypocentres(TRACE, 15.0, [6.5, 7.0, 7.5], 3, seed=0, name="mat")
    assert [q.mag for q in qs] == [6.5, 7.0, 7.5] and {q.depth_km for q in qs} == {15.0}
    assert qs[2].name == "mat-003"
    with pytest.raises(ScenarioError, match="mags has 2 values for n=3"):
        fault_hypocentres(TRACE, 15.0, [6.5, 7.0], 3)
    with pytest.raises(ScenarioError, match="trace must have at least 2"):
        fault_hypocentres([(16.0, -99.0)], 15.0, 7.0, 3)
    with pytest.raises(ScenarioError, match="trace point 1"):
        fault_hypocentres([(16.0, -99.0), (95.0, -97.0)], 15.0, 7.0, 3)
    with pytest.raises(ScenarioError, match="n must be"):
        fault_hypocentres(TRACE, 15.0, 7.0, 0)
