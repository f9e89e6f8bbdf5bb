//! Fuzz targets for every decoder of Strongroom that faces the network, and a runner for
//! them on the stable toolchain.
//!
//! Each target is a function `fn(&[u8])` that must never panic, hang or allocate without
//! bound, whatever the bytes:
//!
//! - [`instance_request`]: the instance API's front door
//!   ([`strongroom_proto::instance::parse_headers`], `decode_body` for every API name,
//!   and the request signature check against a fixed client key);
//! - [`management_request`]: the management API's signature parser
//!   ([`strongroom_proto::openapi::parse`], `decode_form`, `verify` with a fixed secret);
//! - [`hsm_frame`]: the HSM link's frames ([`strongroom_proto::hsm::body_len`] and
//!   `decode_body` for requests and responses, and their re-encoding);
//! - [`client_key_file`], [`pkcs12`], [`pem`]: the client-key file loader, the PKCS#12
//!   reader and the PEM certificate and key readers of `strongroom-certs`, with what a
//!   node builds from them (a verifying key, a TLS client configuration).
//!
//! [`TARGETS`] lists them by name with their seed corpora ([`Target::seeds`]), built from
//! the captured SDK requests in `../shared/vectors/dkms-sdk/` (when present) and from
//! valid inputs made in code. [`runner`] is the mutational fuzzer the `strongroom-fuzz`
//! binary and the tests drive: coverage-blind, structure-aware, panics caught with
//! [`std::panic::catch_unwind`], a time bound per input. `scripts/fuzz.sh` runs every
//! target for a bounded time.
//!
//! Input formats (what the seeds look like, so that a finding can be read):
//! - requests (`instance_request`, `management_request`) are text: header lines
//!   `name: value`, an empty line, then the body; the management request starts with a
//!   request line `METHOD /path?query`;
//! - `hsm_frame` is a byte stream of frames (4-byte big-endian length, body);
//! - `client_key_file` is the JSON file, `pkcs12` the DER, `pem` the PEM text.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod certs;
mod fixture;
mod hsm_frame;
mod instance;
mod management;
pub mod mutate;
pub mod runner;
mod wire;

pub use certs::{client_key_file, pem, pkcs12};
pub use hsm_frame::hsm_frame;
pub use instance::instance_request;
pub use management::management_request;

/// How a target's inputs are shaped, which picks the structure-aware mutations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Binary (protobuf frames, DER).
    Binary,
    /// Text in lines (HTTP-like requests, PEM).
    Lines,
    /// A client key's JSON file, whose `PrivateKeyData` is base64 DER.
    ClientKeyJson,
}

/// A fuzz target: a name, the function, its seeds and the tokens worth inserting.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The name used on the command line and under `fuzz-crashes/`.
    pub name: &'static str,
    /// What it covers, in one line.
    pub about: &'static str,
    /// The target: must not panic, hang or allocate without bound on any input.
    pub run: fn(&[u8]),
    /// The seed corpus: real inputs that the target accepts.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Tokens the mutator inserts or writes over the input.
    pub dictionary: &'static [&'static [u8]],
    /// The shape of the inputs.
    pub shape: Shape,
}

/// Every target, in the order `all` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "instance_request",
        about: "instance API: parse_headers, decode_body for every API, request signature check",
        run: instance_request,
        seeds: instance::seeds,
        dictionary: instance::DICTIONARY,
        shape: Shape::Lines,
    },
    Target {
        name: "management_request",
        about: "management API: openapi::parse (ACS3 and v1), decode_form, verify",
        run: management_request,
        seeds: management::seeds,
        dictionary: management::DICTIONARY,
        shape: Shape::Lines,
    },
    Target {
        name: "hsm_frame",
        about: "HSM link: body_len and decode_body of requests and responses, re-encoding",
        run: hsm_frame,
        seeds: hsm_frame::seeds,
        dictionary: hsm_frame::DICTIONARY,
        shape: Shape::Binary,
    },
    Target {
        name: "client_key_file",
        about: "client_key::load of a JSON client-key file with its password",
        run: client_key_file,
        seeds: certs::client_key_seeds,
        dictionary: certs::JSON_DICTIONARY,
        shape: Shape::ClientKeyJson,
    },
    Target {
        name: "pkcs12",
        about: "pkcs12::read, then the TLS client configuration a node builds from it",
        run: pkcs12,
        seeds: certs::pkcs12_seeds,
        dictionary: certs::DER_DICTIONARY,
        shape: Shape::Binary,
    },
    Target {
        name: "pem",
        about: "PEM certificates and keys: certificates_from_pem, public keys, CA and TLS use",
        run: pem,
        seeds: certs::pem_seeds,
        dictionary: certs::PEM_DICTIONARY,
        shape: Shape::Lines,
    },
];

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
