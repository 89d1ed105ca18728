//! Pod IPs, inside 127.0.0.0/8 so that nothing ever leaves the machine: node `i` (in the
//! configuration's order) hands out `127.(100+i).0.2` .. `127.(100+i).255.254`, as a node's
//! podCIDR would. Addresses are handed out round-robin, so a new pod rarely gets the address a
//! deleted one just had (scrapers and clients keep old addresses for a while).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

pub struct Pool {
    nodes: BTreeMap<String, u8>,
    used: BTreeSet<Ipv4Addr>,
    next: BTreeMap<u8, u32>,
}

const FIRST: u32 = 2;
const LAST: u32 = 0xfffe;

impl Pool {
    pub fn new(nodes: &[String]) -> Pool {
        Pool {
            nodes: nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), 100u8.saturating_add(i as u8)))
                .collect(),
            used: BTreeSet::new(),
            next: BTreeMap::new(),
        }
    }

    pub fn allocate(&mut self, node: &str) -> Option<Ipv4Addr> {
        let octet = *self.nodes.get(node)?;
        let start = *self.next.get(&octet).unwrap_or(&FIRST);
        let mut host = start;
        loop {
            let ip = Ipv4Addr::new(127, octet, (host >> 8) as u8, host as u8);
            host = if host >= LAST { FIRST } else { host + 1 };
            if (host & 0xff) == 0xff {
                host += 1;
            }
            if self.used.insert(ip) {
                self.next.insert(octet, host);
                return Some(ip);
            }
            if host == start {
                return None;
            }
        }
    }

    /// Marks an address in use (a pod that already had it, e.g. after the runner restarted).
    pub fn claim(&mut self, ip: Ipv4Addr) {
        self.used.insert(ip);
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_node_has_its_range_and_addresses_are_not_reused_at_once() {
        let mut p = Pool::new(&["minikube".into(), "minikube-m02".into()]);
        let a = p.allocate("minikube").expect("ip");
        assert_eq!(a, Ipv4Addr::new(127, 100, 0, 2));
        assert_eq!(
            p.allocate("minikube-m02"),
            Some(Ipv4Addr::new(127, 101, 0, 2))
        );
        p.release(a);
        assert_eq!(p.allocate("minikube"), Some(Ipv4Addr::new(127, 100, 0, 3)));
        p.claim(Ipv4Addr::new(127, 100, 0, 4));
        assert_eq!(p.allocate("minikube"), Some(Ipv4Addr::new(127, 100, 0, 5)));
        assert_eq!(p.allocate("elsewhere"), None);
    }
}
