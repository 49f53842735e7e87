#!/usr/bin/env python3
"""Generate a labelled corpus for testing a math-answer verifier.

Purpose
-------
This script writes a deterministic (seeded) JSONL corpus of (gold, completion)
pairs in the style of R1 reasoning traces.  It is used to measure how well an
answer verifier (our C++ one, and math-verify as a reference; see score.py)
decides whether a model completion's final answer matches a dataset's gold
answer.  Nothing is downloaded and nothing is copied from any other project's
test-suite: every case is built here, so the generator knows the true label.

Usage::

    gen_corpus.py --out FILE.jsonl [--seed 0]

Each output line is a JSON object::

    {"id": "<category>-<n>", "category": "...",
     "gold": "<gold answer as a dataset stores it: bare LaTeX, e.g. \\frac{1}{3}>",
     "completion": "<think>\\n...short reasoning...\\n</think>\\n\\n<final answer text>",
     "label": true|false}

``label`` is the TRUE mathematical equivalence of the completion's final
answer (the text after ``</think>``) to the gold.  Text inside the think block
never counts.  The same --seed always gives the same file byte for byte.

Labelling conventions (the rules every label follows)
-----------------------------------------------------
* Final answer.  Only the text after ``</think>`` is the answer.  If the think
  block never closes, there is no answer and the label is false, even when the
  correct value appears in the (unfinished) reasoning.  If the answer section
  holds several ``\\boxed{}`` parts, together they form the answer (category
  ``multi_answer``); otherwise the boxed expression, or failing that the
  explicitly stated final answer ("The final answer is ...", "Answer: ...",
  "#### ...", the expression on the last line) is the answer.
* Integers.  ``{,}``, ``,`` (no space) and ``\\,`` followed by groups of
  exactly three digits are thousands separators (``14{,}916`` = 14916).  A
  comma followed by a space (``32, 349``) separates list elements, so
  ``32, 349`` is a two-element list and NOT equal to 32349.  A bare comma not
  followed by exactly three digits also separates list elements (a gold
  ``16,19`` is the list 16, 19).  A plain space
  inside a number (``14 916``) is not used anywhere (left out as ambiguous).
* Decimal comma.  ``{,}`` followed by one or two digits (``3{,}5``) is a
  decimal comma (= 3.5).  Three digits after ``{,}`` always mean thousands.
* Percent.  The ``%`` sign is a unit: ``28\\%``, ``28%``, ``28 percent`` and
  the bare number ``28`` are all equal to each other, whether the gold is
  ``28\\%`` or ``28``.  In addition, when (and only when) the GOLD carries a
  percent sign, the fraction form is accepted too: gold ``28\\%`` and answer
  ``0.28`` -> true.  Gold ``28`` (no percent sign) and answer ``0.28`` -> false.
* Units.  A unit word or symbol (``\\text{ cm}``, ``\\mathrm{cm}``, ``\\$``,
  ``dollars``, ``^\\circ``, ``°``, ``\\text{ apples}``) attached to a number is
  ignored on either side; the numbers must be equal.  No unit conversion is
  ever assumed (no degree<->radian, no cm<->m cases are generated).
* Sets and lists.  A comma-separated list gold (``-3, 2``) denotes the
  collection of all answers; order does not matter, so it equals the set
  ``\\{2, -3\\}`` and the answer ``2, -3``.  Likewise a set gold equals a comma
  list answer with the same elements.  Sets ignore duplicates.
* Tuples.  ``(a, b)`` in category ``tuples`` is an ordered pair: order and
  length matter.  Open-open ``(a, b)`` is only used as an interval when the
  other side is unambiguously an interval too (a union, or an infinite end).
* Relations.  ``x = 3`` equals ``3`` (a single-variable assignment is its
  value); ``(p,q) = (3,2)`` equals ``(3,2)``; inequalities/equations are equal
  when they describe the same solution set (``x \\le 5`` = ``5 \\ge x``,
  ``x \\in [-2,7]`` = ``[-2,7]`` = ``-2 \\le x \\le 7``, ``y = 2x+1`` =
  ``2x - y + 1 = 0``).
* Multiple choice.  The gold is a letter; ``C``, ``(C)``, ``\\text{(C)}``,
  ``\\textbf{(C) } 12`` all select option C.
* Not generated (left out as too ambiguous to label): degree/radian
  equivalences, rounded answers (``0.333`` for 1/3), mixed numbers such as
  ``1\\frac{1}{2}``, ``\\pm`` inside sets, ``14 916`` with a plain space,
  numbers written inside ``\\text{...}`` together with their unit.
"""

import argparse
import json
import random
from decimal import Decimal

# ---------------------------------------------------------------------------
# completion builders
# ---------------------------------------------------------------------------

BOXED_TEMPLATES = [
    "So the answer is $\\boxed{{{a}}}$.",
    "**Final answer:** $\\boxed{{{a}}}$",
    "Therefore, the answer is \\(\\boxed{{{a}}}\\).",
    "Putting it together:\n\n\\[\n\\boxed{{{a}}}\n\\]",
    "The final answer is $\\boxed{{{a}}}$.",
    "Thus we get $\\boxed{{{a}}}$.",
    "Hence the result is\n$$\\boxed{{{a}}}$$",
    "**Answer:** \\(\\boxed{{{a}}}\\)",
]


class Builder:
    def __init__(self, rng):
        self.rng = rng

    def think(self, lead=None):
        r = self.rng
        a, b, c, d = (r.randint(2, 19) for _ in range(4))
        sentences = [
            f"Start with {a} and {b}; their product is {a * b}.",
            f"Adding {c} to {d} gives {c + d}.",
            "Let me double-check the arithmetic before answering.",
            f"The key constraint involves the value {a + c}.",
            f"Subtracting {b} from {b + d} leaves {d}.",
            "Simplifying the expression step by step should settle it.",
        ]
        picked = r.sample(sentences, r.randint(1, 3))
        if lead:
            picked = [lead] + picked[:2]
        return " ".join(picked)

    def completion(self, final, lead=None):
        return f"<think>\n{self.think(lead)}\n</think>\n\n{final}"

    def boxed(self, ans, lead=None):
        tmpl = self.rng.choice(BOXED_TEMPLATES)
        return self.completion(tmpl.format(a=ans), lead)


def pair(gold, completion, label):
    return {"gold": gold, "completion": completion, "label": bool(label)}


def fill(form, **kw):
    """Substitute {name} placeholders without treating other braces specially."""
    for k, v in kw.items():
        form = form.replace("{" + k + "}", str(v))
    return form


def thousands(n, sep):
    s = f"{n:,}"
    return s.replace(",", sep)


# ---------------------------------------------------------------------------
# categories
# ---------------------------------------------------------------------------

def cat_integers(B):
    r = B.rng
    out = []
    lead = "We need to count the cases carefully."
    for _ in range(9):
        n = r.randint(2, 9999)
        out.append(pair(str(n), B.boxed(str(n), lead), True))
    out.append(pair("0", B.boxed("0", lead), True))
    for _ in range(4):
        n = r.randint(2, 999)
        out.append(pair(f"-{n}", B.boxed(f"-{n}", lead), True))
    for _ in range(3):
        n = r.randint(2, 999)
        out.append(pair(str(n), B.boxed(f"+{n}", lead), True))
    for sep in ["{,}", "{,}", ",", ",", "\\,", "\\,"]:
        n = r.randint(10000, 999999)
        out.append(pair(str(n), B.boxed(thousands(n, sep), lead), True))
    for _ in range(3):
        n = r.randint(1000, 99999)
        out.append(pair(thousands(n, "{,}"), B.boxed(str(n), lead), True))
    n = r.randint(1000000, 9999999)
    out.append(pair(str(n), B.boxed(thousands(n, "{,}"), lead), True))
    # --- non-equivalent
    for _ in range(6):
        n = r.randint(2, 9999)
        m = n + r.choice([-1, 1])
        out.append(pair(str(n), B.boxed(str(m), lead), False))
    for _ in range(4):
        n = r.randint(100, 9999)
        s = list(str(n))
        i = r.randrange(1, len(s))
        s[i] = str((int(s[i]) + r.randint(1, 8)) % 10)
        m = "".join(s)
        assert int(m) != n
        out.append(pair(str(n), B.boxed(m, lead), False))
    for _ in range(3):
        n = r.randint(2, 999)
        out.append(pair(str(n), B.boxed(f"-{n}", lead), False))
    for _ in range(6):
        s = list_split_number(r)
        out.append(pair(s, B.boxed(f"{s[:-3]}, {s[-3:]}", lead), False))
    for _ in range(2):
        n = r.randint(10000, 999999)
        out.append(pair(str(n), B.boxed(thousands(n + 1, "{,}"), lead), False))
    for _ in range(2):
        n = r.randint(1000, 9999)
        m = n * 10
        out.append(pair(str(n), B.boxed(str(m), lead), False))
    return out


def list_split_number(r):
    """A 5-6 digit integer whose last three digits do not start with 0, so that
    'ab, cde' reads naturally as a two-element list."""
    while True:
        s = str(r.randint(10000, 999999))
        if s[-3] != "0":
            return s


def fmt_dec(d):
    s = format(d.normalize(), "f")
    return s


def cat_decimals(B):
    r = B.rng
    out = []
    lead = "The computation produces a decimal value."
    for _ in range(5):
        x = Decimal(r.choice([v for v in range(11, 999) if v % 10])) / 10
        out.append(pair(fmt_dec(x), B.boxed(fmt_dec(x) + "0", lead), True))
    for _ in range(3):
        d = r.randint(1, 99)
        s = f"{d / 100:.2f}".rstrip("0")  # e.g. 0.5, 0.25
        out.append(pair(s, B.boxed(s[1:], lead), True))
    out.append(pair(".75", B.boxed("0.75", lead), True))
    out.append(pair("-0.75", B.boxed("-.75", lead), True))
    sci_forms = ["{m}\\times10^{{{k}}}", "{m} \\times 10^{{{k}}}", "{m}e{k}",
                 "{m}\\cdot 10^{{{k}}}", "{m} \\times 10^{k}", "{m}\\times 10^{{{k}}}"]
    for form in sci_forms:
        m = Decimal(r.randint(11, 99)) / 10
        k = r.randint(2, 4)
        val = fmt_dec(m * (Decimal(10) ** k))
        out.append(pair(val, B.boxed(form.format(m=m, k=k), lead), True))
    for _ in range(4):
        m = r.randint(2, 9)
        k = r.randint(1, 3)
        val = fmt_dec(Decimal(m) * (Decimal(10) ** -k))
        form = r.choice(["{m} \\cdot 10^{{-{k}}}", "{m}\\times10^{{-{k}}}"])
        out.append(pair(val, B.boxed(form.format(m=m, k=k), lead), True))
    for _ in range(2):
        n = r.randint(2, 99)
        out.append(pair(str(n), B.boxed(f"{n}.0", lead), True))
    for _ in range(2):
        m = Decimal(r.randint(11, 99)) / 10
        k = r.randint(3, 5)
        out.append(pair(f"{m} \\times 10^{{{k}}}",
                        B.boxed(fmt_dec(m * Decimal(10) ** k), lead), True))
    out.append(pair("0.030", B.boxed("0.03", lead), True))
    # --- non-equivalent
    for _ in range(6):
        x = Decimal(r.randint(101, 999)) / 100
        y = x + Decimal(r.choice([-1, 1])) / 100
        out.append(pair(fmt_dec(x), B.boxed(fmt_dec(y), lead), False))
    for _ in range(5):
        m = Decimal(r.randint(11, 99)) / 10
        k = r.randint(2, 4)
        val = fmt_dec(m * (Decimal(10) ** k))
        k2 = k + r.choice([-1, 1])
        out.append(pair(val, B.boxed(f"{m}\\times10^{{{k2}}}", lead), False))
    for _ in range(4):
        d = r.randint(1, 9)
        out.append(pair(f"0.0{d}", B.boxed(f"0.{d}", lead), False))
    for _ in range(3):
        x = Decimal(r.randint(11, 999)) / 10
        out.append(pair(fmt_dec(x), B.boxed("-" + fmt_dec(x), lead), False))
    for _ in range(2):
        d = r.randint(1, 9)
        out.append(pair(f"0.{d}", B.boxed(f"{d}", lead), False))
    for _ in range(2):
        m = Decimal(r.randint(11, 99)) / 10
        out.append(pair(fmt_dec(m * 100), B.boxed(f"{m}e3", lead), False))
    for _ in range(2):
        m = r.randint(2, 9)
        out.append(pair(f"0.0{m}", B.boxed(f"{m} \\cdot 10^{{-3}}", lead), False))
    return out


def cat_percent(B):
    r = B.rng
    out = []
    lead = "We want the answer as a percentage."

    def p_():
        while True:
            p = r.randint(11, 99)
            if p % 10:
                return p

    # gold with percent sign
    for form in ["{p}\\%", "{p}\\%", "{p}\\%", "{p}%", "{p}%", "{p}%",
                 "{p}\\text{ percent}", "{p} \\text{ percent}", "{p}", "{p}", "{p}",
                 "{p}.0\\%"]:
        p = p_()
        out.append(pair(f"{p}\\%", B.boxed(fill(form, p=p), lead), True))
    p = p_()
    out.append(pair(f"{p}\\%", B.completion(f"The answer is {p} percent.", lead), True))
    for _ in range(4):
        p = p_()
        out.append(pair(f"{p}\\%", B.boxed(f"0.{p}", lead), True))
    out.append(pair("12.5\\%", B.boxed("12.5%", lead), True))
    out.append(pair("12.5\\%", B.boxed("0.125", lead), True))
    # gold bare number
    for form in ["{p}\\%", "{p}\\%", "{p}\\%", "{p}%", "{p}%", "{p}\\text{ percent}"]:
        p = p_()
        out.append(pair(str(p), B.boxed(fill(form, p=p), lead), True))
    # --- non-equivalent
    for _ in range(4):
        p = p_()
        out.append(pair(f"{p}\\%", B.boxed(f"{p - 1}\\%", lead), False))
    for _ in range(3):
        p = p_()
        out.append(pair(f"{p}\\%", B.boxed(f"{p // 10}.{p % 10}\\%", lead), False))
    p = p_()
    out.append(pair(f"{p}\\%", B.boxed(f"{p * 10}\\%", lead), False))
    for _ in range(3):
        p = p_()
        out.append(pair(f"{p}\\%", B.boxed(f"0.0{p}", lead), False))
    for _ in range(2):
        p = p_()
        q = p + 3
        out.append(pair(f"{p}\\%", B.boxed(str(q), lead), False))
    for _ in range(3):
        p = p_()
        out.append(pair(str(p), B.boxed(f"0.{p}", lead), False))
    for _ in range(3):
        p = p_()
        out.append(pair(str(p), B.boxed(f"{p + 1}\\%", lead), False))
    for _ in range(2):
        p = p_()
        out.append(pair(str(p), B.boxed(f"{p // 10}.{p % 10}", lead), False))
    p = p_()
    out.append(pair(f"{p}\\%", B.completion(f"The answer is {p + 2} percent.", lead), False))
    out.append(pair("12.5\\%", B.boxed("1.25\\%", lead), False))
    return out


def cat_units(B):
    r = B.rng
    out = []
    lead = "Keep track of the units throughout."
    n = lambda: r.randint(2, 99)
    true_forms = [
        "{n}\\text{ cm}", "{n}\\text{ cm}", "{n} \\mathrm{cm}", "{n} \\mathrm{cm}",
        "{n}\\text{cm}", "{n} \\text{ cm}^2", "{n}\\ \\text{meters}",
        "{n}^\\circ", "{n}^\\circ", "{n}^{\\circ}", "{n}^{\\circ}", "{n}°", "{n}°",
        "{n} \\text{ degrees}", "{n}\\text{ apples}", "{n} \\text{ hours}",
        "{n}\\,\\text{km/h}", "{n} \\mathrm{~kg}", "{n}\\textnormal{ apples}",
    ]
    for form in true_forms:
        v = n()
        out.append(pair(str(v), B.boxed(fill(form, n=v), lead), True))
    for _ in range(2):
        d, c = r.randint(2, 99), r.randint(1, 9) * 10
        out.append(pair(f"{d}.{c // 10}", B.boxed(f"\\${d}.{c}", lead), True))
        out.append(pair(f"{d}.{c}", B.boxed(f"{d}.{c}\\text{{ dollars}}", lead), True))
    v = r.randint(1001, 9999)
    out.append(pair(str(v), B.boxed("\\$" + thousands(v, "{,}"), lead), True))
    # gold carries the unit
    for gform, aform in [("{n}\\text{{ cm}}", "{n}"), ("{n}^\\circ", "{n}"),
                         ("{n}^\\circ", "{n}^{{\\circ}}"), ("\\${n}.50", "{n}.5"),
                         ("{n} \\text{{ square units}}", "{n}")]:
        v = n()
        out.append(pair(gform.format(n=v), B.boxed(aform.format(n=v), lead), True))
    # --- non-equivalent: same unit, different number
    false_forms = [
        "{n}\\text{ cm}", "{n} \\mathrm{cm}", "{n} \\text{ cm}^2", "{n}^\\circ",
        "{n}^{\\circ}", "{n}°", "{n}\\text{ apples}", "{n} \\text{ hours}",
        "{n} \\mathrm{~kg}", "{n} \\text{ degrees}", "{n}\\text{ cm}", "{n}^\\circ",
    ]
    for form in false_forms:
        v = n()
        w = v + r.choice([-1, 1, 10])
        out.append(pair(str(v), B.boxed(fill(form, n=w), lead), False))
    for _ in range(3):
        d = r.randint(2, 99)
        out.append(pair(f"{d}.50", B.boxed(f"\\${d}.05", lead), False))
    for _ in range(2):
        d = r.randint(2, 99)
        out.append(pair(f"{d}.5", B.boxed(f"{d + 1}.50\\text{{ dollars}}", lead), False))
    for gform, aform, delta in [("{n}\\text{{ cm}}", "{n}", 2), ("{n}^\\circ", "{n}", 90),
                                ("{n}^\\circ", "{n}^{{\\circ}}", 1), ("\\${n}.50", "{n}.05", 0),
                                ("{n} \\text{{ square units}}", "{n}", 4)]:
        v = n()
        out.append(pair(gform.format(n=v), B.boxed(aform.format(n=v + delta), lead), False))
    v = 180 - r.randint(20, 80)
    out.append(pair(str(180 - v), B.boxed(f"{v}^\\circ", lead), False))
    return out


def cat_latex_forms(B):
    lead = "Simplify the fraction and radicals."
    T = [
        ("\\frac{1}{3}", "\\dfrac{1}{3}"), ("\\frac{2}{5}", "\\tfrac{2}{5}"),
        ("\\frac{5}{6}", "\\cfrac{5}{6}"), ("\\frac{1}{2}", "\\frac12"),
        ("\\frac{3}{4}", "\\dfrac34"), ("\\sqrt{3}", "\\sqrt3"),
        ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}"),
        ("\\frac{1}{3}", "\\left( \\frac{1}{3} \\right)"),
        ("-\\frac{1}{2}", "\\frac{-1}{2}"), ("-\\frac{1}{2}", "-\\!\\frac{1}{2}"),
        ("\\frac{1}{2}", "\\frac{2}{4}"), ("\\frac{1}{4}", "0.25"),
        ("0.75", "\\frac{3}{4}"), ("\\frac{7}{3}", "\\displaystyle \\frac{7}{3}"),
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"), ("2", "\\sqrt[3]{8}"),
        ("\\frac{1}{2}", "2^{-1}"), ("\\frac{3}{2}", "1.5"), ("\\frac{-3}{4}", "-0.75"),
        ("\\frac{4}{3}", "\\frac{8}{6}"), ("2\\sqrt{5}", "2 \\sqrt 5"),
        ("\\frac{5}{2}", "\\left(\\dfrac{5}{2}\\right)"), ("\\frac{1}{8}", "\\frac{1}{2^3}"),
        ("\\frac{9}{4}", "\\tfrac{9}{4}"), ("\\frac{3}{5}", "\\frac{3}{5}\\!"),
    ]
    F = [
        ("\\frac{1}{3}", "\\frac{1}{4}"), ("\\sqrt{2}", "\\sqrt{3}"),
        ("-\\frac{1}{2}", "\\frac{1}{2}"), ("\\frac{1}{2}", "\\frac{-1}{2}"),
        ("\\frac{3}{2}", "\\frac{2}{3}"), ("\\sqrt{3}", "3"), ("\\frac{1}{2}", "0.25"),
        ("\\frac{1}{4}", "0.4"), ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{2}}{2}"),
        ("\\frac{2}{5}", "\\dfrac{5}{2}"), ("2", "\\sqrt[3]{6}"),
        ("\\frac{1}{8}", "\\frac{1}{2^4}"), ("\\frac{5}{6}", "\\cfrac{6}{5}"),
        ("\\frac{7}{3}", "\\displaystyle \\frac{7}{4}"), ("0.75", "\\frac{3}{5}"),
        ("\\frac{4}{3}", "\\frac{8}{3}"), ("\\frac{1}{3}", "\\left( \\frac{1}{9} \\right)"),
        ("\\sqrt{3}", "\\sqrt[3]{3}"), ("2\\sqrt{5}", "5\\sqrt{2}"),
        ("\\frac{1}{2}", "\\frac{1}{2^2}"), ("-\\frac{3}{4}", "\\frac{3}{4}"),
        ("\\frac{\\sqrt{2}}{2}", "\\sqrt{2}"), ("\\frac{9}{4}", "\\tfrac{4}{9}"),
        ("\\frac{1}{3}", "0.3"),
    ]
    return ([pair(g, B.boxed(a, lead), True) for g, a in T] +
            [pair(g, B.boxed(a, lead), False) for g, a in F])


def cat_tuples(B):
    lead = "We need the ordered pair (or triple) of coordinates."
    T = [
        ("(1,\\frac{9}{2})", "(1,4.5)"), ("(3,-2)", "(3, -2)"), ("(1,2)", "\\left(1, 2\\right)"),
        ("(1,2,3)", "(1, 2, 3)"), ("(\\frac{1}{2}, \\sqrt{2})", "(0.5, \\sqrt{2})"),
        ("(-1, 4)", "\\left( -1,4 \\right)"), ("(2, -\\frac{1}{3})", "\\left(2,\\ -\\frac13\\right)"),
        ("(0, 0, 1)", "(0,0,1)"), ("(4, 6)", "( 4 , 6 )"),
        ("(\\frac{3}{2}, -\\frac{1}{2})", "(1.5,-0.5)"), ("(2\\sqrt{2}, 1)", "(\\sqrt{8}, 1)"),
        ("(1, -1, 2)", "\\left(1,-1,2\\right)"), ("(5, 12, 13)", "(5,\\,12,\\,13)"),
        ("(-2, 3)", "(-2,3)"), ("(\\frac{1}{2}, 3)", "(\\frac{2}{4},3)"), ("(6, 0)", "(6,0)"),
        ("(-3, -7)", "(-3,-7)"), ("(1,2,3,4)", "(1, 2, 3, 4)"), ("(0.25, 8)", "(\\frac14, 8)"),
        ("(7, 1)", "\\left(7, 1\\right)"), ("(10, -5, 2)", "(10,-5,2)"),
        ("(\\sqrt{3}, 2)", "(\\sqrt3, 2)"),
        ("(\\frac{1}{3}, \\frac{2}{3})", "\\left(\\dfrac{1}{3}, \\dfrac{2}{3}\\right)"),
        ("(3, 4)", "(3,4)"),
    ]
    F = [
        ("(1,2)", "(2,1)"), ("(3,-2)", "(-2,3)"), ("(4, 6)", "(6, 4)"), ("(1,2,3)", "(3,2,1)"),
        ("(1,2,3)", "(1,3,2)"), ("(1,\\frac{9}{2})", "(1,4)"), ("(-1, 4)", "(1, 4)"),
        ("(2, -\\frac{1}{3})", "(2, -3)"), ("(5, 12, 13)", "(5, 12, 14)"),
        ("(0, 0, 1)", "(0, 1, 0)"), ("(\\frac{3}{2}, -\\frac{1}{2})", "(1.5, 0.5)"),
        ("(2\\sqrt{2}, 1)", "(2\\sqrt{3}, 1)"), ("(6, 0)", "(0, 6)"), ("(-3, -7)", "(-3, 7)"),
        ("(1,2)", "(1,2,0)"), ("(1,2,3)", "(1,2)"), ("(1, -1, 2)", "(1, -1)"),
        ("(1,2,3,4)", "(1,2,3)"), ("(7, 1)", "(7, 1, 1)"), ("(\\sqrt{3}, 2)", "(3, 2)"),
        ("(10, -5, 2)", "(10, 5, 2)"), ("(0.25, 8)", "(\\frac{1}{2}, 8)"), ("(3, 4)", "(4, 3)"),
        ("(-2, 3)", "(-2, -3)"),
    ]
    return ([pair(g, B.boxed(a, lead), True) for g, a in T] +
            [pair(g, B.boxed(a, lead), False) for g, a in F])


def cat_sets(B):
    lead = "Collect every value that satisfies the condition."
    T = [
        ("\\{1, 2, 3\\}", "\\{3, 1, 2\\}"), ("\\{1,2,3\\}", "1, 2, 3"),
        ("\\{-1, 4\\}", "\\{4, -1\\}"), ("\\{1, 2\\}", "\\{1, 1, 2\\}"),
        ("\\{\\frac{1}{2}, -1\\}", "\\{-1, 0.5\\}"), ("\\{0, 5, 10\\}", "\\{10, 0, 5\\}"),
        ("\\{2\\}", "\\{2, 2\\}"), ("\\emptyset", "\\varnothing"), ("\\emptyset", "\\{\\}"),
        ("\\{\\sqrt{2}, -\\sqrt{2}\\}", "\\{-\\sqrt{2}, \\sqrt{2}\\}"),
        ("\\{1, 3, 5, 7\\}", "\\{7,5,3,1\\}"), ("1, 3", "\\{3, 1\\}"), ("-2, 5", "\\{5, -2\\}"),
        ("\\{4, 9\\}", "9, 4"), ("\\{0, 1\\}", "0,1"), ("\\left\\{ 1, 2 \\right\\}", "\\{1,2\\}"),
        ("\\{1, \\frac{3}{2}\\}", "\\{1.5, 1\\}"), ("\\{ 2, 4, 6 \\}", "\\{2,4,6\\}"),
        ("\\{-3\\}", "\\{-3\\}"), ("\\{1, 2, 3\\}", "\\{1, 2, 3, 2\\}"), ("\\{0\\}", "\\{0, 0\\}"),
        ("\\{-1, 4\\}", "\\left\\{4,-1\\right\\}"), ("\\{2, 3, 5\\}", "\\{5, 3, 2\\}"),
        ("\\{6, -6\\}", "\\{-6, 6\\}"),
    ]
    F = [
        ("\\{1,2,3\\}", "\\{1,2\\}"), ("\\{-1,4\\}", "\\{4\\}"), ("\\{0,5,10\\}", "\\{0, 10\\}"),
        ("\\{1,3,5,7\\}", "\\{1,3,5\\}"), ("\\{1,2\\}", "\\{1,2,3\\}"), ("\\{2\\}", "\\{2, -2\\}"),
        ("\\{\\sqrt{2}, -\\sqrt{2}\\}", "\\{\\sqrt{2}, -\\sqrt{2}, 0\\}"), ("\\{4,9\\}", "\\{4,9,16\\}"),
        ("\\{\\frac{1}{2},-1\\}", "\\{-1, 2\\}"), ("\\{1,\\frac{3}{2}\\}", "\\{1, \\frac{2}{3}\\}"),
        ("\\{-2, 5\\}", "\\{2, 5\\}"), ("\\emptyset", "\\{0\\}"), ("\\{0\\}", "\\emptyset"),
        ("\\{1,2,3\\}", "1, 2"), ("1, 3", "\\{1\\}"), ("\\{-3\\}", "\\{3\\}"),
        ("\\{2,4,6\\}", "\\{2,4,8\\}"), ("\\{0,1\\}", "\\{1\\}"), ("\\{1,2,3\\}", "\\{1, 2, 3, 4\\}"),
        ("\\{-1,4\\}", "\\{1,-4\\}"), ("\\{\\sqrt{2}, -\\sqrt{2}\\}", "\\{\\sqrt{2}\\}"),
        ("-2, 5", "\\{-2, 5, 7\\}"), ("\\{2, 3, 5\\}", "2, 3, 7"), ("\\{6, -6\\}", "\\{6\\}"),
    ]
    return ([pair(g, B.boxed(a, lead), True) for g, a in T] +
            [pair(g, B.boxed(a, lead), False) for g, a in F])


def cat_intervals(B):
    lead = "Solve the inequality and write the solution in interval notation."
    T = [
        ("[2, 5)", "[2,5)"), ("[2, 5)", "\\left[2, 5\\right)"), ("(-\\infty, 3]", "(-\\infty,3]"),
        ("(-\\infty, 3]", "\\left(-\\infty, 3\\right]"), ("(1,2) \\cup (3,4)", "(1, 2)\\cup(3, 4)"),
        ("(1,2) \\cup (3,4)", "(3,4) \\cup (1,2)"), ("[0, \\infty)", "[0, +\\infty)"),
        ("[0,\\infty)", "[0, \\infty)"), ("[-1, 1]", "[-1,1]"), ("[\\frac{1}{2}, 2]", "[0.5, 2]"),
        ("(-\\infty, -2) \\cup [3, \\infty)", "(-\\infty,-2)\\cup[3,\\infty)"),
        ("(-\\infty, -2) \\cup [3, \\infty)", "[3,\\infty)\\cup(-\\infty,-2)"),
        ("(-3, 4]", "(-3,4]"), ("[-\\frac{3}{2}, \\infty)", "[-1.5, \\infty)"),
        ("(-\\infty, \\infty)", "\\mathbb{R}"),
        ("(-\\infty, 0) \\cup (0, \\infty)", "(-\\infty,0)\\cup(0,\\infty)"), ("[1, 4]", "[1,4]"),
        ("(0, 1]", "\\left( 0, 1 \\right]"), ("[\\sqrt{2}, 3)", "[\\sqrt2, 3)"),
        ("[-2, 7]", "[-2,7]"), ("(5, \\infty)", "(5,\\infty)"),
        ("[1,3] \\cup [5,6]", "[1,3]\\cup[5,6]"), ("[1, 5]", "[1,3) \\cup [3,5]"),
        ("[-1, 1]", "[-1, 0] \\cup [0, 1]"),
    ]
    F = [
        ("[2, 5)", "[2,5]"), ("[2, 5)", "(2,5)"), ("[2, 5)", "[2,6)"), ("(-\\infty, 3]", "(-\\infty,3)"),
        ("(-\\infty, 3]", "[3,\\infty)"), ("(1,2) \\cup (3,4)", "(1,2)"),
        ("(1,2) \\cup (3,4)", "(1,4)"), ("[0, \\infty)", "(0,\\infty)"), ("[-1, 1]", "(-1,1)"),
        ("[\\frac{1}{2}, 2]", "[\\frac{1}{3}, 2]"),
        ("(-\\infty, -2) \\cup [3, \\infty)", "(-\\infty,-2]\\cup[3,\\infty)"),
        ("(-3, 4]", "[-3,4]"), ("[-\\frac{3}{2}, \\infty)", "[\\frac{3}{2}, \\infty)"),
        ("(-\\infty, 0) \\cup (0, \\infty)", "(-\\infty,\\infty)"), ("[1, 4]", "[1,4)"),
        ("(0, 1]", "[0,1]"), ("[2, 5)", "(2,5]"), ("[-2, 7]", "[-2,7)"), ("(5, \\infty)", "[5,\\infty)"),
        ("[1,3] \\cup [5,6]", "[1,6]"), ("[\\sqrt{2}, 3)", "[\\sqrt{3}, 3)"),
        ("(-\\infty, 3]", "(-\\infty, -3]"), ("[1, 5]", "[1,3) \\cup (3,5]"), ("[-1, 1]", "[-1, 2]"),
    ]
    return ([pair(g, B.boxed(a, lead), True) for g, a in T] +
            [pair(g, B.boxed(a, lead), False) for g, a in F])


def mat_tex(rows, env, sep=" & ", rsep=" \\\\ "):
    if env == "array":
        cols = "c" * len(rows[0])
        body = rsep.join(sep.join(row) for row in rows)
        return f"\\left(\\begin{{array}}{{{cols}}} {body} \\end{{array}}\\right)"
    body = rsep.join(sep.join(row) for row in rows)
    return f"\\begin{{{env}}} {body} \\end{{{env}}}"


def cat_matrices(B):
    r = B.rng
    out = []
    lead = "Multiply the matrices entry by entry."
    shapes = [(2, 2), (2, 2), (2, 2), (3, 3), (2, 1), (3, 1), (1, 3), (2, 3)]
    halves = {"\\frac{1}{2}": "0.5", "-\\frac{1}{2}": "-0.5", "\\frac{3}{2}": "1.5",
              "\\frac{1}{4}": "0.25", "\\dfrac{3}{4}": "0.75"}

    def rand_mat(shape, frac=False):
        R, C = shape
        while True:
            m = [[str(r.randint(-9, 9)) for _ in range(C)] for _ in range(R)]
            if frac:
                i, j = r.randrange(R), r.randrange(C)
                m[i][j] = r.choice(list(halves))
            if R == C and any(m[i][j] != m[j][i] for i in range(R) for j in range(C)):
                return m
            if R != C:
                return m

    envs = ["pmatrix", "bmatrix"]
    for k in range(24):
        shape = shapes[k % len(shapes)]
        frac = k % 3 == 0
        m = rand_mat(shape, frac)
        genv = r.choice(envs)
        aenv = r.choice(envs + ["array"]) if k % 4 else ("bmatrix" if genv == "pmatrix" else "pmatrix")
        am = [row[:] for row in m]
        if frac and k % 2 == 0:  # write fractional entries as decimals
            am = [[halves.get(x, x) for x in row] for row in am]
        sep = r.choice([" & ", "&"])
        out.append(pair(mat_tex(m, genv), B.boxed(mat_tex(am, aenv, sep=sep), lead), True))
    for k in range(24):
        shape = shapes[k % len(shapes)]
        m = rand_mat(shape, k % 4 == 0)
        genv = r.choice(envs)
        aenv = r.choice(envs)
        kind = k % 3
        if kind == 0 or shape[0] != shape[1]:
            am = [row[:] for row in m]
            i, j = r.randrange(shape[0]), r.randrange(shape[1])
            x = am[i][j]
            am[i][j] = str(int(x) + r.choice([-2, -1, 1, 2])) if x.lstrip("-").isdigit() else "1"
            if x == "1":
                am[i][j] = "2"
        elif kind == 1:
            am = [list(col) for col in zip(*m)]  # transpose (m is non-symmetric)
        else:
            am = [row[:] for row in m]
            i, j = r.randrange(shape[0]), r.randrange(shape[1])
            x = am[i][j]
            if x in ("0",):
                am[i][j] = "5"
            elif x.startswith("-"):
                am[i][j] = x[1:]
            else:
                am[i][j] = "-" + x
        assert am != m
        out.append(pair(mat_tex(m, genv), B.boxed(mat_tex(am, aenv), lead), False))
    return out


def cat_multi_answer(B):
    r = B.rng
    out = []

    def roots():
        a = r.randint(-9, 9)
        b = r.randint(-9, 9)
        while b == a or a == 0 or b == 0 or a == -b:
            a, b = r.randint(-9, 9), r.randint(-9, 9)
        return sorted((a, b))

    def lead(a, b):
        sb = f"- {b}" if b > 0 else f"+ {-b}"
        sa = f"- {a}" if a > 0 else f"+ {-a}"
        return f"The quadratic factors as (x {sa})(x {sb}) = 0, so there are two roots."

    gold_forms = ["{a}, {b}", "{a} \\text{{ and }} {b}", "{a},{b}"]
    true_finals = [
        "The two values are $\\boxed{{{a}}}$ and $\\boxed{{{b}}}$.",
        "So the solutions are $x = \\boxed{{{a}}}$ and $x = \\boxed{{{b}}}$.",
        "The solutions are $\\boxed{{{a}, {b}}}$.",
        "Therefore $\\boxed{{x = {a} \\text{{ or }} x = {b}}}$.",
        "Hence $x = {b}$ or $x = {a}$, i.e. $\\boxed{{x = {b}}}$ or $\\boxed{{x = {a}}}$.",
        "$\\boxed{{{a}}} \\text{{ and }} \\boxed{{{b}}}$",
        "The roots are \\(\\boxed{{{b}}}\\) and \\(\\boxed{{{a}}}\\).",
        "**Final answer:** $\\boxed{{{b}, {a}}}$",
    ]
    for k in range(24):
        a, b = roots()
        g = gold_forms[k % 3].format(a=a, b=b)
        f = true_finals[k % len(true_finals)].format(a=a, b=b)
        out.append(pair(g, B.completion(f, lead(a, b)), True))
    false_finals = [
        ("The answer is $\\boxed{{{a}}}$.", lambda a, b: (a, b)),
        ("So $x = \\boxed{{{b}}}$.", lambda a, b: (a, b)),
        ("The two values are $\\boxed{{{a}}}$ and $\\boxed{{{b}}}$.", lambda a, b: (a, b + 1)),
        ("The solutions are $\\boxed{{{a}, {b}}}$.", lambda a, b: (-a, b)),
        ("Therefore $\\boxed{{x = {a} \\text{{ or }} x = {b}}}$.", lambda a, b: (a, -b)),
        ("The roots are $\\boxed{{{a}}}$, $\\boxed{{{b}}}$ and $\\boxed{{0}}$.", lambda a, b: (a, b)),
        ("The solutions are $\\boxed{{{a}, {b}}}$.", lambda a, b: (-a, -b)),
        ("Hence $\\boxed{{x = {b}}}$ is the only root.", lambda a, b: (a, b)),
    ]
    for k in range(24):
        a, b = roots()
        g = gold_forms[k % 3].format(a=a, b=b)
        tmpl, mut = false_finals[k % len(false_finals)]
        a2, b2 = mut(a, b)
        if "{a}" in tmpl and "{b}" in tmpl and "{{0}}" not in tmpl:
            assert {a2, b2} != {a, b}, "false multi-answer case equals gold"
        f = tmpl.format(a=a2, b=b2)
        out.append(pair(g, B.completion(f, lead(a, b)), False))
    return out


def cat_relations(B):
    lead = "Solve for the unknowns and state the result."
    T = [
        ("3", "x=3"), ("x = 3", "3"), ("(3,2)", "(p,q)=(3,2)"), ("x \\le 5", "5 \\ge x"),
        ("[-2,7]", "x \\in [-2,7]"), ("y = 2x+1", "y=1+2x"), ("x \\le 5", "x \\leq 5"),
        ("x > -1", "-1 < x"), ("x \\ge 2", "x \\geq 2"), ("[-2,7]", "-2 \\le x \\le 7"),
        ("y = 2x + 1", "2x - y + 1 = 0"), ("x = \\frac{1}{2}", "x = 0.5"), ("7", "n = 7"),
        ("(1, -2)", "(x, y) = (1, -2)"), ("y = -x + 4", "y = 4 - x"), ("(-\\infty, 5)", "x < 5"),
        ("x < 5", "x<5"), ("k = 12", "12"), ("\\frac{3}{2}", "a = \\frac{3}{2}"),
        ("y = 3x^2", "y = 3 x^{2}"), ("a = 4", "a=4"), ("x \\geq 0", "0 \\leq x"),
        ("2x + 3y = 6", "3y + 2x = 6"), ("y = 2x + 1", "2y = 4x + 2"),
    ]
    F = [
        ("x < 5", "x \\le 5"), ("3", "x=4"), ("(3,2)", "(p,q)=(2,3)"), ("x \\le 5", "x \\ge 5"),
        ("[-2,7]", "x \\in (-2,7]"), ("y = 2x + 1", "y = 2x - 1"), ("x > -1", "x < -1"),
        ("x \\ge 2", "x > 2"), ("[-2,7]", "-2 < x \\le 7"), ("y = 2x+1", "y = x + 2"),
        ("x = \\frac{1}{2}", "x = 2"), ("7", "n = 8"), ("(1, -2)", "(x, y) = (-2, 1)"),
        ("y = -x + 4", "y = x + 4"), ("(-\\infty, 5)", "x > 5"), ("k = 12", "k = 21"),
        ("\\frac{3}{2}", "a = \\frac{2}{3}"), ("y = 3x^2", "y = 3x"), ("x \\ge 0", "x \\le 0"),
        ("2x + 3y = 6", "2x + 3y = 5"), ("x \\le 5", "5 < x"), ("x = 3", "x = -3"),
        ("a = 4", "a = 2"), ("(-\\infty, 5)", "x \\le 5"),
    ]
    return ([pair(g, B.boxed(a, lead), True) for g, a in T] +
            [pair(g, B.boxed(a, lead), False) for g, a in F])


def cat_multiple_choice(B):
    r = B.rng
    out = []
    letters = "ABCDE"
    gold_forms = ["{L}", "{L}", "{L}", "\\text{{({L})}}", "\\textbf{{({L})}}", "({L})"]
    ans_forms = ["{L}", "({L})", "\\text{{({L})}}", "\\textbf{{({L}) }} {v}", "\\mathrm{{({L})}}",
                 "\\text{{{L}}}", "\\textbf{{({L})}}", "\\text{{({L}) }} {v}"]
    for truth in (True, False):
        for k in range(24):
            L = r.choice(letters)
            M = L if truth else r.choice([x for x in letters if x != L])
            v = r.randint(2, 60)
            g = gold_forms[k % len(gold_forms)].format(L=L)
            a = ans_forms[k % len(ans_forms)].format(L=M, v=v)
            other = r.choice([x for x in letters if x != M])
            lead = f"Option ({other}) looks tempting, but checking it against the constraints rules it out."
            out.append(pair(g, B.boxed(a, lead), truth))
    return out


def cat_symbolic(B):
    lead = "Simplify the expression algebraically."
    T = [
        ("\\frac{x+2}{7}", "\\frac{x}{7}+\\frac{2}{7}"), ("\\sqrt{8}", "2\\sqrt{2}"),
        ("(x+1)^2", "x^2+2x+1"), ("\\pi", "\\pi"), ("2\\pi r", "2r\\pi"), ("e^{2}", "e^2"),
        ("1", "\\sin^2 x + \\cos^2 x"), ("3", "\\log_2 8"), ("x^2 - 1", "(x-1)(x+1)"),
        ("\\frac{x+y}{xy}", "\\frac{1}{x} + \\frac{1}{y}"), ("2a+2b", "2(a+b)"),
        ("2\\sqrt{3}", "\\sqrt{12}"), ("5\\sqrt{2}", "\\sqrt{50}"), ("4\\pi", "\\pi \\cdot 4"),
        ("\\frac{\\pi}{2}", "\\frac{1}{2}\\pi"), ("3", "\\ln(e^3)"), ("5", "e^{\\ln 5}"),
        ("x^3", "x \\cdot x^2"), ("\\sqrt{18}", "3\\sqrt{2}"), ("1024", "2^{10}"),
        ("10", "\\binom{5}{2}"), ("120", "5!"), ("-1", "\\cos(\\pi)"), ("(a-b)(a+b)", "a^2 - b^2"),
    ]
    F = [
        ("(x+1)^2", "x^2+1"), ("\\sqrt{8}", "3\\sqrt{2}"), ("2\\pi", "\\pi"),
        ("\\frac{x+2}{7}", "\\frac{x}{7}+2"), ("e^2", "2e"), ("3", "\\log_2 16"),
        ("x^2-1", "(x-1)^2"), ("1024", "2^{9}"), ("10", "\\binom{5}{3} + 1"), ("2\\sqrt{3}", "3\\sqrt{2}"),
        ("\\pi r^2", "2\\pi r"), ("\\frac{\\pi}{3}", "\\frac{\\pi}{6}"), ("x^2 + 2x", "x^2 + 2"),
        ("2a+2b", "2a+b"), ("5\\sqrt{2}", "\\sqrt{10}"), ("\\frac{x+y}{xy}", "\\frac{1}{x+y}"),
        ("x^3", "3x"), ("120", "4!"), ("-1", "\\cos(2\\pi)"), ("(a-b)(a+b)", "a^2 + b^2"),
        ("4\\pi", "4\\pi^2"), ("1", "\\sin^2 x - \\cos^2 x"), ("5", "e^{5}"), ("2\\pi r", "\\pi r"),
    ]
    return ([pair(g, B.boxed(a, lead), True) for g, a in T] +
            [pair(g, B.boxed(a, lead), False) for g, a in F])


def cat_extraction(B):
    r = B.rng
    out = []
    finals = [
        "The final answer is ${n}$.",
        "Answer: {n}",
        "#### {n}",
        "**Answer:** {n}",
        "Final Answer: The final answer is ${n}$. I hope it is correct.",
        "The answer is {n}.",
        "So the total is\n$${n}$$",
        "Therefore the number of ways is\n\\[ {n} \\]",
        "Thus, the total number of ways is **{n}**.",
        "After simplifying, the count comes to ${n}$",
    ]
    # true: plain unboxed final answers
    for k, f in enumerate(finals):
        n = r.randint(10, 999)
        out.append(pair(str(n), B.completion(f.format(n=n)), True))
    # true: last line ending with a fraction
    for _ in range(3):
        p, q = r.choice([(3, 4), (2, 7), (5, 9), (4, 11), (7, 8), (1, 6)])
        out.append(pair(f"\\frac{{{p}}}{{{q}}}",
                        B.completion(f"Combining the cases, the probability is $\\frac{{{p}}}{{{q}}}$"), True))
    # true: an earlier wrong number in the think block must not count
    for k in range(6):
        n = r.randint(10, 999)
        m = n + r.randint(1, 9)
        think = (f"My first attempt gave $\\boxed{{{m}}}$ but I dropped a term. Redoing it, the total is {n}."
                 if k % 2 == 0 else
                 f"A quick estimate suggests {m}, but the careful count is {n}.")
        f = finals[k % 4].format(n=n)
        out.append(pair(str(n), f"<think>\n{think}\n</think>\n\n{f}", True))
    for _ in range(3):
        n = r.randint(10, 999)
        m = n - r.randint(1, 9)
        f = f"Initially I got {m}, but after correcting the sign error the final answer is ${n}$."
        out.append(pair(str(n), B.completion(f), True))
    # true: boxed answer after reasoning that mentions other numbers
    for _ in range(2):
        n = r.randint(10, 999)
        m = n + 11
        out.append(pair(str(n), f"<think>\nIs it {m}? No, {m} overcounts by 11, so {n}.\n</think>\n\n"
                                f"We overcount by 11, so the answer is $\\boxed{{{n}}}$.", True))
    # --- non-equivalent: stated final answer is wrong though the right one appears in the reasoning
    for k in range(12):
        n = r.randint(10, 999)
        m = n + r.choice([-3, -2, -1, 1, 2, 3])
        think = f"Adding the parts gives {n}. Hmm, I think one case was counted twice, so it should be {m}."
        f = finals[k % len(finals)].format(n=m)
        out.append(pair(str(n), f"<think>\n{think}\n</think>\n\n{f}", False))
    for _ in range(2):
        n = r.randint(10, 999)
        m = n + 5
        out.append(pair(str(n), f"<think>\nThe count is $\\boxed{{{n}}}$... wait, five more cases, {m}.\n</think>\n\n"
                                f"The answer is $\\boxed{{{m}}}$.", False))
    p, q = 3, 4
    out.append(pair("\\frac{3}{4}", B.completion("Combining the cases, the probability is $\\frac{4}{3}$"), False))
    out.append(pair("\\frac{2}{7}", B.completion("Combining the cases, the probability is $\\frac{2}{9}$"), False))
    # --- non-equivalent: the think block never closes (no answer at all)
    unclosed = [
        "<think>\nThe total is {n}, so the answer is $\\boxed{{{n}}}$.",
        "<think>\nAdding up: 3 + 4 = 7, and the total comes to {n}.\nThe final answer is ${n}$.",
        "<think>\nLet me compute. The answer is {n}.\nAnswer: {n}",
        "<think>\nSo far we have {n}; continue checking the remaining cases, which gives",
        "<think>\n#### {n}",
        "<think>\nWe get $\\boxed{{{n}}}$ as the count, but let me verify this by",
    ]
    for f in unclosed:
        n = r.randint(10, 999)
        out.append(pair(str(n), f.format(n=n), False))
    # more false, plain
    for k in range(3):
        n = r.randint(10, 999)
        out.append(pair(str(n), B.completion(finals[(k + 3) % len(finals)].format(n=n * 2)), False))
    return out


def cat_decimal_comma(B):
    r = B.rng
    out = []
    lead = "The measurement comes out as a decimal."
    for k in range(12):
        i = r.randint(0, 99)
        nd = 1 if k % 2 == 0 else 2
        f = r.randint(1, 9) if nd == 1 else r.randint(11, 99)
        if nd == 2 and f % 10 == 0:
            f += 1
        out.append(pair(f"{i}.{f}", B.boxed(f"{i}{{,}}{f}", lead), True))
    for _ in range(4):
        a, b = r.sample(range(1, 20), 2)
        g = r.choice([f"{a},{b}", f"{a}, {b}"])
        out.append(pair(g, B.boxed(r.choice([f"\\{{{a}, {b}\\}}", f"\\{{{b}, {a}\\}}"]), lead), True))
    for _ in range(3):
        a, b = r.sample(range(1, 20), 2)
        out.append(pair(f"{a}, {b}", B.boxed(f"{b}, {a}", lead), True))
    for _ in range(3):
        n = r.randint(1001, 99999)
        out.append(pair(str(n), B.boxed(thousands(n, "{,}"), lead), True))
    for _ in range(2):
        a, b = r.sample(range(1, 20), 2)
        out.append(pair(f"\\{{{a}, {b}\\}}", B.boxed(f"{a}, {b}", lead), True))
    # --- non-equivalent
    for _ in range(8):
        s = list_split_number(r)
        out.append(pair(s, B.boxed(f"{s[:-3]}, {s[-3:]}", lead), False))
    for _ in range(4):
        i, f = r.randint(1, 99), r.randint(1, 8)
        out.append(pair(f"{i}.{f}", B.boxed(f"{i}{{,}}{f + 1}", lead), False))
    for _ in range(2):
        i, f = r.randint(1, 99), r.randint(1, 9)
        out.append(pair(f"{i}.{f}", B.boxed(f"{i}{f}", lead), False))
    for _ in range(4):
        a, b = r.randint(1, 9), r.randint(1, 9)
        out.append(pair(f"{a}, {b}", B.boxed(f"{a}.{b}", lead), False))
    for _ in range(3):
        i, f = r.randint(1, 9), r.randint(11, 99)
        out.append(pair(f"{i}.{f}", B.boxed(f"{i}, {f}", lead), False))
    for _ in range(3):
        a, b = r.sample(range(1, 20), 2)
        c = max(a, b) + 1
        out.append(pair(f"{a}, {b}", B.boxed(f"\\{{{a}, {c}\\}}", lead), False))
    return out


CATEGORIES = [
    ("integers", cat_integers),
    ("decimals", cat_decimals),
    ("percent", cat_percent),
    ("units", cat_units),
    ("latex_forms", cat_latex_forms),
    ("tuples", cat_tuples),
    ("sets", cat_sets),
    ("intervals", cat_intervals),
    ("matrices", cat_matrices),
    ("multi_answer", cat_multi_answer),
    ("relations", cat_relations),
    ("multiple_choice", cat_multiple_choice),
    ("symbolic", cat_symbolic),
    ("extraction", cat_extraction),
    ("decimal_comma", cat_decimal_comma),
]


def generate(seed):
    rows = []
    for ci, (name, fn) in enumerate(CATEGORIES):
        rng = random.Random(f"{seed}:{name}")
        pairs = fn(Builder(rng))
        rng.shuffle(pairs)
        for n, p in enumerate(pairs):
            rows.append({"id": f"{name}-{n}", "category": name, "gold": p["gold"],
                         "completion": p["completion"], "label": p["label"]})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output JSONL file")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = generate(args.seed)
    with open(args.out, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = {}
    for row in rows:
        c = counts.setdefault(row["category"], [0, 0])
        c[0 if row["label"] else 1] += 1
    for name, (t, fl) in counts.items():
        print(f"{name:16s} {t + fl:4d}  (equivalent {t}, not {fl})")
    print(f"{'total':16s} {len(rows):4d}")


if __name__ == "__main__":
    main()
