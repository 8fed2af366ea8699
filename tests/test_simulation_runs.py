"""The time loop against analytic results (a sealed cable's cosh profile, a sphere's
input resistance and time constant, a passive cell's linearity in its current) and its
contracts: the native and JAX backends agree; an unrolled or chunked loop gives the plain
loop's traces bit for bit (its gradients to rounding, the bounds stated with the test);
a t_stop off the step grid ends at the nearest step, said; a run with a progress bar is
the plain run; spike records are the threshold crossings; an electrode current at a
shared node is the first electrode's; compiled code is reused when values change and
not when a mechanism's settings do; a dropped cell is freed."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import dendrax as dx
from dendrax import scan, simulation
from simulation_cases import hh_ball_and_stick, loop_compiles


def test_sealed_cable_steady_state_is_cosh():
    """Passive sealed-end cable, DC current at x = 0: V(x) = I R_in cosh((L-x)/lam) / cosh(L/lam)."""
    L, d, Ra, g, I = 1000.0, 2.0, 100.0, 1e-4, 0.1
    cell = dx.Cell.from_sections([{"length": L, "diam": d, "parent": -1, "region": "dend"}],
                                 nseg=401, Ra=Ra, cm=1.0)
    cell.insert("pas").set("pas.g", g).set("pas.e", 0.0)
    cell.iclamp(cell.section(0)(0.0), delay=0.0, dur=1e9, amp=I)
    xs = np.array([0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
    for x in xs:
        cell.record("v", cell.section(0)(x))
    res = dx.simulate(cell, 300.0, 0.5, v_init=0.0)  # tau = 10 ms: steady long before 300 ms
    lam = np.sqrt(d * 1e-4 / (4 * Ra * g)) * 1e4  # um
    r_a = 4 * Ra / (np.pi * (d * 1e-4) ** 2) * 1e-4 * 1e-6  # MOhm per um
    r_in = r_a * lam / np.tanh(L / lam)  # MOhm
    expected = I * r_in * np.cosh((L - xs * L) / lam) / np.cosh(L / lam)  # mV
    np.testing.assert_allclose(np.asarray(res.traces)[:, -1], expected, rtol=2e-3)


def test_input_resistance_of_a_sphere_like_soma():
    """A single passive compartment: V_inf = I / (g A), tau = cm / g."""
    cell = dx.Cell.from_sections([{"length": 30.0, "diam": 30.0, "parent": -1, "region": "soma"}])
    cell.insert("pas").set("pas.g", 5e-4).set("pas.e", -70.0)
    cell.iclamp(cell.soma(), delay=0.0, dur=1e9, amp=0.05)
    cell.record("v")
    res = dx.simulate(cell, 50.0, 0.01, v_init=-70.0)
    area_cm2 = np.pi * 30.0 * 30.0 * 1e-8
    v_inf = 0.05e-9 / (5e-4 * area_cm2) * 1e3  # mV
    tau = 1.0 / 5e-4 * 1e-6 * 1e3  # ms
    v = np.asarray(res.traces[0]) + 70.0
    np.testing.assert_allclose(v[-1], v_inf, rtol=1e-6)
    t = res.t[100]  # backward Euler: v_n = v_inf (1 - (1 + dt/tau)^-n)
    np.testing.assert_allclose(v[100], v_inf * (1 - (1 + 0.01 / tau) ** -100), rtol=1e-9)
    assert t == pytest.approx(1.0)


def test_no_recompile_when_values_change():
    cell = hh_ball_and_stick()
    dx.simulate(cell, 5.0, 0.025)
    with loop_compiles() as compiled:
        cell.set("hh.gnabar", 0.2)
        cell.set("cm", 1.3)
        other = hh_ball_and_stick(amp=0.7)  # a new cell of the same structure
        dx.simulate(cell, 5.0, 0.025)
        dx.simulate(other, 5.0, 0.025)
    assert not compiled


def test_a_new_morphology_compiles_three_functions():
    """A cell of a new shape (recording as many traces for as many steps as an earlier
    one) compiles its cable geometry, its initial state and its time loop, and nothing op
    by op: the geometry, computed eagerly, compiled ~40 small
    functions per new shape, each kept by JAX for the process's life (~50 MB and ~0.5 s
    per morphology in a sweep over morphologies)."""
    compiles = []

    def listener(name, secs, **kwargs):
        if name == "/jax/core/compile/backend_compile_duration":
            compiles.append(name)

    def cell_of(nseg):
        cell = dx.Cell.ball_and_stick(nseg=[1, nseg], dend_length=100.0 + nseg)
        cell.insert("hh")
        cell.record("v")
        return cell

    dx.simulate(cell_of(5), 1.0, 0.025)  # what any cell of one trace, 40 steps needs
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        for nseg in (7, 9):
            cell = cell_of(nseg)
            before = len(compiles)
            dx.simulate(cell, 1.0, 0.025)
            assert len(compiles) - before == 3, (nseg, len(compiles) - before)
            cell.set("hh.gnabar", 0.2)  # new values: nothing compiles
            before = len(compiles)
            dx.simulate(cell, 1.0, 0.025)
            assert len(compiles) == before
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def test_compiled_code_is_kept_while_its_structure_lives():
    """A structure's compiled functions are kept while a cell of it lives (however many
    other structures run), or while it is among the last RECENT run; then freed (a sweep
    over morphologies kept ~55 MB and ~145 memory mappings per structure for the process's
    life, until it ran out of memory or of the mappings Linux allows a process, where XLA
    crashed). Counted as time loops compiled by simulate alone."""
    import gc

    from dendrax import compiled

    def cell_of(nseg):
        cell = dx.Cell.ball_and_stick(nseg=[1, nseg], dend_length=50.0 + nseg)
        cell.insert("hh")
        if nseg % 2 == 0:  # a synapse fed by a spike train: its model is sized for the run
            cell.synapse("Exp2Syn", cell.section(1)(0.5), spike_times=[0.2, 0.3], weight=1e-3)
        cell.record("v")
        return cell

    n = compiled.RECENT + 3
    cells = [cell_of(k) for k in range(2, 2 + n)]
    for cell in cells:
        dx.simulate(cell, 0.5, 0.025)
    with loop_compiles() as loops:  # more live structures than RECENT: all kept
        for cell in cells:
            dx.simulate(cell, 0.5, 0.025)
    assert not loops
    kept = cells[0]
    del cells, cell
    gc.collect()
    with loop_compiles() as loops:
        dx.simulate(kept, 0.5, 0.025)  # alive: kept
        dx.simulate(cell_of(2 + n - 1), 0.5, 0.025)  # died, but among the last RECENT run
    assert not loops
    with loop_compiles() as loops:
        dx.simulate(cell_of(3), 0.5, 0.025)  # died and pushed out: freed, compiled again
    assert len(loops) == 1


def test_native_and_jax_backends_agree():
    cell = hh_ball_and_stick()
    a = dx.simulate(cell, 15.0, 0.025, backend="native").traces
    b = dx.simulate(cell, 15.0, 0.025, backend="jax").traces
    np.testing.assert_allclose(a, b, atol=1e-9)


@settings(max_examples=10, deadline=None)
@given(amp=st.floats(0.0, 0.5), gl=st.floats(1e-5, 1e-3))
def test_passive_response_is_linear_in_current(amp, gl):
    """Property: for a passive cell, the deflection from rest scales with the injected current."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 3])
    cell.insert("pas").set("pas.g", gl).set("pas.e", -65.0)
    cell.iclamp(cell.section(1)(0.5), delay=0.5, dur=3.0, amp=1.0)
    cell.record("v")
    unit = np.asarray(dx.simulate(cell, 5.0, 0.05).traces[0]) + 65.0
    p = cell.params
    p["stimuli"]["iclamp"]["amp"] = jnp.array([amp])
    scaled = np.asarray(dx.simulate(cell, 5.0, 0.05, params=p).traces[0]) + 65.0
    np.testing.assert_allclose(scaled, amp * unit, atol=1e-8)


def test_t_stop_off_the_step_grid_warns_and_ends_at_the_nearest_step():
    """As NEURON's run() (which steps while t < tstop - dt/2), but said, not silent."""
    cell = hh_ball_and_stick()
    with pytest.warns(UserWarning, match=r"t_stop = 1 ms is not a whole number of steps of "
                                         r"dt = 0.3 ms: the run ends at the nearest step, t = 0.9 ms"):
        res = dx.simulate(cell, 1.0, 0.3)
    np.testing.assert_allclose(res.t[-1], 0.9)
    assert res.meta["t_stop"] == pytest.approx(0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dx.simulate(cell, 40.0, 0.025)  # 1600 steps: on the grid up to rounding


def _unroll(model):
    return scan.unroll_for(model.parent.size + model.n_points)


def _chunk(model, n, record_every, dtype):
    return scan.chunk_for(n, simulation.loop_width(model, record_every, dtype))


@pytest.mark.parametrize("shape", ["unrolled", "chunked"])
def test_time_loop_shapes_give_the_same_bits(monkeypatch, request, shape):
    """A small model runs several steps per iteration of the time loop (unrolled), or its
    loop as a loop over chunks of steps; either changes how XLA schedules the steps,
    not what they compute: unrolled traces (any length, including one that is not a
    multiple of the unroll) are identical to the plain loop's, bit for bit; chunked ones
    agree to rounding (XLA compiles the inner loop's step on its own and may contract a
    product and a sum differently there: 7e-13 mV here); gradients agree to rounding:
    the per-step parameter cotangents are summed in another order, 1e-13 relative for
    the channels' parameters here; the cable's geometry (Ra, L, diam: sums of large
    terms that cancel) to ~1e-10 of each leaf's largest entry."""
    jax.clear_caches()  # compiled for this shape, not one an earlier test left for this cell
    request.addfinalizer(jax.clear_caches)  # nor later tests with this one's plain loop
    cell = hh_ball_and_stick()
    model = dx.lower(cell).model
    if shape == "unrolled":
        monkeypatch.setattr(scan, "SEQUENTIAL_BYTES", 0)  # no chunks
        assert _unroll(model) > 1  # the model is small enough
    else:
        assert _chunk(model, 402, 1, np.float64) == 6  # 402 = 6 * 67
        assert _chunk(model, 120, 1, np.float64) > 1

    def run():
        out = dx.simulate(cell, 10.05, 0.025).traces  # 402 steps
        g = jax.grad(lambda p: jnp.sum(dx.simulate(cell, 3.0, 0.025, params=p).traces ** 2))(
            cell.params)
        return out, g

    shaped = run()
    monkeypatch.setattr(scan, "SMALL", 0)
    monkeypatch.setattr(scan, "SEQUENTIAL_BYTES", 0)
    jax.clear_caches()
    assert _unroll(model) == 1 and _chunk(model, 402, 1, np.float64) == 1
    plain = run()
    if shape == "unrolled":
        np.testing.assert_array_equal(shaped[0], plain[0])
    else:
        np.testing.assert_allclose(shaped[0], plain[0], rtol=0, atol=1e-11)
    for a, b in zip(jax.tree_util.tree_leaves(shaped[1]), jax.tree_util.tree_leaves(plain[1])):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9 * float(np.max(np.abs(b), initial=0)))
    channels = plain[1]["channels"]["hh"]
    for k, a in shaped[1]["channels"]["hh"].items():
        np.testing.assert_allclose(a, channels[k], rtol=1e-12)


def test_chunks_divide_the_loop_and_fit_the_sequential_size():
    """The chunk is the largest divisor of the number of iterations whose per-step arrays
    (nodes, traces, spike flags of record_every steps) fit XLA's sequential size; 1 where
    none does."""
    model = dx.lower(hh_ball_and_stick()).model
    width = max(model.parent.size, sum(r.reduce is None for r in model.recordings)) * 8
    top = scan.SEQUENTIAL_BYTES // width
    assert top >= 2
    for n in (2, 3, 97, 120, 4000, 4001):
        c = _chunk(model, n, 1, np.float64)
        assert n % c == 0 and c <= top
        assert c == max([d for d in range(1, top + 1) if n % d == 0 and d <= n // 2] or [1])
    assert _chunk(model, 97, 1, np.float64) == 1  # a prime: unrolled instead
    # float32 halves the bytes per entry
    assert _chunk(model, 10 ** 6, 1, np.float32) >= _chunk(model, 10 ** 6, 1, np.float64)
    big = dx.Cell.ball_and_stick(nseg=[1, 80])
    big.insert("hh")
    assert _chunk(dx.lower(big).model, 4000, 1, np.float64) == 1  # 82 nodes: too large


def test_progress_bar_run_equals_plain_run(capsys):
    cell = hh_ball_and_stick()
    plain = dx.simulate(cell, 10.0, 0.025).traces
    chunked = dx.simulate(cell, 10.0, 0.025, progress=True).traces
    np.testing.assert_allclose(chunked, plain, atol=1e-12)
    assert "step" in capsys.readouterr().err


def test_cell_spike_records_match_threshold_crossings_rates_and_isis():
    """record_spikes on a cell: NEURON's NetCon.record (the step at whose start v is above
    threshold for the first time since it was below), checked against the trace in numpy;
    spikes alone (no trace) can be recorded; rates and inter-spike intervals."""
    cell = hh_ball_and_stick(amp=1.0)
    cell.record_spikes().record_spikes(cell.section(1)(0.9), threshold=-20.0)
    res = dx.simulate(cell, 12.0, 0.025)
    for k, (trace, thr) in enumerate(((res.traces[0], 10.0), (res.traces[1], -20.0))):
        v = np.asarray(trace)
        up = np.flatnonzero((v[1:] > thr) & (v[:-1] <= thr)) + 1  # first sample above
        np.testing.assert_allclose(res.spikes[k], np.asarray(res.t)[up], atol=1e-12)
        assert len(up) >= k + 1
    np.testing.assert_allclose(res.rates(), [len(s) / 12.0 * 1e3 for s in res.spikes])
    np.testing.assert_allclose(res.rates(5.0, 12.0)[1], 1e3 / 7.0)  # one spike in [5, 12)
    np.testing.assert_allclose(res.isis()[1], np.diff(res.spikes[1]))
    spikes_only = dx.Cell.ball_and_stick(nseg=[1, 5], Ra=100.0, dend_length=150.0, dend_diam=2.0)
    spikes_only.insert("hh").iclamp(spikes_only.soma(), delay=1.0, dur=10.0, amp=1.0)
    out = dx.simulate(spikes_only.record_spikes(), 12.0, 0.025)
    assert out.traces.shape == (0, 481)
    np.testing.assert_array_equal(out.spikes[0], res.spikes[0])


def test_an_electrode_current_at_a_shared_node_is_the_first_electrodes():
    """Two IClamps (or an IClamp and a waveform) on one node: "iclamp.i" there is the first
    IClamp's current, as documented (the other one's is not in it)."""
    cell = dx.Cell.ball_and_stick()
    cell.insert("hh")
    cell.iclamp(cell.soma(), delay=0.2, dur=0.5, amp=0.1)
    cell.iclamp(cell.soma(), delay=0.4, dur=0.5, amp=0.3)
    cell.stimulate(cell.soma(), [0.0, 1.0], [0.2, 0.2])
    cell.record("iclamp.i", cell.soma())
    alone = dx.Cell.ball_and_stick()
    alone.insert("hh")
    alone.iclamp(alone.soma(), delay=0.2, dur=0.5, amp=0.1)
    alone.record("iclamp.i", alone.soma())
    i = np.asarray(dx.simulate(cell, 1.0, 0.025).traces[0])
    np.testing.assert_array_equal(i, np.asarray(dx.simulate(alone, 1.0, 0.025).traces[0]))
    assert i.max() == pytest.approx(0.1)


def test_a_mechanisms_settings_are_part_of_what_is_compiled():
    """Two instances of one channel class with different settings (here the reversal
    potential its __init__ takes) are different models: the second run compiled its own
    code (it reused the first's, silently giving the first's answer); changing a class
    attribute after a run takes effect in the next."""
    from dendrax.mechanisms import Channel

    class Leak(Channel):
        name = "settings_leak"
        params = {"g": 1e-3}
        scale = 1.0

        def __init__(self, e=-70.0):
            self.e = e

        def current(self, v, states, params, env):
            return {"": self.scale * params["g"] * (v - self.e)}

    def rest(mech):
        cell = dx.Cell.ball_and_stick()
        cell.insert(mech).record("v")
        return float(dx.simulate(cell, 100.0, 0.025, v_init=-65.0).traces[0, -1])

    assert rest(Leak(-70.0)) == pytest.approx(-70.0, abs=1e-6)
    assert rest(Leak(-50.0)) == pytest.approx(-50.0, abs=1e-6)
    Leak.scale = 0.0  # no current: v stays where it starts
    assert rest(Leak(-50.0)) == pytest.approx(-65.0, abs=1e-6)
    cell = dx.Cell.ball_and_stick()  # the same cell, simulated again after a change
    cell.insert(Leak(-50.0)).record("v")
    before = float(dx.simulate(cell, 100.0, 0.025, v_init=-65.0).traces[0, -1])
    Leak.scale = 1.0
    after = float(dx.simulate(cell, 100.0, 0.025, v_init=-65.0).traces[0, -1])
    assert before == pytest.approx(-65.0, abs=1e-6) and after == pytest.approx(-50.0, abs=1e-6)


def test_a_function_an_instance_keeps_is_part_of_what_is_compiled():
    """A rate law given to a plugin's __init__ (a function, a partial, a closure over a
    number) is a setting: two instances that keep different ones run their own code (the
    second reused the first's compiled loop, silently giving the first's answer: functions
    were not part of what identified the code)."""
    import functools

    from dendrax.mechanisms import Channel

    class Leak(Channel):
        name = "function_settings_leak"
        params = {"g": 1e-3}

        def __init__(self, reversal):
            self.reversal = reversal

        def current(self, v, states, params, env):
            return {"": params["g"] * (v - self.reversal())}

    def rest(mech):
        cell = dx.Cell.ball_and_stick(nseg=1)
        cell.insert(mech).record("v")
        return float(dx.simulate(cell, 100.0, 0.025, v_init=-65.0).traces[0, -1])

    def at(e):
        return lambda: e

    def fixed(e):
        return e

    assert rest(Leak(lambda: -70.0)) == pytest.approx(-70.0, abs=1e-6)
    assert rest(Leak(lambda: -50.0)) == pytest.approx(-50.0, abs=1e-6)
    assert rest(Leak(at(-60.0))) == pytest.approx(-60.0, abs=1e-6)
    assert rest(Leak(at(-55.0))) == pytest.approx(-55.0, abs=1e-6)
    assert rest(Leak(functools.partial(fixed, -75.0))) == pytest.approx(-75.0, abs=1e-6)
    assert rest(Leak(functools.partial(fixed, -45.0))) == pytest.approx(-45.0, abs=1e-6)


def test_equal_mechanisms_share_compiled_code_and_odd_attributes_are_harmless():
    """Review of mechanism_key: fresh cells whose mechanism instances are equal (a NaN made
    in __init__ equals itself; a lambda made in __init__ is the same code, even where it
    closes over the instance or is jitted; a callable object by its attributes) share one
    compiled loop; a traced value a plugin leaves on itself is no setting (it broke
    lowering); two cells of one network inserting one name with different settings are
    refused (the first one's setting ran for both)."""
    from dendrax.mechanisms import Channel

    class Odd(Channel):
        name = "odd_settings_leak"
        params = {"g": 1e-3}

        def __init__(self, e=-70.0):
            self.e, self.unset = e, float("nan")
            self.shape = lambda x: jnp.tanh(x)
            self.scaled = lambda x: self.e * x
            self.method = self.current
            self.jitted = jax.jit(lambda x: 2.0 * x)
            self.vectorized = np.vectorize(lambda x: x)  # a callable object with settings

        def current(self, v, states, params, env):
            self.last = v  # a tracer, left behind
            return {"": params["g"] * (v - self.e)}

    def build(e=-70.0):
        cell = dx.Cell.ball_and_stick(nseg=1)
        cell.insert(Odd(e)).record("v")
        return cell

    dx.simulate(build(), 2.0, 0.1)
    with loop_compiles() as compiled:
        for _ in range(2):
            dx.simulate(build(), 2.0, 0.1)
    assert not compiled
    net = dx.Network([build(-70.0), build(-50.0)])
    dx.simulate(dx.Network([build(-70.0), build(-70.0)]), 2.0, 0.1)  # equal: accepted
    with pytest.raises(ValueError, match="two cells of this network insert "
                                         r"'odd_settings_leak' with different settings \(e "
                                         r"differ\)"):
        dx.simulate(net, 2.0, 0.1)


def test_a_cell_is_freed_once_dropped_and_a_copy_is_lowered_as_itself():
    """The lowering is kept on the cell (in a weak-keyed table, its layout's reference to
    the cell kept every simulated cell, and its compiled batches, alive: ~6 MiB a cell in a
    loop); a copy made after a run is lowered as the copy."""
    import gc
    import weakref

    from dendrax.training.batch import simulate_batch

    cell = hh_ball_and_stick()
    cell.record("v")
    dx.simulate(cell, 1.0, 0.025)
    simulate_batch(cell, {"stimuli": {"iclamp": {"amp": jnp.array([[0.1], [0.2]])}}}, 1.0)
    copy = cell.copy()
    assert dx.lower(copy).layout.cells[0] is copy
    copy.set("hh.gnabar", 0.2)
    assert float(dx.lower(cell).params["channels"]["hh"]["gnabar"][0]) == 0.12
    # a pickle (and a deep copy) carries no lowering: the copy lowers itself
    import pickle
    size = len(pickle.dumps(copy))
    dx.lower(copy)
    assert len(pickle.dumps(copy)) < size + 200
    again = pickle.loads(pickle.dumps(copy))
    assert dx.lower(again).layout.cells[0] is again
    alive = weakref.ref(cell)
    del cell
    gc.collect()
    assert alive() is None
