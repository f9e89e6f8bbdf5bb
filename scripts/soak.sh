#!/usr/bin/env bash
# A soak: mixed load on the instance API of a deployment on this machine (the one of
# scripts/deployment.sh: two HSM nodes, a KMS node on SQLite, keys, a secret, an access
# point) for a chosen time, in windows of WINDOW seconds. In each window four
# `strongroom bench instance` runs go at once — Encrypt (AES-256), Sign (EC_P256),
# GenerateDataKey (AES-256) and GetSecretValue — and after it the resident memory of
# the KMS node and both HSM nodes is read. It prints one line per window and then:
#   - errors: every error of every window, by code (a soak passes with none);
#   - memory growth: each process's resident memory at the end against the end of the
#     first window (the first window includes start-up allocation);
#   - latency drift: each API's p99 and median in the last windows against the first.
# Exit status 1 when any request failed.
#
# Usage: scripts/soak.sh [MINUTES] [WINDOW_SECONDS] [CONNECTIONS_PER_API]
#   MINUTES               total time of the load (default 10)
#   WINDOW_SECONDS        length of one window (default 60)
#   CONNECTIONS_PER_API   keep-alive connections of each of the four runs (default 8)
# SKIP_BUILD=1 uses the release binaries as they are. The load generator shares the
# machine with the nodes: the figures are the deployment's on this machine, not its
# ceiling.
set -euo pipefail

cd "$(dirname "$0")/.."
minutes=${1:-10}
window=${2:-60}
connections=${3:-8}
windows=$(( (minutes * 60 + window - 1) / window ))
[ "$windows" -ge 1 ] || { echo "soak.sh: MINUTES must be at least 1" >&2; exit 2; }

source scripts/deployment.sh

results="$work/soak"
mkdir -p "$results"
run_api() {
    local out=$1
    shift
    "$s" bench instance --endpoint "127.0.0.1:$port" --ca-file "$ca_file" \
        --client-key-file "$key_file" --password-file "$password_file" \
        --connections "$connections" --warmup-seconds 0 --seconds "$window" \
        --requests 2000 --json "$@" >"$out" 2>"$out.err"
}

say "soak: $windows windows of ${window}s, 4 APIs x $connections connections"
printf '%-6s %-16s %10s %9s %9s %7s\n' window api req/s p50_ms p99_ms errors
for w in $(seq 1 "$windows"); do
    run_api "$results/$w-Encrypt.json" --api Encrypt --key-id "$aes" &
    a=$!
    run_api "$results/$w-Sign.json" --api Sign --key-id "$p256" &
    b=$!
    run_api "$results/$w-GenerateDataKey.json" --api GenerateDataKey --key-id "$aes" &
    c=$!
    run_api "$results/$w-GetSecretValue.json" --api GetSecretValue --secret-name "$secret_name" &
    d=$!
    status=0
    for pid in $a $b $c $d; do wait "$pid" || status=1; done
    if [ "$status" != 0 ]; then
        echo "soak.sh: a bench run failed in window $w:" >&2
        cat "$results"/"$w"-*.err >&2
        exit 1
    fi
    printf '%s %s %s %s\n' "$w" "$(rss_kib "$kms_pid")" "$(rss_kib "${hsm_pid[a]}")" \
        "$(rss_kib "${hsm_pid[b]}")" >>"$results/rss"
    python3 - "$results" "$w" <<'PY'
import json, sys
results, w = sys.argv[1], sys.argv[2]
for api in ["Encrypt", "Sign", "GenerateDataKey", "GetSecretValue"]:
    r = json.load(open(f"{results}/{w}-{api}.json"))
    errors = sum(r["errors"].values())
    lat = r.get("latency_ms") or {}
    print(f"{w:<6} {api:<16} {r.get('requests_per_second', 0):>10.0f} "
          f"{lat.get('p50', 0):>9.3f} {lat.get('p99', 0):>9.3f} {errors:>7}")
PY
done

python3 - "$results" "$windows" <<'PY'
import json, statistics, sys
results, windows = sys.argv[1], int(sys.argv[2])
apis = ["Encrypt", "Sign", "GenerateDataKey", "GetSecretValue"]
errors, rows = {}, {api: [] for api in apis}
for w in range(1, windows + 1):
    for api in apis:
        r = json.load(open(f"{results}/{w}-{api}.json"))
        for code, n in r["errors"].items():
            errors[code] = errors.get(code, 0) + n
        rows[api].append(r)
rss = [line.split() for line in open(f"{results}/rss")]
print("\n== soak summary")
total = sum(r["requests"] for api in apis for r in rows[api])
print(f"windows {windows}, requests {total}, errors {sum(errors.values())} {errors or ''}")
first, last = rss[0], rss[-1]
for i, name in [(1, "kms node"), (2, "hsm node a"), (3, "hsm node b")]:
    a, b = int(first[i]), int(last[i])
    print(f"memory {name:<11} {a / 1024:8.1f} MiB after window 1 -> {b / 1024:8.1f} MiB "
          f"at the end ({(b - a) / 1024:+.1f} MiB, {100 * (b - a) / a:+.1f} %)")
k = max(1, windows // 5)
for api in apis:
    head, tail = rows[api][:k], rows[api][-k:]
    med = lambda rs, f: statistics.median((r["latency_ms"] or {}).get(f, 0.0) for r in rs)
    rate = lambda rs: statistics.median(r["requests_per_second"] for r in rs)
    print(f"drift {api:<16} p50 {med(head, 'p50'):7.3f} -> {med(tail, 'p50'):7.3f} ms, "
          f"p99 {med(head, 'p99'):7.3f} -> {med(tail, 'p99'):7.3f} ms, "
          f"req/s {rate(head):8.0f} -> {rate(tail):8.0f} (first {k} vs last {k} windows)")
sys.exit(1 if errors else 0)
PY
