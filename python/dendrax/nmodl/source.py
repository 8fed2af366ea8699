"""Reading NMODL text: a file or the text itself (``read``), and NEURON's NMODL framework's
AST of it (``parse``), refusing what its parser would silently cut short."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from .description import NmodlError


def _nmodl_framework():
    """``neuron.nmodl``, imported without NEURON's "no DISPLAY environment variable" warning
    on a headless machine: where NEURON is not yet loaded, no display is set and the user set
    no NEURON_MODULE_OPTIONS, NEURON starts with -nogui (the environment is restored after)."""
    quiet = ("neuron" not in sys.modules and not os.environ.get("DISPLAY")
             and "NEURON_MODULE_OPTIONS" not in os.environ)
    if quiet:
        os.environ["NEURON_MODULE_OPTIONS"] = "-nogui"
    try:
        import neuron.nmodl
    finally:
        if quiet:
            del os.environ["NEURON_MODULE_OPTIONS"]
    return neuron.nmodl


def _unterminated(text: str) -> tuple[str | None, int]:
    """(COMMENT or VERBATIM, its line) of a block the file never ends, else (None, 0): the
    parser reads such a block to the end of the file and returns what came before it."""
    block, start = None, 0
    for n, line in enumerate(text.splitlines(), 1):
        rest = "" if block is None and re.match(r"\s*TITLE\b", line) else line  # prose
        while rest:
            if block is None:
                code = re.split(r"[:?]", rest, maxsplit=1)[0]  # after : or ?, a comment
                m = re.search(r"\b(COMMENT|VERBATIM)\b", code)
                if m is None:
                    break
                block, start, rest = m.group(1), n, code[m.end():]
            else:
                m = re.search(rf"\bEND{block}\b", rest)
                if m is None:
                    break
                block, rest = None, rest[m.end():]
    return block, start


def parse(text: str, source: str = "<text>"):
    """The NMODL framework's AST of ``text``, or an NmodlError with the parser's message."""
    try:
        NmodlDriver = _nmodl_framework().NmodlDriver
    except ImportError as err:
        raise ImportError("reading NMODL needs NEURON's NMODL framework: pip install "
                          f"'dendrax[nmodl]' (the neuron package, >= 9.0): {err}") from None
    block, line = _unterminated(text)
    if block:
        raise NmodlError(source, [(line, f"{block} has no END{block}: the rest of the file "
                                         "would be swallowed (NEURON refuses it too)")])
    try:
        return NmodlDriver().parse_string(text)
    except RuntimeError as err:
        msg = str(err).strip()
        m = re.search(r"Location\s*:\s*(\d+)", msg)
        first = msg.splitlines()[0] if msg else "syntax error"
        raise NmodlError(source, [(int(m.group(1)) if m else 0, first)]) from None


def _exists(path: str) -> bool:
    try:
        return Path(path).exists()
    except OSError:  # one line of NMODL text is no file name (too long, say)
        return False


def read(path_or_text) -> tuple[str, str]:
    """(text, source name) of a path or of NMODL text itself."""
    if not isinstance(path_or_text, (str, Path)):
        raise TypeError(f"give a path to an NMODL file or its text (a str), got "
                        f"{type(path_or_text).__name__}")
    if isinstance(path_or_text, str) and not path_or_text.strip():
        raise ValueError("empty NMODL path or text")
    if isinstance(path_or_text, Path) or ("\n" not in path_or_text and (
            "{" not in path_or_text or _exists(path_or_text))):  # a path may hold "{"
        p = Path(path_or_text)
        if not p.exists():
            raise FileNotFoundError(f"no NMODL file {str(p)!r}")
        data = p.read_bytes()
        try:
            return data.decode("utf-8"), str(p)
        except UnicodeDecodeError:  # older files (ModelDB's) are often Latin-1, in comments
            return data.decode("latin-1"), str(p)
    return str(path_or_text), "<text>"
