//! Strongroom's wire contracts with software we do not control.
//!
//! - [`signature`]: the request-signature scheme of the dedicated-KMS instance API,
//!   exactly as the official SDKs (Java, Go, Python, PHP) compute it
//!   (`spec/instance-api.md` §3–§4);
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
pub mod signature;
