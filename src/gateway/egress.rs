//! The egress proxy of a task whose network policy is an allowlist: an HTTP proxy
//! (`CONNECT host:port` for TLS and any TCP, absolute-URI requests for plain HTTP) that
//! lets a connection out only to a listed host. The task's container sits on an
//! internal network whose only way out is this proxy, so a program that ignores
//! `HTTP_PROXY` reaches nothing at all: the policy is enforced, not advised.
//!
//! Entries, as Harbor documents them: exact host names (`example.com` does not allow
//! `api.example.com`), leading wildcards (`*.example.com`: subdomains, not the apex),
//! IPv4/IPv6 literals and CIDR ranges (matched against IP-literal targets). An empty
//! allowlist denies everything.

use crate::printer::errln;
use std::net::IpAddr;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// One allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Host(String),
    /// `*.suffix`: the suffix with its leading dot.
    Wildcard(String),
    Net(IpAddr, u8),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    entries: Vec<Entry>,
}

impl Allowlist {
    /// Parses the entries; a URL, a port or a bracketed address is refused by name.
    pub fn parse(entries: &[String]) -> anyhow::Result<Allowlist> {
        let mut out = Vec::new();
        for raw in entries {
            let e = raw.trim().to_ascii_lowercase();
            let bad = |why: &str| anyhow::anyhow!("allowed_hosts entry {raw:?}: {why}");
            if e.contains("://") || e.contains('/') && e.parse::<IpAddr>().is_err() && !is_cidr(&e)
            {
                return Err(bad(
                    "a host, an IP address or a CIDR range, not a URL or path",
                ));
            }
            if e.starts_with('[') {
                return Err(bad("write an IPv6 address without brackets"));
            }
            if let Some((ip, bits)) = e.split_once('/') {
                let ip: IpAddr = ip.parse().map_err(|_| bad("not a CIDR range"))?;
                let bits: u8 = bits.parse().map_err(|_| bad("not a CIDR range"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                if bits > max {
                    return Err(bad("prefix longer than the address"));
                }
                out.push(Entry::Net(ip, bits));
            } else if let Ok(ip) = e.parse::<IpAddr>() {
                out.push(Entry::Net(ip, if ip.is_ipv4() { 32 } else { 128 }));
            } else if let Some(suffix) = e.strip_prefix("*.") {
                out.push(Entry::Wildcard(format!(".{suffix}")));
            } else if e.contains(':') {
                return Err(bad("no ports: the allowlist names hosts"));
            } else if e.is_empty() || e.contains('*') {
                return Err(bad("not a host name"));
            } else {
                out.push(Entry::Host(e));
            }
        }
        Ok(Allowlist { entries: out })
    }

    /// Whether a connection to `host` (a name or an IP literal) may go out.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|e| match (e, ip) {
            (Entry::Net(net, bits), Some(ip)) => in_net(ip, *net, *bits),
            (Entry::Host(h), None) => *h == host,
            (Entry::Wildcard(suffix), None) => {
                host.ends_with(suffix.as_str()) && host.len() > suffix.len()
            }
            _ => false,
        })
    }
}

fn is_cidr(e: &str) -> bool {
    e.split_once('/')
        .is_some_and(|(ip, bits)| ip.parse::<IpAddr>().is_ok() && bits.parse::<u8>().is_ok())
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (a, b, len) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = len - bits as u32;
    (a >> shift) == (b >> shift)
}

/// Serves on `listen` until the process ends; one line per decision on stderr.
pub async fn serve(listen: &str, allow: Allowlist) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    errln!("kiln egress: listening on {listen}");
    let allow = std::sync::Arc::new(allow);
    loop {
        let (conn, _) = listener.accept().await?;
        let allow = allow.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(conn, &allow).await {
                errln!("kiln egress: {e:#}");
            }
        });
    }
}

/// Reads one request head, decides, and joins the two ends.
async fn handle(mut client: TcpStream, allow: &Allowlist) -> anyhow::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = client.read(&mut buf).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let first = text.lines().next().unwrap_or_default().to_string();
    let mut parts = first.split_whitespace();
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    let (host, port, forward) = if method.eq_ignore_ascii_case("CONNECT") {
        let (h, p) = split_host_port(target, 443);
        (h, p, None)
    } else if let Some(rest) = target.strip_prefix("http://") {
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (h, p) = split_host_port(authority, 80);
        // The origin gets the request in origin form, as from a client without a proxy.
        let line = format!("{method} {path} {version}");
        let mut bytes = text.replacen(&first, &line, 1).into_bytes();
        bytes.extend_from_slice(&head[end..]);
        (h, p, Some(bytes))
    } else {
        client
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    if !allow.allows(&host) {
        errln!("kiln egress: denied {host}:{port}");
        let body = format!("kiln egress: {host} is not in the task's allowlist\n");
        let reply = format!(
            "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        client.write_all(reply.as_bytes()).await?;
        return Ok(());
    }
    let mut upstream = match TcpStream::connect((host.as_str(), port)).await {
        Ok(s) => s,
        Err(e) => {
            errln!("kiln egress: {host}:{port} unreachable: {e}");
            client
                .write_all(
                    b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await?;
            return Ok(());
        }
    };
    errln!("kiln egress: allowed {host}:{port}");
    match forward {
        None => {
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await?;
            if end < head.len() {
                upstream.write_all(&head[end..]).await?;
            }
        }
        Some(bytes) => upstream.write_all(&bytes).await?,
    }
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// `host:port`, `[v6]:port` or a bare host (the default port).
fn split_host_port(authority: &str, default: u16) -> (String, u16) {
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once("]:") {
            return (h.to_string(), p.parse().unwrap_or(default));
        }
        return (rest.trim_end_matches(']').to_string(), default);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_string(), p.parse().unwrap_or(default)),
        _ => (authority.to_string(), default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(e: &[&str]) -> Allowlist {
        Allowlist::parse(&e.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn hosts_are_exact_and_wildcards_take_subdomains_only() {
        let a = list(&["example.com", "*.ubuntu.com"]);
        assert!(a.allows("example.com") && a.allows("EXAMPLE.com."));
        assert!(!a.allows("api.example.com"));
        assert!(a.allows("ask.ubuntu.com") && !a.allows("ubuntu.com"));
        assert!(!a.allows("evilubuntu.com"));
    }

    #[test]
    fn ips_and_cidrs_match_ip_targets() {
        let a = list(&["1.1.1.1", "10.0.0.0/8", "2001:db8::/32"]);
        assert!(a.allows("1.1.1.1") && !a.allows("1.1.1.2"));
        assert!(a.allows("10.200.3.4") && !a.allows("11.0.0.1"));
        assert!(a.allows("[2001:db8::1]") && !a.allows("2001:db9::1"));
        assert!(!list(&[]).allows("example.com"));
    }

    #[test]
    fn urls_ports_and_brackets_are_refused() {
        for e in [
            "https://example.com",
            "example.com:443",
            "[::1]",
            "example.com/x",
            "a*b",
        ] {
            assert!(Allowlist::parse(&[e.to_string()]).is_err(), "{e}");
        }
    }

    #[test]
    fn authorities() {
        assert_eq!(split_host_port("a.b:8080", 80), ("a.b".into(), 8080));
        assert_eq!(split_host_port("a.b", 443), ("a.b".into(), 443));
        assert_eq!(split_host_port("[::1]:9", 80), ("::1".into(), 9));
    }
}
