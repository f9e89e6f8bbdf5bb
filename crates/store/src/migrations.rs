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
];

/// Highest version in [`MIGRATIONS`].
pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}
