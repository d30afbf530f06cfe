"""Tables of the float32 / float64 precision study (scripts/precision-study.sh).

Usage: precision_table.py OUT SEED...

Reads OUT/gradient/{float64,float32}-sSEED/gradient.csv and
OUT/{cnon,opamp,owms}/{float64,float32}-sSEED/run.txt, writes every
per-seed value to OUT/precision.csv and prints one Markdown table: per
quantity the mean ± sample sd over the seeds in each precision, the
difference float32 − float64, Welch's t, the same seed's float32 − float64
difference (mean ± sd over the seeds) with its paired t, and the seeds.
Both precisions of a seed share the data, the twin and the initial
weights (rounded), so the paired difference isolates the precision. A
seed missing either precision is left out (the seeds column says which
were used).
"""

import csv
import math
import re
import statistics
import sys
from pathlib import Path

PRECISIONS = ("float64", "float32")


def duration_ms(s):
    """Milliseconds of a Go duration string such as 151.5ms, 932µs or 1.2s."""
    m = re.fullmatch(r"([0-9.]+)(ns|µs|us|ms|s|m)", s)
    if not m:
        raise ValueError(f"not a duration: {s}")
    scale = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]
    return float(m.group(1)) * scale


def gradient_values(path):
    rows = list(csv.DictReader(open(path)))
    out = {}
    for setting in sorted({r["setting"] for r in rows}):
        err = {r["loss"]: float(r["rel_err_mean"]) for r in rows if r["setting"] == setting}
        out[f"gradient {setting}: GradPIE/MAE rel. error"] = err["gradpie"] / err["mae"]
        out[f"gradient {setting}: GradPIE rel. error"] = err["gradpie"]
    return out


def run_values(part, path):
    text = open(path).read()
    best = re.search(r"best objective (\S+)", text)
    ctrl = re.search(r"controller (\S+),", text)
    out = {}
    if best:
        out[f"{part}: best objective"] = float(best.group(1))
    if ctrl:
        out[f"{part}: controller ms/iteration"] = duration_ms(ctrl.group(1))
    return out


def welch(a, b):
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    va, vb = statistics.variance(a), statistics.variance(b)
    se = math.sqrt(va / len(a) + vb / len(b))
    if se == 0:
        return 0.0 if statistics.mean(a) == statistics.mean(b) else math.inf
    return (statistics.mean(b) - statistics.mean(a)) / se


def fmt(v):
    return f"{v:.4g}"


def main():
    out, seeds = Path(sys.argv[1]), sys.argv[2:]
    values = {}  # (quantity, precision) -> {seed: value}
    for prec in PRECISIONS:
        for seed in seeds:
            found = {}
            g = out / "gradient" / f"{prec}-s{seed}" / "gradient.csv"
            if g.exists():
                found.update(gradient_values(g))
            for part in ("cnon", "opamp", "owms"):
                r = out / part / f"{prec}-s{seed}" / "run.txt"
                if r.exists():
                    found.update(run_values(part, r))
            for q, v in found.items():
                values.setdefault((q, prec), {})[seed] = v
    with open(out / "precision.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["quantity", "precision", "seed", "value"])
        for (q, prec), per in sorted(values.items()):
            for seed, v in per.items():
                w.writerow([q, prec, seed, repr(v)])
    quantities = sorted({q for q, _ in values}, key=lambda q: (q.split(":")[0], q))
    print("| quantity | float64 (mean ± sd) | float32 (mean ± sd) | float32 − float64 | Welch t "
          "| paired difference (mean ± sd) | paired t | seeds |")
    print("|---|---|---|---|---|---|---|---|")
    for q in quantities:
        a = values.get((q, "float64"), {})
        b = values.get((q, "float32"), {})
        used = [s for s in seeds if s in a and s in b]
        xa, xb = [a[s] for s in used], [b[s] for s in used]
        if len(used) < 2:
            continue
        ma, mb = statistics.mean(xa), statistics.mean(xb)
        sa, sb = statistics.stdev(xa), statistics.stdev(xb)
        span = f"{used[0]}–{used[-1]}" if len(used) == len(seeds) else ",".join(used)
        d = [y - x for x, y in zip(xa, xb)]
        md, sd = statistics.mean(d), statistics.stdev(d)
        pt = md / (sd / math.sqrt(len(d))) if sd > 0 else (0.0 if md == 0 else math.inf)
        print(f"| {q} | {fmt(ma)} ± {fmt(sa)} | {fmt(mb)} ± {fmt(sb)} | {mb - ma:+.3g} | {welch(xa, xb):+.2f} "
              f"| {md:+.3g} ± {sd:.3g} | {pt:+.2f} | {span} ({len(used)}) |")


if __name__ == "__main__":
    main()
