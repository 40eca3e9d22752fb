#!/usr/bin/env python3
"""Per-function difference of two callgrind profiles, in instructions per request.

    bench/instructions/cgdiff.py BEFORE.out REQUESTS_BEFORE AFTER.out REQUESTS_AFTER

Reads each profile through callgrind_annotate (exclusive counts), divides by the requests
each profile served, and prints the functions that moved by 20 or more instructions per
request, most improved first, with the program totals. Use it to see what a change
really moved: a change can save where it was aimed and cost more elsewhere.
"""
import re
import subprocess
import sys


def per_request(path, requests):
    out = subprocess.run(['callgrind_annotate', '--show=Ir', '--auto=no', '--threshold=100', path],
                         capture_output=True, text=True, check=True).stdout
    costs = {}
    for line in out.splitlines():
        match = re.match(r'\s*([\d,]+) \([^)]*\)\s+(.*)', line)
        if not match:
            continue
        # The binary's own path differs between builds; the function name is the key.
        name = re.sub(r'\s*\[[^\]]*\]$', '', match.group(2)).strip()
        costs[name] = costs.get(name, 0) + int(match.group(1).replace(',', '')) / requests
    return costs


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    before = per_request(sys.argv[1], int(sys.argv[2]))
    after = per_request(sys.argv[3], int(sys.argv[4]))
    names = sorted(set(before) | set(after), key=lambda n: after.get(n, 0) - before.get(n, 0))
    print(f"{'change':>8} {'before':>8} {'after':>8}  function")
    for name in names:
        change = after.get(name, 0) - before.get(name, 0)
        if abs(change) >= 20:
            print(f"{change:+8.0f} {before.get(name, 0):8.0f} {after.get(name, 0):8.0f}  {name[:140]}")


if __name__ == '__main__':
    main()
