//! Strongroom's KMS node (`strongroom server`): configuration, the node key, the store
//! back end, and the management API, the RPC style of the cloud KMS OpenAPI `2016-01-20`
//! (`docs/management-api.md`), served over HTTPS with the deployment's management CA.
//!
//! A request flows: [`http`] (TLS, HTTP/1.1, body limit) → `strongroom_proto::openapi`
//! (the signature's fields) → [`auth`] (access key, signature, clock, nonce) →
//! [`api::dispatch`] → one handler in [`api`] → the [`strongroom_store::Store`]. Errors
//! are [`error::ApiError`], mapped once to the cloud's codes and HTTP statuses.
//!
//! Enabling an instance ([`enable`]) reaches the HSM cluster with the
//! `strongroom_hsm::client::ClusterClient` over mutual TLS.
#![warn(missing_docs)]

pub mod access;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod client;
pub mod config;
pub mod enable;
pub mod error;
pub mod gate;
pub mod hsm_pool;
pub mod http;
pub mod instance;
pub mod maintenance;
pub mod metrics;
pub mod mgmt_tls;
pub mod network;
pub mod node_key;
pub mod secrets;
pub mod server;
pub mod stall;
pub mod store;

pub use config::{Config, Overrides};
pub use server::{Initialised, RunningServer, StartError, init, start};
