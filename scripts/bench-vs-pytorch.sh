#!/usr/bin/env bash
# The surrogate's training step and single-point input VJP on the three
# benchmark nets (CNON, OpAmp, OWMS), in float64 and float32 (rows NET-f32),
# in pure Go, with the OpenBLAS backend (-tags openblas) and in PyTorch
# (scripts/bench_torch.py: the same nets in the same precision, exact GELU,
# LayerNorm where the Go net has it, MSE + Adam at batch 256 like
# BenchmarkTrainStep). The three are interleaved, ROUNDS times, and the
# table has each one's minimum over the rounds and their ratios, each row
# against PyTorch in the row's precision.
#
# Usage: scripts/bench-vs-pytorch.sh
# Environment:
#   ROUNDS     rounds of the three (3)
#   BENCHTIME  per benchmark run, Go's form: seconds (1s) or a fixed number
#              of iterations (1x). On a busy machine, many rounds of 1x
#              (ROUNDS=15 BENCHTIME=1x) give the minimum single-iteration
#              time, which other processes inflate far less than a mean
#   BENCH      Go benchmark regexp ('BenchmarkTrainStep|BenchmarkVJP');
#              e.g. 'TrainStep/OWMS' (both precisions) with NETS=OWMS
#   NETS       nets PyTorch times (CNON,OpAmp,OWMS)
#   DTYPES     precisions PyTorch times (float64,float32)
#   PYTHON     interpreter with torch (/usr/bin/python3: Debian's
#              python3-torch is built for it, not for a pyenv python)
#   TORCH_THREADS  torch.set_num_threads values to try, each every round
#              ("1 $(nproc)"); the PyTorch column is the fastest of them
#   OUT        directory to keep the raw benchmark output in (a temp dir)
#   QUIET      before each side, wait until the whole machine uses less than
#              this many cores over a second (0.3; "off" to never wait) ...
#   QUIET_WAIT ... but at most this many seconds (120), then run anyway
# A missing OpenBLAS (apt-get install libopenblas-dev) or torch (apt-get
# install python3-torch) drops that column with a message; pure Go always
# runs. OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS are passed through as
# they are.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-3}
benchtime=${BENCHTIME:-1s}
bench=${BENCH:-'BenchmarkTrainStep|BenchmarkVJP'}
py=${PYTHON:-/usr/bin/python3}
torch_threads=${TORCH_THREADS:-"1 $(nproc)"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${OUT:-$work}
mkdir -p "$out"
: >"$out/pure.txt"
: >"$out/openblas.txt"
: >"$out/pytorch.txt"

case $benchtime in
*[0-9]s) torchargs=(--benchtime "${benchtime%s}") ;;
*[0-9]x) torchargs=(--iters "${benchtime%x}") ;;
*) echo "BENCHTIME must be seconds (1s) or iterations (1x) to time PyTorch the same way" >&2; exit 2 ;;
esac

echo "building test binaries" >&2
go test -c -o "$work/pure.test" ./surrogate
sides=(pure)
if go test -c -tags openblas -o "$work/openblas.test" ./surrogate 2>"$work/openblas-build.log"; then
  sides+=(openblas)
else
  echo "skipping OpenBLAS: the -tags openblas build failed (apt-get install libopenblas-dev):" >&2
  sed 's/^/  /' "$work/openblas-build.log" >&2
fi
if "$py" -c 'import torch' 2>/dev/null; then
  sides+=(pytorch)
else
  echo "skipping PyTorch: $py cannot import torch (Debian: apt-get install python3-torch;" \
    "pip is not needed). Set PYTHON to an interpreter that has it." >&2
fi

echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS-<unset>}" \
  "GOMAXPROCS=${GOMAXPROCS-<unset>} cores=$(nproc)" >&2
if [[ -n ${OPENBLAS_CORETYPE-} ]]; then
  echo "note: OPENBLAS_CORETYPE holds OpenBLAS (and PyTorch's BLAS if it is OpenBLAS) to the" \
    "$OPENBLAS_CORETYPE kernels; unset it for the CPU's own (env -u OPENBLAS_CORETYPE $0)" >&2
fi

busy_cores() { # CPU use of the whole machine over one second, in cores
  local a b
  a=$(head -n1 /proc/stat)
  sleep 1
  b=$(head -n1 /proc/stat)
  awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN {
    split(a, x); split(b, y); busy = 0; all = 0
    for (i = 2; i <= 9; i++) { d = y[i] - x[i]; all += d; if (i != 5 && i != 6) busy += d }
    printf "%.2f", (all > 0 ? n * busy / all : 0) }'
}

wait_quiet() {
  [[ ${QUIET:-0.3} == off ]] && return
  local start=$SECONDS busy
  while :; do
    busy=$(busy_cores)
    awk -v b="$busy" -v l="${QUIET:-0.3}" 'BEGIN { exit !(b < l) }' && return
    if ((SECONDS - start >= ${QUIET_WAIT:-120})); then
      echo "  machine still busy ($busy cores in use by others); measuring anyway" >&2
      return
    fi
  done
}

run() { # side
  case $1 in
  pure | openblas)
    (cd surrogate && "$work/$1.test" -test.run '^$' -test.bench "$bench" -test.benchtime "$benchtime") ;;
  pytorch)
    for t in $torch_threads; do
      "$py" scripts/bench_torch.py "${torchargs[@]}" --threads "$t" \
        --nets "${NETS:-CNON,OpAmp,OWMS}" --dtypes "${DTYPES:-float64,float32}" \
        --bench "$(echo "$bench" | grep -o 'TrainStep\|VJP' | sort -u | paste -sd, -)"
    done ;;
  esac
}

n=${#sides[@]}
for ((r = 0; r < rounds; r++)); do
  # Rotate the order each round so no side always runs first after a pause
  # or right after another side heated the machine.
  for ((i = 0; i < n; i++)); do
    side=${sides[(r + i) % n]}
    wait_quiet
    echo "round $((r + 1))/$rounds: $side (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    run "$side" | tee -a "$out/$side.txt" | grep -E '^(Benchmark|# )' >&2 || true
  done
done

awk -v sides="${sides[*]}" '
  function fmt(ns) {
    if (ns == "") return "-"
    if (ns >= 1e6) return sprintf("%.2f ms", ns / 1e6)
    return sprintf("%.1f µs", ns / 1e3)
  }
  function ratio(a, b) { return (a == "" || b == "") ? "-" : sprintf("%.2f×", a / b) }
  FNR == 1 { side = FILENAME; sub(/.*\//, "", side); sub(/\.txt$/, "", side) }
  /^Benchmark/ {
    for (i = 1; i <= NF; i++) if ($i == "ns/op") ns = $(i - 1)
    name = $1; sub(/^Benchmark/, "", name); sub(/-[0-9]+$/, "", name)
    if (!(name in seen)) { seen[name] = 1; order[++k] = name }
    key = side SUBSEP name
    if (!(key in best) || ns + 0 < best[key] + 0) best[key] = ns
  }
  END {
    printf "%-16s %11s %11s %11s %12s %11s %14s\n", "benchmark", "openblas", "pure Go", "PyTorch", "openblas/PT", "pure/PT", "pure/openblas"
    for (j = 1; j <= k; j++) {
      nm = order[j]
      o = best["openblas" SUBSEP nm]; p = best["pure" SUBSEP nm]; t = best["pytorch" SUBSEP nm]
      printf "%-16s %11s %11s %11s %12s %11s %14s\n", nm, fmt(o), fmt(p), fmt(t), ratio(o, t), ratio(p, t), ratio(p, o)
    }
    printf "minimum of %s rounds per cell (sides run: %s)\n", rounds, sides
  }' rounds="$rounds" "$out/openblas.txt" "$out/pure.txt" "$out/pytorch.txt"
