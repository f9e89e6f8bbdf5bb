#!/usr/bin/env bash
# Sourced by scripts/bench-instance.sh and scripts/soak.sh: sets up a deployment on this
# machine the way a user would — two HSM nodes in two zones (the guide's step 2), a KMS
# node on SQLite, an instance connected to them, an Aliyun_AES_256, an EC_P256, an
# EC_SM2 and an RSA_2048 key, a secret, an access point for loopback (steps 3–5) — in a
# temporary directory removed when the sourcing script exits.
#
# Sets: s (the strongroom binary), work, kms_pid, hsm_pid[a|b], instance, aes, p256,
# sm2, rsa, secret_name, port, key_file, password_file, ca_file; defines say, wait_for,
# cpu_ticks and rss_kib. SKIP_BUILD=1 uses the release binaries as they are.

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

say "an instance connected to the HSM nodes, keys, a secret and an access point"
# A command's first line, read after it finished (a pipe into `head` would close its
# output early).
first_line() {
    local out
    out=$("$@")
    printf '%s\n' "${out%%$'\n'*}"
}
created=$("$s" instance create --name bench --spec 100000 --secret-num 10)
[[ $created =~ (kst-[a-z0-9]+) ]] || { echo "no instance id in: $created" >&2; exit 1; }
instance=${BASH_REMATCH[1]}
cluster=$(first_line "$s" hsm-cluster register --name bench --node "${host[a]}=zone-a" --node "${host[b]}=zone-b")
"$s" instance connect "$instance" --cluster "$cluster" --client-p12 "$work/certs/client.p12" \
    --p12-password 12345678 --root-ca "$work/certs/rootca.pem" --wait >/dev/null
key() { first_line "$s" key create --instance "$instance" "$@"; }
aes=$(key --spec Aliyun_AES_256)
p256=$(key --spec EC_P256 --usage SIGN/VERIFY)
sm2=$(key --spec EC_SM2 --usage SIGN/VERIFY)
rsa=$(key --spec RSA_2048 --usage SIGN/VERIFY)
secret_name=bench-secret
head -c 48 /dev/urandom | base64 >"$work/secret-value"
"$s" secret create --name "$secret_name" --key "$aes" --data-file "$work/secret-value" >/dev/null
"$s" aap create --instance "$instance" --name bench --resources 'key/*,secret/*' \
    --network 127.0.0.1 --dir "$work/app" >/dev/null
port=$("$s" instance get "$instance" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["KmsInstance"]["InstanceApiPort"])')
key_file=$(ls "$work"/app/clientKey_*.json | grep -v Password)
password_file=$(ls "$work"/app/clientKey_*_Password.txt)
ca_file="$work/app/PrivateKmsCA_$instance.pem"
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

# user + system clock ticks a process has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Resident memory of a process, KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
