"""Which mechanism variables each NMODL block reads before setting, writes, and sets on
every path: what persists between blocks (NEURON keeps every variable per instance;
dendrax carries those one block sets and another reads as extra states) and which RANGE
ASSIGNED variables can be recorded (``assigned`` at v(t), ``solved`` at v(t + dt))."""

from __future__ import annotations

from typing import NamedTuple

from .description import (Assign, Call, Conserve, Description, Diff, If, Reaction,
                          SolveSteady, mentioned, names_in)


def walk(stmts):
    """Every statement of ``stmts``, those inside IF/ELSE too."""
    for s in stmts:
        yield s
        if isinstance(s, If):
            yield from walk(s.body)
            yield from walk(s.orelse)


def set_at(d: Description, stmts, name: str, seen=frozenset()) -> int:
    """The line of ``stmts`` that sets ``name`` first (an assignment, or the call of a
    PROCEDURE or FUNCTION that sets it), 0 if none does."""
    for s in walk(stmts):
        if isinstance(s, Assign) and s.name == name:
            return s.line
        if isinstance(s, Call) and s.name in d.functions and s.name not in seen:
            if set_at(d, d.functions[s.name].body, name, seen | {s.name}):
                return s.line
    return 0


def entry_points(d: Description) -> dict:
    """The blocks dendrax calls, {"INITIAL", "BREAKPOINT", "SOLVE", "NET_RECEIVE": (their
    statements, their local names)}, of those the file has."""
    out = {"INITIAL": (d.initial, set(d.initial_locals)),
           "BREAKPOINT": (d.breakpoint, set(d.breakpoint_locals))}
    if d.net_initial is not None:  # NEURON runs it after INITIAL, at finitialize
        body, local, _ = d.net_initial
        out["INITIAL"] = (d.initial + body, set(d.initial_locals) | set(local))
    if d.solve is not None:
        name = d.solve[0]
        if name in d.blocks:
            out["SOLVE"] = (d.blocks[name].body, set(d.blocks[name].locals))
        elif name in d.functions:
            out["SOLVE"] = ([Call(name, [], d.solve[2])], set())
    if d.net_receive is not None:
        args, body, local, _ = d.net_receive
        out["NET_RECEIVE"] = (body, set(args) | set(local))
    return out


def flow(d: Description, tracked: set, stmts, defined: set, local: set, memo: dict,
         reads: set, writes: set) -> set:
    """Adds to ``reads`` the ``tracked`` variables ``stmts`` read before setting them, to
    ``writes`` those they set (through the FUNCTIONs and PROCEDUREs they call too); returns
    ``defined`` with those they set on every path."""

    def expr(e):
        for kind, name in names_in(e):
            if kind == "call":
                call(name)
            elif name in tracked and name not in local and name not in defined:
                reads.add(name)

    def call(name):
        f = d.functions.get(name)
        if f is None:
            return
        if name not in memo:
            memo[name] = None  # recursion guard
            r, w = set(), set()
            sets = flow(d, tracked, f.body, set(), set(f.args) | set(f.locals) | {f.name}, memo,
                        r, w)
            memo[name] = (r, w, sets)
        if memo[name] is None:
            return
        r, w, sets = memo[name]
        reads.update(r - defined)
        writes.update(w)
        defined.update(sets)

    for s in stmts:
        if isinstance(s, Assign):
            expr(s.expr)
            if s.name not in local and s.name in tracked:
                writes.add(s.name)
                defined.add(s.name)
        elif isinstance(s, Call):
            for a in s.args:
                expr(a)
            call(s.name)
        elif isinstance(s, If):
            expr(s.cond)
            d1, d2 = set(defined), set(defined)
            flow(d, tracked, s.body, d1, local, memo, reads, writes)
            flow(d, tracked, s.orelse, d2, local, memo, reads, writes)
            defined |= d1 & d2
        elif isinstance(s, Diff):
            expr(s.expr)
        elif isinstance(s, Reaction):
            expr(s.kf)
            if s.kb is not None:
                expr(s.kb)
        elif isinstance(s, Conserve):
            expr(s.total)
        elif isinstance(s, SolveSteady):
            b = d.blocks.get(s.block)
            if b is not None:
                flow(d, tracked, b.body, defined, set(b.locals), memo, reads, writes)
            else:
                call(s.block)
    return defined


def overwritten_params(d: Description, params) -> set:
    """The PARAMETERs (of ``params``) that BREAKPOINT sets on every path and no block reads
    before setting or sets elsewhere (Migliore's cal2.mod ``ggk = ghk(v, cai, cao)``):
    ASSIGNED variables in effect, whose value NEURON never reads."""
    tracked = set(params)
    reads, elsewhere, certain = set(), set(), set()
    for where, (stmts, local) in entry_points(d).items():
        r, w = set(), set()
        defined = flow(d, tracked, stmts, set(), local, {}, r, w)
        reads |= r
        if where == "BREAKPOINT":
            certain = defined
        else:
            elsewhere |= w
    return (certain & tracked) - reads - elsewhere


def depends_on(d: Description, stmts, sources: set) -> set:
    """The variables ``stmts`` may compute from ``sources`` (``{"v"}``: from the membrane
    potential): through assignments, the IF conditions around them, and the FUNCTIONs
    and PROCEDUREs they call (what a PROCEDURE sets, where it reads any of them). The
    order of the statements is not followed: a superset, to refuse by."""
    out = set(sources)

    def scan(body, around: set) -> bool:
        grew = False
        for s in body:
            if isinstance(s, Assign):
                needs = mentioned([Call("", [s.expr], 0)], d.functions) | around
                if needs & out:  # the target, and what the FUNCTIONs it calls set
                    sets = {s.name} | {a.name for name in _calls(s.expr) if name in d.functions
                                       for a in walk_calls(d, d.functions[name].body)}
                    grew |= bool(sets - out)
                    out.update(sets)
            elif isinstance(s, Call):
                needs = mentioned([s], d.functions) | around
                if needs & out:
                    f = d.functions.get(s.name)
                    sets = {a.name for a in walk_calls(d, f.body)} if f else set()
                    grew |= bool(sets - out)
                    out.update(sets)
            elif isinstance(s, If):
                cond = mentioned([Call("", [s.cond], 0)], d.functions) | around
                grew |= scan(s.body, cond)
                grew |= scan(s.orelse, cond)
        return grew

    while scan(stmts, set()):
        pass
    return out


def _calls(e) -> set:
    """The names of the functions expression ``e`` calls."""
    return {name for kind, name in names_in(e) if kind == "call"}


def walk_calls(d: Description, stmts, seen=frozenset()):
    """Every assignment of ``stmts``, inside IF/ELSE and the PROCEDUREs and FUNCTIONs they
    call too."""
    for s in walk(stmts):
        if isinstance(s, Assign):
            yield s
        elif isinstance(s, Call) and s.name in d.functions and s.name not in seen:
            yield from walk_calls(d, d.functions[s.name].body, seen | {s.name})


class Persistence(NamedTuple):
    """What ``persistence`` finds.

    Attributes:
        carried: the variables carried between calls as extra states (sorted).
        kept: those of them BREAKPOINT sets (on every path, not from v) and only NET_RECEIVE
            reads, as NEURON's events read what the last BREAKPOINT left (BMTK's stp2syn
            ``Pmax = n*p0``): computed in the state update, from the states before it.
        problems: [(line, message)]: variables dendrax cannot carry.
        breakpoint_certain: what BREAKPOINT sets on every path.
        breakpoint_written: what BREAKPOINT sets on some path.
        solve_written: what the SOLVE'd block sets on some path.
        solve_certain: what it sets on every path.
        elsewhere_written: what INITIAL and NET_RECEIVE set on some path.
    """

    carried: list
    kept: list
    problems: list
    breakpoint_certain: set
    breakpoint_written: set
    solve_written: set
    solve_certain: set
    elsewhere_written: set


def persistence(d: Description, params, assigned, pool=None) -> Persistence:
    """The ASSIGNED variables and PARAMETERs (``assigned``, ``params``: the mechanism's, ion
    variables and specials left out) one block sets and another reads before setting:
    carried as states (Exp2Syn's ``factor``, set in INITIAL, read in NET_RECEIVE). An ion
    pool's (``pool``: its ion) BREAKPOINT runs in the state update, so what it carries
    (a running maximum, ``if (cai > cmax) {cmax = cai}``) is carried too; a current's
    BREAKPOINT has no side effects."""
    tracked = set(assigned) | set(params)
    reads, writes, certain = {}, {}, {}
    for where, (stmts, local) in entry_points(d).items():
        r, w = set(), set()
        certain[where] = flow(d, tracked, stmts, set(), local, {}, r, w)
        reads[where], writes[where] = r, w
    written = set().union(*writes.values())
    carried, kept, problems = [], [], []
    from_v = None
    for name in sorted(set().union(*reads.values()) & written):
        if name in params and not any(name in w for w in writes.values()):
            continue
        if name in writes["BREAKPOINT"] and not pool:
            wherever = [k for k, r in reads.items() if name in r]
            if d.point and wherever == ["NET_RECEIVE"] and name in certain["BREAKPOINT"]:
                if from_v is None:  # (and the ions' variables, which change every step)
                    ions = {var for u in d.ions.values() for var in u["read"]}
                    from_v = depends_on(d, d.breakpoint, {"v"} | ions)
                if name not in from_v:
                    carried.append(name)
                    kept.append(name)
                    continue
                problems.append((set_at(d, d.breakpoint, name),
                                 f"'{name}' is set in BREAKPOINT from v (or an ion's "
                                 "variables) and read in NET_RECEIVE: NEURON's events read "
                                 "the value of the last BREAKPOINT, at the previous step's "
                                 "v, which dendrax does not keep"))
                continue
            fix = ("set it on every path before BREAKPOINT reads it" if wherever ==
                   ["BREAKPOINT"] else "set it in the block that reads it, which changes "
                   "the results: NEURON reads the value of the last BREAKPOINT")
            problems.append((set_at(d, d.breakpoint, name),
                             f"'{name}' is set in BREAKPOINT and read in "
                             f"{' and '.join(wherever)} before being set there: "
                             f"dendrax computes currents without side effects ({fix})"))
            continue
        if name in params and "INITIAL" not in [k for k, w in writes.items() if name in w]:
            line = next((n for k, (stmts, _) in entry_points(d).items() if k != "INITIAL"
                         for n in [set_at(d, stmts, name)] if n), 0)
            problems.append((line, f"PARAMETER '{name}' is changed outside INITIAL"))
            continue
        carried.append(name)
    return Persistence(carried, kept, problems, certain["BREAKPOINT"], writes["BREAKPOINT"],
                       writes.get("SOLVE", set()), certain.get("SOLVE", set()),
                       writes["INITIAL"] | writes.get("NET_RECEIVE", set()))


def range_recordables(d: Description, assigned, carried, flows: Persistence, pool):
    """Which RANGE ASSIGNED variables can be recorded, as NEURON records them: (those
    ``assigned`` gives, set by BREAKPOINT on every path and not set again by the SOLVE'd
    block; those ``solved`` gives, set on every path of a cnexp or runge block or SOLVE'd PROCEDURE
    of a density mechanism; those INITIAL or NET_RECEIVE set and nothing else does, to be
    kept as states, recorded as their last value; {name: why not} for the rest). ``pool``:
    the ion whose inside concentration the mechanism writes, or None."""
    certain, written, solved_set = (flows.breakpoint_certain, flows.breakpoint_written,
                                    flows.solve_written)
    stepwise = d.solve is not None and not d.point and (
        d.solve[0] in d.functions or d.solve[1] in ("cnexp", "runge"))
    range_assigned, solved, last_set, unrecordable = [], [], [], {}
    for k in d.range_vars:
        if k not in assigned or k in d.nonspecific or k in carried:
            continue
        if k in solved_set and stepwise and k in flows.solve_certain and not (
                pool and k in certain):
            solved.append(k)
        elif k in solved_set and pool and k in certain:
            unrecordable[k] = ("an ion pool's BREAKPOINT and SOLVE'd block both set it: "
                               "dendrax does not keep it")
        elif k in solved_set:
            kind = d.blocks[d.solve[0]].kind if d.solve[0] in d.blocks else "PROCEDURE"
            how = ("on some paths only (NEURON keeps the last value set)" if stepwise else
                   "in a POINT_PROCESS (NEURON records the state update's value)"
                   if d.point else
                   "inside its euler step (on a copy of the variables)"
                   if d.solve[1] == "euler" else
                   f"inside its {'KINETIC scheme' if kind == 'KINETIC' else d.solve[1]} "
                   "solve (NEURON records its Newton iteration's value)")
            unrecordable[k] = f"its SOLVE'd block sets it {how}: dendrax does not keep it"
        elif pool:
            unrecordable[k] = ("an ion pool's recordables are its states (its "
                               "concentration): dendrax does not keep it")
        elif k in certain:
            range_assigned.append(k)
        elif k in written:
            unrecordable[k] = ("BREAKPOINT sets it on some paths only (NEURON keeps "
                               "the last value set): dendrax does not keep it")
        elif k in flows.elsewhere_written:  # (a synapse's release probability, set by events)
            last_set.append(k)
        else:
            unrecordable[k] = "BREAKPOINT does not set it: dendrax does not keep it"
    return range_assigned, solved, last_set, unrecordable
