#!/usr/bin/env bash
# Measures the instance API on this machine, the way a user would set it up: two HSM
# nodes in two zones (the guide's step 2), a KMS node on SQLite, an instance connected
# to them, an Aliyun_AES_256, an EC_P256, an EC_SM2 and an RSA_2048 key, an access
# point for loopback (steps 3–5), then `strongroom bench instance` for the figures of
# docs/performance.md: Encrypt (AES-256, 32 B) and Sign with each of the three pairs.
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

[ "${SKIP_BUILD:-}" = 1 ] || cargo build --release --quiet --bin strongroom --bin hsm_certificate_generate
bin="$(pwd)/target/release"
s="$bin/strongroom"
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*" >&2; }

# Waits until FILE has a line matching PATTERN; prints that line.
wait_for() {
    local file=$1 pattern=$2
    for _ in $(seq 1 200); do
        if line=$(grep -m1 -E "$pattern" "$file" 2>/dev/null); then
            printf '%s\n' "$line"
            return 0
        fi
        sleep 0.1
    done
    echo "timed out waiting for '$pattern' in $file:" >&2
    cat "$file" >&2
    return 1
}

say "certificates and two HSM nodes"
(cd "$work" && "$bin/hsm_certificate_generate" -dir ./certs -pswd 12345678 >/dev/null)
export STRONGROOM_HSM_OFFICER_PASSWORD='bench-officer-password'
declare -A hsm_pid
for zone in a b; do
    "$s" hsm serve --state "$work/hsm-$zone" --zone "zone-$zone" \
        --listen 127.0.0.1:0 --officer-listen 127.0.0.1:0 >"$work/hsm-$zone.log" 2>&1 &
    hsm_pid[$zone]=$!
    pids+=($!)
done
declare -A host officer fingerprint
for zone in a b; do
    host[$zone]=$(wait_for "$work/hsm-$zone.log" '^\s*host port +[0-9]' | awk '{print $3}')
    officer[$zone]=$(wait_for "$work/hsm-$zone.log" '^\s*officer port +[0-9]' | awk '{print $3}')
    fingerprint[$zone]=$(wait_for "$work/hsm-$zone.log" '^\s*identity ' | awk '{print $2}')
done
admin() { "$s" hsm admin --connect "${officer[a]}" --fingerprint "${fingerprint[a]}" "$@" >/dev/null; }
admin login
admin import-client-cert "$work/certs/client.pem"
admin import-server-cert "$work/certs/server.p12" --p12-password 12345678
admin restart
admin set-properties --keep-alive 60 --header-len 0 --encoding ASCII --two-way --protocol TLSv1.2
admin restart
admin add-member "${officer[b]}" --member-fingerprint "${fingerprint[b]}"
admin sync-cluster

say "a KMS node"
export STRONGROOM_PROFILE_FILE="$work/profile.toml"
"$s" init --data-dir "$work/kms" --write-profile "$STRONGROOM_PROFILE_FILE" >/dev/null
"$s" server --data-dir "$work/kms" --listen 127.0.0.1:0 --instance-ports 28443-28542 \
    >"$work/kms.log" 2>&1 &
kms_pid=$!
pids+=($kms_pid)
endpoint=$(wait_for "$work/kms.log" 'https://' | grep -oE 'https://[0-9.:]+' | sed 's#https://##')
export STRONGROOM_ENDPOINT="$endpoint" STRONGROOM_CA_FILE="$work/kms/management-ca.pem"

say "an instance connected to the HSM nodes, keys and an access point"
instance=$("$s" instance create --name bench --spec 100000 | grep -oE 'kst-[a-z0-9]+' | head -1)
cluster=$("$s" hsm-cluster register --name bench --node "${host[a]}=zone-a" --node "${host[b]}=zone-b" | head -1)
"$s" instance connect "$instance" --cluster "$cluster" --client-p12 "$work/certs/client.p12" \
    --p12-password 12345678 --root-ca "$work/certs/rootca.pem" --wait >/dev/null
key() { "$s" key create --instance "$instance" "$@" | head -1; }
aes=$(key --spec Aliyun_AES_256)
p256=$(key --spec EC_P256 --usage SIGN/VERIFY)
sm2=$(key --spec EC_SM2 --usage SIGN/VERIFY)
rsa=$(key --spec RSA_2048 --usage SIGN/VERIFY)
"$s" aap create --instance "$instance" --name bench --resources 'key/*' \
    --network 127.0.0.1 --dir "$work/app" >/dev/null
port=$("$s" instance get "$instance" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["KmsInstance"]["InstanceApiPort"])')
key_file=$(ls "$work"/app/clientKey_*.json | grep -v Password)
password_file=$(ls "$work"/app/clientKey_*_Password.txt)
ca_file="$work/app/PrivateKmsCA_$instance.pem"
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

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
# user + system clock ticks a process has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_profiles() {
    [ -n "${PROFILE_DIR:-}" ] || return 0
    while pgrep -f "perf record -g -o $PROFILE_DIR" >/dev/null; do sleep 0.2; done
}
bench encrypt-aes256 --api Encrypt --key-id "$aes" --payload-bytes 32 "$@"
bench sign-p256 --api Sign --key-id "$p256" "$@"
bench sign-sm2 --api Sign --key-id "$sm2" "$@"
bench sign-rsa2048 --api Sign --key-id "$rsa" "$@"
