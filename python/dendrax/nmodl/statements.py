"""NMODL statements and expressions as Python lines, for the methods of a generated class.

Variables live in a dict ``x`` (parameters, states, assigned variables, what the
compartment provides) and a block's LOCALs in ``l``; CONSTANTs are module-level names.
An expression becomes one Python expression: operators keep NMODL's precedence,
comparisons and logic are numbers (1.0 or 0.0, as C's), builtins are ``jnp``/``rt``
functions (``FUNCS``), FUNCTIONs and PROCEDUREs are calls of the class's methods.

A statement becomes one line or a few, at the depth it is written at:

    x = e                 x['x'] = ... (l['x'] for a LOCAL)
    p(a)                  self.p(x, a): a PROCEDURE is a method of the class
    net_send(d, f)        rt.net_send: a self-event at t + d, flag f (in NET_RECEIVE)
    IF (c) {...} ELSE     both branches run, on copies of x and l (``rt.fork``); the
                          result is selected with ``jnp.where`` (``rt.join``), so the
                          code traces under ``jit`` and differentiates like any JAX function
    x' = e                x["x'"] = ... (the DERIVATIVE block's d/dt), or under METHOD
                          cnexp the exact exponential step (``rt.cnexp``)
    ~ a <-> b (kf, kb)    the reaction's flux f, taken from each reactant's d/dt and added
                          to each product's (``<<``: a flux added to d/dt)
    CONSERVE              a residual that replaces the equation of one of its states
    SOLVE b STEADYSTATE   the steady state of block b by Newton iterations (INITIAL)

What cannot be translated is collected in ``problems`` (line, message), not raised, so
that a file's problems are reported at once.
"""

from __future__ import annotations

import math

from .description import (Assign, Call, Conserve, Description, Diff, If, Reaction,
                          SolveSteady, mentioned)
from . import naming
from .flow import walk

FUNCS = {"exp": "rt.exp", "log": "jnp.log", "log10": "jnp.log10", "fabs": "jnp.abs",
         "sqrt": "jnp.sqrt", "pow": "jnp.power", "sin": "jnp.sin", "cos": "jnp.cos",
         "tan": "jnp.tan", "asin": "jnp.arcsin", "acos": "jnp.arccos", "atan": "jnp.arctan",
         "atan2": "jnp.arctan2", "sinh": "jnp.sinh", "cosh": "jnp.cosh", "tanh": "jnp.tanh",
         "floor": "jnp.floor", "ceil": "jnp.ceil", "fmin": "jnp.minimum", "fmax": "jnp.maximum",
         "exprelr": "rt.exprelr", "expm1": "jnp.expm1", "fmod": "jnp.fmod"}
# Python operator precedence (higher binds tighter)
PREC = {"||": 1, "&&": 2, "not": 3, "<": 4, ">": 4, "<=": 4, ">=": 4, "==": 4, "!=": 4,
        "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7, "^": 8}


class StatementWriter:
    """Python lines (``lines``) of the NMODL statements of one Description; what cannot be
    translated goes to ``problems``."""

    def __init__(self, d: Description):
        self.d = d
        self.problems: list[tuple[int, str]] = []
        self.lines: list[str] = []
        self.counter = 0
        self.constants = dict(d.constants)
        if "PI" in d.used and "PI" not in self._declared_vars():
            self.constants["PI"] = (math.pi, "pi")
        self.ion_vars = {v for u in d.ions.values() for v in u["read"] + u["write"]}

    def _declared_vars(self):
        d = self.d
        return set(d.params) | set(d.states) | set(d.assigned) | set(d.constants)

    def ctx(self, where, local=(), method=None):
        """The context statements are written in: ``x`` and ``l`` the names of the
        variables' and LOCALs' dicts (the copies, inside an IF), ``local`` the LOCAL names,
        ``where`` the block (what it may assign), ``method`` the SOLVE's METHOD (how a
        ``x' = e`` is written). Statements add ``line``, ``subst`` (names standing for
        expressions), ``s`` (a KINETIC block's reactants) and ``conserved``."""
        return {"x": "x", "l": "l", "local": set(local), "where": where, "method": method}

    # --- expressions -----------------------------------------------------------------
    def expr(self, e, ctx, parent: int = 0, right: bool = False) -> str:
        kind = e[0]
        if kind == "num":
            v = e[1]
            return repr(float(v)) if math.isfinite(v) else f"float('{v}')"
        if kind == "var":
            return self.var(e[1], ctx)
        if kind == "neg":
            inner = self.expr(e[1], ctx, PREC["neg"])
            text = f"-{inner}"
            return f"({text})" if parent >= PREC["neg"] else text
        # comparisons and logic are numbers, 1.0 or 0.0, as C's (bools would add as OR)
        if kind == "not":
            return f"rt.truth(jnp.logical_not({self.expr(e[1], ctx)}))"
        if kind == "call":
            return self.call_expr(e[1], e[2], ctx)
        op, a, b = e[1], e[2], e[3]
        if op == "&&":
            return f"rt.truth(jnp.logical_and({self.expr(a, ctx)}, {self.expr(b, ctx)}))"
        if op == "||":
            return f"rt.truth(jnp.logical_or({self.expr(a, ctx)}, {self.expr(b, ctx)}))"
        p = PREC[op]
        if op == "^":  # C's pow: real (NaN for a negative base to a fractional power)
            return f"jnp.power({self.expr(a, ctx)}, {self.expr(b, ctx)})"
        if p == 4:  # comparisons do not chain
            return f"rt.truth({self.expr(a, ctx, p + 1)} {op} {self.expr(b, ctx, p + 1)})"
        text = f"{self.expr(a, ctx, p)} {op} {self.expr(b, ctx, p + 1)}"
        return f"({text})" if p < parent or (p == parent and right) else text

    def var(self, name, ctx) -> str:
        if ctx.get("subst") and name in ctx["subst"]:
            return ctx["subst"][name]
        if name in ctx["local"]:
            return f'{ctx["l"]}[{name!r}]'
        if name in self.constants and name not in self._declared_vars() - set(self.d.constants):
            return naming.argument(name)
        if name == "PI" and "PI" in self.constants:
            return "PI"
        return f'{ctx["x"]}[{name!r}]'

    def call_expr(self, name, args, ctx) -> str:
        rendered = [self.expr(a, ctx) for a in args]
        if name in self.d.functions:
            f = self.d.functions[name]
            if len(args) != len(f.args):
                self.problems.append((ctx.get("line", 0), f"{name} takes {len(f.args)} "
                                                          f"arguments, called with {len(args)}"))
            return f"self.{naming.method(name)}({', '.join([ctx['x']] + rendered)})"
        if name in FUNCS:
            return f"{FUNCS[name]}({', '.join(rendered)})"
        self.problems.append((ctx.get("line", 0), f"unknown function {name}()"))
        return "jnp.nan"

    # --- statements -------------------------------------------------------------------
    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def body(self, stmts, ctx, depth: int) -> None:
        for s in stmts:
            ctx["line"] = getattr(s, "line", 0)
            if isinstance(s, Assign):
                self.assign(s, ctx, depth)
            elif isinstance(s, Call):
                if s.name in self.d.functions:
                    self.emit(depth, self.call_expr(s.name, s.args, ctx))
                elif s.name in FUNCS:
                    continue  # a builtin called for nothing
                elif s.name == "net_send" and ctx.get("where") == "net_receive":
                    delay, flag = (self.expr(a, ctx) for a in s.args)
                    x = ctx["x"]  # a self-event at t + delay (the simulation delivers it)
                    self.emit(depth, f"rt.net_send({x}, {x}['t'] + ({delay}), {flag}, "
                                     f"self.self_events)")
                else:
                    self.problems.append((s.line, f"unknown procedure {s.name}()"))
            elif isinstance(s, If):
                self.if_(s, ctx, depth)
            elif isinstance(s, Diff):
                self.diff(s, ctx, depth)
            elif isinstance(s, Reaction):
                self.reaction(s, ctx, depth)
            elif isinstance(s, Conserve):
                self.conserve(s, ctx, depth)
            elif isinstance(s, SolveSteady):
                self.solve_steady(s, ctx, depth)

    def assign(self, s: Assign, ctx, depth):
        name = s.name
        if name in self.constants and name not in self._declared_vars() - set(self.d.constants):
            self.problems.append((s.line, f"assignment to the constant {name}"))
            return
        if name in self.d.states and ctx.get("where") == "current":
            self.problems.append((s.line, f"BREAKPOINT assigns the STATE {name}: only SOLVE "
                                          "changes states"))
        if name in ("celsius", "dt", "diam", "area") and name not in ctx["local"]:
            self.problems.append((s.line, f"assignment to '{name}' is not supported"))
            return
        if name in self.d.foreign_reads and name not in ctx["local"]:
            self.problems.append((s.line, f"assignment to {name}, which USEION "
                                          f"{self.d.foreign_reads[name]} only READs"))
        if name in self.ion_vars and name not in self.d.states:
            ion = next(i for i, u in self.d.ions.items() if name in u["read"] + u["write"])
            if name not in self.d.ions[ion]["write"] and name not in self.d.nonspecific:
                self.problems.append((s.line, f"assignment to {name}, which USEION {ion} only "
                                              "READs"))
        target = f'{ctx["l"]}[{name!r}]' if name in ctx["local"] else f'{ctx["x"]}[{name!r}]'
        self.emit(depth, f"{target} = {self.expr(s.expr, ctx)}")

    def if_(self, s: If, ctx, depth):
        self.counter += 1
        n = self.counter
        x, l = ctx["x"], ctx["l"]
        # generated names start with "_": NMODL names (CONSTANTs are module-level) never do
        self.emit(depth, f"_c{n} = {self.expr(s.cond, ctx)}")
        self.emit(depth, f"_x{n}a, _l{n}a = rt.fork({x}, {l})  # if")
        self.body(s.body, {**ctx, "x": f"_x{n}a", "l": f"_l{n}a"}, depth)
        self.emit(depth, f"_x{n}b, _l{n}b = rt.fork({x}, {l})  # else")
        self.body(s.orelse, {**ctx, "x": f"_x{n}b", "l": f"_l{n}b"}, depth)
        self.emit(depth, f"rt.join(_c{n}, ({x}, {l}), (_x{n}a, _l{n}a), (_x{n}b, _l{n}b))")

    def diff(self, s: Diff, ctx, depth):
        if s.state not in self.d.states:
            self.problems.append((s.line, f"{s.state}' = ...: {s.state} is not a STATE"))
            return
        method = ctx.get("method")
        x = ctx["x"]
        if method == "cnexp":
            degree = self.degree(s.expr, s.state)
            if degree is None or degree > 1:
                # nocmodl then emits s * exp(dt df/ds), which drops the equation's constant
                # term: not a solution of the equation, so refused rather than copied
                self.problems.append((s.line, f"METHOD cnexp needs {s.state}' linear in "
                                              f"{s.state} (NEURON's cnexp is wrong otherwise); "
                                              "use METHOD derivimplicit"))
            rhs = self.expr(s.expr, {**ctx, "subst": {s.state: "s"}})
            self.emit(depth, f"{x}[{s.state!r}] = rt.cnexp(lambda s: {rhs}, {x}[{s.state!r}], "
                             f"{x}['dt'])")
        else:
            self.emit(depth, f"{x}[{(s.state + chr(39))!r}] = {self.expr(s.expr, ctx)}")

    def degree(self, e, state):
        """Polynomial degree of ``e`` in ``state`` (None: not a polynomial)."""
        kind = e[0]
        if kind == "num":
            return 0
        if kind == "var":
            return 1 if e[1] == state else 0
        if kind == "neg":
            return self.degree(e[1], state)
        if kind in ("not", "call"):
            args = [e[1]] if kind == "not" else e[2]
            return 0 if all(self.degree(a, state) == 0 for a in args) else None
        op, a, b = e[1], self.degree(e[2], state), self.degree(e[3], state)
        if a is None or b is None:
            return None
        if op in ("+", "-"):
            return max(a, b)
        if op == "*":
            return a + b
        if op == "/":
            return a if b == 0 else None
        if op == "^":
            if b == 0 and e[3][0] == "num" and float(e[3][1]).is_integer() and e[3][1] >= 0:
                return a * int(e[3][1])
            return 0 if a == 0 and b == 0 else None
        return 0 if a == 0 and b == 0 else None

    def reaction(self, s: Reaction, ctx, depth):
        x, reactants = ctx["x"], ctx.get("s", ctx["x"])
        for _, st in s.lhs + s.rhs:
            if st not in self.d.states:
                self.problems.append((s.line, f"'{s.text}': {st} is not a STATE"))
                return
        self.emit(depth, f"# {s.text}")

        def product(side):
            parts = []
            for coef, st in side:
                parts += [f"{reactants}[{st!r}]"] * coef
            return " * ".join(parts)

        if s.op == "<<":
            st = s.lhs[0][1]
            self.emit(depth, f"{x}[{st + chr(39)!r}] = {x}[{st + chr(39)!r}] + "
                             f"{self.expr(s.kf, ctx, PREC['+'])}")
            return
        kf = self.expr(s.kf, ctx, PREC["*"])
        flux = f"{kf} * {product(s.lhs)}"
        if s.op == "<->" and s.kb is not None:
            kb = self.expr(s.kb, ctx, PREC["*"])
            flux += f" - {kb} * {product(s.rhs)}" if s.rhs else f" - {kb}"
        self.emit(depth, f"f = {flux}")
        for sign, side in (("-", s.lhs), ("+", s.rhs)):
            for coef, st in side:
                key = repr(st + "'")
                self.emit(depth, f"{x}[{key}] = {x}[{key}] {sign} " + (f"{coef}.0 * f" if coef != 1
                                                                       else "f"))

    def conserve(self, s: Conserve, ctx, depth):
        used = ctx.setdefault("conserved", [])
        row = next((st for _, st in reversed(s.terms) if st not in used), None)
        if row is None:
            self.problems.append((s.line, f"'{s.text}': no state left to conserve"))
            return
        used.append(row)
        x = ctx.get("s", ctx["x"])
        total = " + ".join((f"{c}.0 * " if c != 1 else "") + f"{x}[{st!r}]" for c, st in s.terms)
        self.emit(depth, f"# {s.text}: replaces the equation of {row}")
        self.emit(depth, f"cons[{row!r}] = {self.expr(s.total, ctx, PREC['-'])} - ({total})")

    def solve_steady(self, s: SolveSteady, ctx, depth):
        x = ctx["x"]
        b = self.d.blocks.get(s.block)
        if b is None:
            if s.block in self.d.functions and not s.steady:
                self.emit(depth, f"self.{naming.method(s.block)}({x})")
                return
            self.problems.append((s.line, f"SOLVE {s.block} in INITIAL: no such block"))
            return
        states = self.block_states(b)
        if b.kind == "KINETIC" and s.method in (None, "sparse") and s.steady:
            # NEURON's few long steps hold such a flux at the start's states (a linear
            # scheme), or break the scheme's CONSERVE (a non-linear one)
            for r in walk(b.body):
                if isinstance(r, Reaction) and r.op == "<<" and set(self.d.states) & mentioned(
                        [Assign("_", r.kf, r.line)], self.d.functions):
                    self.problems.append((r.line, f"'{r.text}': a << flux that depends on a "
                                          "state, in a STEADYSTATE solve, is not supported"))
            self.emit(depth, f"rt.kinetic_steady(self.{naming.block(b.kind, b.name)}, {x}, {tuple(states)!r}, "
                             f"self.newton_iterations, linear={self.linear(b)})")
        elif b.kind == "DERIVATIVE" and s.method == "derivimplicit" and s.steady:
            solved = self.d.solve
            if solved and solved[0] == b.name and solved[1] in ("euler", "runge"):
                self.problems.append((s.line, f"SOLVE {s.block} STEADYSTATE derivimplicit with "
                                              f"BREAKPOINT's SOLVE {b.name} METHOD {solved[1]}: "
                                              "as nocmodl, every SOLVE of a block with "
                                              "STEADYSTATE derivimplicit must use derivimplicit "
                                              "(or cnexp)"))
            self.emit(depth, f"rt.implicit_steady(self.{naming.block(b.kind, b.name)}, {x}, "
                             f"{tuple(states)!r}, self.newton_iterations)")
        else:
            what = f"SOLVE {s.block}" + (f" STEADYSTATE {s.method}" if s.steady else "")
            self.problems.append((s.line, f"{what} in INITIAL is not supported (supported: "
                                          "STEADYSTATE sparse for KINETIC, STEADYSTATE "
                                          "derivimplicit for DERIVATIVE)"))

    def block_states(self, b):
        out = []
        for s in walk(b.body):
            if isinstance(s, Diff):
                out.append(s.state)
            elif isinstance(s, Reaction):
                out += [st for _, st in s.lhs + s.rhs]
        return list(dict.fromkeys(st for st in out if st in self.d.states))

    def linear(self, b) -> bool:
        """Whether nocmodl solves the KINETIC scheme as linear (one Newton iteration):
        every reaction first order, one state on each side. It looks at nothing else: rates
        that depend on states (directly, or through variables the block computes) are held
        at the step's starting states in that one iteration (``rt.kinetic``)."""
        for s in walk(b.body):
            if isinstance(s, Reaction):
                if any(c != 1 for c, _ in s.lhs + s.rhs) or len(s.lhs) > 1 or len(s.rhs) > 1:
                    return False
        return True


__all__ = ["FUNCS", "PREC", "StatementWriter"]
