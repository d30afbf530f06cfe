#!/usr/bin/env bash
# The CNON method comparison: N = 10 and 20, horizon 5, M = 0 and
# 1, SEEDS seeds (5), ITERATIONS iterations (100), for exact, gradpie, mae,
# random and cmaes. Usage: scripts/compare-cnon.sh [OUT]
set -euo pipefail
out=${1:-runs/compare-cnon}
iters=${ITERATIONS:-100}
methods=${METHODS:-"exact gradpie mae random cmaes"}
for n in 10 20; do
  for m in 0 1; do
    echo "## CNON N=$n, M=$m, horizon 5, ${SEEDS:-5} seeds, $iters iterations"
    "$(dirname "$0")/compare.sh" configs/cnon.yaml "$out/N$n-M$m" "$methods" \
      --iterations "$iters" --set blackbox.n=$n --set local.samples=$m
  done
done
