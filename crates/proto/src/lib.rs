//! Strongroom's wire contracts with software we do not control.
//!
//! Today: the request-signature scheme of the dedicated-KMS instance API
//! ([`signature`]), exactly as the official SDKs (Java, Go, Python, PHP) compute it
//! (`spec/instance-api.md` §3–§4). The protobuf messages of that API and the HSM link's
//! frames join this crate with the issues that need them.
//!
//! What it deliberately does not do: HTTP, I/O, or deciding whether a client key is
//! known, valid or allowed — it only builds the string that was signed and checks the
//! signature with a public key the caller supplies.

#![warn(missing_docs)]

pub mod signature;
