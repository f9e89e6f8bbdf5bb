#!/usr/bin/env bash
# Fuzzes every network-facing decoder for a bounded time, on the stable toolchain.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 60)
#
# Builds `strongroom-fuzz` (crates/fuzz) in release and runs each of its targets
# (`strongroom-fuzz list`) for SECONDS_PER_TARGET seconds, one process per target:
# instance_request, management_request, hsm_frame, client_key_file, pkcs12, pem.
# The fuzzer is coverage-blind and structure-aware: it starts from seeds built from the
# captured SDK requests (../shared/vectors/dkms-sdk, or $STRONGROOM_FUZZ_VECTORS) and
# valid inputs made in code, and mutates them. Every panic, every input that runs longer
# than FUZZ_TIMEOUT_MS (default 10000) and a resident set over FUZZ_MEMORY_MIB (default
# 2048) is a finding: its input is saved under fuzz-crashes/<target>/<hash> and the
# script exits non-zero after the remaining targets ran. A target process that dies
# outright (an abort: allocation failure, stack overflow) is a finding too; rerun it with
# the printed --seed to replay the same inputs.
#
# Environment: FUZZ_SEED (fixed PRNG seed for every target; default from the clock),
# FUZZ_TIMEOUT_MS, FUZZ_MEMORY_MIB, FUZZ_CRASH_DIR (default fuzz-crashes).
#
# Reproduce a finding:
#   cargo run --release -p strongroom-fuzz -- repro TARGET fuzz-crashes/TARGET/HASH
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
case "$seconds" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac

cargo build --release -p strongroom-fuzz
fuzz=target/release/strongroom-fuzz

extra=(--timeout-ms "${FUZZ_TIMEOUT_MS:-10000}" --memory-mib "${FUZZ_MEMORY_MIB:-2048}"
    --crash-dir "${FUZZ_CRASH_DIR:-fuzz-crashes}")
if [ -n "${FUZZ_SEED:-}" ]; then extra+=(--seed "$FUZZ_SEED"); fi

failed=()
for target in $("$fuzz" list | awk '{print $1}'); do
    status=0
    "$fuzz" run "$target" --seconds "$seconds" "${extra[@]}" || status=$?
    if [ "$status" -ne 0 ]; then
        if [ "$status" -gt 128 ]; then
            echo "  $target died with signal $((status - 128)) (abort, stack overflow or OOM)"
        fi
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: findings in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: no findings (${seconds} s per target)"
