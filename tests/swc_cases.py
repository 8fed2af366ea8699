"""Synthetic SWC files for the morphology tests (written in code, one per soma kind)."""

from __future__ import annotations

import random
from pathlib import Path

# name -> SWC text. Coordinates in um, 7 columns: id type x y z radius parent.
SOMA_CASES = {
    # single-point soma, NEURON turns it into a 3-point cylinder of length = diameter
    "one_point": """\
# single point soma
1 1 0 0 0 5 -1
2 3 5 0 0 1 1
3 3 15 0 0 1 2
4 3 25 5 0 0.5 3
5 3 25 -5 0 0.5 3
6 4 0 5 0 2 1
7 4 0 25 0 1.5 6
8 2 0 -5 0 0.5 1
""",
    # NeuroMorpho.Org 3-point soma: treated as the single point 1 (a sphere)
    "three_point": """\
# NeuroMorpho 3-point soma
1 1 10 10 0 6 -1
2 1 10 4 0 6 1
3 1 10 16 0 6 1
4 3 16 10 0 1 1
5 3 36 10 0 0.8 4
6 4 10 16 0 2 1
7 4 10 56 0 1.5 6
""",
    # 3 soma points that fail the NeuroMorpho test (unequal diameters): two soma
    # sections joined at point 1, the second attached at soma(0)
    "three_point_unequal": """\
1 1 0 0 0 6 -1
2 1 0 -6 0 5 1
3 1 0 6 0 6 1
4 3 6 0 0 1 1
5 3 26 0 0 0.8 4
""",
    # a soma outline given as a chain of points (as in n120): one soma section
    "soma_chain": """\
1 1 0 0 0 4 -1
2 1 0 2 0 5 1
3 1 0 4 0 5.5 2
4 1 0 6 0 5 3
5 1 0 8 0 3 4
6 3 2 1 0 1 1
7 3 12 1 0 1 6
8 4 0 10 0 1 5
9 4 0 30 0 0.7 8
10 3 -2 4 0 0.8 3
11 3 -12 4 0 0.8 10
""",
    # branched soma chain: point 1 has two soma children
    "soma_branched": """\
1 1 0 0 0 4 -1
2 1 0 2 0 4 1
3 1 0 4 0 3 2
4 1 0 -2 0 4 1
5 1 0 -4 0 3 4
6 3 3 -4 0 1 5
7 3 13 -4 0 1 6
8 4 0 6 0 1 3
9 4 0 26 0 1 8
""",
    # no soma at all: a dendrite root
    "no_soma": """\
1 3 0 0 0 1 -1
2 3 10 0 0 1 1
3 3 20 0 0 0.8 2
4 3 30 5 0 0.5 3
5 3 30 -5 0 0.5 3
""",
    # two trees in one file (two roots)
    "two_trees": """\
1 1 0 0 0 5 -1
2 3 5 0 0 1 1
3 3 20 0 0 1 2
4 3 100 0 0 2 -1
5 3 110 0 0 2 4
6 3 120 0 0 2 5
7 3 130 5 0 1 6
8 3 130 -5 0 1 6
""",
    # custom type codes, type changes inside a branch, a zero-length piece
    "custom_types": """\
1 1 0 0 0 5 -1
2 7 5 0 0 1 1
3 7 15 0 0 1 2
4 3 25 0 0 1 3
5 3 25 0 0 1 4
6 3 35 0 0 0.7 5
7 0 0 -5 0 1 1
8 0 0 -15 0 1 7
""",
    # NEURON reads coordinates and radii as float32 and applies Import3d's rules to those:
    # diameters equal in float32 make a 3-point soma a sphere (2 sections, not 3) ...
    "float32_equal_diameters": """\
1 1 0 0 0 5 -1
2 1 0 -5 0 5.0000001 1
3 1 0 5 0 5 1
4 3 5 0 0 1 1
5 3 45 0 0 0.8 4
""",
    # ... points equal in float32 are one point (no zero-length section) ...
    "float32_equal_points": """\
1 1 0 0 0 5 -1
2 3 5 0 0 1 1
3 3 25 0 0 1 2
4 3 25.0000001 0 0 1 3
5 3 45 10 0 0.5 3
6 3 45 -10 0 0.5 4
""",
    # ... and a single-point soma's cylinder is built from the float32 values
    "many_digits": """\
1 1 0.123456789012 0.98765432101 0 5.12345678901 -1
2 3 5.1234567891234 1.00000001 0.333333333333 1.11111111111 1
3 3 25.987654321987 3.1415926535897 2.7182818284590 0.9876543210 2
""",
}


def write_swc(tmp_path: Path, name: str, text: str) -> Path:
    path = Path(tmp_path) / f"{name}.swc"
    path.write_text(text)
    return path


def random_swc(seed: int) -> str:
    """A random, valid SWC tree: random soma kind, types, branching, duplicate points,
    non-contiguous children, sometimes a second tree. For fuzzing the reader vs NEURON."""
    rng = random.Random(seed)
    rows: list[list] = []

    def add(t, x, y, z, r, p):
        rows.append([len(rows) + 1, t, x, y, z, r, p])
        return len(rows)

    if seed % 2:
        # fully random tree
        for i in range(rng.randint(1, 25)):
            if i == 0 or rng.random() < 0.05:
                p = -1
            elif rng.random() < 0.6:
                p = i
            else:
                p = rng.randint(1, i)
            t = rng.choice([1, 1, 3, 3, 4, 2, 5]) if rng.random() < 0.5 else \
                (rows[p - 1][1] if p > 0 else 1)
            if p > 0 and rng.random() < 0.1:
                x, y, z = rows[p - 1][2:5]
            else:
                x, y, z = rng.randint(-20, 20) / 2, rng.randint(-20, 20) / 2, rng.randint(-4, 4) / 2
            add(t, x, y, z, rng.choice([0.5, 1.0, 1.5, 2.0, 3.0]), p)
        return "".join(" ".join(str(v) for v in r) + "\n" for r in rows)

    kind = rng.choice(["one", "three", "three_bad", "chain", "branchy", "none"])
    if kind == "one":
        add(1, 0, 0, 0, 5, -1)
    elif kind in ("three", "three_bad"):
        add(1, 0, 0, 0, 5.0, -1)
        add(1, 0, -5.0 if kind == "three" else -3, 0, 5.0, 1)
        add(1, 0, 5.0, 0, 5.0, 1)
    elif kind == "chain":
        p = -1
        for i in range(rng.randint(2, 6)):
            p = add(1, 0, i * 2.0, 0, rng.choice([3.0, 4.0]), p)
        if rng.random() < 0.5:
            p = 1
            for i in range(rng.randint(1, 3)):
                p = add(1, 0, -(i + 1) * 2.0, 0, 3.5, p)
    elif kind == "branchy":
        add(1, 0, 0, 0, 4, -1)
        for _ in range(rng.randint(2, 5)):
            q = rng.randint(1, len(rows))
            add(1, round(rng.uniform(-3, 3), 2), round(rng.uniform(-3, 3), 2), 0,
                round(rng.uniform(2, 4), 2), q)
    else:
        add(rng.choice([3, 4, 2]), 0, 0, 0, 1.0, -1)
    for _ in range(rng.randint(1, 8)):
        q = rng.randint(1, len(rows))
        t = rng.choice([2, 3, 4, 3, 3, 7]) if rng.random() < 0.8 else rows[q - 1][1]
        x, y, z = rows[q - 1][2:5]
        p = q
        for _ in range(rng.randint(1, 5)):
            if rng.random() < 0.1:
                dx = dy = dz = 0.0
            else:
                dx, dy, dz = rng.uniform(-5, 5), rng.uniform(0, 8), rng.uniform(-2, 2)
            x, y, z = x + dx, y + dy, z + dz
            tt = t if rng.random() < 0.9 else rng.choice([3, 4])
            p = add(tt, round(x, 2), round(y, 2), round(z, 2), round(rng.uniform(0.2, 2), 3), p)
    if rng.random() < 0.2:
        p = -1
        for i in range(rng.randint(1, 4)):
            p = add(rng.choice([3, 1]) if i == 0 else 3, 50 + i * 3.0, 50, 0, 1.0, p)
    return "".join(" ".join(str(v) for v in r) + "\n" for r in rows)
