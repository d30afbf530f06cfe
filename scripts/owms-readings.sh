#!/usr/bin/env bash
# The readings of the paper's OWMS objective, tested with the exact gradient
# and random search (docs/results/owms-field.md): for each reading, 3 seeds
# of each method, 200 iterations of K = 5 steps without local samples (1050
# queries), on configs/owms-field.yaml. Every reading is an `insitu sweep`
# in OUT/READING with its own report.md; the summary table is printed at the
# end. About 15 min of CPU.
# Usage: scripts/owms-readings.sh [OUT]   (default out/owms-readings)
set -euo pipefail
out=${1:-out/owms-readings}
bin=${BIN:-bin/insitu}
[ -x "$bin" ] || go build -o "$bin" ./cmd/insitu

base=(--param method=exact,random --seeds 1..3 --iterations 200 --set local.samples=0 -q --jobs "${JOBS:-1}")
reading() {
  local name=$1
  shift
  "$bin" sweep configs/owms-field.yaml "${base[@]}" "$@" --out "$out/$name" > /dev/null
}
# The target and the loss.
reading field-flat      --set blackbox.output=field
reading field-tilted    --set blackbox.output=field --set blackbox.target_phase=tilted
reading overlap-flat    --set blackbox.output=field --set objective.kind=overlap
reading overlap-tilted  --set blackbox.output=field --set objective.kind=overlap --set blackbox.target_phase=tilted
reading field-flat-mse  --set blackbox.output=field --set objective.kind=mse
reading amplitude       --set blackbox.output=amplitude
reading intensity       --set blackbox.output=intensity
# The distance (the RS kernel aliases below 17 mm at 10 µm: angular spectrum there).
reading field-flat-z1cm --set blackbox.output=field --set blackbox.distance=0.01 --set blackbox.method=angular
reading field-flat-z4cm --set blackbox.output=field --set blackbox.distance=0.04
reading amplitude-z1cm  --set blackbox.output=amplitude --set blackbox.distance=0.01 --set blackbox.method=angular
reading amplitude-z4cm  --set blackbox.output=amplitude --set blackbox.distance=0.04
# The step on the phases (normalized units: 0.02 is 0.13 rad).
reading field-flat-step0.005 --set blackbox.output=field --set step_lr=0.005
reading field-flat-step0.1   --set blackbox.output=field --set step_lr=0.1

for d in "$out"/*/; do
  echo "== $(basename "$d")"
  "$bin" runs compare "$d"/*/s*/ --at 0,50,100,200 2>/dev/null || true
done
