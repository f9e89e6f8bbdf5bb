//! The access decision of the instance API: may this client key, calling from this
//! address, perform this action on this resource of this instance?
//!
//! The model is the cloud's application access (`spec/product-model.md` §4,
//! `docs/access.md`): a [`NetworkRule`] lists source addresses; a [`Policy`] grants
//! [`Permission`]s on resources of one instance, from the networks of the rules it names;
//! an [`AccessPoint`] (AAP) ties policies together; a [`ClientKey`] is the credential an
//! application signs with, bound to one access point for a validity period.
//!
//! This module is pure: it does no I/O, no logging and keeps no state. The caller hands
//! it a [`Snapshot`] of the records and a [`Request`], and [`evaluate`] answers a
//! [`Decision`]. Checking the request's signature against the client key's certificate is
//! not done here; it happens before, in the instance API.
//!
//! # The decision, and the order of deny reasons
//!
//! When several things are wrong, the reason reported is fixed by this order:
//!
//! 1. **The client key.** Unknown id: [`Reason::UnknownClientKey`]. Otherwise the key
//!    is valid from `not_before` to `not_after`, both inclusive: earlier is
//!    [`Reason::ClientKeyNotYetValid`], later is [`Reason::ClientKeyExpired`] (if a key's
//!    period is empty, `not_before` is checked first).
//! 2. **Its access point.** The key's access point is not in the snapshot:
//!    [`Reason::UnknownAccessPoint`].
//! 3. **The candidates**: the access point's policies, in the access point's order, that
//!    exist and whose instance is the request's. Names of policies that do not exist are
//!    skipped. No candidate: [`Reason::NoPolicyForInstance`].
//! 4. **Each candidate** is checked in three steps: it grants the action's permission;
//!    one of its resources matches the request's resource; the source address is in a
//!    network of one of the network rules it names. The first candidate that passes all
//!    three allows, and [`Decision::Allow`] names it.
//! 5. **Otherwise** the reason is the step where the candidate that got furthest failed:
//!    [`Reason::SourceNotAllowed`] if some candidate grants both the permission and the
//!    resource; else [`Reason::ResourceNotGranted`] if some candidate grants the
//!    permission; else [`Reason::PermissionNotGranted`]. The furthest failure is the one
//!    nearest to what the operator meant: a policy that names the key but not the
//!    client's subnet asks for a network fix, whatever the other policies say.
//!
//! # Matching
//!
//! - A resource pattern is `key/<key id>` or `secret/<secret name>`. If its last
//!   character is `*`, the rest is a prefix (`key/*` is every key, `key/key-hz*` every
//!   key whose id starts `key-hz`); otherwise the name must be equal, byte for byte. A `*`
//!   anywhere else is an ordinary character. A pattern of any other form (`*`,
//!   `alias/…`) matches nothing: the cloud documents only these two kinds. An alias in a
//!   request is resolved to its key id by the caller, and the decision is on the key id.
//! - [`Resource::Instance`] (`GenerateRandom`, `Hash`: actions that name no key) is
//!   matched by every policy, whatever its resources: the permission and the network
//!   still have to be granted.
//! - A policy that names no network rule allows no source. A named network rule that
//!   does not exist grants no network. Addresses match as [`Cidr::contains`] does: an
//!   IPv4-mapped IPv6 source (`::ffff:a.b.c.d`) is its IPv4 address.
//!
//! The deny reasons name the access point and the policies considered, for the log. The
//! client is told only the [`Reason::wire_code`]: the three policy reasons share
//! `Forbidden.NoPermission`, so a caller cannot probe which networks or resources are
//! granted.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::network::Cidr;

/// A permission class of a policy: which instance-API actions it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// `RbacPermission/Template/CryptoServiceKeyUser`: the cryptographic actions on keys
    /// (Encrypt, Decrypt, Sign, GenerateDataKey, GenerateRandom, …).
    CryptoServiceKeyUser,
    /// `RbacPermission/Template/CryptoServiceSecretUser`: `GetSecretValue`.
    CryptoServiceSecretUser,
}

impl Permission {
    /// The name on the wire, as in `CreatePolicy`'s `Permissions`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CryptoServiceKeyUser => "RbacPermission/Template/CryptoServiceKeyUser",
            Self::CryptoServiceSecretUser => "RbacPermission/Template/CryptoServiceSecretUser",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is not a known permission name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a known permission")]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [Self::CryptoServiceKeyUser, Self::CryptoServiceSecretUser]
            .into_iter()
            .find(|p| p.as_str() == text)
            .ok_or_else(|| UnknownPermission(text.to_owned()))
    }
}

/// A network rule: the source addresses it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRule {
    /// The rule's name, unique in the deployment.
    pub name: String,
    /// Its addresses and CIDR blocks (`SourcePrivateIp`).
    pub sources: Vec<Cidr>,
}

/// A policy: permissions on resources of one instance, from the networks of its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The policy's name, unique in the deployment.
    pub name: String,
    /// The one instance it applies to (`KmsInstance`).
    pub instance_id: String,
    /// What it allows (`Permissions`).
    pub permissions: Vec<Permission>,
    /// Resource patterns (`Resources`): see the module docs for their form.
    pub resources: Vec<String>,
    /// Names of network rules (`AccessControlRules.NetworkRules`).
    pub network_rules: Vec<String>,
}

/// An application access point: the policies its client keys act under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPoint {
    /// The access point's name, unique in the deployment.
    pub name: String,
    /// Names of its policies (1–3 in the cloud), in the order given.
    pub policies: Vec<String>,
}

/// A client key: the credential an application signs instance-API requests with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey {
    /// `KAAP.<uuid>`.
    pub id: String,
    /// The name of its access point.
    pub access_point: String,
    /// Start of validity, Unix seconds, inclusive.
    pub not_before: i64,
    /// End of validity, Unix seconds, inclusive.
    pub not_after: i64,
}

/// The records a decision reads, indexed by name. Names are unique in the store; if one
/// is given twice here, the first record is kept.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    network_rules: HashMap<String, NetworkRule>,
    policies: HashMap<String, Policy>,
    access_points: HashMap<String, AccessPoint>,
    client_keys: HashMap<String, ClientKey>,
}

impl Snapshot {
    /// Index the records.
    pub fn new(
        network_rules: Vec<NetworkRule>,
        policies: Vec<Policy>,
        access_points: Vec<AccessPoint>,
        client_keys: Vec<ClientKey>,
    ) -> Self {
        Self {
            network_rules: index(network_rules, |r| &r.name),
            policies: index(policies, |p| &p.name),
            access_points: index(access_points, |a| &a.name),
            client_keys: index(client_keys, |k| &k.id),
        }
    }
}

fn index<T>(items: Vec<T>, name: impl Fn(&T) -> &String) -> HashMap<String, T> {
    let mut map = HashMap::with_capacity(items.len());
    for item in items {
        map.entry(name(&item).clone()).or_insert(item);
    }
    map
}

/// What a request acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A key, by its id (an alias in the request is resolved to the id first).
    Key {
        /// The key id.
        id: String,
    },
    /// A secret, by name.
    Secret {
        /// The secret's name.
        name: String,
    },
    /// No key or secret: `GenerateRandom` and `Hash`.
    Instance,
}

impl Resource {
    /// Whether a policy's resource pattern matches this resource.
    pub fn matches(&self, pattern: &str) -> bool {
        let (kind, name) = match self {
            Self::Key { id } => ("key", id),
            Self::Secret { name } => ("secret", name),
            Self::Instance => return true,
        };
        let Some((pattern_kind, pattern_name)) = pattern.split_once('/') else {
            return false;
        };
        if pattern_kind != kind {
            return false;
        }
        match pattern_name.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == pattern_name,
        }
    }
}

impl fmt::Display for Resource {
    /// `key/<id>`, `secret/<name>`, or `instance`: the form used in error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key { id } => write!(f, "key/{id}"),
            Self::Secret { name } => write!(f, "secret/{name}"),
            Self::Instance => f.write_str("instance"),
        }
    }
}

/// An instance-API request, as far as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The `x-kms-acccesskeyid` header: the client key the request is signed with.
    pub client_key_id: String,
    /// The request's real source address.
    pub source: IpAddr,
    /// The instance the request reached.
    pub instance_id: String,
    /// What it acts on.
    pub resource: Resource,
    /// The permission class its action needs.
    pub action: Permission,
    /// The time of the decision, Unix seconds.
    pub now: i64,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    /// The request may go on.
    Allow {
        /// The first policy (in the access point's order) that allows it.
        policy: String,
    },
    /// The request is refused.
    Deny(Reason),
}

impl Decision {
    /// Whether this is [`Decision::Allow`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }
}

/// Why a request is refused. The module docs give the order in which they are reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// No client key has this id.
    UnknownClientKey,
    /// The client key's validity has not started.
    ClientKeyNotYetValid {
        /// Start of validity, Unix seconds.
        not_before: i64,
    },
    /// The client key's validity has ended.
    ClientKeyExpired {
        /// End of validity, Unix seconds.
        not_after: i64,
    },
    /// The client key's access point does not exist (any more).
    UnknownAccessPoint {
        /// The access point the key names.
        access_point: String,
    },
    /// None of the access point's policies exists and applies to this instance.
    NoPolicyForInstance {
        /// The access point.
        access_point: String,
        /// All the policy names it lists.
        policies: Vec<String>,
    },
    /// No policy for this instance grants the action's permission.
    PermissionNotGranted {
        /// The access point.
        access_point: String,
        /// The policies considered: the access point's policies for this instance.
        policies: Vec<String>,
    },
    /// Policies grant the permission, but none of them on this resource.
    ResourceNotGranted {
        /// The access point.
        access_point: String,
        /// The policies considered: the access point's policies for this instance.
        policies: Vec<String>,
    },
    /// Policies grant the permission on the resource, but not from this source address.
    SourceNotAllowed {
        /// The access point.
        access_point: String,
        /// The policies considered: the access point's policies for this instance.
        policies: Vec<String>,
    },
}

impl Reason {
    /// The instance API's `ErrorCode` for this refusal (`spec/instance-api.md` §5.2).
    ///
    /// Client key problems answer `Unauthorized`, the cloud's code for an access key id
    /// it does not know; an expired or not yet valid key is treated the same way, since
    /// the credential cannot be used. Everything after the key answers
    /// `Forbidden.NoPermission`: the caller is authenticated but not allowed. That
    /// includes a missing access point, which grants nothing.
    pub fn wire_code(&self) -> &'static str {
        match self {
            Self::UnknownClientKey
            | Self::ClientKeyNotYetValid { .. }
            | Self::ClientKeyExpired { .. } => "Unauthorized",
            Self::UnknownAccessPoint { .. }
            | Self::NoPolicyForInstance { .. }
            | Self::PermissionNotGranted { .. }
            | Self::ResourceNotGranted { .. }
            | Self::SourceNotAllowed { .. } => "Forbidden.NoPermission",
        }
    }

    /// The HTTP status that goes with [`Reason::wire_code`]: 404 for `Unauthorized` (as
    /// the cloud answers an unknown access key id), 403 for `Forbidden.NoPermission`.
    pub fn http_status(&self) -> u16 {
        match self.wire_code() {
            "Unauthorized" => 404,
            _ => 403,
        }
    }
}

impl fmt::Display for Reason {
    /// A sentence for the log. It names access points and policies, so it is not sent to
    /// the client.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownClientKey => f.write_str("the client key is not known"),
            Self::ClientKeyNotYetValid { not_before } => {
                write!(f, "the client key is not valid before {not_before}")
            }
            Self::ClientKeyExpired { not_after } => {
                write!(f, "the client key expired at {not_after}")
            }
            Self::UnknownAccessPoint { access_point } => {
                write!(
                    f,
                    "the client key's access point {access_point:?} does not exist"
                )
            }
            Self::NoPolicyForInstance {
                access_point,
                policies,
            } => write!(
                f,
                "no policy of access point {access_point:?} {policies:?} applies to this instance"
            ),
            Self::PermissionNotGranted {
                access_point,
                policies,
            } => write!(
                f,
                "no policy of access point {access_point:?} {policies:?} grants the permission"
            ),
            Self::ResourceNotGranted {
                access_point,
                policies,
            } => write!(
                f,
                "no policy of access point {access_point:?} {policies:?} grants the resource"
            ),
            Self::SourceNotAllowed {
                access_point,
                policies,
            } => write!(
                f,
                "no policy of access point {access_point:?} {policies:?} allows the source address"
            ),
        }
    }
}

/// How far a policy got through the three checks; the order of the variants is the
/// order of the checks, so the furthest is the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reached {
    Nothing,
    Permission,
    Resource,
    Source,
}

/// Decide a request. See the module docs for the rules.
pub fn evaluate(snapshot: &Snapshot, request: &Request) -> Decision {
    match decide(snapshot, request) {
        Ok(policy) => Decision::Allow { policy },
        Err(reason) => Decision::Deny(reason),
    }
}

fn decide(snapshot: &Snapshot, request: &Request) -> Result<String, Reason> {
    let key = snapshot
        .client_keys
        .get(&request.client_key_id)
        .ok_or(Reason::UnknownClientKey)?;
    if request.now < key.not_before {
        return Err(Reason::ClientKeyNotYetValid {
            not_before: key.not_before,
        });
    }
    if request.now > key.not_after {
        return Err(Reason::ClientKeyExpired {
            not_after: key.not_after,
        });
    }
    let access_point = snapshot
        .access_points
        .get(&key.access_point)
        .ok_or_else(|| Reason::UnknownAccessPoint {
            access_point: key.access_point.clone(),
        })?;
    let candidates: Vec<&Policy> = access_point
        .policies
        .iter()
        .filter_map(|name| snapshot.policies.get(name))
        .filter(|policy| policy.instance_id == request.instance_id)
        .collect();
    if candidates.is_empty() {
        return Err(Reason::NoPolicyForInstance {
            access_point: access_point.name.clone(),
            policies: access_point.policies.clone(),
        });
    }
    let mut furthest = Reached::Nothing;
    for policy in &candidates {
        let reached = reach(snapshot, policy, request);
        if reached == Reached::Source {
            return Ok(policy.name.clone());
        }
        furthest = furthest.max(reached);
    }
    let access_point = access_point.name.clone();
    let policies = candidates.iter().map(|p| p.name.clone()).collect();
    Err(match furthest {
        Reached::Nothing => Reason::PermissionNotGranted {
            access_point,
            policies,
        },
        Reached::Permission => Reason::ResourceNotGranted {
            access_point,
            policies,
        },
        Reached::Resource | Reached::Source => Reason::SourceNotAllowed {
            access_point,
            policies,
        },
    })
}

/// Run one policy's checks in order, stopping at the first that fails.
fn reach(snapshot: &Snapshot, policy: &Policy, request: &Request) -> Reached {
    if !policy.permissions.contains(&request.action) {
        return Reached::Nothing;
    }
    if !policy
        .resources
        .iter()
        .any(|pattern| request.resource.matches(pattern))
    {
        return Reached::Permission;
    }
    let allowed = policy
        .network_rules
        .iter()
        .filter_map(|name| snapshot.network_rules.get(name))
        .flat_map(|rule| &rule.sources)
        .any(|cidr| cidr.contains(request.source));
    if allowed {
        Reached::Source
    } else {
        Reached::Resource
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
