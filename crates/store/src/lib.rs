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

mod access;
mod endpoints;
mod key_sql;
mod keys;
mod listing;
mod migrations;
mod model;
mod postgres;
mod secret_sql;
mod secrets;
mod sqlite;
mod tag_sql;
#[doc(hidden)]
pub mod testsuite;

pub use access::{AccessPoint, AccessSnapshot, ClientKey, NetworkRule, Policy};
pub use keys::{Alias, ImportParams, Key, KeyFilter, KeyState, KeyVersion, Tag, VersionMaterial};
pub use migrations::{MIGRATIONS, Migration};
pub use model::{
    AccessKey, AccessKeyStatus, HsmCluster, HsmNode, Instance, InstanceStatus, Page, PageOf, Vpc,
};
pub use postgres::PostgresStore;
pub use secrets::{Secret, SecretFilter, SecretVersion, StageOn};
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
    /// A quota would be exceeded (the instance's key quota, say); the text says which.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
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
    /// Deletes an instance with its VPC bindings, its secrets and its keys (releasing an
    /// instance releases its secrets and keys): the secrets' versions, stages and tags and
    /// the keys' versions, tags, aliases and import parameters go too, in the same
    /// transaction (the secrets before the keys they are encrypted under). [`StoreError::Conflict`] while a policy names the instance
    /// (nothing is deleted then): access granted to an instance is withdrawn explicitly,
    /// not as a side effect of releasing it.
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

    /// Stores a new key with its first version, atomically with the quota check: if the
    /// instance already holds `key_quota` key versions (of all its keys, in any state)
    /// nothing is stored and the answer is [`StoreError::QuotaExceeded`]. Two nodes
    /// racing for the last unit of quota cannot both succeed. [`StoreError::NotFound`]
    /// if the instance does not exist; [`StoreError::Conflict`] if the key id exists.
    fn create_key(
        &self,
        key: &Key,
        first: &KeyVersion,
        key_quota: u64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Reads one key.
    fn get_key(&self, id: &str) -> impl Future<Output = Result<Key>> + Send;
    /// Lists the keys matching `filter`, ordered by creation time then id.
    fn list_keys(
        &self,
        filter: &KeyFilter,
        page: Page,
    ) -> impl Future<Output = Result<PageOf<Key>>> + Send;
    /// Replaces a key's mutable fields (everything but id, instance, spec, usage, origin,
    /// creator and creation time) if its stored row version equals `key.version`
    /// (compare-and-set); returns the stored record with the incremented version.
    /// [`StoreError::Conflict`] on a version mismatch.
    fn update_key(&self, key: &Key) -> impl Future<Output = Result<Key>> + Send;
    /// Adds a version to a key and updates the key (its new primary version and rotation
    /// dates) in one transaction: compare-and-set on `key.version` as in
    /// [`Store::update_key`], and the quota check of [`Store::create_key`].
    fn add_key_version(
        &self,
        key: &Key,
        version: &KeyVersion,
        key_quota: u64,
    ) -> impl Future<Output = Result<Key>> + Send;
    /// Reads one version of a key.
    fn get_key_version(
        &self,
        key_id: &str,
        version_id: &str,
    ) -> impl Future<Output = Result<KeyVersion>> + Send;
    /// Reads a key version by its id alone (Decrypt finds the key from the version id a
    /// ciphertext carries). Version ids are unique across all keys: the schema enforces it,
    /// and [`Store::create_key`] / [`Store::add_key_version`] answer
    /// [`StoreError::Conflict`] for an id in use.
    fn find_key_version(&self, version_id: &str)
    -> impl Future<Output = Result<KeyVersion>> + Send;
    /// Lists a key's versions, oldest first (creation time, then version id).
    fn list_key_versions(
        &self,
        key_id: &str,
        page: Page,
    ) -> impl Future<Output = Result<PageOf<KeyVersion>>> + Send;
    /// Updates a key (compare-and-set, as [`Store::update_key`]) and sets or deletes the
    /// material of the given versions, in one transaction (import, material deletion and
    /// expiry). [`StoreError::NotFound`] if a version does not exist (nothing changes).
    fn set_key_material(
        &self,
        key: &Key,
        versions: &[VersionMaterial],
    ) -> impl Future<Output = Result<Key>> + Send;
    /// Number of key versions an instance holds (what its key quota counts).
    fn count_instance_key_versions(
        &self,
        instance_id: &str,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Destroys up to `limit` keys that are `PendingDeletion` with `delete_date <= now`
    /// and that encrypt no secret (a key a secret still uses is never destroyed, whatever
    /// its state): each with its versions (blobs), aliases and import parameters, each in
    /// one statement or transaction. Returns the ids this call destroyed; a key destroyed
    /// by another node at the same time is in exactly one node's answer.
    fn destroy_due_keys(
        &self,
        now: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// Up to `limit` keys due for automatic rotation: rotation on, state `Enabled`,
    /// `next_rotation <= now`; oldest due first.
    fn keys_due_for_rotation(
        &self,
        now: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Key>>> + Send;
    /// Up to `limit` keys whose imported material has expired (`material_expires_at <=
    /// now`) and that still hold material (state `Enabled` or `Disabled`, or
    /// `PendingDeletion` with a blob left); soonest first.
    fn keys_with_expired_material(
        &self,
        now: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Key>>> + Send;

    /// Stores a new alias; [`StoreError::Conflict`] if the name exists,
    /// [`StoreError::NotFound`] if the key does not.
    fn create_alias(&self, alias: &Alias) -> impl Future<Output = Result<()>> + Send;
    /// Reads one alias by name.
    fn get_alias(&self, name: &str) -> impl Future<Output = Result<Alias>> + Send;
    /// Points an existing alias at another key; returns the updated alias.
    fn update_alias(
        &self,
        name: &str,
        key_id: &str,
        updated_at: i64,
    ) -> impl Future<Output = Result<Alias>> + Send;
    /// Deletes an alias.
    fn delete_alias(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    /// Lists aliases ordered by name.
    fn list_aliases(&self, page: Page) -> impl Future<Output = Result<PageOf<Alias>>> + Send;
    /// Lists one key's aliases ordered by name.
    fn list_aliases_by_key(
        &self,
        key_id: &str,
        page: Page,
    ) -> impl Future<Output = Result<PageOf<Alias>>> + Send;

    /// Stores import parameters; [`StoreError::NotFound`] if the key does not exist.
    fn create_import_params(
        &self,
        params: &ImportParams,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Reads import parameters by token.
    fn get_import_params(&self, token: &str) -> impl Future<Output = Result<ImportParams>> + Send;
    /// Deletes import parameters with `expires_at <= now`; returns how many.
    fn purge_expired_import_params(&self, now: i64) -> impl Future<Output = Result<u64>> + Send;

    /// The port the instance API of `instance_id` is served on, assigned on the first
    /// call (the lowest port of `range` that no other instance has) and the same ever
    /// after, on every node. Two nodes assigning at once get different ports.
    /// [`StoreError::NotFound`] if the instance does not exist;
    /// [`StoreError::QuotaExceeded`] if every port of `range` is taken.
    fn instance_port(
        &self,
        instance_id: &str,
        range: std::ops::RangeInclusive<u16>,
    ) -> impl Future<Output = Result<u16>> + Send;

    /// Stores a new network rule; [`StoreError::Conflict`] if the name exists.
    fn create_network_rule(&self, rule: &NetworkRule) -> impl Future<Output = Result<()>> + Send;
    /// Reads one network rule by name.
    fn get_network_rule(&self, name: &str) -> impl Future<Output = Result<NetworkRule>> + Send;
    /// Lists network rules ordered by name.
    fn list_network_rules(
        &self,
        page: Page,
    ) -> impl Future<Output = Result<PageOf<NetworkRule>>> + Send;
    /// Replaces a network rule's mutable fields (addresses, description, update time; not
    /// its name, type or creation time). [`StoreError::NotFound`] if it does not exist.
    fn update_network_rule(&self, rule: &NetworkRule) -> impl Future<Output = Result<()>> + Send;
    /// Deletes a network rule; [`StoreError::Conflict`] while a policy names it,
    /// [`StoreError::NotFound`] if it does not exist.
    fn delete_network_rule(&self, name: &str) -> impl Future<Output = Result<()>> + Send;

    /// Stores a new policy with its network-rule references, atomically.
    /// [`StoreError::Conflict`] if the name exists; [`StoreError::NotFound`] if its
    /// instance or one of its network rules does not exist (nothing is stored then).
    fn create_policy(&self, policy: &Policy) -> impl Future<Output = Result<()>> + Send;
    /// Reads one policy by name.
    fn get_policy(&self, name: &str) -> impl Future<Output = Result<Policy>> + Send;
    /// Lists policies ordered by name.
    fn list_policies(&self, page: Page) -> impl Future<Output = Result<PageOf<Policy>>> + Send;
    /// Replaces a policy's mutable fields (permissions, resources, network rules,
    /// description, update time; not its name, instance or creation time), atomically.
    /// [`StoreError::NotFound`] if the policy or one of the network rules does not exist
    /// (nothing is changed then).
    fn update_policy(&self, policy: &Policy) -> impl Future<Output = Result<()>> + Send;
    /// Deletes a policy; [`StoreError::Conflict`] while an access point names it,
    /// [`StoreError::NotFound`] if it does not exist.
    fn delete_policy(&self, name: &str) -> impl Future<Output = Result<()>> + Send;

    /// Stores a new access point with its policy references, atomically.
    /// [`StoreError::Conflict`] if the name exists; [`StoreError::NotFound`] if one of
    /// its policies does not exist (nothing is stored then).
    fn create_access_point(&self, point: &AccessPoint) -> impl Future<Output = Result<()>> + Send;
    /// Reads one access point by name.
    fn get_access_point(&self, name: &str) -> impl Future<Output = Result<AccessPoint>> + Send;
    /// Lists access points ordered by name.
    fn list_access_points(
        &self,
        page: Page,
    ) -> impl Future<Output = Result<PageOf<AccessPoint>>> + Send;
    /// Replaces an access point's mutable fields (policies, description, update time; not
    /// its name, authentication method or creation time), atomically.
    /// [`StoreError::NotFound`] if the access point or one of the policies does not exist
    /// (nothing is changed then).
    fn update_access_point(&self, point: &AccessPoint) -> impl Future<Output = Result<()>> + Send;
    /// Deletes an access point; [`StoreError::Conflict`] while it has client keys,
    /// [`StoreError::NotFound`] if it does not exist.
    fn delete_access_point(&self, name: &str) -> impl Future<Output = Result<()>> + Send;

    /// Stores a new client key, atomically with the limit check: if its access point
    /// already has `max_per_aap` client keys nothing is stored and the answer is
    /// [`StoreError::QuotaExceeded`]; two nodes racing for the last slot cannot both
    /// succeed. [`StoreError::NotFound`] if the access point does not exist;
    /// [`StoreError::Conflict`] if the id exists.
    fn create_client_key(
        &self,
        key: &ClientKey,
        max_per_aap: u32,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Reads one client key.
    fn get_client_key(&self, id: &str) -> impl Future<Output = Result<ClientKey>> + Send;
    /// Every client key of an access point, ordered by creation time then id.
    /// [`StoreError::NotFound`] if the access point does not exist.
    fn list_client_keys(
        &self,
        aap_name: &str,
    ) -> impl Future<Output = Result<Vec<ClientKey>>> + Send;
    /// Deletes a client key; [`StoreError::NotFound`] if it does not exist.
    fn delete_client_key(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// What a request signed with client key `client_key_id` is judged by: the key, its
    /// access point, the access point's policies and their network rules, read in one
    /// snapshot (never a mix of before and after a concurrent update). `None` if the
    /// client key does not exist.
    fn access_snapshot(
        &self,
        client_key_id: &str,
    ) -> impl Future<Output = Result<Option<AccessSnapshot>>> + Send;

    /// Stores a new secret with its first version, which gets the stage `ACSCurrent`,
    /// atomically with the quota check: if the instance already holds `secret_quota`
    /// secrets (in any state) nothing is stored and the answer is
    /// [`StoreError::QuotaExceeded`]; two nodes racing for the last unit cannot both
    /// succeed. [`StoreError::NotFound`] if the instance or the encryption key does not
    /// exist; [`StoreError::Conflict`] if the name exists.
    fn create_secret(
        &self,
        secret: &Secret,
        first: &SecretVersion,
        secret_quota: u64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Reads one secret.
    fn get_secret(&self, name: &str) -> impl Future<Output = Result<Secret>> + Send;
    /// Lists the secrets matching `filter`, ordered by creation time then name.
    fn list_secrets(
        &self,
        filter: &SecretFilter,
        page: Page,
    ) -> impl Future<Output = Result<PageOf<Secret>>> + Send;
    /// Replaces a secret's mutable fields (description, extended config, tags, planned
    /// deletion, update time) if its stored row version equals `secret.version`
    /// (compare-and-set); returns the stored record with the incremented version.
    /// [`StoreError::Conflict`] on a version mismatch.
    fn update_secret(&self, secret: &Secret) -> impl Future<Output = Result<Secret>> + Send;
    /// In one transaction: updates the secret as [`Store::update_secret`] does
    /// (compare-and-set); adds `new_version` if given ([`StoreError::Conflict`] if its id
    /// exists); replaces the secret's whole stage map with `stages`
    /// ([`StoreError::NotFound`] if one names a version that does not exist); then, while
    /// the secret has more than `max_versions` versions, deletes its oldest version that
    /// carries no stage (the oldest: the first added). Nothing changes if any step fails. Returns the stored secret.
    fn write_secret_versions(
        &self,
        secret: &Secret,
        new_version: Option<&SecretVersion>,
        stages: &[StageOn],
        max_versions: u32,
    ) -> impl Future<Output = Result<Secret>> + Send;
    /// Reads one version of a secret with its stages.
    fn get_secret_version(
        &self,
        name: &str,
        version_id: &str,
    ) -> impl Future<Output = Result<SecretVersion>> + Send;
    /// Reads the version a stage is on, with its stages; [`StoreError::NotFound`] if the
    /// secret has no such stage.
    fn get_secret_version_by_stage(
        &self,
        name: &str,
        stage: &str,
    ) -> impl Future<Output = Result<SecretVersion>> + Send;
    /// Every version of a secret with its stages, oldest first (in the order they were
    /// added). [`StoreError::NotFound`] if the secret does not exist.
    fn list_secret_versions(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<SecretVersion>>> + Send;
    /// Deletes a secret with its versions and stages; [`StoreError::NotFound`] if it
    /// does not exist.
    fn delete_secret(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    /// Destroys up to `limit` secrets whose `planned_delete_at <= now`, each with its
    /// versions and stages. Returns the names this call destroyed; a secret destroyed by
    /// another node at the same time is in exactly one node's answer.
    fn destroy_due_secrets(
        &self,
        now: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// Number of secrets an instance holds, in any state (what its secret quota counts).
    fn count_instance_secrets(&self, instance_id: &str)
    -> impl Future<Output = Result<u64>> + Send;
    /// Number of secrets whose versions are encrypted under `key_id`, in any state (a
    /// key in use by a secret is not scheduled for deletion).
    fn count_key_secrets(&self, key_id: &str) -> impl Future<Output = Result<u64>> + Send;
}
