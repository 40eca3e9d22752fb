#!/usr/bin/env python3
"""Locked instructions per request in a callgrind profile.

Usage: locked.py PROFILE REQUESTS [--top N]

PROFILE must come from callgrind with --dump-instr=yes (bench/instructions/run.sh runs it
so). A locked instruction is an x86 instruction with the `lock` prefix, or an `xchg` with
a memory operand (locked implicitly): the atomic read-modify-writes behind mutexes,
shared_ptr reference counts and atomic counters. Each executed one is a full memory
barrier; a single-threaded event loop (nginx's worker) needs almost none.

The instructions are found by disassembling each object the profile names (objdump -d),
and their execution counts are read from the profile. Prints the total per request, then
the objects and the functions with the most. Objects that cannot be disassembled (the
vDSO) are skipped.
"""

import collections
import re
import subprocess
import sys


def parse_profile(path):
    """Returns {object: {address: executions}} and {(object, address): function}."""
    names = {"ob": {}, "fn": {}}

    def name(kind, token):
        # "(12) /usr/lib/libc.so.6" defines id 12; "(12)" refers to it.
        match = re.match(r"\((\d+)\)(?: (.*))?", token)
        if not match:
            return token
        if match.group(2):
            names[kind][match.group(1)] = match.group(2)
        return names[kind].get(match.group(1), "?")

    def position(token, last):
        # Absolute ("0x1a2b"), relative ("+3", "-0x10") or unchanged ("*").
        if token == "*":
            return last
        if token[0] in "+-":
            magnitude = int(token[1:], 0)
            return last + magnitude if token[0] == "+" else last - magnitude
        return int(token, 0)

    executions = collections.defaultdict(collections.Counter)
    function_at = {}
    obj = function = None
    address = 0
    others = []  # the other position columns (a line number), which may be relative too
    position_columns = 1
    next_is_call_cost = False
    with open(path) as profile:
        for line in profile:
            if line.startswith(("ob=", "fn=", "cob=", "cfn=")):
                key, _, value = line.rstrip("\n").partition("=")
                kind = key[-2:]
                resolved = name(kind, value)
                if key == "ob":
                    obj = resolved
                elif key == "fn":
                    function = resolved
                continue
            if line.startswith("positions:"):
                columns = line.split()[1:]
                if not columns or columns[0] != "instr":
                    sys.exit("locked.py: the profile needs callgrind's --dump-instr=yes")
                position_columns = len(columns)
                others = [0] * (position_columns - 1)
                continue
            if line.startswith("calls="):
                next_is_call_cost = True  # the next cost line is the call's, not ours
                continue
            if not line or not (line[0].isdigit() or line[0] in "+-*"):
                continue
            fields = line.split()
            address = position(fields[0], address)
            for column in range(1, min(position_columns, len(fields))):
                others[column - 1] = position(fields[column], others[column - 1])
            if next_is_call_cost:
                next_is_call_cost = False
                continue
            if len(fields) > position_columns:  # the first event is Ir
                executions[obj][address] += int(fields[position_columns])
                function_at[(obj, address)] = function
    return executions, function_at


def locked_addresses(obj):
    try:
        listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", obj],
                                 capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    addresses = set()
    for line in listing.splitlines():
        match = re.match(r"\s*([0-9a-f]+):\s+(.*)", line)
        if not match:
            continue
        instruction = match.group(2)
        if instruction.startswith("lock ") or (instruction.startswith("xchg") and "(" in instruction):
            addresses.add(int(match.group(1), 16))
    return addresses


def main():
    if len(sys.argv) not in (3, 5) or (len(sys.argv) == 5 and sys.argv[3] != "--top"):
        sys.exit(__doc__)
    path, requests = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[4]) if len(sys.argv) == 5 else 10
    if requests <= 0:
        sys.exit("locked.py: REQUESTS must be positive")
    executions, function_at = parse_profile(path)
    by_object = collections.Counter()
    by_function = collections.Counter()
    for obj, counts in executions.items():
        locked = locked_addresses(obj)
        if locked is None:
            continue
        for address, count in counts.items():
            if address in locked:
                by_object[obj] += count
                by_function[(obj.rsplit("/", 1)[-1], function_at[(obj, address)])] += count
    print(f"locked instructions per request: {sum(by_object.values()) / requests:.1f}")
    for obj, count in by_object.most_common():
        print(f"  {count / requests:7.2f}  {obj}")
    for (obj, function), count in by_function.most_common(top):
        print(f"  {count / requests:7.2f}  {obj}: {function[:110]}")


if __name__ == "__main__":
    main()
