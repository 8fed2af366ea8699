"""What a mechanism must be, checked where it is inserted or placed: its declarations
(params, ranges, units) and, traced once on abstract arrays, what its functions return
(one value per node or synapse, of the run's dtype; currents of declared ions; states it
declares) -- a broken plugin gets a ValueError naming the function, not an error deep in a
run (docs/mechanisms.md)."""

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dendrax as dx


@pytest.mark.parametrize("declare,message", [
    ('ranges = {"gg": (0, None)}', r"Leaky.ranges names \['gg'\], which are not its parameters: "
                                    r"\['e', 'g'\]"),
    ('units = {"gbar": "S/cm2"}', r"Leaky.units names \['gbar'\], which are not its parameters, "
                                   r"states, assigned or solved values"),
    ('ranges = {"g": (0, 1, 2)}', r"Leaky.ranges\['g'\] must be a Range or a \(low, high\) pair"),
    ('ranges = {"g": (1.0, 0.0)}', r"with low <= high"),
    ('ranges = {"g": (float("nan"), None)}', r"Leaky.ranges\['g'\] must be a Range"),
    ('units = {"g": 5}', r"Leaky.units\['g'\] must be a string, got 5"),
    ('params = {"g": None, "e": -70.0}', r"Leaky.params\['g'\] must be a finite number"),
    ('params = {"g": "abc", "e": -70.0}', r"Leaky.params\['g'\] must be a finite number"),
])
def test_a_plugins_declarations_are_checked(declare, message):
    """A typo in ranges or units would leave a parameter unchecked: refused at insert."""
    from dendrax.mechanisms import Channel

    namespace = {"Channel": Channel}
    exec(textwrap.dedent(f"""
        class Leaky(Channel):
            name = "leaky_test"
            params = {{"g": 1e-4, "e": -70.0}}
            {declare}

            def current(self, v, states, params, env):
                return {{"": params["g"] * (v - params["e"])}}
    """), namespace)
    with pytest.raises(ValueError, match=message):
        dx.Cell.ball_and_stick().insert(namespace["Leaky"])


@pytest.mark.parametrize("returns,message", [
    ('{"cl": params["g"] * (v - params["e"])}',
     r"Ohmic.current returns currents of \['cl'\], which it does not declare: ions = \(\)"),
    ('params["g"] * (v - params["e"])', r"Ohmic.current must return a dict"),
    ('{"": (params["g"] * (v - params["e"]))[:2]}',
     r"Ohmic.current\[''\] must have one value per node \(shape \[n\]\), got shape \(2,\)"),
    ('{"": (params["g"] * (v - params["e"])).astype(int)}',
     r"Ohmic.current\[''\] must be a float array, got int"),
    # one number where each node needs its own (every node would get it: 39 mV off once)
    ('{"": jnp.sum(params["g"] * (v - params["e"]))}',
     r"Ohmic.current\[''\] is one number computed from the per-node .* inputs, e.g. a sum"),
    ('{"": params["g"][0] * (v[0] - params["e"][0])}', r"Ohmic.current\[''\] is one number"),
])
def test_a_channels_current_is_checked_at_insert(returns, message):
    """What current returns is checked on abstract arrays when the channel is inserted: a
    wrong key, shape or dtype is named there, not deep inside the run."""
    with pytest.raises(ValueError, match=message):
        dx.Cell.ball_and_stick().insert(_ohmic(returns))


def test_a_scalar_from_scalars_alone_is_broadcast_a_reduced_one_refused():
    """A time constant of celsius alone is one number for every node, as meant (accepted and
    run as the per-node form); a rate or a synapse's current reduced over nodes is not."""
    from dendrax.mechanisms import Channel, Synapse

    class Gate(Channel):
        name = "gate_test"
        params = {"gbar": 1e-3}
        states = {"n": 0.0}
        ions = ("k",)

        def rates(self, v, params, env):
            return {"n": (1.0 / (1.0 + jnp.exp(-(v + 40.0) / 8.0)),
                          2.0 * 3.0 ** ((34.0 - env["celsius"]) / 10.0))}

        def current(self, v, states, params, env):
            return {"k": params["gbar"] * states["n"] ** 4 * (v - env["ek"])}

    class PerNode(Gate):
        def rates(self, v, params, env):
            n_inf, tau = Gate.rates(self, v, params, env)["n"]
            return {"n": (n_inf, tau + 0.0 * v)}

    class Reduced(Gate):
        def rates(self, v, params, env):
            n_inf, tau = Gate.rates(self, v, params, env)["n"]
            return {"n": (n_inf, tau * jnp.mean(v) / -65.0)}

    @jax.jit
    def gate(v, celsius):  # a jitted helper: its scalar output is still of scalars alone
        return Gate.rates(None, v, None, {"celsius": celsius})["n"]

    class Jitted(Gate):
        def rates(self, v, params, env):
            return {"n": gate(v, env["celsius"])}

    class Branched(Gate):  # lax.cond on celsius: each branch's tau of scalars alone
        def rates(self, v, params, env):
            n_inf, tau = Gate.rates(self, v, params, env)["n"]
            return {"n": jax.lax.cond(env["celsius"] > 100.0, lambda a: (a, 0.5 * tau),
                                      lambda a: (a, tau), n_inf)}

    class Scanned(Gate):  # a sum over the nodes carried through lax.scan: still refused
        def rates(self, v, params, env):
            n_inf, tau = Gate.rates(self, v, params, env)["n"]
            (total, _), _ = jax.lax.scan(lambda c, x: ((c[1], c[0] + x), None),
                                         (0.0 * tau, 0.0 * tau), v)
            return {"n": (n_inf, tau + 0.0 * total)}

    with pytest.raises(ValueError, match=r"Scanned.rates\['n'\]\[1\] is one number computed"):
        dx.Cell.ball_and_stick().insert(Scanned)

    class Started(Gate):  # every node starts at one number
        def steady_state(self, v, params, env):
            return {"n": 0.25}

    runs = []
    for mech in (Gate, PerNode, Jitted, Branched, Started):
        cell = dx.Cell.ball_and_stick(nseg=3).insert("hh", "soma").insert(mech)
        cell.iclamp(cell.soma(), delay=0.5, dur=2.0, amp=0.3).record("v", cell.section(1)(0.9))
        cell.record(f"{mech.name}.n", cell.section(1)(0.9))
        runs.append(np.asarray(dx.simulate(cell, 4.0, 0.025).traces))
    for other in runs[1:4]:
        np.testing.assert_allclose(other, runs[0], rtol=0, atol=1e-12)
    assert runs[4][1, 0] == 0.25 and not np.allclose(runs[4], runs[0])
    with pytest.raises(ValueError, match=r"Reduced.rates\['n'\]\[1\] is one number computed"):
        dx.Cell.ball_and_stick().insert(Reduced)

    class Syn(Synapse):
        name = "syn_sum_test"
        params = {"e": 0.0}
        states = {"g": 0.0}

        def advance(self, states, params, dt):
            return states

        def on_spike(self, states, params, weight):
            return {"g": states["g"] + weight}

        def current(self, v, states, params):
            return jnp.sum(states["g"] * (v - params["e"]))

    with pytest.raises(ValueError, match=r"Syn.current is one number computed"):
        dx.Cell.ball_and_stick().synapse(Syn, dx.Location(0, 0.5), spike_times=[1.0])


@pytest.mark.parametrize("advance,message", [
    ('{"n": (states["n"] + dt * (v - states["n"])).astype(jnp.float32)}',
     r"Kin.advance\['n'\] is float32, but the run computes in float64"),
    ('{"n": jnp.float64(0.5)}', r"Kin.advance\['n'\] must have one value per node \(shape "
                               r"\[n\]\), got one number"),
    ('{"n": jnp.mean(states["n"])}', r"Kin.advance\['n'\] is one number computed"),
    # a branch only Crank-Nicolson takes (env["secondorder"] 2) is checked too (review)
    ('{"n": jnp.mean(states["n"])} if env["secondorder"] else states',
     r"Kin.advance \(Crank-Nicolson, env\['secondorder'\] 2\)\['n'\] is one number"),
    ('{"n": states["n"] + dt * env["foo"]} if env["secondorder"] else states',
     r"Kin.advance \(Crank-Nicolson, env\['secondorder'\] 2\) reads 'foo', which it is not "
     r"given"),
])
def test_states_keep_the_runs_dtype_and_one_value_per_node(advance, message):
    """A state the loop carries from step to step must keep the inputs' dtype and shape:
    refused at insert (they failed inside lax.scan, naming neither class nor function)."""
    from dendrax.mechanisms import Channel

    namespace = {"Channel": Channel, "jnp": jnp}
    exec(textwrap.dedent(f"""
        class Kin(Channel):
            name = "kin_test"
            params = {{"g": 1e-4}}
            states = {{"n": 0.0}}

            def advance(self, v, states, params, env, dt):
                return {advance}

            def steady_state(self, v, params, env):
                return {{"n": 0.0 * v}}

            def current(self, v, states, params, env):
                return {{"": params["g"] * states["n"] * v}}
    """), namespace)
    with pytest.raises(ValueError, match=message):
        dx.Cell.ball_and_stick().insert(namespace["Kin"])


def test_a_current_of_another_float_width_is_refused():
    """A float16 (or float32) current in a float64 run lost precision silently."""
    for dtype in ("float16", "float32"):
        with pytest.raises(ValueError, match=rf"Ohmic.current\[''\] is {dtype}, but the run "
                                             r"computes in float64"):
            dx.Cell.ball_and_stick().insert(
                _ohmic(f'{{"": (params["g"] * (v - params["e"])).astype(jnp.{dtype})}}'))


def _ohmic(current, assigned=None):
    """A leak channel class "ohmic_test" whose current (and assigned) return the given code."""
    from dendrax.mechanisms import Channel

    lines = ["import jax.numpy as jnp", "class Ohmic(Channel):", '    name = "ohmic_test"',
             '    params = {"g": 1e-4, "e": -70.0}',
             "    def current(self, v, states, params, env):", f"        return {current}"]
    if assigned is not None:
        lines += ["    def assigned(self, v, states, params, env):", f"        return {assigned}"]
    namespace = {"Channel": Channel}
    exec("\n".join(lines), namespace)
    return namespace["Ohmic"]


@pytest.mark.parametrize("returns,message", [
    ('{"e": params["g"] + 0 * v}', r"Ohmic.assigned names \['e'\], which are already its "
                                   r"parameters, states or currents"),
    ('{"i": params["g"] + 0 * v}', r"Ohmic.assigned names \['i'\]"),
    ('params["g"] + 0 * v', r"Ohmic.assigned must return a dict name -> array"),
    ('{"gleak": (params["g"] + 0 * v)[:2]}', r"Ohmic.assigned\['gleak'\] must have one value per node"),
    ('None', r"Ohmic.assigned must return a dict name -> array"),
    ('{"g.x": params["g"] + 0 * v}', r"names that are Python identifiers"),
    ('{"q": float(v[0])}', r"Ohmic.assigned fails on arrays of the documented inputs: "
                           r"ConcretizationTypeError"),
    ('{"gmean": jnp.mean(params["g"] + 0 * v)}', r"Ohmic.assigned\['gmean'\] is one number"),
])
def test_a_channels_assigned_values_are_checked_at_insert(returns, message):
    """``assigned`` (recordable extras, NEURON's RANGE ASSIGNED) is checked like current:
    a name that is already a parameter, state or current would be ambiguous."""
    with pytest.raises(ValueError, match=message):
        dx.Cell.ball_and_stick().insert(_ohmic('{"": params["g"] * (v - params["e"])}', returns))

def test_rates_of_an_undeclared_state_are_refused():
    from dendrax.mechanisms import Channel

    class Gate(Channel):
        name = "gate_test"
        params = {"g": 1e-4}
        states = {"m": 0.0}

        def alpha_beta(self, v, params, env):
            return {"m": (v * 0 + 1.0, v * 0 + 1.0, 1.0), "h": (v * 0 + 1.0, v * 0 + 2.0, 1.0)}

        def current(self, v, states, params, env):
            return {"": params["g"] * states["m"] * v}

    with pytest.raises(ValueError, match=r"Gate's rates give \['h'\], which are not its states "
                                         r"\['m'\]: declare them in states"):
        dx.Cell.ball_and_stick().insert(Gate)



def test_kinetics_pools_and_synapse_currents_are_checked_at_use():
    """advance, rates, an ion pool's ion and a synapse's current: checked on abstract arrays
    where the mechanism is inserted or placed, named there, not deep inside the run."""
    import jax.numpy as jnp

    from dendrax.mechanisms import Channel, IonPool, Synapse

    class Renamed(Channel):
        name = "renamed_test"
        params = {"g": 1e-4}
        states = {"m": 0.1}

        def current(self, v, states, params, env):
            return {"": params["g"] * states["m"] * (v + 70.0)}

        def advance(self, v, states, params, env, dt):
            return {"mm": states["m"]}

    class OneRate(Renamed):
        name = "one_rate_test"

        def rates(self, v, params, env):
            return {"m": (0.5 + 0.0 * v,)}

        advance = Channel.advance

    class Chloride(IonPool):
        name = "chloride_test"
        ion = "cl"
        states = {"cli": 4.0}

        def advance(self, v, states, params, env, dt):
            return states

    class DictCurrent(Synapse):
        name = "dict_current_test"
        params = {"tau": 2.0}
        states = {"g": 0.0}

        def current(self, v, states, params):
            return {"x": states["g"] * v}

        def on_spike(self, states, params, weight):
            return {"g": states["g"] + weight}

    cell = dx.Cell.ball_and_stick()
    with pytest.raises(ValueError, match=r"Renamed.advance must return a dict of its states "
                                         r"\['m'\], got \['mm'\]"):
        cell.insert(Renamed)
    with pytest.raises(ValueError, match=r"OneRate.rates\['m'\] must be a pair \(steady state, "
                                         r"time constant in ms\), got 1 values"):
        cell.insert(OneRate)
    PairRates = type("PairRates", (Channel,), {
        "name": "pair_rates_test", "params": {"g": 0.01}, "states": {"m": 0.0},
        "alpha_beta": lambda self, v, p, env: {"m": (0.1 * jnp.exp(v / 10), 0.2)},
        "current": lambda self, v, s, p, env: {"": p["g"] * s["m"] * (v + 70)}})
    with pytest.raises(ValueError, match=r"PairRates.alpha_beta\['m'\] must be a triple "
                                         r"\(alpha, beta in 1/ms, temperature factor q\), got 2 "
                                         r"values"):  # was a bare unpacking error in the run
        cell.insert(PairRates)
    with pytest.raises(ValueError, match=r"IonPool Chloride: ion must be one of \['ca', 'k', "
                                         r"'na'\]"):
        cell.insert(Chloride)
    Unlisted = type("Unlisted", (IonPool,), {"name": "unlisted_test", "ion": "ca",
                                              "states": {"cai": 5e-5},
                                              "advance": lambda self, v, s, p, env, dt: s})
    with pytest.raises(ValueError, match=r"IonPool Unlisted: its ion 'ca' must be in its ions"):
        cell.insert(Unlisted)
    with pytest.raises(ValueError, match=r"DictCurrent.current must return one float array "
                                         r"\(nA, \[n\]\), or, taking env, a dict"):
        cell.synapse(DictCurrent, cell.soma(), spike_times=[1.0])

    # reading a name a mechanism is not given, a state without a number for its default,
    # and a steady_state that does not give the states: named at insert (were a bare
    # KeyError, a JAX TypeError or a mismatched carry deep in the run)
    def leak(**attrs):
        return type("Leak", (Channel,), {"name": "leak_test", "params": {"g": 1e-4},
                                         "current": lambda self, v, s, p, env: {
                                             "": p["g"] * (v + 70.0)}, **attrs})

    reads_h = leak(current=lambda self, v, s, p, env: {"": p["g"] * s["h"] * v})
    with pytest.raises(ValueError, match=r"Leak.current reads 'h', which it is not given: its "
                                         r"states \[\], parameters \['g'\]"):
        cell.insert(reads_h)
    reads_ek = leak(current=lambda self, v, s, p, env: {"": p["g"] * (v - env["ek"])})
    with pytest.raises(ValueError, match=r"Leak.current reads 'ek'.*need the ion in ions"):
        cell.insert(reads_ek)
    with pytest.raises(ValueError, match=r"Leak.states\['m'\] must be a finite number \(its "
                                         r"default\), got None"):
        cell.insert(leak(states={"m": None}))
    partial = leak(states={"m": 0.5, "n": 0.5},
                   steady_state=lambda self, v, p, env: {"m": 0.5 + 0.0 * v},
                   advance=lambda self, v, s, p, env, dt: s)
    with pytest.raises(ValueError, match=r"Leak.steady_state must return a dict of its states "
                                         r"\['m', 'n'\], got \['m'\]"):
        cell.insert(partial)


def _event_synapse(name, on_spike):
    return type(name, (dx.mechanisms.Synapse,), {
        "name": name, "params": {"tau": 2.0}, "states": {"g": 0.0, "last": 0.0},
        "steady_state": lambda self, v, params, env: {"g": 0.0 * v, "last": 0.0 * v},
        "advance": lambda self, v, states, params, env, dt: {
            **states, "g": states["g"] * jnp.exp(-dt / params["tau"])},
        "current": lambda self, v, states, params: states["g"] * v,
        "on_spike": on_spike})


def test_an_on_spike_taking_the_event_time_is_named_t():
    """on_spike(states, params, weight, t) is given each event's time; a fourth parameter
    of another name, or a keyword-only t, is refused at insert by name (it failed inside
    the run's scan with a bare TypeError); a staticmethod or a default works."""
    ok = {"static": staticmethod(lambda states, params, weight, t: {
              "g": states["g"] + weight, "last": t}),
          "default": lambda self, states, params, weight, t=0.0: {
              "g": states["g"] + weight, "last": t}}
    for name, fn in ok.items():
        cell = dx.Cell.from_sections([{"length": 20.0, "diam": 20.0, "parent": -1,
                                       "region": "soma"}])
        cell.synapse(_event_synapse(f"ev_{name}", fn), cell.soma(), spike_times=[1.0],
                     weight=0.01, delay=0.2)
        cell.record(f"ev_{name}.last")
        assert abs(float(dx.simulate(cell, 2.0, 0.025).traces[0][-1]) - 1.2) < 1e-12
    for name, fn in (("time", lambda self, states, params, weight, time: dict(states)),
                     ("kwonly", lambda self, states, params, weight, *, t: dict(states))):
        cell = dx.Cell.from_sections([{"length": 20.0, "diam": 20.0, "parent": -1,
                                       "region": "soma"}])
        with pytest.raises(ValueError, match="on_spike needs .* make .* that parameter t"):
            cell.synapse(_event_synapse(f"ev_{name}", fn), cell.soma(), spike_times=[1.0])
