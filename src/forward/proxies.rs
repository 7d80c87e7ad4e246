//! Trusted proxies: when the gateway runs behind a load balancer, whose X-Forwarded-For
//! to believe, and so which address is the client's (for throttling, audit and upstreams).

use std::fmt::Write as _;
use std::net::IpAddr;

use http::header::{HeaderMap, HeaderValue};

use super::values::ValueBuf;

/// Whose headers carry the original request to the forward-auth endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardTrust {
    /// nginx `auth_request`: X-Original-Method, X-Original-URI, the request's Host.
    Nginx,
    /// Traefik ForwardAuth: X-Forwarded-Method, X-Forwarded-Uri, X-Forwarded-Host.
    Traefik,
}

/// An address range such as `10.0.0.0/8` or `::1/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/LEN` or a bare address (a single host).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let expected = || {
            format!("invalid address range \"{text}\" (expected CIDR such as \"10.0.0.0/8\" or an address)")
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len.parse::<u8>().map_err(|_| expected())?)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| expected())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(expected());
        }
        Ok(Cidr { network, prefix })
    }

    /// Whether `ip` is inside the range (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    let rest = bits % 8;
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || {
        let mask = 0xFFu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// Whether `ip` is a trusted proxy.
pub fn is_trusted(trusted: &[Cidr], ip: IpAddr) -> bool {
    trusted.iter().any(|range| range.contains(ip))
}

/// The client's address: the peer's, unless the peer is a trusted proxy, in which case the
/// right-most X-Forwarded-For entry that is not itself a trusted proxy (entries to its left
/// were written by the client and prove nothing).
pub fn client_ip(trusted: &[Cidr], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if !is_trusted(trusted, peer) {
        return peer;
    }
    let mut client = peer;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(text) = value.to_str() else {
            return client;
        };
        for entry in text.rsplit(',') {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) if is_trusted(trusted, ip) => client = ip,
                Ok(ip) => return ip,
                Err(_) => return client,
            }
        }
    }
    client
}

/// The X-Forwarded-For to send upstream: a trusted proxy's chain plus the peer, or the peer.
pub fn forwarded_for(
    trusted: &[Cidr],
    peer: IpAddr,
    headers: &HeaderMap,
    values: &mut ValueBuf,
) -> Option<HeaderValue> {
    if is_trusted(trusted, peer) {
        let chain = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        for entry in chain {
            values.push(entry.as_bytes());
            values.push(b", ");
        }
    }
    let _ = write!(values, "{peer}");
    values.take_value()
}

/// The X-Forwarded-Proto a trusted proxy sent ("http" or "https"), if any.
pub fn forwarded_proto(
    trusted: &[Cidr],
    peer: IpAddr,
    headers: &HeaderMap,
) -> Option<&'static str> {
    if !is_trusted(trusted, peer) {
        return None;
    }
    match headers.get("x-forwarded-proto").map(HeaderValue::as_bytes) {
        Some(b"https") => Some("https"),
        Some(b"http") => Some("http"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(texts: &[&str]) -> Vec<Cidr> {
        texts
            .iter()
            .map(|t| Cidr::parse(t).expect("valid range"))
            .collect()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).expect("ascii"));
        }
        headers
    }

    #[test]
    fn ranges_parse_and_match() {
        let lan = Cidr::parse("10.0.0.0/8").expect("valid");
        assert!(lan.contains("10.1.2.3".parse().expect("ip")));
        assert!(!lan.contains("11.0.0.1".parse().expect("ip")));
        assert!(lan.contains("::ffff:10.0.0.1".parse().expect("ip")));
        assert!(Cidr::parse("10.0.0.0/12")
            .expect("valid")
            .contains("10.15.255.255".parse().expect("ip")));
        assert!(!Cidr::parse("10.0.0.0/12")
            .expect("valid")
            .contains("10.16.0.0".parse().expect("ip")));
        assert!(Cidr::parse("::1")
            .expect("valid")
            .contains("::1".parse().expect("ip")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = ranges(&["10.0.0.0/8"]);
        let peer: IpAddr = "203.0.113.9".parse().expect("ip");
        assert_eq!(client_ip(&trusted, peer, &xff(&["1.2.3.4"])), peer);
        assert_eq!(
            forwarded_for(&trusted, peer, &xff(&["1.2.3.4"]), &mut ValueBuf::new()).expect("value"),
            "203.0.113.9"
        );
        assert_eq!(forwarded_proto(&trusted, peer, &HeaderMap::new()), None);
    }

    #[test]
    fn trusted_peer_yields_the_right_most_untrusted_entry() {
        let trusted = ranges(&["10.0.0.0/8"]);
        let lb: IpAddr = "10.0.0.2".parse().expect("ip");
        // The client forged "6.6.6.6"; the LB appended the real address.
        let headers = xff(&["6.6.6.6, 198.51.100.7", "10.0.0.5"]);
        assert_eq!(
            client_ip(&trusted, lb, &headers),
            "198.51.100.7".parse::<IpAddr>().expect("ip")
        );
        let chain = forwarded_for(&trusted, lb, &headers, &mut ValueBuf::new()).expect("value");
        assert_eq!(chain, "6.6.6.6, 198.51.100.7, 10.0.0.5, 10.0.0.2");
    }

    #[test]
    fn garbage_in_the_chain_stops_the_walk_at_the_last_trusted_hop() {
        let trusted = ranges(&["10.0.0.0/8"]);
        let lb: IpAddr = "10.0.0.2".parse().expect("ip");
        assert_eq!(client_ip(&trusted, lb, &xff(&["not-an-ip"])), lb);
    }
}
