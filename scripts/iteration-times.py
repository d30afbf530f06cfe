#!/usr/bin/env python3
"""Median controller time per iteration window, from run journals.

Usage: scripts/iteration-times.py RUNDIR... [--windows 1-10,41-50,91-100]

Reads each RUNDIR/journal.db's iterations table (controller_s is the
iteration's wall time minus the time inside the black box) and prints the
median of each window and the ratio of the last window to the second.
"""
import argparse
import os
import sqlite3
import statistics
import sys


def windows(spec):
    out = []
    for part in spec.split(","):
        lo, hi = part.split("-")
        out.append((int(lo), int(hi)))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+")
    p.add_argument("--windows", default="1-10,41-50,91-100")
    a = p.parse_args()
    ws = windows(a.windows)
    print("run\t" + "\t".join(f"{lo}-{hi} ms" for lo, hi in ws) + "\tlast/second")
    for run in a.runs:
        path = os.path.join(run, "journal.db")
        if not os.path.exists(path):
            print(f"{run}: no journal.db", file=sys.stderr)
            continue
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        t = dict(db.execute("select iteration, controller_s from iterations"))
        med = []
        for lo, hi in ws:
            v = [t[i] for i in range(lo, hi + 1) if i in t]
            med.append(statistics.median(v) * 1e3 if v else float("nan"))
        ratio = med[-1] / med[1] if len(med) > 1 and med[1] > 0 else float("nan")
        print(run + "\t" + "\t".join(f"{m:.1f}" for m in med) + f"\t{ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
