"""What an NMODL file declares and what its blocks do, as plain Python objects: the
``Description`` that ``dendrax.nmodl.describe`` builds from NEURON's AST and the code
generator turns into source, its statements, and ``NmodlError``.

Expressions are tuples: ``("num", value)``, ``("var", name)``, ``("bin", op, a, b)`` with
op one of ``+ - * / ^ < > <= >= == != && ||``, ``("neg", a)``, ``("not", a)`` and
``("call", name, [args])``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# NEURON names a mechanism sees without declaring them (values come from the simulator)
SPECIAL = {"v", "celsius", "dt", "t", "area", "diam"}
# the math functions a mechanism may call, with their number of arguments
BUILTINS = {**dict.fromkeys(("exp", "log", "log10", "fabs", "sqrt", "sin", "cos", "tan", "asin",
                             "acos", "atan", "sinh", "cosh", "tanh", "floor", "ceil", "exprelr",
                             "expm1"), 1),
            **dict.fromkeys(("pow", "atan2", "fmin", "fmax", "fmod"), 2)}
# those NEURON's nocmodl reserves (a FUNCTION of that name is refused); a file may define
# its own exprelr, expm1, fmin or fmax, which its calls then run (as in NEURON)
RESERVED_FUNCTIONS = frozenset(BUILTINS) - {"exprelr", "expm1", "fmin", "fmax"}


class NmodlError(ValueError):
    """An NMODL file dendrax cannot turn into a mechanism; ``problems`` lists
    (line, message) for each construct refused (line 0: the file as a whole)."""

    def __init__(self, source: str, problems: list[tuple[int, str]]):
        self.source, self.problems = source, problems
        lines = [f"{source}:{ln}: {msg}" if ln else f"{source}: {msg}" for ln, msg in problems]
        super().__init__("\n".join(lines))


# --- statements -------------------------------------------------------------------------

@dataclass
class Assign:
    name: str
    expr: tuple
    line: int


@dataclass
class Call:
    name: str
    args: list
    line: int


@dataclass
class If:
    cond: tuple
    body: list
    orelse: list  # [] when absent; an ELSE IF is an If inside orelse
    line: int


@dataclass
class Diff:
    """``state' = expr`` in a DERIVATIVE block."""
    state: str
    expr: tuple
    line: int


@dataclass
class Reaction:
    """``~ lhs <-> rhs (kf, kb)`` (op "<->"), ``~ lhs -> rhs (kf)`` or ``~ s << (flux)``.
    Sides are lists of (stoichiometry, state)."""
    lhs: list
    op: str
    rhs: list
    kf: tuple
    kb: tuple | None
    line: int
    text: str


@dataclass
class Conserve:
    terms: list  # (coefficient, state)
    total: tuple
    line: int
    text: str


@dataclass
class SolveSteady:
    """``SOLVE block STEADYSTATE method`` (or ``SOLVE block``) inside INITIAL."""
    block: str
    method: str | None
    steady: bool
    line: int


@dataclass
class Function:
    kind: str  # "FUNCTION" or "PROCEDURE"
    name: str
    args: list
    body: list
    locals: list
    line: int


@dataclass
class Block:
    kind: str  # "DERIVATIVE" or "KINETIC" (or "PROCEDURE" when solved)
    name: str
    body: list
    locals: list
    line: int


@dataclass
class Param:
    default: float
    unit: str
    low: float | None = None
    high: float | None = None


@dataclass
class Description:
    """What an NMODL file declares (see the module docstring for expressions)."""

    name: str = ""
    point: bool = False  # POINT_PROCESS (a synapse) rather than SUFFIX (a density mechanism)
    artificial: bool = False  # ARTIFICIAL_CELL (refused)
    refused_current: bool = False  # an ELECTRODE_CURRENT (refused): no "needs a current"
    title: str = ""
    source: str = "<text>"
    text: str = ""
    ions: dict = field(default_factory=dict)  # ion -> {"read": [...], "write": [...], "valence"}
    nonspecific: list = field(default_factory=list)
    range_vars: list = field(default_factory=list)
    global_vars: list = field(default_factory=list)
    params: dict = field(default_factory=dict)  # name -> Param
    states: dict = field(default_factory=dict)  # name -> unit
    assigned: dict = field(default_factory=dict)  # name -> unit
    constants: dict = field(default_factory=dict)  # name -> (value, comment)
    functions: dict = field(default_factory=dict)  # name -> Function
    blocks: dict = field(default_factory=dict)  # name -> Block (DERIVATIVE / KINETIC)
    initial: list = field(default_factory=list)
    initial_locals: list = field(default_factory=list)
    breakpoint: list = field(default_factory=list)
    breakpoint_locals: list = field(default_factory=list)
    solve: tuple | None = None  # (block name, method or None, line)
    before_solve: int = 0  # line of a SOLVE with BREAKPOINT statements before it, else 0
    # an ion pool whose BREAKPOINT had a current (0: dropped), so NEURON ran its statements
    # with the currents, at the step's start: before the SOLVE of the state update
    breakpoint_first: bool = False
    # what the file READs of an ion dendrax does not know (now its parameters): name -> ion
    foreign_reads: dict = field(default_factory=dict)
    net_receive: tuple | None = None  # (args, body, locals, line)
    # its INITIAL block (NEURON runs it per connection at finitialize): (body, locals, line)
    net_initial: tuple | None = None
    used: set = field(default_factory=set)  # every variable name read or written anywhere
    valued: dict = field(default_factory=dict)  # name -> line of a call used as a value
    refused_blocks: set = field(default_factory=set)  # LINEAR, NONLINEAR, ... blocks' names


TOO_DEEP = ("an expression nested too deeply, or too long a sum or product, for dendrax "
            "to translate: split it with LOCAL variables")


def names_in(e):
    """The variables and calls of expression ``e`` in evaluation order: ("var", name) for
    each variable read, ("call", name) for each FUNCTION called, after its arguments'."""
    if e[0] == "var":
        yield "var", e[1]
    elif e[0] == "bin":
        yield from names_in(e[2])
        yield from names_in(e[3])
    elif e[0] in ("neg", "not"):
        yield from names_in(e[1])
    elif e[0] == "call":
        for a in e[2]:
            yield from names_in(a)
        yield "call", e[1]


def mentioned(stmts, functions: dict | None = None) -> set:
    """Every variable name ``stmts`` read (in expressions) or write (assignments,
    DERIVATIVE states); with ``functions`` (name -> Function), also those of the FUNCTIONs
    and PROCEDUREs they call, transitively."""
    out: set = set()
    seen: set = set()

    def call(name):
        f = (functions or {}).get(name)
        if f is not None and name not in seen:
            seen.add(name)
            walk(f.body)

    def ex(e):
        for kind, name in names_in(e):
            if kind == "var":
                out.add(name)
            else:
                call(name)

    def walk(body):
        for s in body:
            if isinstance(s, Assign):
                out.add(s.name)
                ex(s.expr)
            elif isinstance(s, Call):
                for a in s.args:
                    ex(a)
                call(s.name)
            elif isinstance(s, If):
                ex(s.cond)
                walk(s.body)
                walk(s.orelse)
            elif isinstance(s, Diff):
                out.add(s.state)
                ex(s.expr)

    walk(stmts)
    return out


def global_use(d: Description, name: str) -> bool:
    """Whether ``name`` is read or written anywhere as the simulator's variable, not as a
    FUNCTION's argument or a block's LOCAL of that name (``FUNCTION f(t)``)."""
    if name not in d.used:
        return False
    scopes = [(f.body, set(f.args) | set(f.locals)) for f in d.functions.values()]
    scopes += [(b.body, set(b.locals)) for b in d.blocks.values()]
    scopes += [(d.initial, set(d.initial_locals)), (d.breakpoint, set(d.breakpoint_locals))]
    if d.net_receive is not None:
        args, body, local, _ = d.net_receive
        scopes.append((body, set(args) | set(local)))
    if d.net_initial is not None:
        body, local, _ = d.net_initial
        scopes.append((body, set(d.net_receive[0]) | set(local)))
    used = [name in mentioned(body) and name not in local for body, local in scopes]
    shadowed = any(name in local for _, local in scopes)
    return any(used) or not shadowed  # (elsewhere: a declaration, a unit factor, ...)


