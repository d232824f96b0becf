"""SLURM host lists (``SLURM_JOB_NODELIST``): ``scontrol show hostnames`` where it runs, else our parser.

The syntax, as SLURM's ``hostlist.c`` reads it: a comma-separated list of host expressions (commas inside
brackets do not split); each expression is literal text with any number of bracket groups, and expands to the
Cartesian product of its groups, the leftmost varying slowest (``n[1-2]-r[1-2]`` → n1-r1, n1-r2, n2-r1, n2-r2).
A group is a comma list of numbers and ``lo-hi`` ranges; a range is zero-padded to the width of its lower bound
(``[08-10]`` → 08 09 10, ``[9-11]`` → 9 10 11, as scontrol does). Duplicates are kept and empty list items are
skipped, as scontrol does. Text after the last group (``b-[01-03]x`` → b-01x …) is accepted here as a literal
suffix; SLURM 22.05's scontrol refuses it ("Invalid hostlist", exit status 0), and then the parser answers.
"""

from __future__ import annotations

import re
import shutil
import subprocess

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
MAX_HOSTS = 1_000_000
"""Refuse expansions larger than this (a typo like ``n[1-999999999]`` would otherwise exhaust memory)."""


class HostlistError(ValueError):
    """A SLURM host list that cannot be expanded."""


def split_top_level(text: str) -> list[str]:
    """Split ``text`` at commas outside brackets; empty items are dropped (``"a[1,2],b"`` → ``["a[1,2]", "b"]``)."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise HostlistError(f"host list {text!r}: nested '[' at position {i}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise HostlistError(f"host list {text!r}: ']' without '[' at position {i}")
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth:
        raise HostlistError(f"host list {text!r}: '[' is never closed")
    items.append(text[start:])
    return [item for item in items if item]


def expand_group(group: str, where: str) -> list[str]:
    """The strings of one bracket group's content (``"1-3,07"`` → ``["1", "2", "3", "07"]``)."""
    out: list[str] = []
    for part in group.split(","):
        m = _RANGE.match(part)
        if m is None:
            raise HostlistError(f"host list {where!r}: {part!r} is not a number or a lo-hi range")
        lo, hi = m.group(1), m.group(2)
        if hi is None:
            out.append(lo)
            continue
        if int(hi) < int(lo):
            raise HostlistError(f"host list {where!r}: range {part!r} runs backwards")
        if int(hi) - int(lo) + 1 > MAX_HOSTS:
            raise HostlistError(f"host list {where!r}: range {part!r} has more than {MAX_HOSTS} hosts")
        out.extend(str(n).zfill(len(lo)) for n in range(int(lo), int(hi) + 1))
    return out


def expand_expression(expr: str) -> list[str]:
    """The hosts of one expression without top-level commas (``"r[1-2]-n[1,3]"`` → 4 hosts)."""
    hosts = [""]
    pos = 0
    while pos < len(expr):
        open_ = expr.find("[", pos)
        literal = expr[pos:] if open_ < 0 else expr[pos:open_]
        hosts = [h + literal for h in hosts]
        if open_ < 0:
            break
        close = expr.find("]", open_)  # split_top_level has checked that it exists
        values = expand_group(expr[open_ + 1:close], expr)
        if len(hosts) * len(values) > MAX_HOSTS:
            raise HostlistError(f"host list {expr!r} expands to more than {MAX_HOSTS} hosts")
        hosts = [h + v for h in hosts for v in values]
        pos = close + 1
    return hosts


def expand_hostlist(text: str) -> list[str]:
    """Every host of a SLURM host list, in SLURM's order (``"a[1-2,5],b-[01-03]x"`` → a1 a2 a5 b-01x b-02x b-03x).

    Raises:
        HostlistError: empty list, unbalanced or empty brackets, a group item that is not a number or range,
            a backwards range, whitespace, or more than ``MAX_HOSTS`` hosts.
    """
    text = text.strip()
    if not text:
        raise HostlistError("empty SLURM host list")
    if re.search(r"\s", text):
        raise HostlistError(f"host list {text!r} contains whitespace")
    hosts: list[str] = []
    for expr in split_top_level(text):
        hosts.extend(expand_expression(expr))
        if len(hosts) > MAX_HOSTS:
            raise HostlistError(f"host list {text!r} expands to more than {MAX_HOSTS} hosts")
    if not hosts:
        raise HostlistError(f"host list {text!r} names no host")
    return hosts


def scontrol_hostnames(text: str, timeout: float = 10.0) -> list[str] | None:
    """``scontrol show hostnames TEXT``, or None where scontrol is missing, fails or does not answer in time
    (a login node without slurm.conf, a SLURM that refuses a syntax our parser takes)."""
    exe = shutil.which("scontrol")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "show", "hostnames", text], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    hosts = done.stdout.split()
    return hosts if done.returncode == 0 and hosts else None


def hostnames(text: str) -> list[str]:
    """The hosts of a SLURM host list: scontrol's answer when it runs (the cluster's own reading), else
    :func:`expand_hostlist`."""
    return scontrol_hostnames(text) or expand_hostlist(text)
