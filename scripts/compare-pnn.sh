#!/usr/bin/env bash
# The PNN training comparison: every method on the real
# (mismatched) twin of configs/pnn-cnon.yaml and configs/pnn-optical.yaml,
# SEEDS seeds (5), JOBS at a time (2). Prints, per twin, the test accuracy
# measured on the real twin after the last epoch (mean ± std; the "best @ E"
# column of `insitu runs compare` holds a training run's test accuracy) and
# the queries each run made. TWINS narrows the twins compared. SECOND=lo..hi
# adds a second block of seeds drawn after the setting was fixed (e.g.
# 101..110): the table gives its accuracy beside the first block's and the
# comparisons under the seeds rule (`insitu runs compare --second`).
# Usage: scripts/compare-pnn.sh [OUT]
set -euo pipefail
out=${1:-runs/compare-pnn}
seeds=${SEEDS:-5}
epochs=${EPOCHS:-10}
methods=${METHODS:-"exact insitu-gradpie insitu-mae pat insilico"}
bin=${BIN:-bin/insitu}
jobs=${JOBS:-2}
twins=${TWINS:-"pnn-cnon pnn-optical"}
second=${SECOND:-}
[ -x "$bin" ] || go build -o "$bin" ./cmd/insitu
all=$(seq 1 "$seeds")
if [ -n "$second" ]; then
  all="$all $(seq "${second%..*}" "${second#*..}")"
fi
cmds=()
for twin in $twins; do
  for method in $methods; do
    for seed in $all; do
      dir="$out/$twin/$method-s$seed"
      [ -e "$dir/journal.db" ] && continue
      cmds+=("$bin train configs/$twin.yaml -q --out $dir --method $method --seed $seed --epochs $epochs")
    done
  done
done
if [ ${#cmds[@]} -gt 0 ]; then
  printf '%s\n' "${cmds[@]}" | xargs -P "$jobs" -I{} sh -c '{} > /dev/null'
fi
for twin in $twins; do
  echo "## $twin: test accuracy on the real twin after epoch 0 (initial θ) and $epochs, $seeds seeds${second:+, second block $second}"
  "$bin" runs compare "$out/$twin"/*/ --at "0,$epochs" ${second:+--second "$second"}
  "$bin" runs list "$out/$twin" | awk 'NR==1 {print "DIR", "QUERIES"} NR>1 {print $1, $7}' | column -t
done
