//! The outbound address policy, shared by everything that connects out (SSH scans and
//! tests now, the pairing client later). credgate resolves the name itself, checks
//! every address it resolves to, and connects only to a checked address: a name that
//! resolves to a forbidden address is refused before any packet is sent to it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use super::Port;
use super::host::Host;
use crate::config::OutboundSettings;

/// Always refused, whatever the configuration: link-local addresses (where cloud
/// metadata services live), the EC2 IPv6 metadata address, and the unspecified
/// addresses (`0.0.0.0/8`, `::`), which the kernel takes to mean this very machine.
const ALWAYS_DENIED: [&str; 5] = [
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",
    "0.0.0.0/8",
    "::/128",
];

#[derive(Debug, Clone)]
pub struct OutboundPolicy {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("connecting to {0} is not allowed by the outbound policy")]
    Forbidden(IpAddr),
    #[error("the host name could not be resolved: {0}")]
    Unresolvable(String),
    #[error("resolving the host name timed out")]
    Timeout,
}

impl OutboundPolicy {
    pub fn new(settings: &OutboundSettings) -> Self {
        let mut deny = settings.deny.clone();
        deny.extend(
            ALWAYS_DENIED
                .iter()
                .filter_map(|net| net.parse::<IpNet>().ok()),
        );
        Self {
            allow: settings.allow.clone(),
            deny,
        }
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        // An IPv4 address written as IPv6 (::ffff:a.b.c.d) is judged as IPv4.
        let ip = ip.to_canonical();
        let allowed = self.allow.is_empty() || self.allow.iter().any(|net| net.contains(&ip));
        allowed && !self.deny.iter().any(|net| net.contains(&ip))
    }

    /// Resolves `host` and returns the address to connect to, if every address it
    /// resolves to is permitted.
    pub async fn resolve(
        &self,
        host: &Host,
        port: Port,
        timeout: Duration,
    ) -> Result<SocketAddr, OutboundError> {
        let addresses: Vec<SocketAddr> = match host.ip() {
            Some(ip) => vec![SocketAddr::new(ip, port.get())],
            None => tokio::time::timeout(
                timeout,
                tokio::net::lookup_host((host.as_str(), port.get())),
            )
            .await
            .map_err(|_| OutboundError::Timeout)?
            .map_err(|e| OutboundError::Unresolvable(e.to_string()))?
            .collect(),
        };
        self.choose(&addresses)
    }

    /// Whether `host` may be recorded as a place to connect to: an address (or a name
    /// resolving to one) the policy forbids is refused now, at create or update, not
    /// only when credgate itself connects, because a job given the credentials bundle
    /// connects on its own. A name that does not resolve yet is admitted: it is checked
    /// again every time credgate connects or hands out the bundle.
    pub async fn admits(
        &self,
        host: &Host,
        port: Port,
        timeout: Duration,
    ) -> Result<(), OutboundError> {
        match self.resolve(host, port, timeout).await {
            Ok(_) | Err(OutboundError::Unresolvable(_) | OutboundError::Timeout) => Ok(()),
            Err(forbidden) => Err(forbidden),
        }
    }

    /// The address to connect to among those a name resolved to: the first, but only if
    /// every one is permitted (the resolver may answer differently when the client
    /// connects, so one forbidden answer refuses the name).
    pub fn choose(&self, addresses: &[SocketAddr]) -> Result<SocketAddr, OutboundError> {
        if let Some(denied) = addresses.iter().find(|a| !self.permits(a.ip())) {
            return Err(OutboundError::Forbidden(denied.ip()));
        }
        addresses
            .first()
            .copied()
            .ok_or_else(|| OutboundError::Unresolvable("no addresses".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], deny: &[&str]) -> OutboundPolicy {
        OutboundPolicy::new(&OutboundSettings {
            allow: allow.iter().map(|n| n.parse().unwrap()).collect(),
            deny: deny.iter().map(|n| n.parse().unwrap()).collect(),
        })
    }

    #[test]
    fn metadata_addresses_are_always_denied() {
        let open = policy(&[], &[]);
        assert!(open.permits("192.0.2.10".parse().unwrap()));
        for ip in [
            "169.254.169.254",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            assert!(!open.permits(ip.parse().unwrap()), "{ip}");
        }
        let allow_all = policy(&["0.0.0.0/0", "::/0"], &[]);
        assert!(!allow_all.permits("169.254.169.254".parse().unwrap()));
    }

    #[test]
    fn unspecified_addresses_are_always_denied() {
        let allow_all = policy(&["0.0.0.0/0", "::/0"], &[]);
        for ip in ["0.0.0.0", "0.1.2.3", "::", "::ffff:0.0.0.0"] {
            assert!(!allow_all.permits(ip.parse().unwrap()), "{ip}");
        }
        assert!(allow_all.permits("1.0.0.0".parse().unwrap()));
        assert!(allow_all.permits("::2".parse().unwrap()));
    }

    /// A name resolving to several addresses is judged on all of them, whatever their
    /// order; the first is used only when every one is permitted.
    #[test]
    fn every_resolved_address_is_checked() {
        let p = policy(&[], &["10.9.0.0/16"]);
        let at = |ip: &str| SocketAddr::new(ip.parse().unwrap(), 22);
        let (good, other, bad) = (at("192.0.2.1"), at("2001:db8::1"), at("10.9.0.5"));
        assert_eq!(p.choose(&[good, other]), Ok(good));
        assert_eq!(p.choose(&[other, good]), Ok(other));
        for mixed in [
            vec![good, bad],
            vec![bad, good],
            vec![good, other, bad],
            vec![at("169.254.169.254"), good],
        ] {
            assert!(
                matches!(p.choose(&mixed), Err(OutboundError::Forbidden(_))),
                "{mixed:?}"
            );
        }
        assert_eq!(
            p.choose(&[good, bad]),
            Err(OutboundError::Forbidden(bad.ip()))
        );
        assert!(matches!(p.choose(&[]), Err(OutboundError::Unresolvable(_))));
    }

    #[test]
    fn allow_and_deny_lists() {
        let p = policy(&["10.0.0.0/8"], &["10.9.0.0/16"]);
        assert!(p.permits("10.1.2.3".parse().unwrap()));
        assert!(!p.permits("10.9.2.3".parse().unwrap()));
        assert!(!p.permits("192.0.2.1".parse().unwrap()));
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_denied_address_is_refused() {
        let p = policy(&[], &["127.0.0.0/8", "::1/128"]);
        let host = Host::parse("localhost").unwrap();
        let refused = p
            .resolve(&host, Port::SSH, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, OutboundError::Forbidden(_)),
            "{refused:?}"
        );
        let open = policy(&[], &[]);
        let ip = Host::parse("127.0.0.1").unwrap();
        assert_eq!(
            open.resolve(&ip, Port::parse(2222).unwrap(), Duration::from_secs(1))
                .await
                .unwrap()
                .port(),
            2222
        );
    }
}
