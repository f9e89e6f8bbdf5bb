//! Versioned schema migrations, shared by the back ends.
//!
//! The SQL is kept portable: `TEXT`, `BIGINT`, `BOOLEAN`; `BLOB` becomes `BYTEA` on
//! PostgreSQL (the PostgreSQL back end substitutes it).

/// One migration: applied in its own transaction, recorded in `schema_migrations`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Strictly increasing version, from 1.
    pub version: i64,
    /// Short name.
    pub name: &'static str,
    /// SQL statements.
    pub sql: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: r"
CREATE TABLE access_keys (
    id                TEXT PRIMARY KEY,
    secret_ciphertext BLOB NOT NULL,
    status            TEXT NOT NULL,
    description       TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);
CREATE TABLE hsm_clusters (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE hsm_nodes (
    cluster_id TEXT NOT NULL REFERENCES hsm_clusters(id) ON DELETE CASCADE,
    position   BIGINT NOT NULL,
    address    TEXT NOT NULL,
    zone       TEXT NOT NULL,
    PRIMARY KEY (cluster_id, position)
);
CREATE TABLE instances (
    id                       TEXT PRIMARY KEY,
    name                     TEXT NOT NULL,
    region                   TEXT NOT NULL,
    status                   TEXT NOT NULL,
    vpc_quota                BIGINT NOT NULL,
    key_quota                BIGINT NOT NULL,
    secret_quota             BIGINT NOT NULL,
    spec                     BIGINT NOT NULL,
    term_months              BIGINT NOT NULL,
    start_time               BIGINT,
    end_time                 BIGINT,
    auto_renew               BOOLEAN NOT NULL,
    hsm_cluster_id           TEXT UNIQUE REFERENCES hsm_clusters(id),
    ca_certificate_chain_pem TEXT NOT NULL,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL,
    version                  BIGINT NOT NULL
);
CREATE TABLE vpcs (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE vpc_cidr_blocks (
    vpc_id   TEXT NOT NULL REFERENCES vpcs(id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    cidr     TEXT NOT NULL,
    PRIMARY KEY (vpc_id, position)
);
CREATE TABLE instance_vpcs (
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    vpc_id      TEXT NOT NULL REFERENCES vpcs(id),
    PRIMARY KEY (instance_id, vpc_id)
);
CREATE INDEX instance_vpcs_vpc ON instance_vpcs(vpc_id);
CREATE TABLE nonces (
    access_key_id TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (access_key_id, nonce)
);
CREATE INDEX nonces_expires_at ON nonces(expires_at);
",
    },
    Migration {
        version: 2,
        name: "instance enabling and node settings",
        sql: r"
ALTER TABLE instances ADD COLUMN status_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN hsm_credentials BLOB;
ALTER TABLE instances ADD COLUMN ca_keys BLOB;
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
",
    },
    Migration {
        version: 3,
        name: "keys, versions, aliases, import parameters",
        sql: r"
CREATE TABLE keys (
    id                              TEXT PRIMARY KEY,
    instance_id                     TEXT NOT NULL REFERENCES instances(id),
    spec                            TEXT NOT NULL,
    usage                           TEXT NOT NULL,
    additional_usage                TEXT NOT NULL,
    origin                          TEXT NOT NULL,
    protection_level                TEXT NOT NULL,
    description                     TEXT NOT NULL,
    creator                         TEXT NOT NULL,
    state                           TEXT NOT NULL,
    created_at                      BIGINT NOT NULL,
    delete_date                     BIGINT,
    deletion_protection             BOOLEAN NOT NULL,
    deletion_protection_description TEXT NOT NULL,
    automatic_rotation              BOOLEAN NOT NULL,
    rotation_interval_secs          BIGINT NOT NULL,
    last_rotation                   BIGINT NOT NULL,
    next_rotation                   BIGINT,
    primary_version                 TEXT NOT NULL,
    material_expires_at             BIGINT,
    updated_at                      BIGINT NOT NULL,
    version                         BIGINT NOT NULL
);
CREATE INDEX keys_instance ON keys(instance_id, created_at, id);
CREATE INDEX keys_delete_date ON keys(state, delete_date);
CREATE INDEX keys_next_rotation ON keys(automatic_rotation, next_rotation);
CREATE INDEX keys_material_expiry ON keys(material_expires_at);
CREATE TABLE key_tags (
    key_id    TEXT NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
    position  BIGINT NOT NULL,
    tag_key   TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (key_id, position)
);
CREATE INDEX key_tags_tag ON key_tags(tag_key, tag_value);
CREATE TABLE key_versions (
    key_id      TEXT NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
    version_id  TEXT NOT NULL,
    position    BIGINT NOT NULL,
    instance_id TEXT NOT NULL REFERENCES instances(id),
    created_at  BIGINT NOT NULL,
    sealed_blob BLOB,
    public_key  BLOB,
    PRIMARY KEY (key_id, version_id)
);
CREATE INDEX key_versions_instance ON key_versions(instance_id);
CREATE UNIQUE INDEX key_versions_version ON key_versions(version_id);
CREATE TABLE aliases (
    name       TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX aliases_key ON aliases(key_id, name);
CREATE TABLE import_params (
    token              TEXT PRIMARY KEY,
    key_id             TEXT NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
    wrapping_key_spec  TEXT NOT NULL,
    wrapping_algorithm TEXT NOT NULL,
    wrapping_blob      BLOB NOT NULL,
    public_key         BLOB NOT NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL
);
CREATE INDEX import_params_key ON import_params(key_id);
CREATE INDEX import_params_expires_at ON import_params(expires_at);
",
    },
    Migration {
        version: 4,
        name: "application access: network rules, policies, access points, client keys",
        // Lists that name nothing (addresses, permissions, resources) are JSON arrays in
        // text columns; lists that name records are child tables, so that the database
        // refuses to delete what is named (no cascade from the named side).
        sql: r"
CREATE TABLE network_rules (
    name              TEXT PRIMARY KEY,
    rule_type         TEXT NOT NULL,
    source_private_ip TEXT NOT NULL,
    description       TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE TABLE policies (
    name            TEXT PRIMARY KEY,
    kms_instance_id TEXT NOT NULL REFERENCES instances(id),
    permissions     TEXT NOT NULL,
    resources       TEXT NOT NULL,
    description     TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX policies_instance ON policies(kms_instance_id);
CREATE TABLE policy_network_rules (
    policy_name TEXT NOT NULL REFERENCES policies(name) ON DELETE CASCADE,
    position    BIGINT NOT NULL,
    rule_name   TEXT NOT NULL REFERENCES network_rules(name),
    PRIMARY KEY (policy_name, position)
);
CREATE INDEX policy_network_rules_rule ON policy_network_rules(rule_name);
CREATE TABLE access_points (
    name                  TEXT PRIMARY KEY,
    authentication_method TEXT NOT NULL,
    description           TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE TABLE aap_policies (
    aap_name    TEXT NOT NULL REFERENCES access_points(name) ON DELETE CASCADE,
    position    BIGINT NOT NULL,
    policy_name TEXT NOT NULL REFERENCES policies(name),
    PRIMARY KEY (aap_name, position)
);
CREATE INDEX aap_policies_policy ON aap_policies(policy_name);
CREATE TABLE client_keys (
    id              TEXT PRIMARY KEY,
    aap_name        TEXT NOT NULL REFERENCES access_points(name),
    key_algorithm   TEXT NOT NULL,
    key_origin      TEXT NOT NULL,
    certificate_pem TEXT NOT NULL,
    not_before      BIGINT NOT NULL,
    not_after       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX client_keys_aap ON client_keys(aap_name, created_at, id);
",
    },
    Migration {
        version: 5,
        name: "instance endpoints: the port each instance's API is served on",
        // One port per instance, the same on every node (a load balancer maps the
        // instance's host name to it); released with the instance.
        sql: r"
CREATE TABLE instance_endpoints (
    instance_id TEXT PRIMARY KEY REFERENCES instances(id) ON DELETE CASCADE,
    port        BIGINT NOT NULL UNIQUE
);
",
    },
    Migration {
        version: 6,
        name: "secrets: generic secrets of an instance, their sealed versions and stages",
        // Values are ciphertext made by the HSM cluster under the secret's encryption key.
        // A key that encrypts a secret is never destroyed (no cascade from keys); a secret
        // goes with its instance.
        sql: r"
CREATE TABLE secrets (
    name              TEXT PRIMARY KEY,
    instance_id       TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    secret_type       TEXT NOT NULL,
    encryption_key_id TEXT NOT NULL REFERENCES keys(id),
    description       TEXT NOT NULL,
    extended_config   TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    planned_delete_at BIGINT,
    version           BIGINT NOT NULL
);
CREATE INDEX secrets_by_instance ON secrets(instance_id, created_at, name);
CREATE INDEX secrets_by_key ON secrets(encryption_key_id);
CREATE INDEX secrets_by_planned_delete ON secrets(planned_delete_at);
CREATE TABLE secret_tags (
    secret_name TEXT NOT NULL REFERENCES secrets(name) ON DELETE CASCADE,
    position    BIGINT NOT NULL,
    tag_key     TEXT NOT NULL,
    tag_value   TEXT NOT NULL,
    PRIMARY KEY (secret_name, position)
);
CREATE TABLE secret_versions (
    secret_name TEXT NOT NULL REFERENCES secrets(name) ON DELETE CASCADE,
    version_id  TEXT NOT NULL,
    data_type   TEXT NOT NULL,
    ciphertext  BLOB NOT NULL,
    created_at  BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (secret_name, version_id)
);
CREATE TABLE secret_stages (
    secret_name TEXT NOT NULL,
    stage       TEXT NOT NULL,
    version_id  TEXT NOT NULL,
    PRIMARY KEY (secret_name, stage),
    FOREIGN KEY (secret_name, version_id)
        REFERENCES secret_versions(secret_name, version_id) ON DELETE CASCADE
);
",
    },
];

/// Highest version in [`MIGRATIONS`].
pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}
