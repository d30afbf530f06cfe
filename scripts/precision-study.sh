#!/usr/bin/env bash
# The float32 / float64 study of the surrogate's precision
# (docs/results/precision.md). For every seed and both precisions it runs
#   gradient  insitu study gradient configs/study-gradient.yaml, MAE and
#             GradPIE k=5 at N = 10 and N = 20 (the GradPIE/MAE ratio of the
#             VJP's relative error)
#   cnon      insitu run configs/cnon.yaml (online GradPIE, 100 iterations)
#   opamp     insitu run configs/opamp.yaml (online GradPIE, 100 iterations)
#   owms      insitu run configs/owms.yaml --iterations $OWMS_ITERATIONS
#             (the camera OWMS bench twin, online GradPIE)
# JOBS at a time, niced, then prints the tables (scripts/precision_table.py).
# A part whose output is already there is not run again, so an interrupted
# study continues where it stopped.
#
# Usage: scripts/precision-study.sh OUT
# Environment: SEEDS ("1 2 3 4 5 6 7 8 9 10"), JOBS (2), OWMS_ITERATIONS
# (100), PARTS ("gradient cnon opamp owms"), BIN (bin/insitu, built if
# missing), PYTHON (/usr/bin/python3)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/precision-study.sh OUT}
seeds=${SEEDS:-"1 2 3 4 5 6 7 8 9 10"}
jobs=${JOBS:-2}
parts=${PARTS:-"gradient cnon opamp owms"}
owms_iterations=${OWMS_ITERATIONS:-100}
bin=${BIN:-bin/insitu}
[ -x "$bin" ] || go build -o "$bin" ./cmd/insitu

cmds=()
for seed in $seeds; do
  for p in float64 float32; do
    for part in $parts; do
      dir="$out/$part/$p-s$seed"
      case $part in
      gradient)
        [ -e "$dir/gradient.csv" ] && continue
        cmds+=("$bin study gradient configs/study-gradient.yaml --quiet --seed $seed --out $dir --set ks=[5] --set precision=$p") ;;
      cnon | opamp)
        [ -e "$dir/run.txt" ] && continue
        cmds+=("$bin run configs/$part.yaml -q --seed $seed --out $dir --set surrogate.precision=$p > $dir.txt && mv $dir.txt $dir/run.txt") ;;
      owms)
        [ -e "$dir/run.txt" ] && continue
        cmds+=("$bin run configs/owms.yaml -q --seed $seed --iterations $owms_iterations --out $dir --set surrogate.precision=$p > $dir.txt && mv $dir.txt $dir/run.txt") ;;
      *) echo "unknown part $part" >&2; exit 2 ;;
      esac
      mkdir -p "$(dirname "$dir")"
    done
  done
done
echo "precision study: ${#cmds[@]} runs to do, $jobs at a time" >&2
if [ ${#cmds[@]} -gt 0 ]; then
  printf '%s\n' "${cmds[@]}" | nl -ba | xargs -P "$jobs" -I{} sh -c '
    line="{}"; n=${line%%	*}; cmd=${line#*	}
    echo "  [$n/'"${#cmds[@]}"'] $cmd" >&2
    nice -n 5 sh -c "$cmd" > /dev/null'
fi
"${PYTHON:-/usr/bin/python3}" scripts/precision_table.py "$out" $seeds
