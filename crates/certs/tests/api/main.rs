//! API-level tests of the certificates crate, one binary. Every external check runs a
//! tool that shares no code with ours; a missing tool fails the test (it never passes
//! silently) and says to run `scripts/test.sh`, which installs them.
//!
//! - `tool`: the certificate tool's five files, modes and directory rules; OpenSSL 3
//!   (`pkcs12 -info` without `-legacy`, `verify`, `x509 -ext`) and Python
//!   `cryptography` read and check them.
//! - `pkcs12_interop`: what OpenSSL writes (AES-256 and `-legacy` RC2-40) we read, and
//!   what we write (modern and legacy) OpenSSL reads.
//! - `client_keys`: the loader on the SDK vector (RC2-40 + 3DES, the cloud's layout);
//!   our client keys, parsed structurally against what Go's `x/crypto/pkcs12` demands,
//!   read by OpenSSL and Python, wrong passwords refused; the key files.
//! - `instance_cas`: the instance chain under `openssl verify`, the two-certificate
//!   bundle, rustls accepting the endpoint's names and refusing others, re-issue.
//! - `redaction`: `{:?}` of every type holding a key or password shows none of it.
//! - `mtls`: the HSM link: `openssl s_client -tls1_2` against our rustls server (good,
//!   foreign, unlisted and missing client certificates), rustls against rustls on
//!   TLS 1.2 and 1.3, and allow-list changes taking effect at run time.
//!
//! Test PKI is generated here at run time; nothing is committed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::as_conversions,
    reason = "tests: an unexpected error or a short buffer should fail the test loudly"
)]

mod client_keys;
mod instance_cas;
mod mtls;
mod pkcs12_interop;
mod redaction;
mod support;
mod tool;
