"""``dendrax nmodl``: NMODL files to an installable plugin package, or a support report.

    dendrax nmodl FILES_OR_FOLDERS... -o DIR [--name NAME] [--skip-unsupported]
    dendrax nmodl --check FILES_OR_FOLDERS...

The first writes DIR (pyproject.toml with the dendrax.channels / dendrax.synapses entry
points, the generated Python, a test; see ``dendrax.nmodl.package``) for ``pip install
./DIR``. ``--check`` prints, per file, the mechanism it would become or every construct
that is not supported, with its line; exit status 1 when something is unsupported.
"""

from __future__ import annotations

import os
import sys


def add_parser(subparsers):
    """The ``nmodl`` subcommand on an argparse subparsers object."""
    p = subparsers.add_parser("nmodl", help="turn NEURON .mod files into a dendrax plugin "
                                            "package (or --check what is supported)")
    p.add_argument("files", nargs="+", help=".mod files, or folders of them")
    p.add_argument("-o", "--out", help="folder to write the plugin package into")
    p.add_argument("--name", help="package name (default: the output folder's name)")
    p.add_argument("--check", action="store_true",
                   help="only report what is supported, write nothing")
    p.add_argument("--skip-unsupported", action="store_true",
                   help="package the supported files, list the others")
    return p


def _describe_ok(path) -> tuple[str, str]:
    from .codegen import Generator
    from .describe import describe
    from .source import read

    d = describe(*read(path))
    g = Generator(d)
    g.source()
    kind = g.kind
    what = [f"{kind} {d.name}"]
    if d.states:
        what.append("states " + ", ".join(d.states))
    if d.solve:
        block, method, _ = d.solve
        if block in d.blocks:
            what.append(f"SOLVE {block} ({d.blocks[block].kind}) METHOD {method or 'sparse'}")
        else:
            what.append(f"SOLVE {block} (PROCEDURE, run every step)")
    if d.net_receive:
        args = d.net_receive[0]
        what.append(f"NET_RECEIVE({', '.join(args)})" + (" at the event's time t" if
                                                         g.event_time else ""))
    if g.carried:
        what.append("carried " + ", ".join(g.carried))
    return d.name, "; ".join(what)


def check_files(files, out=None) -> int:
    """Print the support report of ``files``; 0 when all are supported, else 1."""
    from .description import NmodlError
    from .package import mod_files

    out = sys.stdout if out is None else out
    status, seen = 0, {}
    for f in mod_files(files):
        try:
            name, what = _describe_ok(f)
            if name in seen:  # as writing the package refuses them
                status = 1
                print(f"{f}: NOT supported beside {seen[name]}: both define the mechanism "
                      f"{name!r}", file=out)
                continue
            seen[name] = f
            print(f"{f}: supported: {what}", file=out)
        except NmodlError as err:
            status = 1
            print(f"{f}: NOT supported:", file=out)
            for line, msg in err.problems:
                print(f"  line {line}: {msg}" if line else f"  {msg}", file=out)
    return status


def run(opts) -> int:
    """Run the subcommand; the exit status (2: bad arguments or an unsupported file)."""
    from .description import NmodlError
    from .package import write_package

    if opts.check:
        return check_files(opts.files)
    if not opts.out:
        print("dendrax nmodl: error: give the output folder (-o DIR), or --check",
              file=sys.stderr)
        return 2
    try:
        info = write_package(opts.files, opts.out, name=opts.name,
                             skip_unsupported=opts.skip_unsupported)
    except NmodlError as err:
        print(f"dendrax nmodl: error: unsupported NMODL (see dendrax nmodl --check):\n{err}",
              file=sys.stderr)
        return 2
    except (ValueError, OSError) as err:
        print(f"dendrax nmodl: error: {err}", file=sys.stderr)
        return 2
    names = sorted(info["channels"]) + sorted(info["synapses"])
    print(f"wrote {opts.out}: package {info['package']} with {len(names)} mechanisms "
          f"({', '.join(names)}); install it with: pip install {_as_path(opts.out)}")
    for f, err in info["skipped"].items():
        print(f"skipped {f}:\n{err}", file=sys.stderr)
    return 0


def _as_path(folder) -> str:
    """``folder`` as pip reads a path, not a package name: "./out" for "out"."""
    text = str(folder)
    return text if os.path.isabs(text) or text.startswith((".", "~")) else f".{os.sep}{text}"


def main(argv=None) -> int:
    """``python -m dendrax.nmodl.cli`` (the same as ``dendrax nmodl``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="dendrax")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
