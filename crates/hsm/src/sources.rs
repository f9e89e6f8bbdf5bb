//! Connections per source address, the cap every listener of both node kinds applies
//! (the HSM node's host and officer ports here, the KMS node's management, instance and
//! metrics listeners in `strongroom-server`), so that one host cannot take every
//! connection slot.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// The connections each source address holds on one listener (or port). IPv6 addresses count by
/// their /64 (what one host is usually given), IPv4-mapped ones as IPv4.
#[derive(Debug, Default)]
pub struct Sources {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection's place in [`Sources`]; dropping it frees the place.
#[derive(Debug)]
pub struct SourceSlot {
    held: Option<(Arc<Sources>, IpAddr)>,
}

impl Sources {
    /// A place for one more connection from `source`, or `None` when it already holds
    /// `cap` (0: no cap).
    pub fn admit(self: &Arc<Self>, source: IpAddr, cap: usize) -> Option<SourceSlot> {
        if cap == 0 {
            return Some(SourceSlot { held: None });
        }
        let key = source_key(source);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(SourceSlot {
            held: Some((Arc::clone(self), key)),
        })
    }

    /// Connections `source` holds now.
    pub fn count(&self, source: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&source_key(source)).copied().unwrap_or(0)
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        if let Some((sources, key)) = self.held.take() {
            let mut open = sources.open.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(count) = open.get_mut(&key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    open.remove(&key);
                }
            }
        }
    }
}

/// What a source address counts as: itself, an IPv4-mapped IPv6 address as IPv4, and
/// another IPv6 address as its /64.
pub fn source_key(source: IpAddr) -> IpAddr {
    match source {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn sources_are_capped_and_freed() {
        let sources = Arc::new(Sources::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let first = sources.admit(a, 2).unwrap();
        let _second = sources.admit(a, 2).unwrap();
        assert!(sources.admit(a, 2).is_none());
        assert!(sources.admit("192.0.2.2".parse().unwrap(), 2).is_some());
        drop(first);
        assert_eq!(sources.count(a), 1);
        assert!(sources.admit(a, 2).is_some());
        // No cap: nothing counted.
        let _free = sources.admit(a, 0).unwrap();
        assert_eq!(sources.count(a), 1);
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let sources = Arc::new(Sources::default());
        let _one = sources.admit("2001:db8::1".parse().unwrap(), 1).unwrap();
        assert!(sources.admit("2001:db8::2".parse().unwrap(), 1).is_none());
        assert!(
            sources
                .admit("2001:db8:0:1::1".parse().unwrap(), 1)
                .is_some()
        );
        let _v4 = sources.admit("192.0.2.1".parse().unwrap(), 1).unwrap();
        assert!(
            sources
                .admit("::ffff:192.0.2.1".parse().unwrap(), 1)
                .is_none()
        );
    }
}
