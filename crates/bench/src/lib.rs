//! Strongroom's benchmarks: what users run against their own machine or deployment, as
//! `strongroom bench …`.
//!
//! What it does: [`crypto`] times every operation the crypto core's policy table allows,
//! for every key spec, through the public API of `strongroom-crypto`, so the figures are
//! what an HSM node will do on this machine. Each figure can be set against the
//! development machine's measured limits (`guides/limits.md` §1) to show where our
//! wrapper costs something on top of the primitive.
//!
//! [`hsm`] drives HSM operations through the cluster client over the mutual-TLS HSM
//! link, against an in-process node or a real deployment, and reports throughput and
//! latency per number of requests in flight.
//!
//! [`instance`] is the load generator for a deployment's instance API: the requests of
//! one API, signed in advance exactly as the official SDKs sign them, sent over many
//! keep-alive HTTPS connections, with throughput, exact latency percentiles and errors
//! by code.
//!
//! What it deliberately does not do: statistics beyond one timed run per row (run the
//! command several times and take the median), CPU pinning, or network I/O outside
//! [`hsm`] and [`instance`].

#![warn(missing_docs)]

pub mod crypto;
pub mod error;
pub mod hsm;
pub mod instance;
mod load;
mod measure;
