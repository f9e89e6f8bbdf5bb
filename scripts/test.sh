#!/usr/bin/env bash
# The whole test suite, in one command: what a newcomer runs, and exactly what CI runs
# (.ci/run calls this script and nothing else).
#
# It installs what the tests need when it is missing, so that a machine with only the
# Rust toolchain can run it:
#   - the OpenSSL 3 command-line tool (an independent implementation for interop tests),
#   - SoftHSM2 (a PKCS#11 token for the PKCS#11 backend's tests),
#   - PostgreSQL (a throwaway server, scripts/postgres.sh, for the store's PostgreSQL tests),
#   - a Python virtual environment (.venv-test) with the `cryptography` package,
#   - a second one (.venv-dkms) with the official dedicated-KMS SDK for Python.
# Then: cargo fmt --check, cargo clippy -D warnings, cargo doc -D warnings, every test.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

apt_install() {
    local runner=()
    [ "$(id -u)" = 0 ] || runner=(sudo)
    say "installing with apt-get: $*"
    "${runner[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${runner[@]}" apt-get install -y -qq "$@"
}

# 1. System tools used as independent implementations.
missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv)
command -v softhsm2-util >/dev/null 2>&1 || missing+=(softhsm2)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

# The SoftHSM2 module the PKCS#11 tests load (crates/hsm/tests/pkcs11); they fail
# without it rather than pass silently.
if [ -z "${STRONGROOM_SOFTHSM2_MODULE:-}" ]; then
    for candidate in $(dpkg -L libsofthsm2 2>/dev/null | grep '/libsofthsm2\.so$' || true) \
        /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
        if [ -f "$candidate" ]; then
            STRONGROOM_SOFTHSM2_MODULE="$candidate"
            break
        fi
    done
fi
: "${STRONGROOM_SOFTHSM2_MODULE:?SoftHSM2 is installed but libsofthsm2.so was not found}"
export STRONGROOM_SOFTHSM2_MODULE

# 2. Python packages, in a venv of the project's own (never the system site-packages).
venv=.venv-test
if ! "$venv/bin/python" -c 'import cryptography' >/dev/null 2>&1; then
    say "creating $venv with the Python 'cryptography' package"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        apt_install python3-venv
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'cryptography>=42'
fi
STRONGROOM_TEST_PYTHON="$(pwd)/$venv/bin/python"
export STRONGROOM_TEST_PYTHON

# 3. The official dedicated-KMS Python SDK, in a venv of its own: it pins old
#    dependencies (protobuf 3, cryptography 41) that must not mix with the above.
sdk_venv=.venv-dkms
#    With it `gmssl`, which checks SM2 signatures and decrypts SM2 ciphertexts
#    independently of us (cryptography has no SM2).
if ! "$sdk_venv/bin/python" -c 'import sdk.client, openapi.models, gmssl' >/dev/null 2>&1; then
    say "creating $sdk_venv with the official SDK alibabacloud-dkms-gcs 1.0.2"
    rm -rf "$sdk_venv"
    python3 -m venv "$sdk_venv"
    "$sdk_venv/bin/pip" install --quiet --disable-pip-version-check 'alibabacloud-dkms-gcs==1.0.2' 'gmssl==3.2.2'
fi
STRONGROOM_DKMS_PYTHON="$(pwd)/$sdk_venv/bin/python"
export STRONGROOM_DKMS_PYTHON

mgmt_venv=.venv-kms-mgmt
# With it, the independent implementations the key-import tests wrap material with:
# `cryptography` (RSA-OAEP, AES) and `gmssl` (SM2, SM4).
if ! "$mgmt_venv/bin/python" -c 'import alibabacloud_kms20160120.client, alibabacloud_tea_openapi.models, cryptography, gmssl' >/dev/null 2>&1; then
    say "creating $mgmt_venv with the official management SDK alibabacloud-kms20160120 3.3.1"
    rm -rf "$mgmt_venv"
    python3 -m venv "$mgmt_venv"
    "$mgmt_venv/bin/pip" install --quiet --disable-pip-version-check 'alibabacloud-kms20160120==3.3.1' 'alibabacloud-tea-openapi==0.4.6' 'cryptography>=42' 'gmssl==3.2.2'
fi
STRONGROOM_KMS_MGMT_PYTHON="$(pwd)/$mgmt_venv/bin/python"
export STRONGROOM_KMS_MGMT_PYTHON

# The test build is made once and run; incremental-compilation caches would add
# gigabytes to target/ and help nobody here (a developer's own `cargo` keeps its own).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# The build, the lint and doc passes and the test databases need about 2.5 GB under
# target/ on a clean clone; say so at once rather than fail with a full disk later.
need_mb=2500
mkdir -p target
free_mb=$(df -Pm target | awk 'NR == 2 { print $4 }')
if [ "${free_mb:-0}" -lt "$need_mb" ] && [ ! -d target/debug/deps ]; then
    echo "warning: only ${free_mb} MB free for target/; a clean test build needs about ${need_mb} MB" >&2
fi

# 4. Style, lints, docs.
say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
say "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

# 5. A PostgreSQL server for the store's PostgreSQL tests (crates/store/tests/postgres.rs),
#    which fail rather than pass silently without one. A server named by the caller's
#    STRONGROOM_TEST_POSTGRES is used as it is; otherwise one is started from
#    target/test-postgres and stopped when this script exits, however it exits.

# Adds a command to the EXIT trap, keeping whatever the trap already ran.
add_exit_trap() {
    local command=$1 previous=""
    if [ -n "$(trap -p EXIT)" ]; then
        eval "set -- $(trap -p EXIT)"
        previous=$3
    fi
    trap -- "$command${previous:+; $previous}" EXIT
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ -z "${STRONGROOM_TEST_POSTGRES:-}" ]; then
    pg_dir="$(pwd)/target/test-postgres"
    # A server left behind by an interrupted run would hold the port.
    scripts/postgres.sh stop "$pg_dir" >/dev/null 2>&1 || true
    pg_port=54329
    while port_in_use "$pg_port"; do
        pg_port=$((pg_port + 1))
        [ "$pg_port" -lt 54400 ] || { echo "no free port for PostgreSQL in 54329-54399" >&2; exit 1; }
    done
    say "starting PostgreSQL in $pg_dir on 127.0.0.1:$pg_port"
    printf -v stop_postgres '%q stop %q >/dev/null 2>&1 || true' "$(pwd)/scripts/postgres.sh" "$pg_dir"
    add_exit_trap "$stop_postgres"
    STRONGROOM_TEST_POSTGRES="$(scripts/postgres.sh start "$pg_dir" "$pg_port")"
fi
export STRONGROOM_TEST_POSTGRES

# 6. Every test.
say "tests"
if command -v cargo-nextest >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
else
    cargo test --workspace --locked --no-fail-fast
fi
