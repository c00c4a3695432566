"""Node layouts: files (CSV, GeoJSON, the OpenEEW device list), generators, and errors that name
the file, the row or feature and the field."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from seismote.simulator.layouts import (
    SENSORS,
    SITE_CLASSES,
    Layout,
    LayoutError,
    grid_layout,
    load_layout,
    population_layout,
    population_layout_from_raster,
    random_layout,
)
from seismote.simulator.physics import epicentral_km

DEVICES = Path(__file__).resolve().parents[2] / "shared" / "data" / "openeew" / "devices" / "device_locations.json"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _error(path, **kw) -> str:
    with pytest.raises(LayoutError) as exc:
        load_layout(path, **kw)
    return str(exc.value)


# ---------------------------------------------------------------------------------------------
# Files


@pytest.mark.skipif(not DEVICES.is_file(), reason="OpenEEW data folder not present")
def test_openeew_device_list_loads():
    lay = load_layout(DEVICES)
    raw = json.loads(DEVICES.read_text())
    assert len(lay) == len(raw) == 30
    i = list(lay.ids).index("000")
    assert (lay.lat[i], lay.lon[i]) == (19.33, -99.18)
    assert list(lay.ids) == [d["device_id"] for d in raw]
    assert set(lay.sensor_names) == {"adxl355"} and np.all(lay.vs30 == 760.0)
    assert lay.lat.dtype == np.float64 and lay.sensor.dtype == np.int8 and lay.vs30.dtype == np.float32
    assert lay.population is None
    # Defaults for what the device list lacks.
    lay2 = load_layout(DEVICES, defaults={"site_class": "urban", "outage_p": 0.05, "vs30": 300})
    assert set(lay2.site_class_names) == {"urban"} and np.allclose(lay2.outage_p, 0.05) and np.all(lay2.vs30 == 300)


def test_csv_with_all_columns_round_trips(tmp_path):
    src = _write(
        tmp_path,
        "nodes.csv",
        "id,lat,lon,sensor,site_class,vs30,outage_p,clock_err_s,population\n"
        "a,16.5,-98.1,adxl355,quiet,450,0.01,0.002,1200\n"
        "b,17.0,-97.0,MPU6050,industrial,250,0.2,0.05,30000\n",
    )
    lay = load_layout(src)
    assert list(lay.ids) == ["a", "b"]
    assert list(lay.sensor_names) == ["adxl355", "mpu6050"]
    assert list(lay.site_class_names) == ["quiet", "industrial"]
    np.testing.assert_allclose(lay.vs30, [450, 250])
    np.testing.assert_allclose(lay.population, [1200, 30000])
    lay.to_csv(tmp_path / "again.csv")
    again = load_layout(tmp_path / "again.csv")
    for name in ("lat", "lon", "sensor", "site_class", "vs30", "outage_p", "clock_err_s", "population"):
        np.testing.assert_array_equal(getattr(again, name), getattr(lay, name))


def test_csv_defaults_fill_missing_columns_and_cells(tmp_path):
    src = _write(tmp_path, "n.csv", "Latitude,Longitude,sensor\n16,-98,adxl345\n17,-97,\n")
    lay = load_layout(src)
    assert list(lay.sensor_names) == ["adxl345", "adxl355"]  # empty cell -> default sensor
    assert list(lay.ids) == [0, 1]
    lay = load_layout(src, defaults={"sensor": "mpu6050", "clock_err_s": 0.01})
    assert list(lay.sensor_names) == ["adxl345", "mpu6050"]
    np.testing.assert_allclose(lay.clock_err_s, 0.01)


@pytest.mark.parametrize(
    "body,message",
    [
        ("7 rows, the last bad", "nodes.csv row 7: lat 95.0 is outside -90..90"),
        ("id,lat,lon,sensor\na,16,-98,lis3dh\n", "nodes.csv row 2: unknown sensor 'lis3dh' (one of adxl355, mpu6050, adxl345)"),
        ("id,lat,lon,site_class\na,16,-98,rural\n", "nodes.csv row 2: unknown site_class 'rural'"),
        ("id,lat,lon,vs_30\na,16,-98,300\n", "nodes.csv row 1: unknown column 'vs_30'"),
        ("id,lat,lon\na,16,-98\nb,16,-97\na,16,-96\n", "nodes.csv row 4: id 'a' is used twice (also row 2)"),
        ("id,lat,lon,outage_p\na,16,-98,1.5\n", "nodes.csv row 2: outage_p 1.5 is outside 0..1"),
        ("id,lat,lon,vs30\na,16,-98,fast\n", "nodes.csv row 2: vs30 'fast' is not a number"),
        ("id,lat,lon,vs30\na,16,-98,-100\n", "nodes.csv row 2: vs30 -100 must be > 0 m/s"),
        ("id,lat,lon,clock_err_s\na,16,-98,nan\n", "nodes.csv row 2: clock_err_s nan is not finite"),
        ("id,lat,lon\na,,-98\n", "nodes.csv row 2: lat is missing"),
        ("id,lon\na,-98\n", "nodes.csv row 1: no 'lat' column"),
        ("id,lat,lon\na,16,-98,9\n", "nodes.csv row 2: 4 fields, the header has 3"),
        ("lat,lon,lon\n16,-98,-97\n", "nodes.csv row 1: column 'lon' appears twice"),
        ("lat,lon,lon\n", "nodes.csv row 1: column 'lon' appears twice"),
    ],
)
def test_csv_errors_name_file_row_and_field(tmp_path, body, message):
    if body.startswith("7 rows"):
        body = "id,lat,lon\n" + "".join("n%d,16.%d,-98\n" % (i, i) for i in range(5)) + "bad,95.0,-98\n"
    assert message in _error(_write(tmp_path, "nodes.csv", body))


@pytest.mark.parametrize("first_id", ["a x", '"a, x"'])
def test_csv_comments_blank_lines_and_row_numbers(tmp_path, first_id):
    # Unquoted files take a fast path, quoted ones the csv module: both must agree.
    body = "# nodes for the coast\n\nid,lat,lon\n\n%s,16,-98\n  \n# spare\nb, 95 ,-98\n" % first_id
    # Rows count every line of the file, comments and blank lines included.
    assert "nodes.csv row 8: lat 95 is outside -90..90" in _error(_write(tmp_path, "nodes.csv", body))
    lay = load_layout(_write(tmp_path, "nodes.csv", body.replace(" 95 ", "17")))
    assert list(lay.ids) == [first_id.strip('"'), "b"]
    np.testing.assert_array_equal(lay.lat, [16.0, 17.0])


def test_unknown_columns_can_be_ignored(tmp_path):
    src = _write(tmp_path, "n.csv", "lat,lon,address\n16,-98,somewhere\n")
    assert "unknown column 'address'" in _error(src)
    assert len(load_layout(src, ignore_unknown=True)) == 1


def test_unreadable_and_unknown_defaults(tmp_path):
    assert _error(tmp_path / "missing.csv").startswith("missing.csv: cannot read")
    src = _write(tmp_path, "n.csv", "lat,lon\n16,-98\n")
    assert "defaults: unknown field(s) vs_30" in _error(src, defaults={"vs_30": 200})
    assert "n.csv: sensor code 7" in _error(src, defaults={"sensor": 7})


def _feature(lon, lat, **props):
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": props}


def test_geojson_points_load(tmp_path):
    doc = {"type": "FeatureCollection", "features": [_feature(-98.0, 16.0, id="x", vs30=300), {**_feature(-97.5, 16.5), "id": 7}]}
    lay = load_layout(_write(tmp_path, "n.geojson", json.dumps(doc)), defaults={"sensor": "adxl345"})
    assert list(lay.ids) == ["x", "7"]
    np.testing.assert_array_equal(lay.lat, [16.0, 16.5])
    np.testing.assert_array_equal(lay.lon, [-98.0, -97.5])
    np.testing.assert_array_equal(lay.vs30, [300, 760])
    assert set(lay.sensor_names) == {"adxl345"}


@pytest.mark.parametrize(
    "features,message",
    [
        ([_feature(-98, 16), {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": []}}], "n.geojson feature 2: geometry type 'Polygon' is not 'Point'"),
        ([_feature(-98, 16), _feature(-98, 16), _feature(-98, 16, sensor="lis3dh")], "n.geojson feature 3: unknown sensor 'lis3dh'"),
        ([_feature(-98, 96)], "n.geojson feature 1: lat 96.0 is outside -90..90"),
        ([_feature(-98, 16, colour="red")], "n.geojson feature 1: unknown property 'colour'"),
        ([{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1]}}], "n.geojson feature 1: coordinates [1]"),
    ],
)
def test_geojson_errors_name_the_feature(tmp_path, features, message):
    src = _write(tmp_path, "n.geojson", json.dumps({"type": "FeatureCollection", "features": features}))
    assert message in _error(src)


def test_json_device_list_errors(tmp_path):
    src = _write(tmp_path, "devices.json", json.dumps([{"device_id": "1", "latitude": 16, "longitude": -98}, {"device_id": "2", "longitude": -97}]))
    assert "devices.json entry 2: lat is missing" in _error(src)
    src = _write(tmp_path, "devices.json", "[{\"device_id\": 1,]")
    assert _error(src).startswith("devices.json line 1: not valid JSON")
    src = _write(tmp_path, "single.json", json.dumps(_feature(-98, 16)))
    assert "wrap the nodes in a FeatureCollection" in _error(src)


# ---------------------------------------------------------------------------------------------
# Generators


def test_random_layout_same_seed_same_layout_and_inside_the_box():
    bbox = (14.5, 20.0, -105.0, -94.0)
    a = random_layout(20000, bbox, seed=3, outage_p=0.02)
    b = random_layout(20000, bbox, seed=3, outage_p=0.02)
    c = random_layout(20000, bbox, seed=4, outage_p=0.02)
    np.testing.assert_array_equal(a.lat, b.lat)
    np.testing.assert_array_equal(a.lon, b.lon)
    assert not np.array_equal(a.lat, c.lat)
    assert a.lat.min() >= 14.5 and a.lat.max() <= 20.0 and a.lon.min() >= -105.0 and a.lon.max() <= -94.0
    assert len(a) == 20000 and np.allclose(a.outage_p, 0.02) and a.outage_p.dtype == np.float32
    assert list(a.ids[:3]) == [0, 1, 2]


def test_random_layout_is_uniform_on_the_sphere():
    lay = random_layout(400_000, (0.0, 60.0, 0.0, 10.0), seed=1)
    # Area between 30 and 60 N over area between 0 and 60 N = (sin 60 - sin 30) / sin 60 = 0.4226
    # (uniform in latitude would give 0.5).
    assert np.mean(lay.lat > 30.0) == pytest.approx((math.sin(math.radians(60)) - 0.5) / math.sin(math.radians(60)), abs=0.003)
    assert np.mean(lay.lon > 5.0) == pytest.approx(0.5, abs=0.003)


def test_per_node_values_arrays_and_shares():
    n = 10000
    vs = np.linspace(200, 900, n)
    lay = random_layout(n, seed=2, vs30=vs, sensor={"adxl355": 0.7, "mpu6050": 0.3}, site_class=np.array(["quiet", "urban"] * (n // 2)))
    np.testing.assert_allclose(lay.vs30, vs, rtol=1e-6)
    assert np.mean(lay.sensor == SENSORS.index("mpu6050")) == pytest.approx(0.3, abs=0.02)
    assert not np.any(lay.sensor == SENSORS.index("adxl345"))
    assert list(lay.site_class[:2]) == [SITE_CLASSES.index("quiet"), SITE_CLASSES.index("urban")]
    again = random_layout(n, seed=2, vs30=vs, sensor={"adxl355": 0.7, "mpu6050": 0.3})
    np.testing.assert_array_equal(again.sensor, lay.sensor)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"sensor": "lis3dh"}, "random_layout: unknown sensor 'lis3dh' (one of adxl355, mpu6050, adxl345)"),
        ({"vs_30": 300}, "random_layout: unknown per-node field(s) vs_30"),
        ({"outage_p": 2.0}, "random_layout: outage_p 2.0 is outside 0..1"),
        ({"vs30": np.array([300.0, 400.0])}, "random_layout: vs30 has 2 values for 5 nodes"),
        ({"clock_err_s": np.array([0.0, 0.0, -1.0, 0.0, 0.0])}, "random_layout node 2: clock_err_s -1.0 must be >= 0 s"),
        ({"bbox": (20.0, 14.0, -100.0, -95.0)}, "bbox: need -90 <= lat0 < lat1 <= 90"),
    ],
)
def test_generator_argument_errors(kwargs, message):
    with pytest.raises(LayoutError) as exc:
        random_layout(5, **kwargs)
    assert message in str(exc.value)


def test_grid_layout_spacing_and_extent():
    bbox = (15.0, 19.0, -100.0, -95.0)
    lay = grid_layout(bbox, 10.0)
    assert lay.lat.min() >= 15.0 and lay.lat.max() <= 19.0 and lay.lon.min() >= -100.0 and lay.lon.max() <= -95.0
    # Area of the box / spacing^2 nodes, give or take one row and column.
    height = epicentral_km(15.0, -100.0, 19.0, -100.0)
    width = 5.0 * math.pi * 6371.0 / 180.0 * math.cos(math.radians(17.0))
    assert len(lay) == pytest.approx(height * width / 100.0, rel=0.06)
    # Neighbours along a row and between rows are 10 km apart.
    row = lay.lat == lay.lat[0]
    along = epicentral_km(lay.lat[row][:-1], lay.lon[row][:-1], lay.lat[row][1:], lay.lon[row][1:])
    np.testing.assert_allclose(along, 10.0, rtol=1e-3)
    rows = np.unique(lay.lat)
    np.testing.assert_allclose(np.diff(rows) * math.pi * 6371.0 / 180.0, 10.0, rtol=1e-9)
    with pytest.raises(LayoutError, match="spacing_km"):
        grid_layout(bbox, 0.0)


def test_population_layout_follows_weights():
    plat, plon = np.array([19.43, 17.06, 16.85]), np.array([-99.13, -96.72, -99.88])
    w = np.array([9.0e6, 3.0e5, 8.0e5])
    lay = population_layout(20000, plat, plon, w, seed=5, jitter_km=2.0)
    d = epicentral_km(lay.lat[:, None], lay.lon[:, None], plat[None, :], plon[None, :])
    home = d.argmin(axis=1)
    share = np.bincount(home, minlength=3) / len(lay)
    np.testing.assert_allclose(share, w / w.sum(), atol=0.01)
    # Gaussian jitter of 2 km per axis: the mean squared offset is 2 * 2^2 km^2.
    assert np.mean(d.min(axis=1) ** 2) == pytest.approx(8.0, rel=0.05)
    # Each node stands for an equal part of its town; all three towns together are represented.
    assert lay.population.sum() == pytest.approx(w.sum(), rel=1e-5)
    assert np.allclose(lay.population[home == 0], 9.0e6 / np.sum(home == 0), rtol=1e-5)
    again = population_layout(20000, plat, plon, w, seed=5, jitter_km=2.0)
    np.testing.assert_array_equal(again.lat, lay.lat)
    with pytest.raises(LayoutError, match="weights"):
        population_layout(10, plat, plon, np.zeros(3))


def test_population_layout_from_raster_orientation():
    # 2 x 2 raster over 16..18 N, 100..98 W: only the north-east cell (row 0, col 1) and the
    # south-west cell (row 1, col 0) are populated, 1 : 3.
    raster = np.array([[0.0, 1000.0], [3000.0, 0.0]])
    lay = population_layout_from_raster(8000, raster, (16.0, 18.0, -100.0, -98.0), seed=1)
    ne = (lay.lat > 17.0) & (lay.lon > -99.0)
    sw = (lay.lat < 17.0) & (lay.lon < -99.0)
    assert np.all(ne | sw)
    assert np.mean(ne) == pytest.approx(0.25, abs=0.02)
    assert lay.population[ne].sum() == pytest.approx(1000.0, rel=1e-4)
    assert lay.population.sum() == pytest.approx(4000.0, rel=1e-4)
    with pytest.raises(LayoutError, match="raster"):
        population_layout_from_raster(5, np.ones(3), (16.0, 18.0, -100.0, -98.0))


def test_subset_and_len():
    lay = random_layout(100, seed=0, population=np.arange(100.0))
    sub = lay.subset(lay.lat > np.median(lay.lat))
    assert isinstance(sub, Layout) and len(sub) == 50
    np.testing.assert_array_equal(sub.population, lay.population[lay.lat > np.median(lay.lat)])
    idx = lay.subset(np.array([3, 1]))
    assert list(idx.ids) == [3, 1] and idx.vs30.dtype == np.float32
    with pytest.raises(LayoutError, match="mask"):
        lay.subset(np.ones(99, dtype=bool))
