#!/usr/bin/env bash
# The CNON method comparison of issue 3: N = 10 and 20, horizon 5, M = 0 and
# 1, SEEDS seeds, ITERATIONS iterations, for exact, gradpie, mae, random and
# cmaes, two runs at a time. Prints one table per setting and writes a plot
# per setting next to the runs. Usage: scripts/compare-cnon.sh [OUT]
set -euo pipefail
out=${1:-runs/compare-cnon}
seeds=${SEEDS:-5}
iters=${ITERATIONS:-100}
methods=${METHODS:-"exact gradpie mae random cmaes"}
bin=${BIN:-bin/insitu}
jobs=${JOBS:-2}

[ -x "$bin" ] || go build -o "$bin" ./cmd/insitu
cmds=()
for n in 10 20; do
  for m in 0 1; do
    for method in $methods; do
      for seed in $(seq 1 "$seeds"); do
        dir="$out/N$n-M$m/$method-s$seed"
        [ -e "$dir/journal.db" ] && continue # finished or resumable: not run again
        cmds+=("$bin run configs/cnon.yaml -q --out $dir --method $method --seed $seed --iterations $iters --set blackbox.n=$n --set local.samples=$m")
      done
    done
  done
done
printf '%s\n' "${cmds[@]}" | xargs -P "$jobs" -I{} sh -c '{} > /dev/null'
for n in 10 20; do
  for m in 0 1; do
    echo "## CNON N=$n, M=$m, horizon 5, $seeds seeds, $iters iterations"
    "$bin" runs compare "$out/N$n-M$m"/*/ --at 25,50,100
    "$bin" plot "$out/N$n-M$m"/*/ --log --title "CNON N=$n M=$m" -o "$out/N$n-M$m.png" 2>/dev/null
  done
done
