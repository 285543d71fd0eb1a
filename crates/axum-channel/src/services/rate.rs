//! How often one client address may open sessions: a token bucket per
//! address, refilled at a steady rate up to a burst.

use crate::base::sync::{lock, now};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Most addresses remembered; past it, addresses whose bucket has refilled
/// are forgotten (a full bucket is what a new address gets anyway).
const MAX_ADDRESSES: usize = 65_536;

/// The rate at which each address may open sessions.
#[derive(Debug)]
pub(crate) struct AddressRate {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl AddressRate {
    /// `per_second` sessions a second from one address, `burst` at once.
    pub(crate) fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second: per_second.max(f64::MIN_POSITIVE),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// Takes one session's token for `address`; false when it has none left.
    pub(crate) fn take(&self, address: IpAddr) -> bool {
        self.take_at(address, now())
    }

    fn take_at(&self, address: IpAddr, now: Instant) -> bool {
        let mut buckets = lock(&self.buckets);
        if buckets.len() >= MAX_ADDRESSES && !buckets.contains_key(&address) {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_second < burst
            });
        }
        let (tokens, at) = buckets.entry(address).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_steady_rate() {
        let rate = AddressRate::new(2.0, 3);
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        let start = Instant::now();
        assert!((0..3).all(|_| rate.take_at(address, start)));
        assert!(!rate.take_at(address, start), "the burst is spent");
        assert!(rate.take_at(address, start + Duration::from_millis(500)));
        assert!(!rate.take_at(address, start + Duration::from_millis(500)));
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(
            rate.take_at(other, start),
            "another address has its own bucket"
        );
    }
}
