#!/usr/bin/env bash
# Measures the instance API on this machine, the way a user would set it up (the
# deployment of scripts/deployment.sh: two HSM nodes, a KMS node, keys, a secret, an
# access point for loopback), then `strongroom bench instance` for the figures of
# docs/performance.md: Encrypt (AES-256, 32 B), Sign with each of the three pairs, and
# GetSecretValue.
#
# Usage: scripts/bench-instance.sh [SECONDS] [CONNECTIONS] [EXTRA BENCH OPTIONS...]
#   SECONDS      timed seconds per run (default 10)
#   CONNECTIONS  keep-alive connections (default 64)
# Everything runs from a temporary directory that is removed at the end. The server,
# both HSM nodes and the load generator share the machine's cores.
#
# PROFILE_DIR=DIR records a CPU profile (`perf record -g`) of the KMS node and of one
# HSM node during each run into DIR (read with `perf report -i DIR/<run>-kms.data`).
set -euo pipefail

cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-64}
shift $(( $# > 2 ? 2 : $# )) || true

source scripts/deployment.sh

bench() {
    local name=$1
    shift
    say "bench instance $*"
    if [ -n "${PROFILE_DIR:-}" ]; then
        mkdir -p "$PROFILE_DIR"
        # Start profiling once the warm-up is likely over.
        (sleep 4 && perf record -g -o "$PROFILE_DIR/$name-kms.data" -p "$kms_pid" -- sleep "$seconds") \
            >/dev/null 2>&1 &
        (sleep 4 && perf record -g -o "$PROFILE_DIR/$name-hsm.data" -p "${hsm_pid[a]}" -- sleep "$seconds") \
            >/dev/null 2>&1 &
    fi
    local before_kms before_a before_b
    before_kms=$(cpu_ticks "$kms_pid")
    before_a=$(cpu_ticks "${hsm_pid[a]}")
    before_b=$(cpu_ticks "${hsm_pid[b]}")
    if [ -n "${PROFILE_DIR:-}" ]; then
        (sleep 7 && perf record -g -o "$PROFILE_DIR/$name-bench.data" \
            -p "$(pgrep -f "^$s bench instance" | head -1)" -- sleep "$((seconds / 2))") \
            >/dev/null 2>&1 &
    fi
    /usr/bin/time -f "%U %S" -o "$work/bench-time" \
        "$s" bench instance --endpoint "127.0.0.1:$port" --ca-file "$ca_file" \
        --client-key-file "$key_file" --password-file "$password_file" \
        --connections "$connections" --seconds "$seconds" "$@"
    # CPU seconds each process used over the whole run (signing, warm-up and window).
    local hz
    hz=$(getconf CLK_TCK)
    printf 'cpu seconds  kms node %.1f, hsm node a %.1f, hsm node b %.1f, bench %.1f (user+system)\n' \
        "$(echo "($(cpu_ticks "$kms_pid") - $before_kms) / $hz" | bc -l)" \
        "$(echo "($(cpu_ticks "${hsm_pid[a]}") - $before_a) / $hz" | bc -l)" \
        "$(echo "($(cpu_ticks "${hsm_pid[b]}") - $before_b) / $hz" | bc -l)" \
        "$(awk '{print $1 + $2}' "$work/bench-time")"
    wait_profiles
}
wait_profiles() {
    [ -n "${PROFILE_DIR:-}" ] || return 0
    while pgrep -f "perf record -g -o $PROFILE_DIR" >/dev/null; do sleep 0.2; done
}
bench encrypt-aes256 --api Encrypt --key-id "$aes" --payload-bytes 32 "$@"
bench sign-p256 --api Sign --key-id "$p256" "$@"
bench sign-sm2 --api Sign --key-id "$sm2" "$@"
bench sign-rsa2048 --api Sign --key-id "$rsa" "$@"
bench get-secret-value --api GetSecretValue --secret-name "$secret_name" "$@"
