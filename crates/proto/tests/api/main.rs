//! API-level tests of the wire contracts, one binary.
//!
//! - `vectors`: every request captured from the official SDKs (Python 1.0.2, Java 0.5.3)
//!   in `../shared/vectors/dkms-sdk/` rebuilds to the same string to sign, verifies, and
//!   re-signs to the same `authorization`.
//! - `instance`: the instance API's front door (`parse_headers`, `decode_body`, error
//!   bodies) replays every captured request and response, and each header check fails
//!   with its documented error, in the documented order.
//! - `openapi`: the official management SDK (`alibabacloud-kms20160120`) signs a
//!   `GetKmsInstance` call (ACS3-HMAC-SHA256) that our verifier accepts; v1 round trips.
//! - `sdk_client_key`: the official Python SDK loads a client key made by
//!   `strongroom-certs` and signs a request that our verifier accepts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::as_conversions,
    reason = "tests: an unexpected error should fail the test loudly"
)]

mod instance;
mod openapi;
mod sdk_client_key;
mod vectors;
