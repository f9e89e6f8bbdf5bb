//! Strongroom's wire contracts with software we do not control.
//!
//! - [`signature`]: the request-signature scheme of the dedicated-KMS instance API,
//!   exactly as the official SDKs (Java, Go, Python, PHP) compute it
//!   (`spec/instance-api.md` §3–§4);
//! - [`openapi`]: the management API's (Kms 2016-01-20) request signatures, ACS3-HMAC-SHA256
//!   and v1 HMAC-SHA1, as the official management SDKs compute them (`spec/product-model.md` §7);
//! - [`hsm`]: the HSM link's messages (`proto/hsm.proto`) and frames.
//!
//! This is the only crate that sees prost; the instance API's protobuf messages join it
//! with the issue that serves them.
//!
//! What it deliberately does not do: HTTP, I/O, or deciding whether a client key is
//! known, valid or allowed — it only builds the string that was signed and checks the
//! signature with a public key the caller supplies.

#![warn(missing_docs)]

pub mod hsm;
pub mod openapi;
pub mod signature;
