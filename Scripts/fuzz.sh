#!/usr/bin/env bash
# Fuzzes vlm-fuzz's targets with libFuzzer + AddressSanitizer for SECONDS each (default 120), starting from the
# committed corpus; new interesting inputs go to a scratch corpus, crashes to .build-fuzz/crashes/.
#   Scripts/fuzz.sh image 600        # targets: image npy template safetensors config tokenizer spiece dataurl embeddings chat index search classify tasks
#   Scripts/fuzz.sh all 5            # every target in turn (what CI runs), one build
#   Scripts/fuzz.sh build            # only the sanitizer build (CI starts it next to the tests)
# Further arguments go to libFuzzer (e.g. -runs=1000000 to stop at a million executions).
# A crash reproducer replays in the normal build: swift run vlm-fuzz image .build-fuzz/crashes/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(image npy template safetensors config tokenizer spiece dataurl embeddings chat index search classify tasks)
target=${1:?target: ${targets[*]} | all | build}
seconds=${2:-120}
swift build --scratch-path .build-fuzz --product vlm-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xcc -fsanitize=fuzzer-no-link,address 1>&2
[ "$target" = build ] && exit 0
if [ "$target" = all ]; then run=("${targets[@]}"); else run=("$target"); fi
mkdir -p .build-fuzz/crashes .build-fuzz/logs
fuzz_one() {
  local t=$1; shift
  mkdir -p .build-fuzz/corpus/"$t"
  # Known leaks outside the project (each explained in the file) are suppressed; any other leak fails the run.
  LSAN_OPTIONS="suppressions=$PWD/Fuzz/lsan.supp" VLM_FUZZ_TARGET="$t" .build-fuzz/debug/vlm-fuzz .build-fuzz/corpus/"$t" Fuzz/corpus/"$t" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 -artifact_prefix=.build-fuzz/crashes/ \
    -print_final_stats=1 "$@"
}
for t in "${run[@]}"; do [ -d "Fuzz/corpus/$t" ] || { echo "no target '$t' (targets: ${targets[*]})" >&2; exit 2; }; done
if [ "${#run[@]}" -eq 1 ]; then fuzz_one "${run[0]}" "${@:3}"; exit; fi
# Several targets: VLM_FUZZ_JOBS at a time (default: one per core), each into its own log, printed in order.
jobs_max=${VLM_FUZZ_JOBS:-$(nproc)}
status=0
for t in "${run[@]}"; do
  fuzz_one "$t" "${@:3}" >.build-fuzz/logs/"$t".log 2>&1 &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || status=1; done
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || status=1; done
for t in "${run[@]}"; do echo "swift fuzz target: $t"; cat .build-fuzz/logs/"$t".log; done
exit $status
