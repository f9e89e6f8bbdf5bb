//! The instance API (`spec/instance-api.md`, `docs/instance-api.md`): what the official
//! dedicated-KMS SDKs call. Each Connected instance is served on its own port
//! ([`endpoints`]) over TLS with a certificate of its own CA ([`tls`]); a request is read
//! ([`listener`], with [`proxy`] for load balancers), checked and answered by
//! [`handler`], whose operations ([`ops`], [`secret`]) run in the instance's HSM cluster.
//!
//! The hot path reads no store: client keys, instances and keys come from short-lived
//! caches ([`cache`], [`records`]), and the instance's performance quota and each source's
//! budget of failed authentications are token buckets in memory ([`throttle`]).

pub mod cache;
pub mod endpoints;
pub mod handler;
pub mod listener;
pub mod ops;
pub mod proxy;
pub mod records;
pub mod secret;
pub mod throttle;
pub mod tls;

use std::sync::Arc;

use cache::TtlCache;
use records::{Client, ResolvedKey};

/// The instance API's state on one node.
#[derive(Debug, Default)]
pub struct Shared {
    /// Client keys by id (`None`: no such key).
    pub clients: TtlCache<String, Option<Arc<Client>>>,
    /// Instances by id, with their bound networks.
    pub instances: TtlCache<String, Option<Arc<records::Served>>>,
    /// Keys by the name a request used (key id or alias).
    pub keys: TtlCache<String, Option<Arc<ResolvedKey>>>,
    /// Key ids by version id.
    pub version_keys: TtlCache<String, Option<String>>,
    /// The performance quotas.
    pub throttle: throttle::Throttle,
    /// The failed-authentication budgets of source addresses.
    pub auth_failures: throttle::AuthFailures,
}
