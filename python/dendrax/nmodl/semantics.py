"""Refusals of an NMODL file that need the whole of it: names, ions, variables used but
not declared, recursion (``check``, run by ``dendrax.nmodl.describe`` after its walk)."""

from __future__ import annotations

import warnings

from ..mechanisms.base import IONS
from ..names import check_name
from .description import (BUILTINS, RESERVED_FUNCTIONS, SPECIAL, Assign, Call, Description,
                          If, Param, global_use, mentioned)
from .flow import walk


# NEURON's values of an ion it did not know before (its DEF_ioni, DEF_iono, DEF_eion)
# NEURON's methods for a DERIVATIVE block that dendrax runs (rt.<method> in runtime.py)
DERIVATIVE_METHODS = ("cnexp", "derivimplicit", "euler", "runge")
NEW_ION_DEFAULTS = {"i": (1.0, "mM"), "o": (1.0, "mM"), "e": (0.0, "mV")}


def _time_used(d: Description) -> str:
    """Where ``t`` is read outside INITIAL and NET_RECEIVE (the blocks dendrax gives it
    to: 0 at initialization, the event's time), "" if nowhere: BREAKPOINT, the SOLVE'd
    blocks, FUNCTIONs and PROCEDUREs (dendrax's are time-invariant)."""
    if "t" not in d.used:
        return ""
    scopes = [(f"{f.kind} {f.name}", f.body, set(f.args) | set(f.locals))
              for f in d.functions.values()]
    scopes += [(f"{b.kind} {b.name}", b.body, set(b.locals)) for b in d.blocks.values()]
    scopes += [("BREAKPOINT", d.breakpoint, set(d.breakpoint_locals))]
    for where, body, local in scopes:
        if "t" in mentioned(body) and "t" not in local:
            return where
    return ""


def _unknown_ions(d: Description) -> None:
    """An ion dendrax does not know, which the file only READs (BBP's ``USEION ttx READ
    ttxo, ttxi``: a flag for TTX block) or whose current it WRITEs (Poirazi's and
    Migliore's ``USEION h READ eh WRITE ih``: an Ih current with its own reversal), is
    made the mechanism's own, with a warning: what it reads become parameters of the
    mechanism at NEURON's values for a new ion (1 mM inside and out, reversal 0 mV; a
    value the file's PARAMETER block gives is not used, as in NEURON, where the name is
    the ion's), the current it writes a nonspecific current (recorded as
    ``<mechanism>.i<ion>``). NEURON's ion is one value per segment shared by every
    mechanism; these are the mechanism's own. An unknown ion whose concentration is
    written, whose current is read, or whose reversal is read with a concentration
    (NEURON then computes it from them) is left to ``check`` to refuse."""
    for ion in [i for i, u in d.ions.items() if i not in IONS]:
        kinds = {f"{ion}i": "i", f"{ion}o": "o", f"e{ion}": "e"}
        read, write = list(d.ions[ion]["read"]), list(d.ions[ion]["write"])
        line = d.ions[ion]["line"]
        if not set(read) <= set(kinds) or not set(write) <= {f"i{ion}"} or (
                f"e{ion}" in read and len(read) > 1):
            continue  # refused by check
        ignored = []
        for var in read:
            default, unit = NEW_ION_DEFAULTS[kinds[var]]
            given = d.params.pop(var, None)
            if given is not None and given.default != default:
                ignored.append(f"{var} = {given.default:g}")
            unit = d.assigned.pop(var, None) or (given.unit if given else None) or unit
            d.params[var] = Param(default, unit)
            d.foreign_reads[var] = ion
        d.nonspecific += [v for v in write if v not in d.nonspecific]
        del d.ions[ion]
        if not read:
            how = ""
        elif d.point:
            how = f", set per synapse (cell.synapse({d.name!r}, loc, {read[0]}=...))"
        else:
            how = f", set per mechanism (cell.set('{d.name}.{read[0]}', ...))"
        are = "is a parameter" if len(read) == 1 else "are parameters"
        said = [f"{', '.join(read)} {are} of {d.name} at NEURON's values for a new "
                f"ion (1 mM, 0 mV){how}"] if read else []
        said += [f"the file's {', '.join(ignored)} is not used, as in NEURON, where the name "
                 "is the ion's: set it as said to apply it"] if ignored else []
        said += [f"its current i{ion} is a nonspecific current of {d.name}"] if write else []
        what = "read and written" if read and write else "written" if write else "only read"
        warnings.warn(f"{d.source}:{line}: USEION {ion}, an ion dendrax does not know, {what}: "
                      f"{'; '.join(said)}; not an ion that other mechanisms share",
                      UserWarning, stacklevel=3)


def _dummy_currents(d: Description) -> None:
    """A density mechanism writing a concentration whose NONSPECIFIC_CURRENTs are 0
    wherever they are set (Migliore's cacumm.mod: "i is a dummy current needed to force a
    BREAKPOINT") is an ion pool: the currents are dropped, with a warning. NEURON runs its
    BREAKPOINT's other statements with the currents, at the step's start: dendrax at the
    start of the state update, before the SOLVE (the same states; refused where they read
    v or an ion's current, which differ there)."""
    if d.point or not d.nonspecific or not any(f"{ion}i" in u["write"]
                                               for ion, u in d.ions.items()):
        return
    blocks = [d.initial, d.breakpoint, *(b.body for b in d.blocks.values()),
              *(f.body for f in d.functions.values())]
    for cur in list(d.nonspecific):
        sets = [s for body in blocks for s in walk(body) if isinstance(s, Assign)
                and s.name == cur]
        if sets and all(s.expr == ("num", 0.0) for s in sets):
            d.nonspecific.remove(cur)
            d.breakpoint_first = True
            warnings.warn(f"{d.source}:{sets[0].line}: NONSPECIFIC_CURRENT {cur} is 0 wherever "
                          f"it is set: {d.name} is an ion pool without it; its BREAKPOINT "
                          "statements run at the start of the state update, before its SOLVE, "
                          "where NEURON runs them with the currents", UserWarning, stacklevel=3)


def _names(d: Description, problem, lines) -> None:
    """Names that mean two things, refused as NEURON's nocmodl refuses them: a USEION
    variable that is not its ion's (then dropped: refused once), a FUNCTION or PROCEDURE
    named as a reserved function (exp: every call of it went to the file's) or as a
    variable; and an ion's current that is also a NONSPECIFIC_CURRENT (nocmodl takes it
    and counts the current twice)."""
    for ion, use in d.ions.items():
        own = (f"e{ion}", f"{ion}i", f"{ion}o", f"i{ion}")
        for verb in ("read", "write"):
            for var in use[verb]:
                if var not in own:
                    problem(use["line"], f"USEION {ion} {verb.upper()} {var}: {var} is not a "
                                         f"variable of the ion {ion} (its variables: "
                                         f"{', '.join(own)})")
            use[verb] = [v for v in use[verb] if v in own]
        for var in use["read"] + use["write"]:
            if var in d.nonspecific:
                problem(lines.find(r"\bNONSPECIFIC_CURRENT\b"),
                        f"{var} is USEION {ion}'s {'current' if var == f'i{ion}' else 'variable'} "
                        "and a NONSPECIFIC_CURRENT: declare it once")
    variables = {"PARAMETER": d.params, "STATE": d.states, "ASSIGNED": d.assigned,
                 "CONSTANT": d.constants, "RANGE variable": d.range_vars,
                 "GLOBAL variable": d.global_vars}
    for name, f in d.functions.items():
        if name in RESERVED_FUNCTIONS:
            problem(f.line, f"{f.kind} {name}: {name} is a reserved function name (in NEURON "
                            "too): rename it")
            continue
        what = next((k for k, table in variables.items() if name in table), None)
        if what is None and any(name in u["read"] + u["write"] for u in d.ions.values()):
            what = "USEION variable"
        if what is None and name in d.nonspecific:
            what = "NONSPECIFIC_CURRENT"
        if what is not None:
            problem(f.line, f"{name} is both a {what} and a {f.kind}: rename one")


def check(d: Description, problem, lines) -> None:
    """Refusals that need the whole file: names, ions, solve methods, variables (a RANGE
    or GLOBAL name declared nowhere else is dropped from ``d``, with a warning).

    Args:
        d: the walk's Description.
        problem: ``(line, message) -> None``, records a refusal.
        lines: where words are (``find_word(name) -> line``, 0 when absent).
    """
    if not d.name:
        problem(0, "no SUFFIX or POINT_PROCESS in the NEURON block")
        return
    if d.artificial:  # refused by itself: what a density mechanism needs does not apply
        return
    try:  # a name dendrax keeps for its own quantities (cell.insert refuses it too)
        check_name(d.name, "synapse" if d.point else "mechanism")
    except ValueError as err:
        problem(lines.find(r"\b(SUFFIX|POINT_PROCESS)\b"), str(err))
    _names(d, problem, lines)
    _unknown_ions(d)
    _dummy_currents(d)
    known_ions = sorted(IONS)
    for ion, use in d.ions.items():
        ln = use["line"]
        if ion not in IONS and f"e{ion}" in use["read"] and len(use["read"]) > 1:
            problem(ln, f"USEION {ion} READ {', '.join(use['read'])}: NEURON computes e{ion} "
                        f"from {ion}i and {ion}o (Nernst) where a mechanism reads them, and "
                        f"dendrax does not for an ion it does not know: read e{ion} or the "
                        "concentrations, not both")
            continue
        if ion not in IONS:
            bad = [v for v in use["write"] if v != f"i{ion}"] or [f"i{ion}"]
            verb = "WRITE" if bad[0] in use["write"] else "READ"
            problem(ln, f"USEION {ion} {verb} {bad[0]}: dendrax knows the ions "
                        f"{', '.join(known_ions)}; of another ion a mechanism may read "
                        f"e{ion}, {ion}i, {ion}o and write i{ion} (its own parameters and "
                        "current), not write its concentration or read its current")
            continue
        if use["valence"] is not None and use["valence"] != IONS[ion].charge:
            problem(ln, f"USEION {ion} VALENCE {use['valence']:g}: dendrax's {ion} has charge "
                        f"{IONS[ion].charge}")
        for var in use["write"]:
            if var not in (f"i{ion}", f"{ion}i"):
                problem(ln, f"USEION {ion} WRITE {var} is not supported (a mechanism writes "
                            f"i{ion} or {ion}i)")
        for var in use["read"]:
            if var == f"i{ion}" and f"{ion}i" not in use["write"]:
                problem(ln, f"USEION {ion} READ {var}: only an ion pool (WRITE {ion}i) can read "
                            "the ion's current")
    pools = [ion for ion, u in d.ions.items() if f"{ion}i" in u["write"]]
    writes_current = [ion for ion, u in d.ions.items() if f"i{ion}" in u["write"]] + d.nonspecific
    if pools and d.point:
        problem(d.ions[pools[0]]["line"], f"a POINT_PROCESS writing {pools[0]}i (an ion pool) "
                                          "is not supported: a density mechanism (SUFFIX) "
                                          "changes concentrations")
    elif pools:
        ion = pools[0]
        ln = d.ions[ion]["line"]
        if len(pools) > 1:
            problem(ln, f"a mechanism writing several concentrations ({pools}) is not supported")
        if writes_current:
            problem(ln, "a mechanism writing both a concentration and a current is not supported")
        moved = sorted(mentioned(d.breakpoint, d.functions) & ({"v"} | {
            f"i{i}" for i in d.ions})) if d.breakpoint_first else []
        if moved:
            problem(lines.find(r"\bBREAKPOINT\b"),
                    f"{d.name}'s BREAKPOINT, run with its dropped current in NEURON, reads "
                    f"{', '.join(moved)}: dendrax runs it in the state update, where they "
                    "differ")
        if d.before_solve:
            problem(d.before_solve, "statements before SOLVE in an ion pool's BREAKPOINT are "
                                    "not supported: move them into the SOLVE'd block")
        if f"{ion}i" not in d.states and not solved_sets(d, f"{ion}i"):
            problem(ln, f"WRITE {ion}i needs {ion}i to be a STATE, or set from one by the "
                        f"SOLVE'd block ({ion}i = {ion}, as Mainen's cad.mod): dendrax's ion "
                        "pools integrate it")
    elif not d.point and not writes_current:
        problem(lines.find(r"\bSUFFIX\b"), "the mechanism writes no current and no concentration "
                   "(one that only keeps a value, such as a peak-voltage recorder, is a "
                   "recording in dendrax: cell.record(\"v\", locations, reduce=\"max\"))")
    if d.point and not writes_current and not d.refused_current:
        problem(0, "a POINT_PROCESS needs a current: a NONSPECIFIC_CURRENT or USEION ... WRITE "
                   "i<ion> (nA)")
    # the SOLVE statement and the solved block
    if d.solve is not None:
        block, method, ln = d.solve
        if block in d.blocks:
            kind = d.blocks[block].kind
            if kind == "DERIVATIVE" and method not in DERIVATIVE_METHODS:
                how = ", ".join(DERIVATIVE_METHODS[:-1]) + f" or {DERIVATIVE_METHODS[-1]}"
                problem(ln, f"SOLVE {block} METHOD {method}: DERIVATIVE blocks are solved with "
                            f"{how}" if method else f"SOLVE {block}: name the METHOD ({how})")
            if kind == "KINETIC" and method not in (None, "sparse"):
                problem(ln, f"SOLVE {block} METHOD {method}: KINETIC blocks are solved with sparse")
        elif block in d.functions and d.functions[block].kind == "PROCEDURE":
            if method is not None:
                problem(ln, f"SOLVE {block} METHOD {method}: a PROCEDURE is solved without METHOD")
        elif block not in d.refused_blocks:
            problem(ln, f"SOLVE {block}: no DERIVATIVE, KINETIC or PROCEDURE named {block}")
    elif d.states and not pools:
        changing = [b for b in d.blocks.values()]
        if changing:
            problem(0, "STATE variables but no SOLVE in BREAKPOINT")
    # variables
    declared = (set(d.params) | set(d.states) | set(d.assigned) | set(d.constants)
                | {v for u in d.ions.values() for v in u["read"] + u["write"]}
                | set(d.nonspecific) | SPECIAL | {"PI"})
    for name, units in (("FARADAY", "(faraday) (coulombs)"), ("R", "(k-mole) (joule/degC)")):
        # as NEURON 9's nocmodl (a block's LOCAL or argument R is another name: Tsodyks-
        # Markram files' NET_RECEIVE(weight, R, u, tlast))
        if name not in declared and global_use(d, name):
            problem(lines.find_word(name), f"'{name}' is used but not declared: define it in "
                                           f"the UNITS block, e.g. {name} = {units}")
            declared.add(name)
    timed = _time_used(d)
    if timed:
        # where it is used, not in its INDEPENDENT declaration (one line or several)
        start = lines.find(r"\bINDEPENDENT\b")
        end = lines.find(r"\}", start) if start else 0
        ln = lines.find_word("t")
        while ln and start <= ln <= end:
            ln = lines.find_word("t", ln + 1)
        problem(ln, f"'t' (time) in {timed} is not supported: dendrax mechanisms are "
                    "time-invariant functions of their states (t is given to INITIAL, 0, "
                    "and to NET_RECEIVE, the event's time)")
    # NET_RECEIVE's flag: 0 for a spike, net_send's for a self-event; NEURON has none
    # elsewhere (its build fails)
    flag = {"flag"} if d.net_receive is not None and "flag" in mentioned(d.net_receive[1]) \
        and "flag" not in declared else set()
    elsewhere = [d.initial, d.breakpoint] + [b.body for b in d.blocks.values()] + [
        f.body for f in d.functions.values() if "flag" not in f.args + f.locals]
    if flag and any("flag" in mentioned(body) for body in elsewhere):
        problem(lines.find_word("flag"), "'flag' outside NET_RECEIVE (NEURON's is "
                                         "NET_RECEIVE's only)")
    for name in sorted(d.used - declared - set(d.functions) - set(BUILTINS) - flag):
        if not any(name in f.args + f.locals for f in d.functions.values()) and \
                not any(name in b.locals for b in d.blocks.values()) and \
                name not in d.initial_locals + d.breakpoint_locals and \
                not (d.net_receive and name in d.net_receive[0] + d.net_receive[2]):
            problem(lines.find_word(name), f"'{name}' (a KINETIC reaction's flux) is not "
                                           "supported" if name in ("f_flux", "b_flux") else
                    f"'{name}' is used but not declared")
    for name, ln in d.valued.items():
        f = d.functions.get(name)
        if f is not None and f.kind == "PROCEDURE":
            problem(ln, f"PROCEDURE {name} is used as a value (NEURON gives 0): make it a "
                        "FUNCTION, or call it as a statement")
    for name, cycle in _recursion(d.functions).items():
        problem(d.functions[name].line, f"{d.functions[name].kind} {name} calls itself "
                                        f"({' -> '.join(cycle)}): recursion is not supported "
                                        "(dendrax inlines FUNCTIONs and PROCEDUREs when it traces)")
    # a v that BREAKPOINT moves: NEURON evaluates BREAKPOINT at v + 0.001 and at v for its
    # di/dv, so a move there (a conditional one above all) is not what dendrax's exact
    # derivative sees; the SOLVE'd block and INITIAL may move v (vnudgex.mod)
    for ln, where in _assigns_v(d, d.breakpoint, set(d.breakpoint_locals), "", set()):
        problem(ln, f"BREAKPOINT assigns v{where}: NEURON takes the current's di/dv as (i(v + "
                    "0.001) - i(v)) / 0.001, which a moved v changes; move v where the SOLVE'd "
                    "block or INITIAL computes the rates")
    if d.net_receive is not None:
        args, body, _, ln = d.net_receive
        if not d.point:
            problem(ln, "NET_RECEIVE in a density mechanism")
        if not args:
            problem(ln, "NET_RECEIVE without arguments: dendrax delivers a weight per event "
                        "(NET_RECEIVE(weight))")
        declared_here = set(d.params) | set(d.states) | set(d.assigned) | set(d.constants)
        for name in args[1:]:  # kept per connection: a synapse's states (one connection each)
            if name in declared_here or name in SPECIAL or name in d.functions:
                problem(ln, f"the NET_RECEIVE argument {name} has the name of a variable of "
                            f"the mechanism: NEURON's NET_RECEIVE then reads and sets the "
                            f"argument (kept per connection), never the variable {name}; "
                            "rename one of them")
        # what a synapse's on_spike is not given: v, its compartment, its ions
        unseen = {"v", "celsius", "diam", "area"} | {
            var for u in d.ions.values() for var in u["read"] + u["write"]} - set(d.states)
        for name in sorted(unseen & mentioned(body) - set(args) - set(d.net_receive[2])):
            problem(ln, f"'{name}' in NET_RECEIVE is not supported")
        todo, seen = list(_called(body)), set()  # through the FUNCTIONs and PROCEDUREs
        while todo:
            f = d.functions.get(todo.pop())
            if f is None or f.name in seen:
                continue
            seen.add(f.name)
            for name in sorted(unseen & mentioned(f.body) - set(f.args) - set(f.locals)):
                problem(ln, f"'{name}' in NET_RECEIVE (through {f.kind} {f.name}) is not "
                            "supported")
            todo += _called(f.body)
    stray = [name for name in d.range_vars + d.global_vars if name not in declared]
    for name in dict.fromkeys(stray):  # nocmodl compiles such a file: the name is ignored
        warnings.warn(f"{d.source}:{lines.find_word(name)}: RANGE/GLOBAL {name} is declared "
                      "nowhere else in the file: ignored, as NEURON's nocmodl ignores it",
                      UserWarning, stacklevel=2)
    d.range_vars = [n for n in d.range_vars if n not in stray]
    d.global_vars = [n for n in d.global_vars if n not in stray]
    for name in d.params:
        if name in ("weight", "delay") and d.point:
            problem(lines.find_word(name), f"PARAMETER '{name}' clashes with dendrax's "
                                             "synapse weight/delay: rename it")


def _assigns_v(d: Description, stmts, local: set, where: str, seen: set) -> list:
    """(line, " (in PROCEDURE p)") of each assignment to the segment's v in ``stmts``, and
    in the FUNCTIONs and PROCEDUREs they call (where v is not their own argument or
    LOCAL)."""
    out = []
    for s in stmts:
        if isinstance(s, Assign) and s.name == "v" and "v" not in local:
            out.append((s.line, where))
        elif isinstance(s, If):
            out += _assigns_v(d, s.body + s.orelse, local, where, seen)
    for name in sorted(_called(stmts) - seen):
        f = d.functions.get(name)
        if f is not None:
            seen.add(name)
            out += _assigns_v(d, f.body, set(f.args) | set(f.locals), f" (in {f.kind} {name})",
                              seen)
    return out


def _called(node) -> set:
    """The FUNCTIONs and PROCEDUREs called anywhere in a statement list or expression."""
    if isinstance(node, tuple) and node[:1] == ("call",):
        return {node[1]} | _called(node[2])
    if isinstance(node, Call):
        return {node.name} | _called(node.args)
    if isinstance(node, (list, tuple)):
        return set().union(*(_called(x) for x in node))
    if hasattr(node, "__dataclass_fields__"):
        return _called([getattr(node, f) for f in node.__dataclass_fields__])
    return set()


def _recursion(functions: dict) -> dict:
    """{name: the call cycle from it back to itself} for every function that recurses."""
    calls = {name: _called(f.body) & set(functions) for name, f in functions.items()}
    found = {}
    for start in functions:
        stack = [(start, [start])]
        seen = set()
        while stack:
            name, path = stack.pop()
            for callee in sorted(calls[name]):
                if callee == start:
                    found[start] = path + [start]
                    stack = []
                    break
                if callee not in seen:
                    seen.add(callee)
                    stack.append((callee, path + [callee]))
    return found


def solved_sets(d: Description, name: str) -> bool:
    """Whether what SOLVE runs (its DERIVATIVE / KINETIC block or PROCEDURE, and the
    PROCEDUREs and FUNCTIONs that calls, in statements or expressions) assigns ``name``: an
    ion pool whose STATE is not <ion>i but copied to it (``cai = ca``)."""
    if d.solve is None:
        return False
    solved = d.blocks.get(d.solve[0]) or d.functions.get(d.solve[0])
    seen: set = set()

    def calls(e):
        if isinstance(e, tuple) and e and e[0] == "call":
            yield e[1]
        for part in (e[1:] if isinstance(e, tuple) else ()):
            if isinstance(part, (tuple, list)):
                for sub in (part if isinstance(part, list) else [part]):
                    yield from calls(sub)

    def sets(stmts) -> bool:
        for st in stmts:
            if isinstance(st, Assign) and st.name == name:
                return True
            if isinstance(st, If) and (sets(st.body) or sets(st.orelse)):
                return True
            called = [st.name] if isinstance(st, Call) else []
            for e in vars(st).values():  # expressions, and a CALL's argument list
                for x in (e if isinstance(e, list) else [e]):
                    called += list(calls(x)) if isinstance(x, tuple) else []
            for f in called:
                if f in d.functions and f not in seen:
                    seen.add(f)
                    if sets(d.functions[f].body):
                        return True
        return False

    return solved is not None and sets(solved.body)
