//! Pod IPs in the cluster's pod network (see `net`): node `i` (in the configuration's order)
//! hands out `a.b.i.2` .. `a.b.i.254`, as a node's podCIDR would. Addresses are handed out
//! round-robin, so a new pod rarely gets the address a deleted one just had (scrapers and
//! clients keep old addresses for a while).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

pub struct Pool {
    base: [u8; 2],
    nodes: BTreeMap<String, u8>,
    used: BTreeSet<Ipv4Addr>,
    next: BTreeMap<u8, u8>,
}

const FIRST: u8 = 2;
const LAST: u8 = 254;

impl Pool {
    pub fn new(base: Ipv4Addr, nodes: &[String]) -> Pool {
        let [a, b, _, _] = base.octets();
        Pool {
            base: [a, b],
            nodes: nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| Some((n.clone(), u8::try_from(i).ok().filter(|i| *i < 250)?)))
                .collect(),
            used: BTreeSet::new(),
            next: BTreeMap::new(),
        }
    }

    pub fn allocate(&mut self, node: &str) -> Option<Ipv4Addr> {
        let third = *self.nodes.get(node)?;
        let start = *self.next.get(&third).unwrap_or(&FIRST);
        let mut host = start;
        loop {
            let ip = Ipv4Addr::new(self.base[0], self.base[1], third, host);
            host = if host >= LAST { FIRST } else { host + 1 };
            if self.used.insert(ip) {
                self.next.insert(third, host);
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
        let base = Ipv4Addr::new(10, 215, 0, 0);
        let mut p = Pool::new(base, &["minikube".into(), "minikube-m02".into()]);
        let a = p.allocate("minikube").expect("ip");
        assert_eq!(a, Ipv4Addr::new(10, 215, 0, 2));
        assert_eq!(
            p.allocate("minikube-m02"),
            Some(Ipv4Addr::new(10, 215, 1, 2))
        );
        p.release(a);
        assert_eq!(p.allocate("minikube"), Some(Ipv4Addr::new(10, 215, 0, 3)));
        p.claim(Ipv4Addr::new(10, 215, 0, 4));
        assert_eq!(p.allocate("minikube"), Some(Ipv4Addr::new(10, 215, 0, 5)));
        assert_eq!(p.allocate("elsewhere"), None);
        for _ in 0..249 {
            p.allocate("minikube-m02").expect("a /24 holds 253");
        }
        assert_eq!(
            p.allocate("minikube-m02"),
            Some(Ipv4Addr::new(10, 215, 1, 252))
        );
        assert_eq!(
            p.allocate("minikube-m02"),
            Some(Ipv4Addr::new(10, 215, 1, 253))
        );
        assert_eq!(
            p.allocate("minikube-m02"),
            Some(Ipv4Addr::new(10, 215, 1, 254))
        );
        assert_eq!(p.allocate("minikube-m02"), None, "full");
    }
}
