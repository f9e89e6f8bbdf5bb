//! The KMS node's persistent state behind one [`Store`] trait.
//!
//! This crate is the only one in the workspace that sees SQL. The trait is async (the
//! server runs on tokio); [`SqliteStore`] is the embedded default back end and
//! [`PostgresStore`] the one several KMS nodes can share. Both pass the same [`testsuite`]
//! and apply the same [`MIGRATIONS`].
//!
//! Times are Unix seconds (`i64`). Identifiers are chosen by the caller (the server
//! generates `kst-…`, `LTAI…` and so on); the store only enforces their uniqueness.
#![warn(missing_docs)]

mod migrations;
mod model;
mod postgres;
mod sqlite;
#[doc(hidden)]
pub mod testsuite;

pub use migrations::{MIGRATIONS, Migration};
pub use model::{
    AccessKey, AccessKeyStatus, HsmCluster, HsmNode, Instance, InstanceStatus, Page, PageOf, Vpc,
};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use std::future::Future;

/// Errors every back end reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The named record does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A uniqueness rule or an optimistic-concurrency check failed; the text says which.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored data could not be decoded (an unknown enum value, an out-of-range number).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The database was written by a newer version of this code.
    #[error("database schema version {found} is newer than the supported {supported}")]
    SchemaTooNew {
        /// Highest migration version recorded in the database.
        found: i64,
        /// Highest migration version this code knows.
        supported: i64,
    },
    /// The back end failed (I/O, driver or task error).
    #[error("store back end: {0}")]
    Backend(String),
}

/// Result alias for store operations.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The KMS node's persistent state. Every back end passes [`testsuite`].
pub trait Store: Send + Sync + 'static {
    /// Checks that the back end answers a trivial query.
    fn health(&self) -> impl Future<Output = Result<()>> + Send;

    /// Stores a new access key; [`StoreError::Conflict`] if the id exists.
    fn create_access_key(&self, key: &AccessKey) -> impl Future<Output = Result<()>> + Send;
    /// Reads one access key.
    fn get_access_key(&self, id: &str) -> impl Future<Output = Result<AccessKey>> + Send;
    /// Lists access keys ordered by id.
    fn list_access_keys(
        &self,
        page: Page,
    ) -> impl Future<Output = Result<PageOf<AccessKey>>> + Send;
    /// Sets an access key's status.
    fn set_access_key_status(
        &self,
        id: &str,
        status: AccessKeyStatus,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Deletes an access key.
    fn delete_access_key(&self, id: &str) -> impl Future<Output = Result<()>> + Send;

    /// Stores a new instance (its `version` is stored as given, normally 1).
    fn create_instance(&self, instance: &Instance) -> impl Future<Output = Result<()>> + Send;
    /// Reads one instance.
    fn get_instance(&self, id: &str) -> impl Future<Output = Result<Instance>> + Send;
    /// Lists instances ordered by id.
    fn list_instances(&self, page: Page) -> impl Future<Output = Result<PageOf<Instance>>> + Send;
    /// Replaces an instance's mutable fields if its stored version equals `instance.version`
    /// (compare-and-set); returns the stored record with the incremented version.
    /// [`StoreError::Conflict`] on a version mismatch or a cluster already bound elsewhere.
    fn update_instance(&self, instance: &Instance)
    -> impl Future<Output = Result<Instance>> + Send;
    /// Deletes an instance and its VPC bindings.
    fn delete_instance(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Binds an HSM cluster to an instance (one cluster, one instance; idempotent for the
    /// same pair). Returns the updated instance.
    fn bind_cluster(
        &self,
        instance_id: &str,
        cluster_id: &str,
    ) -> impl Future<Output = Result<Instance>> + Send;

    /// Stores a new HSM cluster with its nodes.
    fn create_cluster(&self, cluster: &HsmCluster) -> impl Future<Output = Result<()>> + Send;
    /// Reads one HSM cluster with its nodes.
    fn get_cluster(&self, id: &str) -> impl Future<Output = Result<HsmCluster>> + Send;
    /// Lists HSM clusters ordered by id.
    fn list_clusters(&self, page: Page) -> impl Future<Output = Result<PageOf<HsmCluster>>> + Send;
    /// Deletes a cluster; [`StoreError::Conflict`] while an instance is bound to it.
    fn delete_cluster(&self, id: &str) -> impl Future<Output = Result<()>> + Send;

    /// Stores a new VPC with its CIDR blocks.
    fn create_vpc(&self, vpc: &Vpc) -> impl Future<Output = Result<()>> + Send;
    /// Reads one VPC.
    fn get_vpc(&self, id: &str) -> impl Future<Output = Result<Vpc>> + Send;
    /// Lists VPCs ordered by id.
    fn list_vpcs(&self, page: Page) -> impl Future<Output = Result<PageOf<Vpc>>> + Send;
    /// Deletes a VPC; [`StoreError::Conflict`] while an instance is bound to it.
    fn delete_vpc(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Binds a VPC to an instance; [`StoreError::Conflict`] if already bound.
    fn bind_vpc(&self, instance_id: &str, vpc_id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Removes a VPC binding.
    fn unbind_vpc(
        &self,
        instance_id: &str,
        vpc_id: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Ids of the VPCs bound to an instance, ordered.
    fn instance_vpcs(&self, instance_id: &str) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// Replaces the set of VPCs bound to an instance with `vpc_ids`, atomically.
    /// [`StoreError::NotFound`] if the instance or any VPC does not exist (nothing is
    /// changed then).
    fn replace_instance_vpcs(
        &self,
        instance_id: &str,
        vpc_ids: &[String],
    ) -> impl Future<Output = Result<()>> + Send;
    /// Number of VPCs bound to an instance (for the caller's quota check).
    fn count_instance_vpcs(&self, instance_id: &str) -> impl Future<Output = Result<u64>> + Send;

    /// Records a request nonce; `true` if it was fresh, `false` if already seen.
    fn insert_nonce(
        &self,
        access_key_id: &str,
        nonce: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Deletes nonces with `expires_at <= now`; returns how many.
    fn purge_expired_nonces(&self, now: i64) -> impl Future<Output = Result<u64>> + Send;

    /// Reads a node-wide setting (for example the check value of the node key).
    fn get_setting(&self, name: &str) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
    /// Stores a setting unless it exists; `true` if this call stored it. Nodes racing to
    /// initialise a shared database use this so that exactly one value wins.
    fn insert_setting(&self, name: &str, value: &[u8])
    -> impl Future<Output = Result<bool>> + Send;
}
