#!/usr/bin/env bash
# Fuzzes a C harness of Fuzz/c with libFuzzer + AddressSanitizer + UndefinedBehaviorSanitizer for SECONDS (default 60):
# the CVLM sources are compiled straight with clang (seconds, no Swift build), so CI can run these on every change.
#   Scripts/fuzz-c.sh kernels 60    # differential: every kernel entry point against its naive twin, ISA and threads from the input
#   Scripts/fuzz-c.sh image 60      # the C image decoders + resampler (window == cropped full resize, portable == SIMD)
# Further arguments go to libFuzzer (e.g. -runs=1000000). Starts from Fuzz/corpus/c-TARGET (image: also the Swift
# image target's corpus); new inputs go to .build-fuzz-c/corpus/TARGET, crashes to .build-fuzz-c/crashes/.
# A crash replays with: .build-fuzz-c/TARGET .build-fuzz-c/crashes/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?target: kernels image}
seconds=${2:-60}
[ -f "Fuzz/c/$target.c" ] || { echo "no harness Fuzz/c/$target.c" >&2; exit 2; }
CC=${CC:-clang}
out=.build-fuzz-c
mkdir -p "$out/obj" "$out/corpus/$target" "$out/crashes"
flags=(-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
       -D_GNU_SOURCE -ISources/CVLM/include -ISources/CVLM)
# Objects are rebuilt when their source or a header changed; both cores compile.
objs=()
for src in Sources/CVLM/*.c "Fuzz/c/$target.c"; do  # harness objects: Fuzz/c's names differ from CVLM's
  obj="$out/obj/$(basename "${src%.c}").o"
  objs+=("$obj")
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find Sources/CVLM -name '*.h' -newer "$obj" -print -quit)" ]; then
    echo "$CC -c $src" >&2
    "$CC" "${flags[@]}" -c "$src" -o "$obj" &
    [ "$(jobs -rp | wc -l)" -ge 2 ] && wait -n
  fi
done
wait
"$CC" -fsanitize=fuzzer,address,undefined "${objs[@]}" -ljpeg -lpng -lm -lpthread -ldl -o "$out/$target"
corpora=("$out/corpus/$target")
[ -d "Fuzz/corpus/c-$target" ] && corpora+=("Fuzz/corpus/c-$target")
[ "$target" = image ] && corpora+=(Fuzz/corpus/image)
"$out/$target" "${corpora[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
  -artifact_prefix="$out/crashes/" -print_final_stats=1 "${@:3}"
