//! Property tests: [`evaluate`] against a naive reference model, over random snapshots
//! and requests.
//!
//! The reference is written apart from the implementation: it reads the raw record
//! lists with linear scans, compares addresses as strings of bits, matches resource
//! patterns on the whole `kind/name` text, and works out the deny reason from three
//! independent booleans per policy instead of a running maximum.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

use super::*;

const NOW: i64 = 1_800_000_000;

/// A generated world: the records as plain lists, as the reference reads them.
#[derive(Debug, Clone)]
struct World {
    /// Rule name and its blocks as (network address, prefix length).
    rules: Vec<(String, Vec<(IpAddr, u8)>)>,
    policies: Vec<Policy>,
    access_points: Vec<AccessPoint>,
    client_keys: Vec<ClientKey>,
}

impl World {
    fn snapshot(&self) -> Snapshot {
        let rules = self
            .rules
            .iter()
            .map(|(name, blocks)| NetworkRule {
                name: name.clone(),
                sources: blocks
                    .iter()
                    .map(|(addr, prefix)| format!("{addr}/{prefix}").parse().unwrap())
                    .collect(),
            })
            .collect();
        Snapshot::new(
            rules,
            self.policies.clone(),
            self.access_points.clone(),
            self.client_keys.clone(),
        )
    }
}

// ---------------------------------------------------------------- generators

/// IPv4 addresses clustered around a few networks (so blocks and sources meet often),
/// with the edges of the space, and some anywhere.
fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    let clustered = (
        select(vec![
            [10, 0, 0],
            [10, 0, 1],
            [192, 168, 1],
            [0, 0, 0],
            [255, 255, 255],
        ]),
        prop_oneof![Just(0u8), Just(255u8), Just(1u8), any::<u8>()],
    )
        .prop_map(|([a, b, c], d)| Ipv4Addr::new(a, b, c, d));
    prop_oneof![4 => clustered, 1 => any::<[u8; 4]>().prop_map(Ipv4Addr::from)]
}

fn ipv6() -> impl Strategy<Value = Ipv6Addr> {
    let clustered = (
        select(vec![
            [0xfd00, 0, 0, 0, 0, 0, 0],
            [0xfd00, 0, 0, 0, 0, 0, 1],
            [0xfe80, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0],
            [0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff],
        ]),
        prop_oneof![Just(0u16), Just(0xffffu16), Just(1u16), any::<u16>()],
    )
        .prop_map(|([a, b, c, d, e, f, g], h)| Ipv6Addr::new(a, b, c, d, e, f, g, h));
    prop_oneof![4 => clustered, 1 => any::<[u8; 16]>().prop_map(Ipv6Addr::from)]
}

/// A request's source: IPv4, IPv6, or IPv4 written as an IPv4-mapped IPv6 address.
fn source() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        3 => ipv4().prop_map(IpAddr::V4),
        3 => ipv6().prop_map(IpAddr::V6),
        1 => ipv4().prop_map(|v4| IpAddr::V6(v4.to_ipv6_mapped())),
    ]
}

/// A block: an address with its host bits cleared, and a prefix length.
fn block() -> impl Strategy<Value = (IpAddr, u8)> {
    let v4 = (ipv4(), 0u8..=32).prop_map(|(addr, prefix)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        (IpAddr::V4(Ipv4Addr::from(u32::from(addr) & mask)), prefix)
    });
    let v6 = (ipv6(), 0u8..=128).prop_map(|(addr, prefix)| {
        let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
        (IpAddr::V6(Ipv6Addr::from(u128::from(addr) & mask)), prefix)
    });
    // Prefix lengths near the cluster sizes make hits and near misses likely.
    let v4_near =
        (ipv4(), select(vec![0u8, 1, 8, 23, 24, 25, 31, 32])).prop_map(|(addr, prefix)| {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            (IpAddr::V4(Ipv4Addr::from(u32::from(addr) & mask)), prefix)
        });
    prop_oneof![v4, v6, v4_near]
}

const RULE_NAMES: [&str; 3] = ["r0", "r1", "r2"];
const INSTANCES: [&str; 2] = ["kst-a", "kst-b"];
const PATTERNS: [&str; 16] = [
    "key/*",
    "key/key-a*",
    "key/key-abc",
    "key/key-abc*",
    "key/",
    "key/*abc",
    "secret/*",
    "secret/db*",
    "secret/db-pass",
    "secret/a/b",
    "secret/a/*",
    "secret/",
    "*",
    "key*",
    "alias/*",
    "KEY/*",
];
const KEY_IDS: [&str; 7] = [
    "key-abc", "key-abcd", "key-a", "key-xyz", "", "*abc", "key-abc*",
];
const SECRET_NAMES: [&str; 6] = ["db-pass", "db", "a/b", "a/bc", "", "other"];
const PERMISSIONS: [Permission; 2] = [
    Permission::CryptoServiceKeyUser,
    Permission::CryptoServiceSecretUser,
];

/// Mostly the first instance, so that policies and requests meet often.
fn instance() -> impl Strategy<Value = String> {
    prop_oneof![3 => Just(INSTANCES[0].to_owned()), 1 => Just(INSTANCES[1].to_owned())]
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn policy(index: usize) -> impl Strategy<Value = Policy> {
    let mut rule_names = names(&RULE_NAMES);
    rule_names.push("gone".to_owned());
    (
        instance(),
        subsequence(PERMISSIONS.to_vec(), 0..=2),
        subsequence(names(&PATTERNS), 0..=4),
        subsequence(rule_names, 0..=3),
    )
        .prop_map(
            move |(instance_id, permissions, resources, network_rules)| Policy {
                name: format!("p{index}"),
                instance_id,
                permissions,
                resources,
                network_rules,
            },
        )
}

fn world() -> impl Strategy<Value = World> {
    let rules = proptest::collection::vec(proptest::collection::vec(block(), 0..=4), 3).prop_map(
        |blocks| {
            RULE_NAMES
                .iter()
                .zip(blocks)
                .map(|(name, blocks)| ((*name).to_owned(), blocks))
                .collect::<Vec<_>>()
        },
    );
    let policies = (0..5).map(policy).collect::<Vec<_>>();
    let policy_names = select(names(&["p0", "p1", "p2", "p3", "p4", "missing"]));
    let access_points = (
        proptest::collection::vec(policy_names.clone(), 0..=4),
        proptest::collection::vec(policy_names, 0..=3),
    )
        .prop_map(|(first, second)| {
            vec![
                AccessPoint {
                    name: "ap0".to_owned(),
                    policies: first,
                },
                AccessPoint {
                    name: "ap1".to_owned(),
                    policies: second,
                },
            ]
        });
    // Mostly valid around the request's time, sometimes starting or ending near it.
    let validity = prop_oneof![
        3 => (-6i64..=-3, 3i64..=6),
        1 => (-4i64..=4, -4i64..=4),
    ];
    let client_key = (
        prop_oneof![6 => Just("ap0"), 1 => Just("ap1"), 1 => Just("ap-gone")],
        validity,
    )
        .prop_map(|(access_point, (from, to))| (access_point, from, to));
    let client_keys = proptest::collection::vec(client_key, 3).prop_map(|keys| {
        keys.into_iter()
            .enumerate()
            .map(|(i, (access_point, from, to))| ClientKey {
                id: format!("KAAP.k{i}"),
                access_point: access_point.to_owned(),
                not_before: NOW + from,
                not_after: NOW + to,
            })
            .collect::<Vec<_>>()
    });
    (rules, policies, access_points, client_keys).prop_map(
        |(rules, policies, access_points, client_keys)| World {
            rules,
            policies,
            access_points,
            client_keys,
        },
    )
}

fn request() -> impl Strategy<Value = Request> {
    let resource = prop_oneof![
        3 => select(names(&KEY_IDS)).prop_map(|id| Resource::Key { id }),
        3 => select(names(&SECRET_NAMES)).prop_map(|name| Resource::Secret { name }),
        1 => Just(Resource::Instance),
    ];
    (
        prop_oneof![
            6 => select(names(&["KAAP.k0", "KAAP.k1", "KAAP.k2"])),
            1 => Just("KAAP.unknown".to_owned()),
        ],
        source(),
        instance(),
        resource,
        select(PERMISSIONS.to_vec()),
        -5i64..=5,
    )
        .prop_map(
            |(client_key_id, source, instance_id, resource, action, now)| Request {
                client_key_id,
                source,
                instance_id,
                resource,
                action,
                now: NOW + now,
            },
        )
}

// ---------------------------------------------------------------- reference model

/// The address as a string of '0'/'1', and whether it is IPv4. An IPv4-mapped IPv6
/// address is read as its IPv4 address.
fn reference_bits(addr: IpAddr) -> (String, bool) {
    let octets: Vec<u8> = match addr {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    let bits: String = octets.iter().map(|o| format!("{o:08b}")).collect();
    if bits.len() == 128 && bits[..96] == format!("{}{}", "0".repeat(80), "1".repeat(16)) {
        return (bits[96..].to_owned(), true);
    }
    let is_v4 = bits.len() == 32;
    (bits, is_v4)
}

/// Whether the source is in the block, by comparing the first `prefix` bits as text.
/// A block is never normalised: an IPv4-mapped block stays IPv6.
fn reference_in_block(source: IpAddr, (network, prefix): (IpAddr, u8)) -> bool {
    let (source_bits, source_v4) = reference_bits(source);
    let network_v4 = network.is_ipv4();
    let network_bits: String = match network {
        IpAddr::V4(v4) => v4.octets().iter().map(|o| format!("{o:08b}")).collect(),
        IpAddr::V6(v6) => v6.octets().iter().map(|o| format!("{o:08b}")).collect(),
    };
    let prefix = usize::from(prefix);
    source_v4 == network_v4 && source_bits[..prefix] == network_bits[..prefix]
}

fn reference_resource(pattern: &str, resource: &Resource) -> bool {
    let (kind, name) = match resource {
        Resource::Key { id } => ("key", id.as_str()),
        Resource::Secret { name } => ("secret", name.as_str()),
        Resource::Instance => return true,
    };
    let whole = format!("{kind}/{name}");
    let head = format!("{kind}/");
    if !pattern.starts_with(&head) {
        return false;
    }
    // Character by character: a final `*` ends the comparison with a match.
    let pattern: Vec<char> = pattern.chars().collect();
    let whole: Vec<char> = whole.chars().collect();
    for (i, c) in pattern.iter().enumerate() {
        if *c == '*' && i + 1 == pattern.len() {
            return true;
        }
        if whole.get(i) != Some(c) {
            return false;
        }
    }
    whole.len() == pattern.len()
}

fn reference(world: &World, request: &Request) -> Decision {
    let Some(key) = world
        .client_keys
        .iter()
        .find(|k| k.id == request.client_key_id)
    else {
        return Decision::Deny(Reason::UnknownClientKey);
    };
    if request.now < key.not_before {
        return Decision::Deny(Reason::ClientKeyNotYetValid {
            not_before: key.not_before,
        });
    }
    if key.not_after < request.now {
        return Decision::Deny(Reason::ClientKeyExpired {
            not_after: key.not_after,
        });
    }
    let Some(access_point) = world
        .access_points
        .iter()
        .find(|a| a.name == key.access_point)
    else {
        return Decision::Deny(Reason::UnknownAccessPoint {
            access_point: key.access_point.clone(),
        });
    };
    let mut candidates: Vec<&Policy> = Vec::new();
    for name in &access_point.policies {
        if let Some(policy) = world.policies.iter().find(|p| &p.name == name)
            && policy.instance_id == request.instance_id
        {
            candidates.push(policy);
        }
    }
    if candidates.is_empty() {
        return Decision::Deny(Reason::NoPolicyForInstance {
            access_point: access_point.name.clone(),
            policies: access_point.policies.clone(),
        });
    }
    // Three independent facts per candidate.
    let facts: Vec<(bool, bool, bool)> = candidates
        .iter()
        .map(|policy| {
            let permission = policy.permissions.contains(&request.action);
            let resource = policy
                .resources
                .iter()
                .any(|pattern| reference_resource(pattern, &request.resource));
            let mut network = false;
            for rule_name in &policy.network_rules {
                for (name, blocks) in &world.rules {
                    if name == rule_name {
                        for block in blocks {
                            network |= reference_in_block(request.source, *block);
                        }
                        break;
                    }
                }
            }
            (permission, resource, network)
        })
        .collect();
    for (policy, fact) in candidates.iter().zip(&facts) {
        if *fact == (true, true, true) {
            return Decision::Allow {
                policy: policy.name.clone(),
            };
        }
    }
    let access_point = access_point.name.clone();
    let policies: Vec<String> = candidates.iter().map(|p| p.name.clone()).collect();
    if facts.iter().any(|&(p, r, _)| p && r) {
        Decision::Deny(Reason::SourceNotAllowed {
            access_point,
            policies,
        })
    } else if facts.iter().any(|&(p, _, _)| p) {
        Decision::Deny(Reason::ResourceNotGranted {
            access_point,
            policies,
        })
    } else {
        Decision::Deny(Reason::PermissionNotGranted {
            access_point,
            policies,
        })
    }
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(Config::with_cases(3000))]

    #[test]
    fn evaluate_agrees_with_the_reference(world in world(), request in request()) {
        prop_assert_eq!(evaluate(&world.snapshot(), &request), reference(&world, &request));
    }

    #[test]
    fn the_reference_bits_agree_with_cidr(source in source(), block in block()) {
        let cidr: Cidr = format!("{}/{}", block.0, block.1).parse().unwrap();
        prop_assert_eq!(cidr.contains(source), reference_in_block(source, block));
    }
}

/// The generators reach every outcome often enough for the comparison to mean
/// something.
#[test]
fn the_generators_reach_every_outcome() {
    let mut runner = TestRunner::deterministic();
    let strategy = (world(), request());
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..5000 {
        let (world, request) = strategy.new_tree(&mut runner).unwrap().current();
        let outcome = match reference(&world, &request) {
            Decision::Allow { .. } => "Allow".to_owned(),
            Decision::Deny(reason) => {
                let text = format!("{reason:?}");
                text.split([' ', '{']).next().unwrap().to_owned()
            }
        };
        *counts.entry(outcome).or_default() += 1;
    }
    for outcome in [
        "Allow",
        "UnknownClientKey",
        "ClientKeyNotYetValid",
        "ClientKeyExpired",
        "UnknownAccessPoint",
        "NoPolicyForInstance",
        "PermissionNotGranted",
        "ResourceNotGranted",
        "SourceNotAllowed",
    ] {
        let seen = counts.get(outcome).copied().unwrap_or(0);
        assert!(seen >= 25, "{outcome} seen {seen} times in {counts:?}");
    }
}
