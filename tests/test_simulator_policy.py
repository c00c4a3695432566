"""Tests for seismote.simulator.policy: the network policy the simulator and the live aggregator share.

Association (radius, cells, PLUM-like, and the vectorised screen), location by grid search,
magnitude from PGA, the alert decision, and the aggregator's confirmation of events. All inputs are
synthetic and noise-free unless a test says otherwise.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from seismote.simulator import physics
from seismote.simulator.policy import (
    Aggregator,
    AlertPolicy,
    Associator,
    Detection,
    Detections,
    GridIndex,
    PolicyConfig,
    locate,
    magnitude,
    screen,
)

G = 980.665
QLAT, QLON = 18.0, -98.0
KM = math.pi * physics.EARTH_R_KM / 180.0


def _ring(n, r_km, lat=QLAT, lon=QLON, phase=0.3):
    a = phase + 2 * math.pi * np.arange(n) / n
    return lat + r_km * np.sin(a) / KM, lon + r_km * np.cos(a) / (KM * math.cos(math.radians(lat)))


def _dets(lat, lon, t, pga=5.0, node=None):
    n = len(t)
    return Detections(np.arange(n) if node is None else node, t, lat, lon, np.broadcast_to(pga, (n,)).astype(float))


# --- location -------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["constant", "default_mexico"])
@pytest.mark.parametrize("depth", [10.0, 50.0])
def test_locate_recovers_the_epicentre_within_a_grid_cell(model, depth):
    vm = physics.VelocityModel.constant() if model == "constant" else physics.VelocityModel.default_mexico()
    rng = np.random.default_rng(3)
    lat = QLAT + rng.uniform(-0.5, 0.5, 12)
    lon = QLON + rng.uniform(-0.5, 0.5, 12)
    t = 100.0 + vm.p_time(physics.epicentral_km(lat, lon, QLAT, QLON), depth)
    loc = locate(lat, lon, t, vm, depths_km=(10.0, 30.0, 50.0, 70.0), step_km=10.0, levels=4)
    err = float(physics.epicentral_km(np.array([loc.lat]), np.array([loc.lon]), QLAT, QLON)[0])
    cell = 10.0 / 5 ** 3  # the finest grid step
    assert err <= cell
    assert loc.depth_km == depth
    assert abs(loc.t0 - 100.0) < 0.02
    assert loc.misfit_s < 0.01


def test_locate_walks_to_an_epicentre_outside_its_first_grid():
    # Stations all on one side, 150-250 km from the source: the first grid (+-100 km around the
    # earliest station) does not contain the epicentre; the search re-centres until it does.
    vm = physics.VelocityModel.constant()
    lat = QLAT + np.linspace(-0.3, 0.3, 8)
    lon = QLON + 1.5 + np.tile([0.0, 0.6], 4)
    t = vm.p_time(physics.epicentral_km(lat, lon, QLAT, QLON), 30.0)
    loc = locate(lat, lon, t, vm, depths_km=(30.0,))
    assert float(physics.epicentral_km(np.array([loc.lat]), np.array([loc.lon]), QLAT, QLON)[0]) < 0.5


def test_locate_with_one_or_two_onsets_returns_their_mean_position():
    vm = physics.VelocityModel.constant()
    loc = locate([18.0, 18.2], [-98.0, -98.2], [5.0, 5.0], vm)
    assert (loc.lat, loc.lon) == pytest.approx((18.1, -98.1))
    with pytest.raises(ValueError):
        locate([], [], [], vm)


# --- magnitude ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mag", [4.0, 5.2, 6.3, 7.1, 7.8])
def test_magnitude_from_median_pga_within_0_3(mag):
    rng = np.random.default_rng(int(mag * 10))
    epi = rng.uniform(5.0, 150.0, 20)
    vs30 = rng.uniform(250.0, 800.0, 20)
    med, _ = physics.ba08(mag, epi, vs30, dtype=np.float64)
    est = magnitude(med * G, epi, vs30)
    assert abs(est - mag) <= 0.3
    assert abs(est - mag) <= 0.02  # noise-free: the inversion is exact to its step


def test_magnitude_of_nothing_is_nan_and_stays_in_range():
    assert math.isnan(magnitude([], []))
    assert 2.0 <= magnitude([1e-6], [500.0]) <= 9.0


# --- association ----------------------------------------------------------------------------------
def test_radius_associator_declares_on_the_kth_detection_within_r_and_t():
    lat, lon = _ring(4, 10.0)
    a = Associator(k=4, radius_km=30.0, window_s=10.0)
    cluster, used = a.add(_dets(lat[:3], lon[:3], [1.0, 2.0, 3.0]))
    assert cluster is None and used == 3
    cluster, used = a.add(_dets(lat[3:], lon[3:], [4.0], node=np.array([3])))
    assert cluster is not None and len(cluster) == 4 and used == 1
    assert len(a.pool) == 0  # the cluster left the pool


@pytest.mark.parametrize("case", ["far", "late", "same_node"])
def test_radius_associator_needs_distinct_nodes_close_in_space_and_time(case):
    lat, lon = _ring(4, 10.0)
    t = np.array([1.0, 2.0, 3.0, 4.0])
    node = np.arange(4)
    if case == "far":
        lat = lat.copy()
        lat[0] += 1.0  # ~110 km away
    elif case == "late":
        t[0] = -20.0
    else:
        node[1] = node[0]
    a = Associator(k=4, radius_km=30.0, window_s=10.0)
    cluster, _ = a.add(_dets(lat, lon, t, node=node))
    assert cluster is None


def test_cells_associator_counts_a_3x3_block_and_the_share_of_active_nodes():
    lat, lon = _ring(4, 5.0)
    net_lat, net_lon = _ring(40, 5.0, phase=0.1)  # 40 active nodes around there
    dets = _dets(lat, lon, [1.0, 1.5, 2.0, 2.5])
    a = Associator(k=4, window_s=10.0, method="cells", cell_km=10.0, cell_fraction=0.0)
    assert a.add(dets)[0] is not None
    share = Associator(k=4, window_s=10.0, method="cells", cell_km=10.0, cell_fraction=0.05,
                       node_lat=net_lat, node_lon=net_lon)
    assert share.add(dets)[0] is not None  # 4 of the 40 active nodes nearby: 10 %
    strict = Associator(k=4, window_s=10.0, method="cells", cell_km=10.0, cell_fraction=0.5,
                        node_lat=net_lat, node_lon=net_lon)
    assert strict.add(dets)[0] is None  # ... not half of them


def test_plum_associator_only_counts_strong_stations():
    lat, lon = _ring(4, 10.0)
    weak = _dets(lat, lon, [1.0, 1.5, 2.0, 2.5], pga=2.0)  # MMI ~2.3
    strong = _dets(lat, lon, [1.0, 1.5, 2.0, 2.5], pga=40.0)  # MMI ~4.6
    assert Associator(k=2, method="plum", plum_mmi=4.0).add(weak)[0] is None
    cluster, used = Associator(k=2, method="plum", plum_mmi=4.0).add(strong)
    assert cluster is not None and len(cluster) == 2 and used == 2


def test_screen_finds_every_detection_that_completes_a_cluster():
    rng = np.random.default_rng(7)
    n = 4000
    t = np.sort(rng.uniform(0, 40000.0, n))
    lat = QLAT + rng.uniform(-0.5, 0.5, n)
    lon = QLON + rng.uniform(-0.5, 0.5, n)
    node = rng.integers(0, 300, n)
    cand = screen(t, lat, lon, node, 3, 30.0, 20.0)
    a = Associator(k=3, radius_km=30.0, window_s=20.0, keep_s=60.0)
    dets = _dets(lat, lon, t, node=node)
    declared = []
    i = 0
    while i < n:
        cluster, used = a.add(dets.take(slice(i, n)))
        i += used
        if cluster is not None:
            declared.append(i - 1)  # the detection that completed it
    assert declared, "the test needs some clusters"
    assert cand[declared].all()
    assert cand.mean() < 0.5  # and it does screen


def test_grid_index_near_matches_brute_force():
    rng = np.random.default_rng(1)
    lat = rng.uniform(15, 20, 5000)
    lon = rng.uniform(-100, -94, 5000)
    g = GridIndex(lat, lon, 30.0)
    for la, lo, r in ((17.0, -97.0, 30.0), (15.1, -99.9, 12.0), (19.9, -94.1, 55.0)):
        brute = np.flatnonzero(physics.epicentral_km(lat, lon, la, lo) <= r)
        assert np.array_equal(g.near(la, lo, r), brute)


# --- alert decision -------------------------------------------------------------------------------
def test_alert_policy_alerts_exactly_the_targets_predicted_at_or_above_the_threshold():
    rng = np.random.default_rng(2)
    tl = QLAT + rng.uniform(-2, 2, 3000)
    to = QLON + rng.uniform(-2, 2, 3000)
    vs = rng.uniform(200, 900, 3000)
    pol = AlertPolicy(tl, to, vs, mmi_threshold=5.0, min_mag=4.5)
    idx, mmi = pol.decide(QLAT, QLON, 6.5)
    every = pol.predicted_mmi(QLAT, QLON, 6.5)
    assert np.array_equal(idx, np.flatnonzero(every >= 5.0))
    assert np.all(mmi >= 5.0)
    assert 0 < idx.size < 3000
    # Small magnitudes are not alerted; already alerted targets are left out.
    assert pol.decide(QLAT, QLON, 4.4)[0].size == 0
    done = np.zeros(3000, bool)
    done[idx[:10]] = True
    assert np.array_equal(pol.decide(QLAT, QLON, 6.5, exclude=done)[0], idx[10:])


def test_plum_alerts_targets_near_strongly_shaking_stations():
    tl, to = _ring(50, 20.0)
    far_l, far_o = _ring(50, 80.0)
    pol = AlertPolicy(np.concatenate([tl, far_l]), np.concatenate([to, far_o]), mmi_threshold=4.0, plum_radius_km=30.0)
    idx, mmi = pol.decide_plum([QLAT], [QLON], [5.5])
    assert np.array_equal(idx, np.arange(50))
    assert np.all(mmi == np.float32(5.5))
    assert pol.decide_plum([QLAT], [QLON], [3.0])[0].size == 0


# --- the aggregator ---------------------------------------------------------------------------------
def _network(spacing_km=8.0, half_deg=0.7):
    la = np.arange(QLAT - half_deg, QLAT + half_deg, spacing_km / KM)
    lo = np.arange(QLON - half_deg, QLON + half_deg, spacing_km / (KM * math.cos(math.radians(QLAT))))
    g = np.meshgrid(la, lo, indexing="ij")
    return g[0].ravel(), g[1].ravel()


def _quake_detections(nlat, nlon, vm, mag=6.0, depth=15.0, ratio=physics.P_PGA_RATIO):
    epi = physics.epicentral_km(nlat, nlon, QLAT, QLON)
    t = vm.p_time(epi, depth)
    med, _ = physics.ba08(mag, epi, 760.0, dtype=np.float64)
    return Detections(np.arange(nlat.size), t, nlat, nlon, med * G * ratio), t


def test_aggregator_alerts_at_the_kth_onset_and_is_deterministic():
    vm = physics.VelocityModel.constant()
    nlat, nlon = _network()
    dets, t = _quake_detections(nlat, nlon, vm)
    order = np.argsort(t, kind="stable")
    cfg = PolicyConfig(k=4, depths_km=(15.0,))

    def run():
        agg = Aggregator(cfg, vm, AlertPolicy(nlat, nlon, 760.0, mmi_threshold=4.0), nlat, nlon)
        out = []
        for i in order:  # one message at a time, as a live aggregator gets them
            for a in agg.ingest(dets.take([i]), float(t[i])):
                out.append((a.event, a.t, a.targets.tolist()))
        return agg, out

    agg, alerts = run()
    assert len(agg.events) == 1 and agg.events[0].confirmed
    assert alerts[0][1] == np.sort(t)[3]  # the 4th onset, exactly
    ev = agg.events[0]
    assert abs(ev.mag - 6.0) < 0.3
    assert float(physics.epicentral_km(np.array([ev.lat]), np.array([ev.lon]), QLAT, QLON)[0]) < 1.0
    assert run()[1] == alerts


def test_aggregator_takes_plain_detection_records():
    vm = physics.VelocityModel.constant()
    nlat, nlon = _network()
    dets, t = _quake_detections(nlat, nlon, vm)
    agg = Aggregator(PolicyConfig(k=4), vm, AlertPolicy([19.4326], [-99.1332], 250.0, mmi_threshold=2.0))
    recs = [Detection(node=int(i), t=float(t[i]), lat=float(nlat[i]), lon=float(nlon[i]), pga_gal=float(dets.pga[i]))
            for i in np.argsort(t)[:6]]
    alerts = agg.ingest(Detections.from_list(recs), float(np.sort(t)[5]))
    assert len(agg.events) == 1 and alerts and alerts[0].targets.tolist() == [0]


def test_aggregator_does_not_confirm_scattered_false_triggers():
    # Four triggers within 30 km and 10 s, but at times no single source explains, in a dense
    # network whose other nodes stayed quiet: declared perhaps, never confirmed, never alerted.
    vm = physics.VelocityModel.constant()
    nlat, nlon = _network(spacing_km=4.0)
    rng = np.random.default_rng(5)
    pick = rng.choice(np.flatnonzero(physics.epicentral_km(nlat, nlon, QLAT, QLON) < 12.0), 4, replace=False)
    t = np.array([100.0, 103.0, 105.0, 108.0])
    dets = Detections(pick, t, nlat[pick], nlon[pick], np.full(4, 3.0))
    agg = Aggregator(PolicyConfig(k=4), vm, AlertPolicy(nlat, nlon, 760.0, mmi_threshold=2.0, min_mag=0.0), nlat, nlon)
    alerts = []
    for i in range(4):
        alerts += agg.ingest(dets.take([i]), float(t[i]) + 0.5)
    alerts += agg.ingest(Detections.empty(), 120.0)
    assert alerts == []
    assert not any(e.confirmed for e in agg.events)


def test_policy_does_not_import_simpy():
    code = "import sys, seismote.simulator.policy; sys.exit('simpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
