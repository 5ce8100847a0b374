//! Per-minute limits, kept in memory per process (each instance counts its own):
//! - [`FailureThrottle`]: guessing API keys from one address is slowed down: after
//!   `limit` failed authentications in a minute, that address gets 429 (with
//!   `Retry-After`) for the rest of the minute, valid key or not, without the store being
//!   asked; keyed by the client address the request carries (`trusted_proxies` decides
//!   which one that is).
//! - [`SecretReadLimit`]: one API key may take private keys out (exports, credentials
//!   bundles) at most `limit` times a minute, so a leaked job key cannot be used to
//!   drain every secret at machine speed.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

/// How many addresses are tracked at most; beyond it, stale entries are dropped, and if
/// all are fresh a new address is not tracked (memory stays bounded under an attack from
/// many addresses; each of them still pays the full key check).
const MAX_TRACKED: usize = 10_000;

/// Counts events per key in fixed one-minute windows.
pub struct PerMinuteLimit<K> {
    limit: u32,
    max_tracked: usize,
    windows: Mutex<HashMap<K, (Instant, u32)>>,
}

/// Failed authentications per client address.
pub type FailureThrottle = PerMinuteLimit<IpAddr>;

/// Secret-bearing calls per API key.
pub type SecretReadLimit = PerMinuteLimit<uuid::Uuid>;

impl<K: Hash + Eq + Copy> PerMinuteLimit<K> {
    pub fn new(limit: u32) -> Self {
        Self::tracking_at_most(limit, MAX_TRACKED)
    }

    fn tracking_at_most(limit: u32, max_tracked: usize) -> Self {
        Self {
            limit,
            max_tracked,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` while `source` is over its limit.
    pub fn blocked(&self, source: K, now: Instant) -> Option<u32> {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let (started, failures) = windows.get(&source)?;
        let elapsed = now.saturating_duration_since(*started);
        if elapsed >= WINDOW || *failures < self.limit {
            return None;
        }
        let left = WINDOW - elapsed;
        let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        Some(u32::try_from(seconds).unwrap_or(60))
    }

    /// Counts one event (a failed authentication, a secret read) of `source`.
    pub fn count(&self, source: K, now: Instant) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= self.max_tracked && !windows.contains_key(&source) {
            windows.retain(|_, (started, _)| now.saturating_duration_since(*started) < WINDOW);
            if windows.len() >= self.max_tracked {
                return;
            }
        }
        let entry = windows.entry(source).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_blocked_after_its_limit_until_the_minute_ends() {
        let throttle = FailureThrottle::new(3);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let start = Instant::now();
        for _ in 0..2 {
            throttle.count(a, start);
        }
        assert_eq!(throttle.blocked(a, start), None, "under the limit");
        throttle.count(a, start);
        assert_eq!(throttle.blocked(a, start), Some(60));
        assert_eq!(
            throttle.blocked(a, start + Duration::from_secs(50)),
            Some(10)
        );
        assert_eq!(
            throttle.blocked(a, start + Duration::from_millis(59_500)),
            Some(1),
            "rounded up"
        );
        assert_eq!(
            throttle.blocked(b, start),
            None,
            "other sources are not affected"
        );
        let later = start + WINDOW;
        assert_eq!(throttle.blocked(a, later), None, "a new minute");
        throttle.count(a, later);
        assert_eq!(throttle.blocked(a, later), None, "counting starts again");
    }

    fn address(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn at_the_cap_a_new_address_is_not_tracked_while_all_are_fresh() {
        let throttle = FailureThrottle::tracking_at_most(1, 2);
        let start = Instant::now();
        throttle.count(address(1), start);
        throttle.count(address(2), start);
        throttle.count(address(3), start);
        assert_eq!(throttle.blocked(address(1), start), Some(60));
        assert_eq!(throttle.blocked(address(2), start), Some(60));
        assert_eq!(
            throttle.blocked(address(3), start),
            None,
            "not tracked: the map is full of fresh entries"
        );
        assert_eq!(throttle.windows.lock().unwrap().len(), 2);
    }

    #[test]
    fn at_the_cap_stale_entries_make_room_and_known_addresses_keep_counting() {
        let throttle = FailureThrottle::tracking_at_most(2, 2);
        let start = Instant::now();
        throttle.count(address(1), start);
        let later = start + Duration::from_secs(30);
        throttle.count(address(2), later);
        throttle.count(address(2), later);
        assert_eq!(throttle.blocked(address(2), later), Some(60));

        let next_minute = start + WINDOW;
        throttle.count(address(3), next_minute);
        throttle.count(address(3), next_minute);
        assert_eq!(
            throttle.blocked(address(3), next_minute),
            Some(60),
            "the stale entry made room"
        );
        assert_eq!(
            throttle.blocked(address(2), next_minute),
            Some(30),
            "the fresh entry was kept"
        );
        let windows = throttle.windows.lock().unwrap();
        assert_eq!(windows.len(), 2);
        assert!(
            !windows.contains_key(&address(1)),
            "the stale entry was dropped"
        );
    }

    #[test]
    fn a_known_address_is_counted_even_when_the_map_is_full() {
        let throttle = FailureThrottle::tracking_at_most(2, 1);
        let start = Instant::now();
        throttle.count(address(1), start);
        throttle.count(address(1), start);
        assert_eq!(throttle.blocked(address(1), start), Some(60));
    }
}
