//! Where a store's Redis is: one server, or a master found through Sentinel. Parsed and
//! checked at load, with the password read from a file or the environment.
//!
//! One URL names either (so `redis_url_env` works for both):
//! - `redis://[user[:password]@]host:port/db`, `rediss://` (TLS), `unix:///path`: one server;
//! - `redis+sentinel://[user[:password]@]h1:p1,h2:p2,h3:p3/master_name[/db]`, or
//!   `rediss+sentinel://` for TLS to the sentinels and to the master: the master the
//!   sentinels name, asked again whenever it stops answering or refuses a write.
//!
//! - `redis+cluster://[user[:password]@]h1:p1,h2:p2,h3:p3`, or `rediss+cluster://` for TLS
//!   to every node: a Redis Cluster, found from any of these seed nodes (the rest of the
//!   cluster is learnt from them). No database: a cluster has only database 0.
//!
//! The user and password are the data nodes' (the sentinels are asked without credentials).
//! A password given apart (`password_file`, `password_env`) replaces the URL's.

use std::fmt;

use percent_encoding::percent_decode_str;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

use super::StoreError;

/// The sentinel port when a sentinel address names none.
const SENTINEL_PORT: u16 = 26379;
/// A cluster node's port when a seed address names none.
const NODE_PORT: u16 = 6379;

/// A Redis deployment to connect to.
#[derive(Clone)]
pub enum Target {
    /// One server (or a unix socket); boxed, as the connection info is large.
    Single(Box<ConnectionInfo>),
    /// The master Sentinel names.
    Sentinel(SentinelTarget),
    /// A Redis Cluster.
    Cluster(ClusterTarget),
}

/// Seed nodes of a Redis Cluster, with the login and TLS every node shares.
#[derive(Clone)]
pub struct ClusterTarget {
    /// Seed node addresses, each carrying the login (user, password).
    pub nodes: Vec<ConnectionInfo>,
}

/// Sentinel addresses, the master's name and how to log in to the data nodes.
#[derive(Clone)]
pub struct SentinelTarget {
    /// Sentinel addresses (no credentials).
    pub sentinels: Vec<ConnectionInfo>,
    /// The name the sentinels monitor the master under.
    pub master: String,
    /// User, password and database on the master.
    pub node: RedisConnectionInfo,
    /// TLS to the sentinels and the data nodes.
    pub tls: bool,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Addresses only: the password stays out of every log.
        match self {
            Target::Single(info) => write!(f, "Single({})", info.addr()),
            Target::Sentinel(s) => {
                let addrs: Vec<String> = s.sentinels.iter().map(|i| i.addr().to_string()).collect();
                write!(f, "Sentinel({:?} master {:?})", addrs, s.master)
            }
            Target::Cluster(c) => {
                let addrs: Vec<String> = c.nodes.iter().map(|i| i.addr().to_string()).collect();
                write!(f, "Cluster({addrs:?})")
            }
        }
    }
}

impl Target {
    /// Parses `url`; `password`, when given, replaces the URL's. `InvalidUrl` names what is
    /// wrong without repeating the URL (it may hold a password).
    pub fn parse(url: &str, password: Option<&str>) -> Result<Target, StoreError> {
        let sentinel = url
            .strip_prefix("redis+sentinel://")
            .map(|rest| (rest, false))
            .or_else(|| {
                url.strip_prefix("rediss+sentinel://")
                    .map(|rest| (rest, true))
            });
        if let Some(s) = sentinel {
            return parse_sentinel(s.0, s.1, password).map(Target::Sentinel);
        }
        let cluster = url
            .strip_prefix("redis+cluster://")
            .map(|rest| (rest, false))
            .or_else(|| {
                url.strip_prefix("rediss+cluster://")
                    .map(|rest| (rest, true))
            });
        match cluster {
            Some((rest, tls)) => parse_cluster(rest, tls, password).map(Target::Cluster),
            None => parse_single(url, password).map(|info| Target::Single(Box::new(info))),
        }
    }

    /// True for a Redis Cluster: keys that a script touches together need one hash tag.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster(_))
    }

    /// True when the master is found through Sentinel.
    pub fn is_sentinel(&self) -> bool {
        matches!(self, Target::Sentinel(_))
    }
}

fn parse_single(url: &str, password: Option<&str>) -> Result<ConnectionInfo, StoreError> {
    // rediss:// verifies the server against the system trust store (SSL_CERT_FILE and
    // SSL_CERT_DIR are honoured, for a private CA).
    let info = url.into_connection_info().map_err(|_| {
        StoreError::InvalidUrl(
            "not a redis://, rediss://, unix://, redis[s]+sentinel:// or redis[s]+cluster:// URL",
        )
    })?;
    if !info.addr().is_supported() {
        return Err(StoreError::InvalidUrl(
            "this URL scheme is not supported by this build",
        ));
    }
    Ok(match password {
        Some(password) => {
            let redis = info.redis_settings().clone().set_password(password);
            info.set_redis_settings(redis)
        }
        None => info,
    })
}

fn parse_sentinel(
    rest: &str,
    tls: bool,
    password: Option<&str>,
) -> Result<SentinelTarget, StoreError> {
    let (authority, path) = rest.split_once('/').ok_or(StoreError::InvalidUrl(
        "a sentinel URL ends with /master_name",
    ))?;
    let (userinfo, hosts) = split_userinfo(authority);
    let sentinels = hosts
        .split(',')
        .map(|host| node_addr(host, SENTINEL_PORT, tls))
        .collect::<Result<Vec<_>, _>>()?;
    let (master, db) = match path.trim_end_matches('/').split_once('/') {
        Some((master, db)) => (master, Some(db)),
        None => (path.trim_end_matches('/'), None),
    };
    if master.is_empty() {
        return Err(StoreError::InvalidUrl(
            "a sentinel URL ends with /master_name",
        ));
    }
    let mut node = RedisConnectionInfo::default();
    if let Some(db) = db {
        let db = db.parse().map_err(|_| {
            StoreError::InvalidUrl("the database after the master name is not a number")
        })?;
        node = node.set_db(db);
    }
    node = login(node, userinfo, password)?;
    Ok(SentinelTarget {
        sentinels,
        master: decode(master)?,
        node,
        tls,
    })
}

fn parse_cluster(
    rest: &str,
    tls: bool,
    password: Option<&str>,
) -> Result<ClusterTarget, StoreError> {
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') {
        return Err(StoreError::InvalidUrl(
            "a cluster URL names no database: redis+cluster://h1:p1,h2:p2",
        ));
    }
    let (userinfo, hosts) = split_userinfo(authority);
    let settings = login(RedisConnectionInfo::default(), userinfo, password)?;
    let nodes = hosts
        .split(',')
        .map(|host| node_addr(host, NODE_PORT, tls).map(|i| i.set_redis_settings(settings.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClusterTarget { nodes })
}

/// `user:password@hosts` -> the user info, if any, and the hosts.
fn split_userinfo(authority: &str) -> (Option<&str>, &str) {
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    }
}

/// `node` with the URL's user and password, then the password given apart, if any.
fn login(
    mut node: RedisConnectionInfo,
    userinfo: Option<&str>,
    password: Option<&str>,
) -> Result<RedisConnectionInfo, StoreError> {
    if let Some(userinfo) = userinfo {
        let (user, url_password) = match userinfo.split_once(':') {
            Some((user, pass)) => (user, Some(pass)),
            None => (userinfo, None),
        };
        if !user.is_empty() {
            node = node.set_username(decode(user)?);
        }
        if let Some(pass) = url_password.filter(|p| !p.is_empty()) {
            node = node.set_password(decode(pass)?);
        }
    }
    if let Some(password) = password {
        node = node.set_password(password);
    }
    Ok(node)
}

/// One `host[:port]` of a sentinel or seed node list.
fn node_addr(host: &str, default_port: u16, tls: bool) -> Result<ConnectionInfo, StoreError> {
    const BAD: StoreError = StoreError::InvalidUrl("a sentinel or node address is not host:port");
    let (name, port) = match host.rsplit_once(':') {
        // An IPv6 literal in brackets: [::1]:26379
        Some((name, port)) if !port.contains(']') => (name, port.parse().map_err(|_| BAD)?),
        _ => (host, default_port),
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() {
        return Err(BAD);
    }
    let addr = match tls {
        true => ConnectionAddr::TcpTls {
            host: name.to_owned(),
            port,
            insecure: false,
            tls_params: None,
        },
        false => ConnectionAddr::Tcp(name.to_owned(), port),
    };
    addr.into_connection_info().map_err(|_| BAD)
}

fn decode(part: &str) -> Result<String, StoreError> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| StoreError::InvalidUrl("a URL part is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentinel(url: &str, password: Option<&str>) -> SentinelTarget {
        match Target::parse(url, password) {
            Ok(Target::Sentinel(s)) => s,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn a_sentinel_url_names_every_sentinel_the_master_and_the_login() {
        let s = sentinel(
            "redis+sentinel://app:p%40ss@h1:26380,h2,[::1]:7/mymaster/2",
            None,
        );
        let addrs: Vec<String> = s.sentinels.iter().map(|i| i.addr().to_string()).collect();
        assert_eq!(addrs, ["h1:26380", "h2:26379", "::1:7"]);
        assert_eq!(s.master, "mymaster");
        assert_eq!(s.node.username(), Some("app"));
        assert_eq!(s.node.password(), Some("p@ss"));
        assert_eq!(s.node.db(), 2);
        assert!(!s.tls);
        assert!(sentinel("rediss+sentinel://h1/m", None).tls);
    }

    #[test]
    fn a_password_given_apart_replaces_the_urls() {
        let s = sentinel("redis+sentinel://app:old@h1/m", Some("new"));
        assert_eq!(s.node.password(), Some("new"));
        let Ok(Target::Single(info)) = Target::parse("redis://app@127.0.0.1:1/", Some("pw")) else {
            panic!("a plain URL is one server");
        };
        assert_eq!(info.redis_settings().username(), Some("app"));
        assert_eq!(info.redis_settings().password(), Some("pw"));
    }

    #[test]
    fn malformed_urls_are_refused_without_echoing_them() {
        for bad in [
            "redis+sentinel://h1:26379",
            "redis+sentinel://h1:26379/",
            "redis+sentinel://h1:port/m",
            "redis+sentinel://:1/m",
            "redis+sentinel://h1/m/db",
            "http://secret@h1/",
        ] {
            let err = Target::parse(bad, None).expect_err(bad).to_string();
            assert!(!err.contains("h1") && !err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn a_cluster_url_names_every_seed_node_with_the_login() {
        let Ok(Target::Cluster(c)) =
            Target::parse("redis+cluster://app:p%40ss@h1:7001,h2,[::1]:7003/", None)
        else {
            panic!("a cluster URL");
        };
        let addrs: Vec<String> = c.nodes.iter().map(|i| i.addr().to_string()).collect();
        assert_eq!(addrs, ["h1:7001", "h2:6379", "::1:7003"]);
        for node in &c.nodes {
            assert_eq!(node.redis_settings().username(), Some("app"));
            assert_eq!(node.redis_settings().password(), Some("p@ss"));
        }
        let Ok(Target::Cluster(c)) = Target::parse("rediss+cluster://h1:1", Some("pw")) else {
            panic!("a TLS cluster URL");
        };
        assert!(matches!(c.nodes[0].addr(), ConnectionAddr::TcpTls { .. }));
        assert_eq!(c.nodes[0].redis_settings().password(), Some("pw"));
        for bad in [
            "redis+cluster://h1:1/0",
            "redis+cluster://h1:x",
            "redis+cluster://",
        ] {
            assert!(Target::parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_shows_addresses_and_never_the_password() {
        let text = format!(
            "{:?}",
            Target::parse("redis+sentinel://u:hunter2@h1/m", None)
        );
        assert!(
            text.contains("h1:26379") && !text.contains("hunter2"),
            "{text}"
        );
        let text = format!("{:?}", Target::parse("redis://u:hunter2@h1/", None));
        assert!(!text.contains("hunter2"), "{text}");
    }
}
