//! The client's IP address, for per-IP rate limits.
//!
//! It is the TCP peer, unless the peer is one of `TRUSTED_PROXIES`: then `X-Forwarded-For` is
//! read from the right, skipping the trusted proxies' own entries, and the first address that is
//! not a trusted proxy is the client. Entries further left were written by the client itself and
//! are never believed.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The client address of `req` given the trusted proxies.
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    // A listener on `[::]` sees IPv4 peers as `::ffff:a.b.c.d`; they are IPv4 peers.
    let peer = req.peer_addr()?.ip().to_canonical();
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    Some(resolve(peer, &forwarded, trusted))
}

/// The key for per-IP limits: the address, or its /64 network for IPv6 (one subscriber usually
/// holds a whole /64, so single addresses would be free to rotate through).
pub fn limit_key(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map(|v4| v4.to_string())
            .unwrap_or_default(),
        Some(ip) => ip.to_string(),
        None => String::new(),
    }
}

/// The rightmost address of the `peer, X-Forwarded-For` chain that is not a trusted proxy.
fn resolve(peer: IpAddr, forwarded_for: &str, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for entry in forwarded_for
        .rsplit(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        match parse_forwarded_entry(entry) {
            Some(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // Garbage in the chain: stop at the last address we could trust.
            None => break,
        }
    }
    client
}

/// One `X-Forwarded-For` entry as proxies write it: an address, with or without a port
/// (`203.0.113.7:51000`, `[2001:db8::1]:443`, `[2001:db8::1]`), IPv4-mapped IPv6 as IPv4.
fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim_matches('"');
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse().ok())
        })?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_trusted_proxies;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let trusted = parse_trusted_proxies("10.0.0.0/8").unwrap();
        assert_eq!(
            resolve(ip("203.0.113.9"), "1.2.3.4", &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            resolve(ip("203.0.113.9"), "1.2.3.4", &[]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_client() {
        let trusted = parse_trusted_proxies("10.0.0.0/8, 192.168.1.1").unwrap();
        // The client forged 6.6.6.6; the proxies appended the real address then their own.
        assert_eq!(
            resolve(
                ip("10.0.0.2"),
                "6.6.6.6, 198.51.100.7, 192.168.1.1",
                &trusted
            ),
            ip("198.51.100.7")
        );
        assert_eq!(resolve(ip("10.0.0.2"), "", &trusted), ip("10.0.0.2"));
        assert_eq!(
            resolve(ip("10.0.0.2"), "not-an-ip, 10.1.1.1", &trusted),
            ip("10.1.1.1")
        );
        assert_eq!(
            resolve(ip("10.0.0.2"), "2001:db8::1", &trusted),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn entries_with_ports_and_mapped_addresses_are_understood() {
        let trusted = parse_trusted_proxies("127.0.0.1, ::1").unwrap();
        for (chain, client) in [
            ("203.0.113.7:51000", "203.0.113.7"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("\"[2001:db8::1]:443\"", "2001:db8::1"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
            ("203.0.113.7, 127.0.0.1:8000", "203.0.113.7"),
        ] {
            assert_eq!(
                resolve(ip("127.0.0.1"), chain, &trusted),
                ip(client),
                "{chain}"
            );
        }
    }

    #[test]
    fn ipv6_clients_are_limited_per_64() {
        assert_eq!(
            limit_key(Some(ip("2001:db8:1:2:aaaa::1"))),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            limit_key(Some(ip("2001:db8:1:2:bbbb::9"))),
            "2001:db8:1:2::/64"
        );
        assert_eq!(limit_key(Some(ip("::ffff:192.0.2.1"))), "192.0.2.1");
        assert_eq!(limit_key(Some(ip("192.0.2.1"))), "192.0.2.1");
    }
}
