"""The precision contract: importing dendrax changes no JAX setting; float64 is a
one-line opt-in (``jax.config.update("jax_enable_x64", True)``, which tests/conftest.py
makes for this suite); without it dendrax runs in float32, says so once, and agrees
with float64 to ~1e-3 mV (HH spikes: asserted max 2e-3 mV, mean 1e-4 mV; gradients to ~1e-4)."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

import dendrax as dx


def hh_cell():
    cell = dx.Cell.ball_and_stick(nseg=[1, 5], Ra=100.0, cm=1.0, dend_length=150.0, dend_diam=2.0)
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=10.0, amp=0.3)
    cell.record("v", cell.soma(0.5)).record("v", cell.section(1)(0.9))
    return cell


def run_python(code, tmp_path, x64=None):
    """Run ``code`` in a fresh interpreter (this process has x64 on) with JAX_ENABLE_X64
    unset or set; returns the JSON it prints last."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    if x64 is not None:
        env["JAX_ENABLE_X64"] = x64
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(tmp_path)], capture_output=True,
                          text=True, timeout=300, env=env, cwd=os.path.dirname(__file__))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_leaves_x64_as_it_was(tmp_path):
    code = """
        import json, os, jax
        before = jax.config.jax_enable_x64
        import dendrax
        print(json.dumps([before, jax.config.jax_enable_x64]))
    """
    assert run_python(code, tmp_path, x64="1") == [True, True]
    # the x64-off case is checked in test_float32_mode


FLOAT32_RUN = """
    import json, sys, warnings
    import numpy as np, jax, jax.numpy as jnp
    x64_before = jax.config.jax_enable_x64
    import dendrax as dx
    from test_precision import hh_cell

    out = {"x64_before": x64_before, "x64_after": jax.config.jax_enable_x64,
           # a float32 user and other libraries: their arrays keep JAX's float32
           "user": [str(jnp.ones(3).dtype), str((jnp.arange(3.0) * 0.5).dtype),
                    str(jnp.asarray(np.ones(2)).dtype)]}
    cell = hh_cell()
    loss = lambda p: jnp.mean(dx.simulate(cell, 20.0, 0.025, params=p).traces[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = dx.simulate(cell, 20.0, 0.025)
        g = jax.jit(jax.grad(loss))(cell.params)      # the lowering is cached in float32 now
        v = jax.vmap(lambda a: dx.simulate(cell, 5.0, 0.025, params={
            **cell.params, "stimuli": {**cell.params["stimuli"], "iclamp": {
                **cell.params["stimuli"]["iclamp"], "amp": a[None]}}}).traces[0, -1])(
            jnp.array([0.1, 0.2]))
    out["dtypes"] = [str(res.traces.dtype), str(g["channels"]["hh"]["gnabar"].dtype), str(v.dtype)]
    out["warnings"] = [w.category.__name__ for w in caught]
    out["finite"] = bool(np.isfinite(np.asarray(g["channels"]["hh"]["gnabar"])).all())
    np.savez(sys.argv[1] + "/f32.npz", v=np.asarray(res.traces), g=np.asarray(g["channels"]["hh"]["gnabar"]),
             g_cm=np.asarray(g["cable"]["cm"]), g_length=np.asarray(g["cable"]["L"]))
    # opting in late (after cell.params was lowered in float32) still gives float64
    jax.config.update("jax_enable_x64", True)
    late = dx.simulate(cell, 20.0, 0.025)
    out["late_dtype"] = str(late.traces.dtype)
    np.savez(sys.argv[1] + "/late.npz", v=np.asarray(late.traces))
    print(json.dumps(out))
"""


def test_float32_mode(tmp_path):
    out = run_python(FLOAT32_RUN, tmp_path)
    assert out["x64_before"] is False and out["x64_after"] is False
    assert out["user"] == ["float32"] * 3
    assert out["dtypes"] == ["float32"] * 3
    assert out["warnings"] == ["PrecisionWarning"]  # once, not per call
    assert out["finite"]

    # this process: x64 on (the documented opt-in), dendrax's results are float64
    cell = hh_cell()
    assert all(a.dtype == jnp.float64 for a in jax.tree_util.tree_leaves(cell.params))
    res = dx.simulate(cell, 20.0, 0.025)
    assert res.traces.dtype == jnp.float64 and res.t.dtype == jnp.float64
    g = jax.grad(lambda p: jnp.mean(dx.simulate(cell, 20.0, 0.025, params=p).traces[0]))(cell.params)
    v64 = np.asarray(res.traces)

    # a late opt-in in another process gives the same float64 numbers, bit for bit
    np.testing.assert_array_equal(np.load(tmp_path / "late.npz")["v"], v64)
    # float32 agrees with float64 to ~1e-3 mV through a spike (measured: max 3.6e-4, mean
    # 1.4e-5 mV; 0.025 and 0.003 when the voltage step solved for v + dv, which lost dv's
    # digits to v's size: dendrax.step.axial_currents)
    f32 = np.load(tmp_path / "f32.npz")
    dv = np.abs(f32["v"].astype(np.float64) - v64)
    assert dv.max() < 2e-3 and dv.mean() < 1e-4, (dv.max(), dv.mean())
    # somatic spikes (upward crossings of 0 mV, interpolated) within 1e-5 ms (measured 1.2e-6;
    # 7.6e-5 before; README: HH spikes within 1e-4 ms in float32)
    def crossings(v, dt=0.025):
        k = np.flatnonzero((v[1:] >= 0.0) & (v[:-1] < 0.0))
        return (k + v[k] / (v[k] - v[k + 1])) * dt
    t64, t32 = crossings(v64[0]), crossings(f32["v"][0].astype(np.float64))
    assert len(t64) >= 1 and len(t32) == len(t64), (t64, t32)
    assert np.abs(t32 - t64).max() < 1e-5, (t64, t32)
    # gradients to ~1e-4 of the largest entry (measured: gnabar 3e-7, cm 4e-6, L 7e-6 of
    # the largest; cm 1.5e-3 and L 1e-2 before)
    for name, g64 in (("g", g["channels"]["hh"]["gnabar"]), ("g_cm", g["cable"]["cm"]),
                      ("g_length", g["cable"]["L"])):
        g64 = np.asarray(g64)
        assert np.max(np.abs(f32[name] - g64)) < 1e-4 * np.max(np.abs(g64)), name


LONG_FLOAT32_RUN = """
import json, warnings
import numpy as np
import dendrax as dx
warnings.simplefilter("ignore")
cell = dx.Cell.ball_and_stick(nseg=1)
cell.insert("hh")
cell.iclamp(cell.soma(0.5), delay=3000.0, dur=2.0, amp=0.5)
cell.record("v", cell.soma(0.5)).record_spikes()
res = dx.simulate(cell, 3010.0, 0.1, record_every=7)
print(json.dumps({"dtype": str(res.traces.dtype), "spikes": np.asarray(res.spikes[0]).tolist()}))
"""


def test_float32_clock_does_not_drift(tmp_path):
    """A clamp late in a long float32 run switches on in its step: the clock is (n + 1/2) dt
    from the step count, not a float32 sum (which drifted: an onset at 1000 ms acted 0.7
    ms early, one at 4000 ms not at all)."""
    out = run_python(LONG_FLOAT32_RUN, tmp_path)
    assert out["dtype"] == "float32"
    cell = dx.Cell.ball_and_stick(nseg=1)
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=3000.0, dur=2.0, amp=0.5)
    cell.record("v", cell.soma(0.5)).record_spikes()
    ref = np.asarray(dx.simulate(cell, 3010.0, 0.1, record_every=7).spikes[0])
    assert ref.size == 1 and len(out["spikes"]) == 1, (ref, out["spikes"])
    assert abs(out["spikes"][0] - ref[0]) <= 0.1 + 1e-9, (out["spikes"], ref)


def test_float32_values_beyond_float32_are_refused(tmp_path):
    """In float32 a value finite in float64 but beyond float32 became inf and the run NaN
    (a warning only); it is refused by name, as Cell.set refuses it; a population's value
    is named as given."""
    code = """
        import json, warnings
        import numpy as np
        warnings.simplefilter("ignore")
        import dendrax as dx
        c = dx.Cell.ball_and_stick(nseg=[1, 2]); c.insert("hh"); c.record("v")
        p = c.params
        p["channels"]["hh"]["gnabar"] = np.full(np.shape(p["channels"]["hh"]["gnabar"]), 1e39)
        net = dx.Network()
        dc = net.population("dc_generator", 1, amplitude=100.0, start=1e300)
        iaf = net.population("iaf_psc_alpha", 1)
        net.connect(dc, iaf, weight=1.0, delay=1.0)
        net.record_spikes(iaf)
        out = []
        for what, kw in ((c, dict(params=p)), (c, dict(v_init=1e39)), (net, {})):
            try:
                dx.simulate(what, 1.0, **kw)
                out.append("ran")
            except ValueError as err:
                out.append(str(err))
        print(json.dumps(out))
    """
    params, v_init, start = run_python(code, tmp_path, x64="0")
    assert "['channels']['hh']['gnabar'] has values beyond float32" in params
    assert "v_init must be a finite potential (mV; within float32" in v_init
    # it said "start must be finite ..., got inf" of the 1e300 given
    assert "dc_generator_0.start = 1e+300 is beyond float32" in start


def test_float32_connection_values_and_subnormal_params_are_named(tmp_path):
    """In float32: a static weight of 1e39 (inf once lowered) was "has non-finite values",
    it is named as beyond float32 as a population's value is; positive parameters below
    float32's smallest normal number (1.2e-38, flushed to 0 by XLA: NaN V_m from the first
    step, no error) are refused by name, and normal small ones still run."""
    code = """
        import json, warnings
        warnings.simplefilter("ignore")
        import numpy as np
        import dendrax as dx

        def net_with(model="iaf_psc_alpha", weight=1.0, synapse="static", **params):
            net = dx.Network()
            src = net.population("spike_generator", 1, spike_times=[1.0])
            if synapse != "static":
                src_ = net.population("parrot_neuron", 1)
                net.connect(src, src_, weight=1.0)
                src = src_
            pop = net.population(model, 1, **params)
            net.connect(src, pop, synapse, weight=weight, delay=1.0)
            net.record("V_m", pop)
            return dx.simulate(net, 3.0, 0.1)

        out = []
        for kw in (dict(weight=1e39), dict(weight=1e39, synapse="stdp_synapse"),
                   dict(C_m=1e-40), dict(model="LIF", tau=1e-40), dict(model="LIF", tau=1e-37)):
            try:
                res = net_with(**kw)
                out.append(["ran", bool(np.isfinite(np.asarray(res.traces)).all())])
            except ValueError as err:
                out.append(str(err))
        print(json.dumps(out))
    """
    static, plastic, c_m, tau, small = run_python(code, tmp_path, x64="0")
    assert static == ("parameter ['synapses']['static']['weight'] = 1e+39 is beyond float32 "
                      "(|x| <= 3.403e+38), the precision dendrax runs in while jax_enable_x64 "
                      "is off")
    assert "['synapses']['stdp_synapse']['weight'] = 1e+39 is beyond float32" in plastic
    assert c_m == ("iaf_psc_alpha.C_m = 1e-40 pF is below 1.175e-38, the smallest normal "
                   "float32 number (the precision dendrax runs in while jax_enable_x64 is off), "
                   "which XLA flushes to 0: give a value >= 1.175e-38 pF")
    assert tau.startswith("LIF.tau = 1e-40 ms is below 1.175e-38, the smallest normal float32")
    assert small == ["ran", True]


def test_float32_spike_times_of_a_run_in_pieces_are_on_the_grid(tmp_path):
    """A run in pieces gave float32 runs' spike times as step x float32(dt) (3.45000005 ms
    where the run in one piece gives 3.45)."""
    code = """
        import json, warnings
        import numpy as np
        warnings.simplefilter("ignore")
        import dendrax as dx
        c = dx.Cell.ball_and_stick(nseg=[1, 3]); c.insert("hh")
        c.iclamp(c.soma(), delay=2.0, dur=30.0, amp=0.5)
        c.record("v"); c.record_spikes()
        whole = dx.simulate(c, 40.0, 0.025)
        pieces = dx.simulate(c, 40.0, 0.025, chunk=333)
        print(json.dumps([[list(map(float, s)) for s in whole.spikes],
                          [list(map(float, s)) for s in pieces.spikes]]))
    """
    whole, pieces = run_python(code, tmp_path, x64="0")
    assert len(whole[0]) >= 2 and pieces == whole


def apart_cell():
    """hh_cell with a synapse and a voltage clamp (for 2 ms) on the dendrite besides the IClamp."""
    cell = hh_cell()
    cell.synapse("Exp2Syn", cell.section(1)(0.5), spike_times=[3.0, 8.0], weight=0.002)
    cell.vclamp(cell.section(1)(0.2), amp=-60.0, dur=2.0)
    return cell


APART_RUN = """
    import json, sys, warnings
    import numpy as np
    import dendrax as dx
    from dendrax import step
    from test_precision import apart_cell
    warnings.simplefilter("ignore")
    assert hasattr(step, "POINTS_APART_NODES") and hasattr(step, "POINTS_APART")
    step.POINTS_APART_NODES, step.POINTS_APART = 0, 1.0
    traces = dx.simulate(apart_cell(), 20.0, 0.025).traces
    np.save(sys.argv[1] + "/apart.npy", np.asarray(traces))
    print(json.dumps({"dtype": str(traces.dtype)}))
"""


def test_float32_step_with_points_apart(tmp_path):
    """Large models add the synapses' and electrodes' currents at their nodes after the
    membrane's pass (dendrax.step.POINTS_APART); in float32 that path too solves for dv,
    and agrees with float64 as the other path does (test_float32_mode)."""
    assert run_python(APART_RUN, tmp_path)["dtype"] == "float32"
    v32 = np.load(tmp_path / "apart.npy").astype(np.float64)
    v64 = np.asarray(dx.simulate(apart_cell(), 20.0, 0.025).traces)
    dv = np.abs(v32 - v64)
    assert dv.max() < 2e-3 and dv.mean() < 1e-4, (dv.max(), dv.mean())
