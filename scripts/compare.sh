#!/usr/bin/env bash
# Runs SEEDS seeds of each method on one config, JOBS at a time, then prints
# best objective at 25/50/100 iterations per method (mean ± std) and writes
# OUT.png. A run directory that already holds a journal is not run again.
# Usage: scripts/compare.sh CONFIG OUT "METHOD..." [insitu run flags...]
set -euo pipefail
config=$1 out=$2 methods=$3
shift 3
seeds=${SEEDS:-5}
at=${AT:-25,50,100}
bin=${BIN:-bin/insitu}
jobs=${JOBS:-2}

[ -x "$bin" ] || go build -o "$bin" ./cmd/insitu
cmds=()
for method in $methods; do
  for seed in $(seq 1 "$seeds"); do
    dir="$out/$method-s$seed"
    [ -e "$dir/journal.db" ] && continue
    cmds+=("$bin run $config -q --out $dir --method $method --seed $seed $*")
  done
done
if [ ${#cmds[@]} -gt 0 ]; then
  printf '%s\n' "${cmds[@]}" | xargs -P "$jobs" -I{} sh -c '{} > /dev/null'
fi
"$bin" runs compare "$out"/*/ --at "$at"
"$bin" plot "$out"/*/ --log --title "$(basename "$out")" -o "$out.png" 2>/dev/null || "$bin" plot "$out"/*/ --title "$(basename "$out")" -o "$out.png"
