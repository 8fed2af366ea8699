"""An NMODL file as a ``Description`` (``dendrax.nmodl.description``): what it declares
and what its blocks do.

The text is parsed by NEURON's NMODL framework (``dendrax.nmodl.source``); this module
walks the resulting AST and keeps what a dendrax mechanism needs. Everything outside the
supported subset is collected as a problem naming the construct and its line; with the
whole-file checks (``dendrax.nmodl.semantics``), ``describe`` raises one ``NmodlError``
listing them all.
"""

from __future__ import annotations

import math
import re

from .description import (BUILTINS, Assign, Block, Call, Conserve, Description, Diff,
                          Function, If, NmodlError, Param, Reaction, SolveSteady, TOO_DEEP)
from .semantics import check
from .source import parse

# constructs refused wherever they appear: AST node type -> how the message names them
REFUSED_NODES = {
    "Verbatim": "VERBATIM (C code)", "Pointer": "POINTER", "BbcorePointer": "BBCOREPOINTER",
    "FunctionTableBlock": "FUNCTION_TABLE", "WatchStatement": "WATCH", "External": "EXTERNAL",
    "ElectrodeCurrent": "ELECTRODE_CURRENT", "LinearBlock": "LINEAR block",
    "NonLinearBlock": "NONLINEAR block", "DiscreteBlock": "DISCRETE block",
    "PartialBlock": "PARTIAL block", "ForNetcon": "FOR_NETCONS", "LagStatement": "LAG",
    "Compartment": "COMPARTMENT", "LonDiffuse": "LONGITUDINAL_DIFFUSION",
    "WhileStatement": "WHILE loop", "FromStatement": "FROM loop", "MatchBlock": "MATCH",
    "ConstructorBlock": "CONSTRUCTOR", "DestructorBlock": "DESTRUCTOR",
    "BeforeBlock": "BEFORE block", "AfterBlock": "AFTER block", "RandomVarList": "RANDOM",
    "IndependentBlock": None, "Include": "INCLUDE", "Define": "DEFINE",
}
REFUSED_CALLS = {"net_send": "net_send outside NET_RECEIVE", "net_event": "net_event",
                 "net_move": "net_move", "printf": "printf", "random": "random numbers",
                 "normrand": "random numbers", "scop_random": "random numbers",
                 "nrn_random_pick": "random numbers", "at_time": "at_time"}
# what NEURON users reach for instead, where dendrax has it built in
INSTEAD = {"ElectrodeCurrent": "electrodes are built in: Cell.iclamp, Cell.vclamp, "
                               "Cell.stimulate"}


def _returns_zero(s) -> bool:
    """Whether statement ``s`` is a VERBATIM block holding only ``return 0;``."""
    if _type(s) != "Verbatim":
        return False
    from neuron.nmodl import to_nmodl

    text = to_nmodl(s).replace("ENDVERBATIM", "").replace("VERBATIM", "")
    return re.sub(r"\s+", "", text) == "return0;"


def _refused(node_type: str) -> str:
    hint = INSTEAD.get(node_type)
    return f"{REFUSED_NODES[node_type]} is not supported" + (f" ({hint})" if hint else "")


def neuron_default(value: float) -> float:
    """A PARAMETER's default as NEURON runs it: nocmodl writes it into the C++ with
    printf's %g, six significant digits (0.000123456789 -> 0.000123457, 15.87301587302 ->
    15.873); CONSTANTs and numbers in expressions keep every digit."""
    return float(f"{value:g}") if math.isfinite(value) else value


# --- locating lines -------------------------------------------------------------------


class Lines:
    """Finds where a construct is in the text (the parser's AST carries no positions to
    Python): comments are blanked, then words are searched from a given line on."""

    def __init__(self, text: str):
        text = re.sub(r"(?s)\bCOMMENT\b.*?\bENDCOMMENT\b", lambda m: "\n" * m.group(0).count("\n"),
                      text)
        text = re.sub(r"(?m)^(\s*TITLE\b).*$", r"\1", text)  # a title's words are prose
        self.lines = [re.sub(r"[:?].*", "", ln) for ln in text.splitlines()]

    def find(self, words, start: int = 1, stop: int | None = None) -> int:
        """The first line >= start holding ``words`` (a regex) -- 0 when none."""
        pat = re.compile(words)
        end = len(self.lines) if stop is None else min(stop, len(self.lines))
        for i in range(max(start, 1) - 1, end):
            if pat.search(self.lines[i]):
                return i + 1
        return 0

    def find_word(self, name: str, start: int = 1) -> int:
        """The first line >= start holding the word ``name`` -- 0 when none."""
        return self.find(_word(name), start)


def _word(name: str) -> str:
    return r"(?<![\w])" + re.escape(name) + r"(?![\w])"


# --- the walk --------------------------------------------------------------------------

def _type(node) -> str:
    return node.get_node_type_name()


def _name(node) -> str:
    return node.get_node_name()


def _unit(node) -> str:
    if node is None:
        return ""
    from neuron.nmodl import to_nmodl

    return to_nmodl(node).strip().strip("()").strip()


def _number(node) -> float:
    from neuron.nmodl import to_nmodl

    t = _type(node)
    if t in ("Double", "Float", "Integer"):
        return float(node.eval())
    return float(to_nmodl(node))


class Walker:
    """Turns the AST into a Description, collecting problems."""

    def __init__(self, text: str, source: str):
        self.text, self.source = text, source
        self.lines = Lines(text)
        self.problems: list[tuple[int, str]] = []
        self.d = Description(source=source, text=text)
        self.line = 1  # the line statements are searched from
        self.declared = {}  # name -> the block declaring it
        self.defined = {}  # a block's keyword (BREAKPOINT, ...) or name -> its line
        self.stop: int | None = None

    def problem(self, line: int, msg: str) -> None:
        if (line, msg) not in self.problems:
            self.problems.append((line, msg))

    def at(self, words: str) -> int:
        """The line of ``words`` in the current block, from the last statement on."""
        ln = self.lines.find(words, self.line, self.stop) or self.lines.find(words, 1)
        if ln and (self.stop is None or ln <= self.stop) and ln >= self.line:
            self.line = ln
        return ln

    # blocks ----------------------------------------------------------------------------
    def program(self, prog) -> Description:
        heads = []
        cursor, seen = 1, {}
        for b in prog.blocks:
            key = self._block_keyword(b)
            # a block written twice: the second after the first
            ln = self.lines.find(key, max(cursor, seen.get(key, 0) + 1)) if key else 0
            heads.append(ln)
            cursor = ln or cursor
            if key and ln:
                seen[key] = ln
        for i, b in enumerate(prog.blocks):
            self.line = heads[i] or 1
            later = [h for h in heads[i + 1:] if h]
            self.stop = later[0] if later else None
            self.block(b)
        return self.d

    @staticmethod
    def _block_keyword(b) -> str | None:
        t = _type(b)
        keys = {"NeuronBlock": r"\bNEURON\s*\{", "UnitBlock": r"\bUNITS\s*\{",
                "ParamBlock": r"\bPARAMETER\s*\{", "AssignedBlock": r"\bASSIGNED\s*\{",
                "StateBlock": r"\bSTATE\s*\{", "BreakpointBlock": r"\bBREAKPOINT\s*\{",
                "InitialBlock": r"\bINITIAL\s*\{", "ConstantBlock": r"\bCONSTANT\s*\{",
                "NetReceiveBlock": r"\bNET_RECEIVE\b", "Verbatim": r"\bVERBATIM\b",
                "LineComment": None, "BlockComment": None, "Model": r"\bTITLE\b"}
        if t in keys:
            return keys[t]
        named = {"DerivativeBlock": "DERIVATIVE", "KineticBlock": "KINETIC",
                 "FunctionBlock": "FUNCTION", "ProcedureBlock": "PROCEDURE",
                 "LinearBlock": "LINEAR", "NonLinearBlock": "NONLINEAR",
                 "DiscreteBlock": "DISCRETE", "FunctionTableBlock": "FUNCTION_TABLE"}
        if t in named:
            return rf"\b{named[t]}\s+{re.escape(_name(b))}\b"
        word = {"IndependentBlock": "INDEPENDENT", "ConstructorBlock": "CONSTRUCTOR",
                "DestructorBlock": "DESTRUCTOR", "BeforeBlock": "BEFORE", "AfterBlock": "AFTER",
                "Include": "INCLUDE", "Define": "DEFINE"}.get(t)
        return rf"\b{word}\b" if word else None

    def block(self, b) -> None:
        t = _type(b)
        ln = self.line
        if t in ("LineComment", "BlockComment", "IndependentBlock", "UnitState"):
            return
        if t == "Model":
            from neuron.nmodl import to_nmodl

            self.d.title = to_nmodl(b).replace("TITLE", "", 1).strip()
            return
        if t in REFUSED_NODES:
            self.problem(ln, _refused(t))
            if t in ("LinearBlock", "NonLinearBlock", "DiscreteBlock", "PartialBlock"):
                self.d.refused_blocks.add(_name(b))  # a SOLVE of it: no second problem
            return
        handler = getattr(self, f"_{t}", None)
        if handler is None:
            self.problem(ln, f"the {_keyword(t)} block is not supported")
            return
        once = {"BreakpointBlock": "BREAKPOINT", "InitialBlock": "INITIAL",
                "NetReceiveBlock": "NET_RECEIVE"}.get(t)
        key = once or (_name(b) if t in ("DerivativeBlock", "KineticBlock", "FunctionBlock",
                                          "ProcedureBlock") else None)
        if key is not None:  # a second one replaced the first, where NEURON refuses it
            if key in self.defined:  # (or, for BREAKPOINT and INITIAL, runs both)
                self.problem(ln, f"a second {key} block (the first at line "
                                 f"{self.defined[key]}): merge them into one" if once else
                             f"{_keyword(t)} {key} is defined twice (the first at line "
                             f"{self.defined[key]}): NEURON refuses it")
                return
            self.defined[key] = ln
        handler(b)

    def _NeuronBlock(self, b):
        d = self.d
        for s in b.statement_block.statements:
            t = _type(s)
            if t == "Suffix":
                kind = _name(s.type)
                if d.name:
                    self.problem(self.at(_word(_name(s.name))), f"a second {kind} "
                                 f"({_name(s.name)}) after {d.name}: one mechanism per file")
                    continue
                d.name = _name(s.name)
                self.at(_word(d.name))
                if kind == "POINT_PROCESS":
                    d.point = True
                elif kind == "ARTIFICIAL_CELL":
                    d.artificial = True
                    self.problem(self.line, "ARTIFICIAL_CELL is not supported (dendrax synapses "
                                 "sit on a compartment: write a POINT_PROCESS; spike sources "
                                 "and NEST's point neurons are built in: Cell.synapse("
                                 "spike_times=...), Network.spike_source, "
                                 "Network.poisson_source, Network.population)")
                elif kind != "SUFFIX":
                    self.problem(self.line, f"{kind} is not supported")
            elif t == "Useion":
                ion = _name(s.name)
                pattern = r"\bUSEION\s+" + re.escape(ion) + r"\b"
                ln = self.at(pattern)
                if ion in d.ions:  # nocmodl: "merging of neuron models not supported"
                    ln = self.lines.find(pattern, d.ions[ion]["line"] + 1) or ln
                    self.problem(ln, f"a second USEION {ion}: name all of {ion}'s variables "
                                     "in one USEION statement (NEURON refuses this too)")
                    continue
                use = d.ions[ion] = {"read": [], "write": [], "valence": None, "line": ln}
                use["read"] += [_name(v) for v in s.readlist]
                use["write"] += [_name(v) for v in s.writelist]
                if s.valence is not None:
                    use["valence"] = _number(s.valence.value)
            elif t == "Nonspecific":
                self.at(r"\bNONSPECIFIC_CURRENT\b")
                d.nonspecific += [_name(v) for v in s.currents]
            elif t == "Range":
                d.range_vars += [_name(v) for v in s.variables]
            elif t == "Global":
                d.global_vars += [_name(v) for v in s.variables]
            elif t in ("ThreadSafe", "LineComment", "BlockComment", "ConductanceHint",
                       "RepresentsStatement"):
                continue
            elif t in REFUSED_NODES:
                word = REFUSED_NODES[t].split()[0]
                self.problem(self.at(rf"\b{word}\b"), _refused(t))
                d.refused_current |= t == "ElectrodeCurrent"
            else:
                from neuron.nmodl import to_nmodl

                text = to_nmodl(s).strip()
                self.problem(self.at(_word(text.split()[0])) if text else self.line,
                             f"NEURON block statement '{text}' is not supported")

    def _UnitBlock(self, b):
        from .units import UnitError, Units

        units = Units()
        for s in b.definitions:
            t = _type(s)
            if t == "UnitDef":
                units.define(_unit(s.unit1), _unit(s.unit2))
            elif t == "FactorDef":
                name = _name(s.name)
                ln = self.at(_word(name) + r"\s*(\[[^\]]*\])?\s*=")
                try:
                    if s.value is not None:
                        value = _number(s.value)
                        note = f"{value!r} ({_unit(s.unit1)})"
                    elif s.gt is not None and s.gt.eval():  # the same factor (nocmodl's)
                        value = units.factor(_unit(s.unit1), _unit(s.unit2))
                        note = f"({_unit(s.unit1)}) -> ({_unit(s.unit2)})"
                    else:
                        value = units.factor(_unit(s.unit1), _unit(s.unit2))
                        note = f"({_unit(s.unit1)}) ({_unit(s.unit2)})"
                except (UnitError, ImportError) as err:
                    self.problem(ln, f"unit factor {name}: {err}")
                    continue
                if not math.isfinite(value):
                    self.problem(ln, f"unit factor {name} = {value}: not a finite number")
                self.d.constants[name] = (value, note)

    def _ConstantBlock(self, b):
        for s in b.statements:
            if _type(s) != "ConstantStatement":
                continue
            c = s.constant
            name = _name(c.name)
            ln = self.at(_word(name))
            self._declare(name, ln, "CONSTANT")
            value = _number(c.value)
            if not math.isfinite(value):
                self.problem(ln, f"CONSTANT {name} = {value}: not a finite number")
            self.d.constants[name] = (value, "CONSTANT")

    def _ParamBlock(self, b):
        for s in b.statements:
            if _type(s) != "ParamAssign":
                continue
            name = _name(s.name)
            ln = self.at(_word(name))
            if s.value is None:
                default = 0.0
            else:  # as NEURON runs it: nocmodl writes the default with printf's %g
                default = neuron_default(_number(s.value))
            p = Param(default, _unit(s.unit))
            if s.limit is not None:
                p.low, p.high = _number(s.limit.min), _number(s.limit.max)
            # a refused declaration still declares the name (no second, spurious "not
            # declared" problem where it is used)
            if _type(s.name) == "IndexedName":
                self.problem(ln, f"array PARAMETER {name}[...] is not supported")
            elif not math.isfinite(default):
                self.problem(ln, f"PARAMETER {name} = {default}: not a finite number")
            elif s.limit is not None and not p.low <= p.high:
                self.problem(ln, f"PARAMETER {name}'s limits <{p.low:g}, {p.high:g}> admit no "
                             "value")
            self._declare(name, ln, "PARAMETER")
            self.d.params[name] = p

    def _definitions(self, b, table, what):
        for s in b.definitions:
            if _type(s) != "AssignedDefinition":
                continue
            name = _name(s.name)
            ln = self.at(_word(name))
            if s.length is not None or _type(s.name) == "IndexedName":
                self.problem(ln, f"array {what} {name}[...] is not supported")
            self._declare(name, ln, what)
            table[name] = _unit(s.unit)
            if what == "STATE" and getattr(s, "start", None) is not None:
                # STATE { m START 0.1 }: nocmodl's m0, where m starts before INITIAL (as a
                # PARAMETER m0 declares it; a PARAMETER of that name wins)
                self.d.params.setdefault(f"{name}0", Param(neuron_default(_number(s.start)),
                                                           _unit(s.unit)))

    def _declare(self, name, ln, what):
        """A name is declared once, in one of PARAMETER, ASSIGNED, STATE and CONSTANT (NEURON's
        nocmodl refuses a redeclaration; here the later one would silently win)."""
        before = self.declared.get(name)
        if before is None:
            self.declared[name] = what
        else:
            self.problem(ln, f"{name} is declared twice ({before}, then {what})"
                         if before != what else f"{name} is declared twice in {what}")

    def _AssignedBlock(self, b):
        self._definitions(b, self.d.assigned, "ASSIGNED")

    def _LocalListStatement(self, b):
        """LOCAL outside any block (Mainen & Sejnowski's ``LOCAL mexp, hexp``): NEURON's
        are C statics every instance shares, used as scratch a block writes before it
        reads; here each compartment's own ASSIGNED variable, which gives the same values
        wherever a block writes one before reading it."""
        ln = self.at(r"\bLOCAL\b")
        for v in b.variables:
            name = _name(v)
            if _type(v.name) == "IndexedName":
                self.problem(ln, f"LOCAL array {name}[...] is not supported")
                continue
            self._declare(name, ln, "LOCAL (file level)")
            self.d.assigned[name] = ""

    def _StateBlock(self, b):
        self._definitions(b, self.d.states, "STATE")

    def _BreakpointBlock(self, b):
        body, local = [], []
        for s in b.statement_block.statements:
            if _type(s) == "ExpressionStatement" and _type(s.expression) == "SolveBlock":
                sb = s.expression
                ln = self.at(r"\bSOLVE\b")
                if sb.steadystate is not None:
                    self.problem(ln, "SOLVE ... STEADYSTATE belongs in INITIAL")
                method = _name(sb.method) if sb.method is not None else None
                if self.d.solve is not None:
                    self.problem(ln, "more than one SOLVE in BREAKPOINT is not supported")
                self.d.solve = (_name(sb.block_name), method, ln)
                if body:  # run with the currents, as NEURON's (a pool's: semantics)
                    self.d.before_solve = ln
                continue
            self.statement(s, body, local)
        self.d.breakpoint, self.d.breakpoint_locals = body, local

    def _InitialBlock(self, b):
        self.d.initial, self.d.initial_locals = self.statements(b.statement_block)

    def _DerivativeBlock(self, b):
        self._solved(b, "DERIVATIVE")

    def _KineticBlock(self, b):
        self._solved(b, "KINETIC")

    def _solved(self, b, kind):
        name = _name(b)
        ln = self.line
        body, local = self.statements(b.statement_block, kind=kind)
        self.d.blocks[name] = Block(kind, name, body, local, ln)

    def _FunctionBlock(self, b):
        self._function(b, "FUNCTION")

    def _ProcedureBlock(self, b):
        self._function(b, "PROCEDURE")

    def _function(self, b, kind):
        name = _name(b)
        ln = self.line
        args = [_name(a.name) for a in b.parameters]
        body, local = self.statements(b.statement_block, kind=kind)
        self.d.functions[name] = Function(kind, name, args, body, local, ln)

    def _NetReceiveBlock(self, b):
        ln = self.line
        args = [_name(a.name) for a in b.parameters]
        body, local = self.statements(b.statement_block, kind="NET_RECEIVE")
        self.d.net_receive = (args, body, local, ln)

    # statements ------------------------------------------------------------------------
    def statements(self, sb, kind=None):
        body, local = [], []
        items = list(sb.statements)
        while items and _type(items[-1]) in ("LineComment", "BlockComment"):
            items.pop()
        if kind == "PROCEDURE" and items and _returns_zero(items[-1]):
            # Mainen & Sejnowski's PROCEDUREs end in VERBATIM return 0; ENDVERBATIM: C's
            # "done, no error", nothing to compute
            self.at(r"\bVERBATIM\b")
            items.pop()
        for s in items:
            self.statement(s, body, local, kind)
        return body, local

    def statement(self, s, body, local, kind=None):
        from neuron.nmodl import to_nmodl

        t = _type(s)
        if t in ("LineComment", "BlockComment", "UnitState", "TableStatement",
                 "ConductanceHint"):
            if t == "TableStatement":
                self.at(r"\bTABLE\b")
            return
        if t == "LocalListStatement":
            self.at(r"\bLOCAL\b")
            for v in s.variables:
                if _type(v.name) == "IndexedName":
                    self.problem(self.line, f"LOCAL array {_name(v)}[...] is not supported")
                local.append(_name(v))
            return
        if t == "ProtectStatement":
            self.statement_expr(s.expression, body, local, kind)
            return
        if t == "ExpressionStatement":
            self.statement_expr(s.expression, body, local, kind)
            return
        if t == "IfStatement":
            body.append(self.if_statement(s, local, kind))
            return
        if t == "Conserve":
            ln = self.at(r"\bCONSERVE\b")
            if kind != "KINETIC":
                self.problem(ln, "CONSERVE outside a KINETIC block")
            terms = self.react_terms(s.react, ln)
            body.append(Conserve(terms, self.expr(s.expr, ln), ln, to_nmodl(s).strip()))
            return
        if t == "ReactionStatement":
            ln = self.at(r"~")
            body.append(self.reaction(s, ln))
            return
        if t in REFUSED_NODES and REFUSED_NODES[t]:
            word = REFUSED_NODES[t].split()[0]
            self.problem(self.at(rf"\b{word}\b"), _refused(t))
            return
        text = to_nmodl(s).strip().split("\n")[0]
        first = re.match(r"\w+", text)
        ln = self.at(_word(first.group(0))) if first else self.line
        self.problem(ln, f"the statement '{text}' is not supported")

    def statement_expr(self, e, body, local, kind):
        from neuron.nmodl import to_nmodl

        t = _type(e)
        while t in ("WrappedExpression", "ParenExpression"):
            e = e.expression
            t = _type(e)
        if t == "DiffEqExpression":
            be = e.expression
            state = _name(be.lhs.name) if _type(be.lhs) == "VarName" else _name(be.lhs)
            ln = self.at(_word(state) + r"\s*'")
            if kind != "DERIVATIVE":
                self.problem(ln, f"{state}' = ... outside a DERIVATIVE block")
            order = getattr(be.lhs.name if _type(be.lhs) == "VarName" else be.lhs, "order", None)
            if order is not None and _number(order) > 1:
                self.problem(ln, f"the higher-order equation for {state} is not supported")
            body.append(Diff(state, self.expr(be.rhs, ln), ln))
            return
        if t == "BinaryExpression" and e.op.eval() == "=":
            if _type(e.lhs) != "VarName":
                ln = self.at(r"=")
                self.problem(ln, f"assignment to '{to_nmodl(e.lhs)}' is not supported")
                return
            name = _name(e.lhs)
            ln = self.at(_word(name) + r"\s*(\[[^\]]*\])?\s*=")
            if e.lhs.index is not None or _type(e.lhs.name) == "IndexedName":
                self.problem(ln, f"assignment to an array element {name}[...] is not supported")
                return
            body.append(Assign(name, self.expr(e.rhs, ln), ln))
            return
        if t == "FunctionCall":
            name = _name(e)
            ln = self.at(_word(name) + r"\s*\(")
            if name == "state_discontinuity" and len(e.arguments) == 2 and \
                    _type(e.arguments[0]) == "VarName":
                # state_discontinuity(A, A + w): an assignment, as NEURON 9 runs it
                body.append(Assign(_name(e.arguments[0]), self.expr(e.arguments[1], ln), ln))
                return
            if name == "net_send" and kind == "NET_RECEIVE":  # a self-event (flag, t + delay)
                if len(e.arguments) != 2:
                    self.problem(ln, f"net_send takes 2 arguments (delay, flag), got "
                                     f"{len(e.arguments)}")
                    return
                body.append(Call(name, [self.expr(a, ln) for a in e.arguments], ln))
                return
            self.check_call(name, ln, len(e.arguments))
            if name not in REFUSED_CALLS:  # refused: its arguments (printf's format) too
                body.append(Call(name, [self.expr(a, ln) for a in e.arguments], ln))
            return
        if t == "InitialBlock" and kind == "NET_RECEIVE":
            # run per connection at finitialize (Tsodyks-Markram's tsyn = t): its own scope
            ln = self.at(r"\bINITIAL\b")
            if self.d.net_initial is not None:
                self.problem(ln, "a second INITIAL inside NET_RECEIVE (merge them)")
            inner, inner_local = self.statements(e.statement_block, kind="NET_RECEIVE INITIAL")
            self.d.net_initial = (inner, inner_local, ln)
            return
        if t == "SolveBlock":
            ln = self.at(r"\bSOLVE\b")
            method = _name(e.method) if e.method is not None else None
            steady = _name(e.steadystate) if e.steadystate is not None else None
            if kind is not None:
                self.problem(ln, f"SOLVE inside {kind} is not supported")
            body.append(SolveSteady(_name(e.block_name), steady or method, steady is not None, ln))
            return
        if t in REFUSED_NODES and REFUSED_NODES[t]:
            word = REFUSED_NODES[t].split()[0]
            self.problem(self.at(rf"\b{word}\b"), _refused(t))
            return
        text = to_nmodl(e).strip().split("\n")[0]
        first = re.match(r"\w+", text)
        ln = self.at(_word(first.group(0))) if first else self.line
        self.problem(ln, f"the statement '{text}' is not supported")

    def if_statement(self, s, local, kind):
        ln = self.at(r"\bif\s*\(")
        cond = self.expr(s.condition, ln)
        body, _ = [], None
        for x in s.statement_block.statements:
            self.statement(x, body, local, kind)
        orelse: list = []
        tail = orelse
        for ei in s.elseifs:
            eln = self.at(r"\belse\s+if\b")
            sub: list = []
            for x in ei.statement_block.statements:
                self.statement(x, sub, local, kind)
            nested = If(self.expr(ei.condition, eln), sub, [], eln)
            tail.append(nested)
            tail = nested.orelse
        if s.elses is not None:
            self.at(r"\belse\b")
            for x in s.elses.statement_block.statements:
                self.statement(x, tail, local, kind)
        return If(cond, body, orelse, ln)

    def react_terms(self, node, ln):
        """[(stoichiometry, state)] of a reaction side or a CONSERVE sum."""
        out = []
        for part in _flatten_plus(node):
            if _type(part) == "ReactVarName":
                coef = int(_number(part.value)) if part.value is not None else 1
                out.append((coef, _name(part.name)))
            elif _type(part) == "VarName":
                out.append((1, _name(part)))
            else:
                from neuron.nmodl import to_nmodl

                self.problem(ln, f"reaction term '{to_nmodl(part)}' is not supported")
        return out

    def reaction(self, s, ln):
        from neuron.nmodl import to_nmodl

        op = s.op.eval()
        text = to_nmodl(s).strip()
        lhs = self.react_terms(s.reaction1, ln)
        if op == "<<":
            if len(lhs) != 1 or lhs[0][0] != 1:
                self.problem(ln, f"'{text}': a flux (<<) into one state is supported")
            return Reaction(lhs, op, [], self.expr(s.expression1, ln), None, ln, text)
        rhs = self.react_terms(s.reaction2, ln) if s.reaction2 is not None else []
        kb = self.expr(s.expression2, ln) if s.expression2 is not None else None
        if op not in ("<->", "->"):
            self.problem(ln, f"reaction operator {op} is not supported")
        return Reaction(lhs, op, rhs, self.expr(s.expression1, ln), kb, ln, text)

    def check_call(self, name, ln, n_args: int):
        if name in REFUSED_CALLS:
            self.problem(ln, f"{REFUSED_CALLS[name]} is not supported")
        elif name in BUILTINS and n_args != BUILTINS[name] and name not in self.d.functions:
            self.problem(ln, f"{name}() takes {BUILTINS[name]} argument"
                         f"{'s' if BUILTINS[name] > 1 else ''}, got {n_args}")

    # expressions -----------------------------------------------------------------------
    def expr(self, e, ln) -> tuple:
        from neuron.nmodl import to_nmodl

        t = _type(e)
        if t in ("WrappedExpression", "ParenExpression"):
            return self.expr(e.expression, ln)
        if t in ("Double", "Float", "Integer"):
            return ("num", float(e.eval()))
        if t == "DoubleUnit":  # "-65 (mV)": the unit annotates the number (modlunit checks
            return ("num", float(e.value.eval()))  # it); nocmodl uses the number as written
        if t == "Boolean":
            return ("num", 1.0 if e.eval() else 0.0)
        if t == "VarName":
            if _type(e.name) == "PrimeName":  # s' read on a right-hand side
                self.problem(ln, f"reading a derivative {to_nmodl(e)} is not supported")
            if e.index is not None or _type(e.name) == "IndexedName":
                self.problem(ln, f"array element {_name(e)}[...] is not supported")
            if e.at is not None:
                self.problem(ln, f"'{to_nmodl(e)}' (@ index) is not supported")
            name = _name(e)
            self.d.used.add(name)
            return ("var", name)
        if t in ("Name", "PrimeName"):
            if t == "PrimeName":
                self.problem(ln, f"reading a derivative {to_nmodl(e)} is not supported")
            name = _name(e)
            self.d.used.add(name)
            return ("var", name)
        if t == "BinaryExpression":
            op = e.op.eval()
            return ("bin", op, self.expr(e.lhs, ln), self.expr(e.rhs, ln))
        if t == "UnaryExpression":
            op = e.op.eval()
            inner = self.expr(e.expression, ln)
            return ("neg", inner) if op == "-" else ("not", inner)
        if t == "FunctionCall":
            name = _name(e)
            self.check_call(name, ln, len(e.arguments))
            self.d.valued.setdefault(name, ln)
            if name in REFUSED_CALLS:  # refused above: its arguments (printf's format) too
                return ("num", math.nan)
            return ("call", name, [self.expr(a, ln) for a in e.arguments])
        self.problem(ln, f"the expression '{to_nmodl(e).strip()}' is not supported")
        return ("num", math.nan)


def _flatten_plus(node):
    t = _type(node)
    if t in ("WrappedExpression", "ParenExpression"):
        return _flatten_plus(node.expression)
    if t == "BinaryExpression" and node.op.eval() == "+":
        return _flatten_plus(node.lhs) + _flatten_plus(node.rhs)
    return [node]


def _keyword(node_type: str) -> str:
    return re.sub(r"Block$", "", node_type).upper()


def describe(text: str, source: str = "<text>") -> Description:
    """The Description of an NMODL text; NmodlError listing every construct refused."""
    prog = parse(text, source)
    w = Walker(text, source)
    try:
        d = w.program(prog)
        check(d, w.problem, w.lines)
    except RecursionError:
        raise NmodlError(source, [(0, TOO_DEEP)]) from None
    if w.problems:
        raise NmodlError(source, sorted(w.problems))
    return d
