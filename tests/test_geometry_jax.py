"""The differentiable geometry (frustum table + geometry_jax) against the numpy values
and against finite differences."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dendrax.morphology import (FrustumTable, Morphology, Section, compartments,
                                frustum_table, geometry_jax, mean_diameters, nseg_d_lambda,
                                read_swc)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "morphologies"
geometry = jax.jit(geometry_jax)  # one compilation per table shape (eager is slow)


def _cell() -> Morphology:
    return Morphology.from_sections([
        dict(length=20.0, diam=20.0, region="soma"),
        dict(length=300.0, diams=[4.0, 3.0, 2.5, 1.0], parent=0, parent_x=1.0, region="apic"),
        dict(length=500.0, diam=1.0, parent=0, parent_x=0.0, region="axon"),
        dict(length=120.0, diams=[2.0, 1.0], parent=1, parent_x=0.5),
        dict(length=80.0, diam=0.7, parent=1, parent_x=1.0),
        dict(length=60.0, diam=0.5, parent=1, parent_x=0.4),
    ])


NSEG = np.array([1, 5, 9, 3, 1, 4])


def test_matches_numpy_and_jits():
    m = _cell()
    c = compartments(m, NSEG)
    t = frustum_table(m, NSEG)
    assert isinstance(t, FrustumTable) and t.n_nodes == c.n_nodes
    area, axial = jax.jit(geometry_jax)(t, m.point_diameters, 1.0)
    assert area.dtype == jnp.float64
    np.testing.assert_allclose(area, c.area, rtol=1e-13, atol=0)
    np.testing.assert_allclose(axial, c.axial_integral, rtol=1e-13, atol=0)
    area2, _ = geometry_jax(t, m.point_diameters, np.ones(m.n_sections))
    np.testing.assert_allclose(area2, c.area, rtol=1e-13)
    # the segments' diameters jit too (the table traced: a host count of its pieces failed)
    np.testing.assert_array_equal(jax.jit(mean_diameters)(t, m.point_diameters),
                                  mean_diameters(t, m.point_diameters))


@pytest.mark.parametrize("name", ["n120_ca1.swc", "NMO_49821_ca1_pyramidal.swc"])
def test_matches_numpy_on_real_cells(name):
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"shared morphology {path} not found")
    m = read_swc(path)
    for nseg in (1, nseg_d_lambda(m)):
        c = compartments(m, nseg)
        area, axial = geometry(frustum_table(m, nseg), m.point_diameters)
        np.testing.assert_allclose(area, c.area, rtol=1e-12, atol=0)
        np.testing.assert_allclose(axial, c.axial_integral, rtol=1e-12, atol=0)


def _scaled(m: Morphology, scale: np.ndarray) -> Morphology:
    """The morphology with each section stretched by scale[s] about its first point and
    children moved along (rigidly) to stay attached."""
    new: list[Section] = []
    shifts: list[np.ndarray] = []
    for s, sec in enumerate(m.sections):
        pts = sec.points.copy()
        shift = np.zeros(3)
        if sec.parent >= 0:
            parent_old = m.sections[sec.parent]
            # where the attachment point moved to: parent's stretch + parent's shift
            p0 = parent_old.xyz[0]
            arc = parent_old.arc
            at = np.array([np.interp(sec.parent_x * arc[-1], arc, parent_old.xyz[:, k])
                           for k in range(3)])
            shift = shifts[sec.parent] + (at - p0) * (scale[sec.parent] - 1.0)
        p0 = pts[0, :3].copy()
        pts[:, :3] = p0 + shift + (pts[:, :3] - p0) * scale[s]
        shifts.append(shift)
        new.append(Section(pts, sec.parent, sec.parent_x, sec.region))
    return Morphology(tuple(new))


def test_length_scale_means_stretching_sections():
    m = _cell()
    scale = np.array([1.0, 1.5, 0.5, 2.0, 1.25, 0.75])
    t = frustum_table(m, NSEG)
    area, axial = geometry(t, m.point_diameters, scale)
    c = compartments(_scaled(m, scale), NSEG)
    # the stretched cell's points are rounded to float32, hence ~1e-7
    np.testing.assert_allclose(area, c.area, rtol=1e-6)
    np.testing.assert_allclose(axial, c.axial_integral, rtol=1e-6)


def test_gradients_match_finite_differences():
    m = _cell()
    t = frustum_table(m, NSEG)
    d0 = jnp.asarray(m.point_diameters)
    s0 = jnp.ones(m.n_sections)
    rng = np.random.default_rng(0)
    dd = jnp.asarray(rng.normal(size=d0.shape))
    ds = jnp.asarray(rng.normal(size=s0.shape))

    @jax.jit
    def both(d, s):
        area, axial = geometry_jax(t, d, s)
        return jnp.concatenate([area, axial])

    @jax.jit
    def jvps(d, s, dd, ds):
        return (jax.jvp(lambda x: both(x, s), (d,), (dd,))[1],
                jax.jvp(lambda x: both(d, x), (s,), (ds,))[1])

    gd_dir, gs_dir = jvps(d0, s0, dd, ds)
    eps = 1e-6
    for g, fd in [(gd_dir, (both(d0 + eps * dd, s0) - both(d0 - eps * dd, s0)) / (2 * eps)),
                  (gs_dir, (both(d0, s0 + eps * ds) - both(d0, s0 - eps * ds)) / (2 * eps))]:
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8 * float(jnp.max(jnp.abs(fd))))

    # reverse mode on a scalar loss, against the forward-mode directional derivative
    def loss(d, s):
        area, axial = geometry_jax(t, d, s)
        return jnp.sum(area ** 2) + jnp.sum(jnp.log(axial + 1.0))

    gd, gs = jax.jit(jax.grad(loss, argnums=(0, 1)))(d0, s0)
    dir_d, dir_s = jax.jit(lambda: (jax.jvp(lambda d: loss(d, s0), (d0,), (dd,))[1],
                                    jax.jvp(lambda s: loss(d0, s), (s0,), (ds,))[1]))()
    np.testing.assert_allclose(jnp.dot(gd, dd), dir_d, rtol=1e-10)
    np.testing.assert_allclose(jnp.dot(gs, ds), dir_s, rtol=1e-10)
    assert np.all(np.isfinite(gd)) and np.all(np.isfinite(gs))


def test_cylinder_gradients_closed_form():
    L, d, n = 100.0, 2.0, 4
    m = Morphology.from_sections([dict(length=L, diam=d)])
    t = frustum_table(m, n)
    total_area = lambda dd, s: jnp.sum(geometry_jax(t, dd, s)[0])  # noqa: E731
    gd, gs = jax.jit(jax.grad(total_area, argnums=(0, 1)))(jnp.asarray(m.point_diameters), 1.0)
    # A = pi L (d0 + d1)/2 for a frustum with tiny taper: dA/dd_k = pi L / 2, dA/ds = pi d L
    np.testing.assert_allclose(gd, [np.pi * L / 2] * 2, rtol=1e-9)
    np.testing.assert_allclose(gs, np.pi * d * L, rtol=1e-9)


@settings(max_examples=10, deadline=None)
@given(lengths=st.lists(st.floats(1.0, 300.0), min_size=3, max_size=3),
       diam=st.floats(0.3, 10.0), taper=st.floats(0.2, 1.0), nseg=st.integers(1, 7))
def test_random_chains_match_numpy(lengths, diam, taper, nseg):
    specs = [dict(length=L, diams=[diam, diam * taper, diam * taper ** 2], parent=i - 1,
                  parent_x=1.0) for i, L in enumerate(lengths)]
    m = Morphology.from_sections(specs)
    c = compartments(m, nseg)
    area, axial = geometry(frustum_table(m, nseg), m.point_diameters)
    np.testing.assert_allclose(area, c.area, rtol=1e-12)
    np.testing.assert_allclose(axial, c.axial_integral, rtol=1e-12)


def test_a_channel_reads_its_segments_diameter_and_its_gradient():
    """env["diam"] in a run is each segment's mean diameter (NEURON's seg.diam: tested
    against NEURON in test_geometry_neuron.py), in the channel's own nodes, and gradients
    w.r.t. the 3-D point diameters reach it (vs finite differences)."""
    import dendrax as dx
    from dendrax.mechanisms.base import Channel

    class Shell(Channel):  # a leak whose density scales with 1 / diam (made up)
        name = "shell"
        params = {"g": 1e-4}
        units = {"g": "S/cm2"}

        def current(self, v, states, params, env):
            return {"": params["g"] * (10.0 / env["diam"]) * (v + 50.0)}

    cell = dx.Cell.from_sections([
        {"length": 20.0, "diam": 20.0, "parent": -1, "region": "soma"},
        {"length": 300.0, "diams": [4.0, 1.0, 2.5], "parent": 0, "parent_x": 1.0,
         "region": "dend"}], nseg=[1, 5])
    cell.insert("pas").insert(Shell, "dend")
    cell.record("v", cell.section(1)(0.9)).record("shell.i", cell.section(1)(0.3))

    def run(params):
        return dx.simulate(cell, 2.0, 0.025, params=params).traces

    params = cell.params
    v, i = np.asarray(run(params))
    # the segment at 0.3 (the 2nd of 5): the mean of the linear taper over [60, 120] um
    # of the 3-point section (points at 0, 150 and 300 um)
    d_mean = np.mean(np.interp(np.linspace(60.0, 120.0, 100001), [0.0, 150.0, 300.0],
                               [4.0, 1.0, 2.5]))
    v_prev = np.asarray(dx.simulate(cell.copy().record("v", cell.section(1)(0.3)), 2.0,
                                    0.025).traces[-1])
    np.testing.assert_allclose(i[1:], 1e-4 * 10.0 / d_mean * (v_prev[:-1] + 50.0), rtol=1e-6)
    loss = lambda p: jnp.sum(run(p)[0])  # noqa: E731
    g = jax.grad(loss)(params)["cable"]["diam"]
    d = params["cable"]["diam"]
    for k in range(1, d.shape[0]):  # the dendrite's 3 points (pt3d diameters are float32,
        step = np.zeros(d.shape)    # as NEURON stores them: steps of 1e-4 um)
        step[k] = 1e-4
        fd = (float(loss({**params, "cable": {**params["cable"], "diam": d + step}}))
              - float(loss({**params, "cable": {**params["cable"], "diam": d - step}}))) / 2e-4
        assert abs(fd) > 1e-3, (k, fd)
        assert abs(float(g[k]) - fd) <= 1e-5 * abs(fd), (k, float(g[k]), fd)


def test_diam_and_area_are_finite_where_there_is_no_membrane():
    """A mechanism inserted everywhere is also evaluated at nodes without membrane (the
    soma-dendrite junction, kept section ends), where NEURON has no segment: there it sees
    diam 1 um and area 1 um2, its current counts 0, and the run equals one with the
    mechanism inserted region by region (no NaN from dividing by a zero diameter)."""
    import dendrax as dx
    from dendrax.mechanisms.base import Channel, IonPool

    class Shell(Channel):  # a leak scaled by 1 / diam and by 1 / area (made up)
        name = "shell_everywhere"
        params = {"g": 1e-4}
        units = {"g": "S/cm2"}

        def current(self, v, states, params, env):
            return {"": params["g"] * (10.0 / env["diam"]) * (300.0 / env["area"]) * (v + 50.0)}

    class Pool(IonPool):  # a shell pool whose volume is its diameter's (made up)
        name = "pool_everywhere"
        ion = "ca"
        ions = ("ca",)
        params = {"tau": 20.0}
        states = {"cai": 5e-5}

        def advance(self, v, states, params, env, dt):
            drive = -env["ica"] * 4.0 / env["diam"]
            return {"cai": states["cai"] + dt * (drive - (states["cai"] - 5e-5) / params["tau"])}

    def run(where):
        cell = dx.Cell.ball_and_stick(nseg=2)
        cell.insert("hh")
        for w in where:
            cell.insert(Shell, w).insert(Pool, w)
        cell.iclamp(cell.soma(0.5), delay=1.0, dur=3.0, amp=0.3)
        cell.record("v", cell.segments()).record("pool_everywhere.cai", cell.soma(0.5))
        return cell, np.asarray(dx.simulate(cell, 5.0, 0.025).traces)

    cell, everywhere = run([None])
    _, by_region = run(["soma", "dend"])
    assert np.all(np.isfinite(everywhere))
    np.testing.assert_allclose(everywhere, by_region, rtol=0, atol=1e-12)
    g = jax.grad(lambda d: jnp.sum(dx.simulate(cell, 2.0, 0.025, params={
        **cell.params, "cable": {**cell.params["cable"], "diam": d}}).traces[0]))(
        cell.params["cable"]["diam"])
    assert np.all(np.isfinite(np.asarray(g)))
