"""Python source of a dendrax mechanism class from an NMODL Description.

The generated module is plain, readable Python: one class (a ``Channel``, ``IonPool`` or
``Synapse``) whose methods are the NMODL blocks, each statement on its own line with the
NMODL it came from nearby, so the code traces under ``jit`` and differentiates like any
JAX function. ``statements.StatementWriter`` writes the statements; ``Generator`` extends
it with the module around them: the header, the class's attributes and its methods.

Which NMODL block becomes which method:

    BREAKPOINT (after SOLVE)   current(v, states, params, env)   mA/cm2 per ion (nA: synapse)
                               assigned(...)                     the RANGE ASSIGNED it sets
    SOLVE ... METHOD m         advance(v, states, params, env, dt)
    INITIAL                    steady_state(v, params, env)
    NET_RECEIVE(weight)        on_spike(states, params, weight)
    FUNCTION / PROCEDURE       methods taking x (and returning a value: FUNCTION)

ASSIGNED variables (and PARAMETERs) that one block sets and another reads before setting
(Exp2Syn's ``factor``, set in INITIAL and read in NET_RECEIVE) are carried between calls as
extra states, as NEURON keeps them per instance.
"""

from __future__ import annotations

import warnings

from .description import (SPECIAL, Call, Description, NmodlError, SolveSteady, TOO_DEEP, global_use,
                          mentioned)
from . import naming
from .flow import (entry_points, flow, overwritten_params, persistence, range_recordables,
                   walk)
from .statements import StatementWriter

# the recorded name of the sum of a density mechanism's nonspecific currents where it has
# several (NONSPECIFIC_CURRENT i, il; or beside an unknown ion's current): each is recorded
# by its own name
NONSPECIFIC_SUM = "i_nonspecific"
NEWTON_ITERATIONS = 8
SELF_EVENTS = 8  # pending self-events (net_send) a synapse holds


class Generator(StatementWriter):
    """Builds the module source of one Description (``source()``)."""

    def __init__(self, d: Description):
        super().__init__(d)
        self.pool = next((ion for ion, u in d.ions.items() if f"{ion}i" in u["write"]), None)
        self.kind = "Synapse" if d.point else ("IonPool" if self.pool else "Channel")
        for name in d.constants:
            if naming.argument(name) == naming.class_name(d.name):
                self.problems.append((0, f"the CONSTANT or UNITS factor {name} has the "
                                         "mechanism's name: rename it"))
        specials = SPECIAL | self.ion_vars
        self.params = {k: p for k, p in d.params.items() if k not in specials}
        self.assigned = {k: u for k, u in d.assigned.items()
                         if k not in specials and k not in d.states and k not in self.params}
        for cur in d.nonspecific:
            self.assigned.setdefault(cur, "nA" if d.point else "mA/cm2")
        self.overwritten = sorted(overwritten_params(d, self.params))
        for k in self.overwritten:  # never read: not a parameter
            self.assigned[k] = self.params.pop(k).unit
        flows = persistence(d, self.params, self.assigned, self.pool)
        self.carried, self.breakpoint_certain = flows.carried, flows.breakpoint_certain
        self.kept = flows.kept  # BREAKPOINT's, for the next events (carried too)
        shared = [k for k in self.carried if k in d.global_vars]
        if shared:  # kept from call to call: NEURON's one value is every instance's
            warnings.warn(f"{d.source}: GLOBAL {', '.join(shared)}, kept from one call to the "
                          f"next, is one value per {'synapse' if d.point else 'compartment'} "
                          "in dendrax; NEURON's is one value that every instance of "
                          f"{d.name} reads and writes", UserWarning, stacklevel=4)
        self.problems += flows.problems
        # a current BREAKPOINT sets on some paths only would be 0 on the others, where
        # NEURON keeps the last value set
        currents = set(d.nonspecific) | {f"i{ion}" for ion, u in d.ions.items()
                                         if f"i{ion}" in u["write"]}
        stmts, local = entry_points(d)["BREAKPOINT"]
        for cur in sorted(currents - flow(d, currents, stmts, set(), local, {}, set(), set())):
            self.problems.append((0, f"BREAKPOINT sets the current {cur} on some paths only "
                                     "(NEURON keeps its last value on the others): set it on "
                                     "every path"))
        # a pool whose STATE is not <ion>i but copied to it by the SOLVE'd block (cai = ca,
        # Mainen's cad.mod): <ion>i is a state too, set where the file sets it
        if self.pool and f"{self.pool}i" not in d.states:
            self.carried.append(f"{self.pool}i")
        # NET_RECEIVE's arguments after the weight: NEURON keeps them per connection (a
        # Tsodyks-Markram synapse's y, z, u, tsyn); one connection per synapse here: states
        self.event_args = list(d.net_receive[0][1:]) if d.net_receive else []
        sends = d.net_receive is not None and any(
            isinstance(st, Call) and st.name == "net_send" for st in walk(d.net_receive[1]))
        self.self_events = SELF_EVENTS if sends else 0  # slots for pending net_send events
        self.event_time = d.net_receive is not None and (
            "t" in mentioned(d.net_receive[1]) or sends)
        self.range_assigned, self.solved, last_set, self.unrecordable = range_recordables(
            d, self.assigned, self.carried, flows, self.pool)
        self.carried += last_set  # kept as states, for recording
        if len(d.nonspecific) > 1:  # each recorded by its name, as NEURON's (a synapse's "i"
            #                         is its whole current); a channel's sum as NONSPECIFIC_SUM
            self.range_assigned += [c for c in d.nonspecific if c not in self.range_assigned
                                    and not (d.point and c == "i")]
        if d.point:  # a point process's current and NET_RECEIVE get no dt from dendrax
            for where in ("BREAKPOINT", "NET_RECEIVE"):
                for st in entry_points(self.d).get(where, ([], set()))[0]:
                    if "dt" in mentioned([st], self.d.functions):
                        self.problems.append((st.line, f"dt in {where} of a POINT_PROCESS is "
                                                       "not supported (dendrax gives it to "
                                                       "INITIAL and the SOLVE'd block only)"))
                        break

    # --- the module ---------------------------------------------------------------------
    def source(self) -> str:
        d = self.d
        if self.problems:
            raise NmodlError(d.source, sorted(self.problems))
        self.header()
        self.cls()
        self.emit(0, "")
        self.emit(0, "")
        self.emit(0, "# the NMODL this module was generated from")
        self.emit(0, "NMODL = " + repr(self.d.text))
        if self.problems:
            raise NmodlError(d.source, sorted(set(self.problems)))
        return "\n".join(self.lines) + "\n"

    def header(self):
        d = self.d
        e = self.emit
        title = f" ({_docstring(d.title)})" if d.title else ""
        e(0, f'"""dendrax mechanism {d.name}{title}, generated from '
             f'{_docstring(_short(d.source))} by '
             "dendrax.nmodl.")
        e(0, "")
        e(0, "Edit the NMODL and regenerate rather than this file. Units are NEURON's: mV, ms,")
        e(0, "S/cm2 and mA/cm2 (density mechanisms), uS and nA (point processes), mM.")
        e(0, '"""')
        e(0, "")
        e(0, "import jax.numpy as jnp")
        e(0, "")
        e(0, f"from dendrax.mechanisms.base import {self.kind}")
        e(0, "from dendrax.nmodl import runtime as rt")
        e(0, "")
        for name, (value, note) in self.constants.items():
            if name in d.used:
                e(0, f"{naming.argument(name)} = {value!r}  # {note}")

    def cls(self):
        d = self.d
        e = self.emit
        e(0, "")
        e(0, f"class {naming.class_name(d.name)}({self.kind}):")
        doc = _docstring(d.title) or f"{d.name}, from NMODL"
        e(1, f'"""{doc}"""')
        e(0, "")
        e(1, f"name = {d.name!r}")
        e(1, "params = {" + ", ".join(f"{k!r}: {p.default!r}" for k, p in self.params.items())
          + "}")
        units = {k: p.unit for k, p in self.params.items() if p.unit}
        units.update({k: u for k, u in d.states.items() if u})
        units.update({k: self.assigned[k] for k in self.range_assigned + self.solved
                      if self.assigned[k]})
        e(1, f"units = {units!r}")
        limits = {k: (p.low, p.high) for k, p in self.params.items() if p.low is not None}
        if limits:  # not ranges: NEURON does not enforce them either
            e(1, f"# PARAMETER limits, hints for NEURON's GUI that it does not enforce: {limits!r}")
        states = {k: 0.0 for k in d.states}
        for k in self.carried + self.event_args + self.queue_states():
            states[k] = 0.0
        e(1, f"states = {states!r}")
        if self.self_events:
            e(1, "# pending self-events (net_send): states net_send_t<k> (ms, +inf: free),")
            e(1, "# net_send_flag<k>; net_send_lost counts those that found no free slot")
            e(1, f"self_events = {self.self_events}")
        if self.event_args:
            e(1, "# NET_RECEIVE's arguments after the weight (NEURON's per connection; a")
            e(1, "# synapse has one connection): states")
            e(1, f"per_connection = {tuple(self.event_args)!r}")
        if self.carried:
            e(1, "# set in one block, read in another: carried between calls as states")
            e(1, f"carried = {tuple(self.carried)!r}")
        if self.overwritten:
            e(1, "# PARAMETERs of the file that BREAKPOINT sets: ASSIGNED variables in effect")
            e(1, f"overwritten = {tuple(self.overwritten)!r}")
        if self.unrecordable:
            e(1, "# RANGE variables that cannot be recorded, and why")
            e(1, f"unrecordable = {self.unrecordable!r}")
        ions = tuple(d.ions)
        if ions or not d.point:
            e(1, f"ions = {ions!r}")
        if self.pool:
            e(1, f"ion = {self.pool!r}")
        if d.nonspecific and not d.point:
            e(1, f"nonspecific = {d.nonspecific[0] if len(d.nonspecific) == 1 else NONSPECIFIC_SUM!r}")
        solved = d.blocks.get(d.solve[0]) if d.solve else None
        if solved is not None and (d.solve[1] in ("derivimplicit", "sparse", None)
                                   or any(isinstance(s, SolveSteady) for s in d.initial)):
            e(1, f"newton_iterations = {NEWTON_ITERATIONS}  # implicit steps: Newton iterations")
        elif any(isinstance(s, SolveSteady) for s in d.initial):
            e(1, f"newton_iterations = {NEWTON_ITERATIONS}")
        self.vars_method()
        self.initial_method()
        if d.point or not self.pool:
            self.current_method()
        self.advance_method()
        if d.point:
            self.spike_method()
        for b in d.blocks.values():
            self.block_method(b)
        for f in d.functions.values():
            self.function_method(f)

    def vars_method(self):
        d = self.d
        e = self.emit
        assigned = {k: 0.0 for k in self.assigned if k not in self.carried}
        e(0, "")
        e(1, "def _vars(self, v, states, params, env, dt=None):")
        e(2, '"""The variables a block sees: assigned (0 until set), parameters, states (and')
        e(2, 'carried values), v (mV), dt (ms), celsius (degC), diam, area, ions\' e, i, o."""')
        e(2, f"x = {assigned!r}")
        e(2, "x.update(params)")
        e(2, "x.update(states)")
        e(2, "x['v'] = v")
        for u in d.ions.values():
            for var in u["write"]:
                if var not in d.states:  # set by the blocks (a pool's read: below)
                    e(2, f"x[{var!r}] = 0.0")
        if d.point:  # NET_RECEIVE gets no environment (it reads none of it: refused)
            e(2, "if env is None:")
            e(3, "return x")
        e(2, "x['dt'] = env.get('dt') if dt is None else dt  # ms")
        if global_use(d, "celsius"):
            e(2, "x['celsius'] = env['celsius']")
        if global_use(d, "diam"):  # (not a LOCAL diam: it would count as reading the segment)
            e(2, "x['diam'] = env['diam']  # um, the segment's diameter (NEURON's seg.diam)")
        if global_use(d, "area"):
            e(2, "x['area'] = env['area']  # um2, the segment's membrane area (NEURON's area" +
              ("; 100 at a node without membrane)" if d.point else ")"))
        for ion, u in d.ions.items():
            for var in u["read"]:
                if var in d.states:
                    continue
                if var == f"i{ion}":
                    e(2, f"x[{var!r}] = env.get({var!r}, 0.0)  # mA/cm2, the ion's total current")
                else:
                    e(2, f"x[{var!r}] = env[{var!r}]")
        e(2, "return x")
        e(0, "")
        e(1, "def _states(self, x, ref):")
        e(2, "return {k: rt.like(ref, x[k]) for k in self.states}")

    def locals_line(self, names, args=()):
        init = {a: a for a in args}
        parts = [f"{a!r}: {naming.argument(a)}" for a in args]
        parts += [f"{n!r}: 0.0" for n in names if n not in init]
        self.emit(2, "l = {" + ", ".join(parts) + "}")

    def queue_states(self) -> list:
        """The states holding pending self-events (net_send), where there are any."""
        if not self.self_events:
            return []
        return [f"net_send_{what}{k}" for k in range(self.self_events) for what in ("t", "flag")
                ] + ["net_send_lost"]

    def initial_method(self):
        d = self.d
        e = self.emit
        e(0, "")
        if self.solved:  # what INITIAL leaves is also what the solved values are at t = 0
            e(1, "def steady_state(self, v, params, env):")
            e(2, '"""INITIAL: the states at potential v."""')
            e(2, "return self._states(self._initial(v, params, env), v)")
            e(0, "")
            e(1, "def _initial(self, v, params, env):")
            e(2, '"""INITIAL: the variables it leaves, at potential v."""')
        else:
            e(1, "def steady_state(self, v, params, env):")
            e(2, '"""INITIAL: the states at potential v."""')
        start = {k: 0.0 for k in d.states}
        start.update({k: 0.0 for k in self.carried if k not in self.params})
        start.update({k: 0.0 for k in self.event_args + self.queue_states()})
        # an ion's concentration that is a STATE starts at the ion's value, as NEURON's
        ion_states = [k for ion in d.ions for k in (f"{ion}i", f"{ion}o") if k in d.states]
        e(2, f"_start = {start!r}  # states start at 0, as NEURON's")
        for k in d.states:  # ... or at their x0 where the file declares it (NEURON's x0)
            if f"{k}0" in self.params and k not in ion_states:
                e(2, f"_start[{k!r}] = params[{k + '0'!r}]")
        for k in dict.fromkeys(ion_states):
            e(2, f"_start[{k!r}] = env[{k!r}]  # the ion's concentration (mM)")
        if self.self_events:
            e(2, "_start.update({f'net_send_t{k}': float('inf') for k in range(self.self_events)})"
                 "  # free")
        e(2, "x = self._vars(v, _start, params, env)")
        if "t" in d.used:
            e(2, "x['t'] = 0.0  # ms: INITIAL runs at t = 0")
        if d.initial_locals:
            self.locals_line(d.initial_locals)
        else:
            e(2, "l = {}")
        self.body(d.initial, self.ctx("initial", d.initial_locals), 2)
        if d.breakpoint_first:  # finitialize evaluates the (dropped) current, twice
            self.pool_breakpoint(first=True)
            self.pool_breakpoint(first=True)
        if d.net_initial is not None:  # NET_RECEIVE's INITIAL, NEURON's per connection
            body, local, _ = d.net_initial
            weight = d.net_receive[0][0]
            e(2, "# INITIAL inside NET_RECEIVE (NEURON runs it per connection, after INITIAL)")
            self.locals_line(local) if local else e(2, "l = {}")
            e(2, f"l[{weight!r}] = params['weight']  # the connection's weight")
            self.body(body, self.ctx("initial", set(local) | {weight}), 2)
        if self.kept:  # finitialize runs BREAKPOINT after INITIAL: what the events read first
            e(2, "b = self._breakpoint(v, self._states(x, v), params, env)")
            e(2, "x.update({" + ", ".join(f"{k!r}: b[{k!r}]" for k in self.kept) + "})")
        e(2, "return x" if self.solved else "return self._states(x, v)")

    def current_method(self):
        d = self.d
        e = self.emit
        e(0, "")
        e(1, "def _breakpoint(self, v, states, params, env):")
        e(2, '"""BREAKPOINT after its SOLVE: the variables it sets, at v and the states."""')
        e(2, "x = self._vars(v, states, params, env)")
        self.breakpoint_body()
        e(2, "return x")
        e(0, "")
        e(1, "def current(self, v, states, params, env):")
        nonspec = " + ".join(f"x[{n!r}]" for n in d.nonspecific)
        out = [f"{ion!r}: rt.like(v, x[{'i' + ion!r}])" for ion, u in d.ions.items()
               if f"i{ion}" in u["write"]]
        if d.point and not out:
            e(2, '"""BREAKPOINT: the current in nA (outward positive)."""')
            e(2, "x = self._breakpoint(v, states, params, env)")
            e(2, f"return rt.like(v, {nonspec})")
        else:
            unit = "currents in nA" if d.point else "current densities in mA/cm2"
            e(2, f'"""BREAKPOINT: {unit} by ion ("" nonspecific), outward."""')
            e(2, "x = self._breakpoint(v, states, params, env)")
            if nonspec:
                out.append(f"'': rt.like(v, {nonspec})")
            e(2, "return {" + ", ".join(out) + "}")
        if self.range_assigned:
            e(0, "")
            e(1, "def assigned(self, v, states, params, env):")
            e(2, '"""BREAKPOINT\'s RANGE ASSIGNED variables, as NEURON records them."""')
            e(2, "x = self._breakpoint(v, states, params, env)")
            e(2, "return {" + ", ".join(f"{k!r}: rt.like(v, x[{k!r}])"
                                        for k in self.range_assigned) + "}")

    def breakpoint_body(self):
        d = self.d
        self.locals_line(d.breakpoint_locals) if d.breakpoint_locals else self.emit(2, "l = {}")
        self.body(d.breakpoint, self.ctx("current", d.breakpoint_locals), 2)

    def advance_method(self):
        d = self.d
        e = self.emit
        if self.solved:  # the step's variables, for the states and for what it records
            e(0, "")
            e(1, "def advance(self, v, states, params, env, dt):")
            e(2, '"""SOLVE: the states one step dt (ms) later, at the new potential v."""')
            e(2, "return self._states(self._solve(v, states, params, env, dt), v)")
            e(0, "")
            e(1, "def solved(self, v, states, params, env, dt):")
            e(2, '"""The RANGE ASSIGNED variables the SOLVE\'d block sets, as NEURON records')
            e(2, 'them: at the new potential v, from the states before the step; at t = 0')
            e(2, '(dt None) what INITIAL, then BREAKPOINT, left at v (0 where neither sets')
            e(2, 'them)."""')
            e(2, "if dt is None:")
            e(3, "x = self._initial(v, params, env)")
            at_start = [k for k in self.solved if k in self.breakpoint_certain]
            if at_start:
                e(3, "b = self._breakpoint(v, states, params, env)")
                for k in at_start:
                    e(3, f"x[{k!r}] = b[{k!r}]  # BREAKPOINT runs after INITIAL")
            e(2, "else:")
            e(3, "x = self._solve(v, states, params, env, dt)")
            e(2, "return {" + ", ".join(f"{k!r}: rt.like(v, x[{k!r}])" for k in self.solved)
              + "}")
            e(0, "")
            e(1, "def _solve(self, v, states, params, env, dt):")
            e(2, '"""SOLVE: the variables after the step (states one step dt later)."""')
            done = "return x"
        else:
            e(0, "")
            e(1, "def advance(self, v, states, params, env, dt):")
            e(2, '"""SOLVE: the states one step dt (ms) later, at the new potential v."""')
            done = "return self._states(x, v)"
        e(2, "x = self._vars(v, states, params, env, dt)")
        if self.kept:  # NEURON's BREAKPOINT at this step's states, read by the next events
            e(2, "b = self._breakpoint(v, states, params, env)  # (not from v: any v will do)")
            e(2, "kept = {" + ", ".join(f"{k!r}: b[{k!r}]" for k in self.kept) + "}")
            done = "x.update(kept)\n" + "    " * 2 + done
        if d.breakpoint_first:  # NEURON ran them with the (dropped) current, at the step's
            #                     start: twice (its di/dv evaluates the current at v + 0.001, v)
            self.pool_breakpoint(first=True)
            self.pool_breakpoint(first=True)
        if d.solve is None:
            self.pool_breakpoint()
            e(2, done)
            return
        name, method, ln = d.solve
        if name in d.functions:
            e(2, f"self.{naming.method(name)}(x)  # SOLVE {name}: a PROCEDURE, run every step")
            self.pool_breakpoint()
            e(2, done)
            return
        b = d.blocks[name]
        states = tuple(self.block_states(b))
        if b.kind == "KINETIC" or method in ("derivimplicit", "runge", "euler"):
            e(2, "if env.get('secondorder', 0):  # NEURON halves dt for the whole state update")
            e(3, "x['dt'] = 0.5 * x['dt']")
        if b.kind == "KINETIC":
            e(2, f"rt.kinetic(self.{naming.block(b.kind, name)}, x, {states!r}, dt, self.newton_iterations, "
                 f"linear={self.linear(b)}, secondorder=env.get('secondorder', 0))")
        elif method == "cnexp":
            e(2, f"# SOLVE {name} METHOD cnexp: each state's exact exponential step, in order")
            e(2, "l = {" + ", ".join(f"{n!r}: 0.0" for n in b.locals) + "}")
            self.body(b.body, {**self.ctx("advance", b.locals, "cnexp")}, 2)
        elif method == "derivimplicit":
            e(2, f"rt.implicit(self.{naming.block(b.kind, name)}, x, {states!r}, dt, self.newton_iterations, "
                 "secondorder=env.get('secondorder', 0))")
        elif method == "euler":
            e(2, f"rt.euler(self.{naming.block(b.kind, name)}, x, {states!r}, dt)")
        elif method == "runge":
            e(2, f"rt.runge(self.{naming.block(b.kind, name)}, x, {states!r}, dt, "
                 "secondorder=env.get('secondorder', 0))")
        self.pool_breakpoint()
        e(2, done)

    def pool_breakpoint(self, first: bool = False):
        """A pool has no current: NEURON runs its BREAKPOINT's statements after the SOLVE,
        in the state update of the same step (a clamp such as Traub's cai ceiling); a pool
        whose current was dropped (``breakpoint_first``), before it (``first``)."""
        d = self.d
        if self.pool and not d.point and d.breakpoint and first == d.breakpoint_first:
            self.emit(2, "# BREAKPOINT after its SOLVE (a pool's: in the state update, as NEURON's)")
            self.locals_line(d.breakpoint_locals) if d.breakpoint_locals else self.emit(2, "l = {}")
            self.body(d.breakpoint, self.ctx("pool breakpoint", d.breakpoint_locals), 2)

    def spike_method(self):
        d = self.d
        e = self.emit
        e(0, "")
        e(1, "def on_spike(self, states, params, weight" + (", t" if self.event_time else "")
          + (", flag):" if self.self_events else "):"))
        if d.net_receive is None:
            e(2, '"""No NET_RECEIVE: events change nothing."""')
            e(2, "return dict(states)")
            return
        args, body, local, _ = d.net_receive
        at = " arriving at t (ms)" if self.event_time else ""
        e(2, f'"""NET_RECEIVE({", ".join(args)}): the states after an event of this '
             f'weight{at}."""')
        e(2, "x = self._vars(None, states, params, None)")
        if self.event_time:
            e(2, "x['t'] = t")
        flagged = "flag" in mentioned(body) and "flag" not in local
        e(2, "l = {" + ", ".join([f"{args[0]!r}: weight"] + [f"{n!r}: 0.0" for n in local]) + "}")
        if flagged:  # 0 for a spike, net_send's flag for a self-event
            e(2, "l['flag'] = flag" if self.self_events else "l['flag'] = 0.0  # spikes only")
        self.body(body, self.ctx("net_receive", {args[0]} | set(local) | ({"flag"} if flagged
                                                                       else set())), 2)
        e(2, "return self._states(x, weight)")

    def block_method(self, b):
        d = self.d
        e = self.emit
        method = None
        if d.solve and d.solve[0] == b.name:
            method = d.solve[1]
        steady = [s for s in walk(d.initial) if isinstance(s, SolveSteady) and s.block == b.name]
        if method == "cnexp" and not steady:
            return  # inlined in advance
        states = self.block_states(b)
        e(0, "")
        if b.kind == "KINETIC":
            e(1, f"def {naming.block(b.kind, b.name)}(self, x, s=None):")
            e(2, f'"""KINETIC {b.name}: d/dt of {", ".join(states)} (per ms) and the')
            e(2, "conservation residuals: the reactions' rates (and << fluxes) from the")
            e(2, 'variables in x, their reactants from s (default x)."""')
            e(2, "s = x if s is None else s")
        else:
            e(1, f"def {naming.block(b.kind, b.name)}(self, x):")
            e(2, f'"""DERIVATIVE {b.name}: d/dt of {", ".join(states)} (per ms) at the states in x."""')
        e(2, "l = {" + ", ".join(f"{n!r}: 0.0" for n in b.locals) + "}")
        e(2, "x.update({" + ", ".join(f"{s + chr(39)!r}: 0.0" for s in states) + "})")
        if b.kind == "KINETIC":
            e(2, "cons = {}")
        ctx = self.ctx("block", b.locals, method or "derivimplicit")
        if b.kind == "KINETIC":
            ctx["s"] = "s"
        self.body(b.body, ctx, 2)
        derivs = "{" + ", ".join(f"{s!r}: x[{s + chr(39)!r}]" for s in states) + "}"
        e(2, f"return {derivs}, cons" if b.kind == "KINETIC" else f"return {derivs}")

    def function_method(self, f):
        e = self.emit
        args = [naming.argument(a) for a in f.args]
        e(0, "")
        e(1, f"def {naming.method(f.name)}(self, x{''.join(', ' + a for a in args)}):")
        e(2, f'"""{f.kind} {f.name}({", ".join(f.args)})."""')
        local = list(f.locals) + ([f.name] if f.kind == "FUNCTION" else [])
        self.locals_line(local, f.args)
        self.body(f.body, self.ctx("function", set(local) | set(f.args), "derivimplicit"), 2)
        if f.kind == "FUNCTION":
            e(2, f"return l[{f.name!r}]")


def _docstring(text: str) -> str:
    """``text`` as it can stand inside a triple-quoted docstring (a TITLE's quotes and
    backslashes: "A-type" -> 'A-type')."""
    return text.replace("\\", "/").replace('"', "'")


def _short(source: str) -> str:
    return source.replace("\\", "/").rsplit("/", 1)[-1]


def generate(d: Description) -> str:
    """The Python module source of the mechanism ``d`` describes (NmodlError listing the
    problems when something cannot be generated)."""
    try:
        code = Generator(d).source()
        compile(code, d.source, "exec")  # Python's own limits on nesting
    except (RecursionError, SyntaxError, MemoryError):
        raise NmodlError(d.source, [(0, TOO_DEEP)]) from None
    return code


__all__ = ["generate", "Generator"]
