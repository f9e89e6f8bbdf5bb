//! The back end chosen at start (`--database`): one type the node is generic over, so
//! the server code is compiled once and the two back ends pass through the same paths.

use std::path::Path;

use strongroom_store::{
    AccessKey, AccessKeyStatus, AccessPoint, AccessSnapshot, Alias, ClientKey, HsmCluster,
    ImportParams, Instance, Key, KeyFilter, KeyVersion, NetworkRule, Page, PageOf, Policy,
    PostgresStore, Result, Secret, SecretFilter, SecretVersion, SqliteStore, StageOn, Store,
    VersionMaterial, Vpc,
};

/// SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// The embedded default.
    Sqlite(SqliteStore),
    /// Shared by several nodes.
    Postgres(PostgresStore),
}

impl AnyStore {
    /// Opens (creating and migrating) the SQLite file at `path`.
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub async fn sqlite(path: &Path) -> Result<Self> {
        Ok(Self::Sqlite(SqliteStore::open(path).await?))
    }

    /// Connects to (and migrates) the PostgreSQL database at `url`.
    ///
    /// # Errors
    /// As [`PostgresStore::connect`].
    pub async fn postgres(url: &str) -> Result<Self> {
        Ok(Self::Postgres(PostgresStore::connect(url).await?))
    }
}

macro_rules! delegate {
    ($( fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $out:ty; )*) => {
        impl Store for AnyStore {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> Result<$out> {
                    match self {
                        Self::Sqlite(s) => s.$name($($arg),*).await,
                        Self::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

delegate! {
    fn health(&self) -> ();
    fn create_access_key(&self, key: &AccessKey) -> ();
    fn get_access_key(&self, id: &str) -> AccessKey;
    fn list_access_keys(&self, page: Page) -> PageOf<AccessKey>;
    fn set_access_key_status(&self, id: &str, status: AccessKeyStatus) -> ();
    fn delete_access_key(&self, id: &str) -> ();
    fn create_instance(&self, instance: &Instance) -> ();
    fn get_instance(&self, id: &str) -> Instance;
    fn list_instances(&self, page: Page) -> PageOf<Instance>;
    fn update_instance(&self, instance: &Instance) -> Instance;
    fn delete_instance(&self, id: &str) -> ();
    fn bind_cluster(&self, instance_id: &str, cluster_id: &str) -> Instance;
    fn create_cluster(&self, cluster: &HsmCluster) -> ();
    fn get_cluster(&self, id: &str) -> HsmCluster;
    fn list_clusters(&self, page: Page) -> PageOf<HsmCluster>;
    fn delete_cluster(&self, id: &str) -> ();
    fn create_vpc(&self, vpc: &Vpc) -> ();
    fn get_vpc(&self, id: &str) -> Vpc;
    fn list_vpcs(&self, page: Page) -> PageOf<Vpc>;
    fn delete_vpc(&self, id: &str) -> ();
    fn bind_vpc(&self, instance_id: &str, vpc_id: &str) -> ();
    fn unbind_vpc(&self, instance_id: &str, vpc_id: &str) -> ();
    fn instance_vpcs(&self, instance_id: &str) -> Vec<String>;
    fn replace_instance_vpcs(&self, instance_id: &str, vpc_ids: &[String]) -> ();
    fn count_instance_vpcs(&self, instance_id: &str) -> u64;
    fn insert_nonce(&self, access_key_id: &str, nonce: &str, expires_at: i64) -> bool;
    fn purge_expired_nonces(&self, now: i64) -> u64;
    fn get_setting(&self, name: &str) -> Option<Vec<u8>>;
    fn insert_setting(&self, name: &str, value: &[u8]) -> bool;
    fn create_key(&self, key: &Key, first: &KeyVersion, key_quota: u64) -> ();
    fn get_key(&self, id: &str) -> Key;
    fn list_keys(&self, filter: &KeyFilter, page: Page) -> PageOf<Key>;
    fn update_key(&self, key: &Key) -> Key;
    fn add_key_version(&self, key: &Key, version: &KeyVersion, key_quota: u64) -> Key;
    fn get_key_version(&self, key_id: &str, version_id: &str) -> KeyVersion;
    fn find_key_version(&self, version_id: &str) -> KeyVersion;
    fn list_key_versions(&self, key_id: &str, page: Page) -> PageOf<KeyVersion>;
    fn set_key_material(&self, key: &Key, versions: &[VersionMaterial]) -> Key;
    fn count_instance_key_versions(&self, instance_id: &str) -> u64;
    fn destroy_due_keys(&self, now: i64, limit: u32) -> Vec<String>;
    fn keys_due_for_rotation(&self, now: i64, limit: u32) -> Vec<Key>;
    fn keys_with_expired_material(&self, now: i64, limit: u32) -> Vec<Key>;
    fn create_alias(&self, alias: &Alias) -> ();
    fn get_alias(&self, name: &str) -> Alias;
    fn update_alias(&self, name: &str, key_id: &str, updated_at: i64) -> Alias;
    fn delete_alias(&self, name: &str) -> ();
    fn list_aliases(&self, page: Page) -> PageOf<Alias>;
    fn list_aliases_by_key(&self, key_id: &str, page: Page) -> PageOf<Alias>;
    fn create_import_params(&self, params: &ImportParams) -> ();
    fn get_import_params(&self, token: &str) -> ImportParams;
    fn purge_expired_import_params(&self, now: i64) -> u64;
    fn create_network_rule(&self, rule: &NetworkRule) -> ();
    fn get_network_rule(&self, name: &str) -> NetworkRule;
    fn list_network_rules(&self, page: Page) -> PageOf<NetworkRule>;
    fn update_network_rule(&self, rule: &NetworkRule) -> ();
    fn delete_network_rule(&self, name: &str) -> ();
    fn create_policy(&self, policy: &Policy) -> ();
    fn get_policy(&self, name: &str) -> Policy;
    fn list_policies(&self, page: Page) -> PageOf<Policy>;
    fn update_policy(&self, policy: &Policy) -> ();
    fn delete_policy(&self, name: &str) -> ();
    fn create_access_point(&self, point: &AccessPoint) -> ();
    fn get_access_point(&self, name: &str) -> AccessPoint;
    fn list_access_points(&self, page: Page) -> PageOf<AccessPoint>;
    fn update_access_point(&self, point: &AccessPoint) -> ();
    fn delete_access_point(&self, name: &str) -> ();
    fn create_client_key(&self, key: &ClientKey, max_per_aap: u32) -> ();
    fn get_client_key(&self, id: &str) -> ClientKey;
    fn list_client_keys(&self, aap_name: &str) -> Vec<ClientKey>;
    fn delete_client_key(&self, id: &str) -> ();
    fn access_snapshot(&self, client_key_id: &str) -> Option<AccessSnapshot>;
    fn instance_port(&self, instance_id: &str, range: std::ops::RangeInclusive<u16>) -> u16;
    fn create_secret(&self, secret: &Secret, first: &SecretVersion, secret_quota: u64) -> ();
    fn get_secret(&self, name: &str) -> Secret;
    fn list_secrets(&self, filter: &SecretFilter, page: Page) -> PageOf<Secret>;
    fn update_secret(&self, secret: &Secret) -> Secret;
    fn write_secret_versions(
        &self,
        secret: &Secret,
        new_version: Option<&SecretVersion>,
        stages: &[StageOn],
        max_versions: u32
    ) -> Secret;
    fn get_secret_version(&self, name: &str, version_id: &str) -> SecretVersion;
    fn get_secret_version_by_stage(&self, name: &str, stage: &str) -> SecretVersion;
    fn list_secret_versions(&self, name: &str) -> Vec<SecretVersion>;
    fn delete_secret(&self, name: &str) -> ();
    fn destroy_due_secrets(&self, now: i64, limit: u32) -> Vec<String>;
    fn count_instance_secrets(&self, instance_id: &str) -> u64;
    fn count_key_secrets(&self, key_id: &str) -> u64;
}
