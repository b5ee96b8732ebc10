//! How kiln reaches a registry: over which scheme (HTTPS unless the host is loopback
//! or listed as insecure), trusting what (`crate::tls`), and how often to try again
//! when the registry or the network fails for a moment.
//!
//! Schemes, per host:
//! - a registry on 127.0.0.0/8, `localhost` or `::1`: HTTPS with verification, or plain
//!   HTTP when the server answers the TLS hello in plain HTTP (the Docker Engine allows
//!   plain HTTP there without configuration);
//! - a host listed as insecure (`--insecure-registry HOST[:PORT]` or CIDR, and the
//!   engine's own `insecure-registries`): HTTPS without verification, or plain HTTP —
//!   what docker does for them;
//! - any other host: HTTPS, verified; never plain HTTP.
//!
//! Retries: 429, 502, 503, 504 and connections dropped after they were made are
//! retried with exponential backoff and jitter, honouring `Retry-After`, at most
//! `KILN_REGISTRY_RETRIES` times (default 4) and within `KILN_REGISTRY_RETRY_SECS`
//! seconds of waiting in all (default 60). Every other answer is final.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _};

use crate::tls::Trust;

/// What to trust and which hosts may go without verified TLS.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    pub trust: Trust,
    /// `host[:port]`, `host` or CIDR entries (the flag's and the engine's).
    pub insecure: Vec<String>,
    pub retry: RetryPolicy,
}

/// How a registry host is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// HTTPS, verified, never plain HTTP.
    Verified,
    /// Loopback: verified HTTPS, or plain HTTP if that is what the server speaks.
    Loopback,
    /// Listed as insecure: HTTPS without verification, or plain HTTP.
    Insecure,
}

impl Transport {
    /// `--ca-bundle` (or `KILN_CA_BUNDLE`), `--insecure-registry` entries (checked), and
    /// the retry bounds from the environment.
    pub fn new(
        ca_bundle: Option<std::path::PathBuf>,
        insecure: Vec<String>,
    ) -> anyhow::Result<Transport> {
        for entry in &insecure {
            check_insecure_entry(entry)?;
        }
        Ok(Transport {
            trust: Trust::new(ca_bundle),
            insecure,
            retry: RetryPolicy::from_env()?,
        })
    }

    /// Adds the Docker Engine's `insecure-registries` (its info's registry config), if
    /// an engine answers within a few seconds; without one, nothing is added.
    pub async fn with_engine_insecure(mut self) -> Transport {
        self.insecure.extend(engine_insecure().await);
        self
    }

    /// How `host` (`host[:port]`) is reached.
    pub fn security(&self, host: &str) -> Security {
        if is_loopback(host) {
            return Security::Loopback;
        }
        if self.insecure.iter().any(|e| insecure_matches(e, host)) {
            return Security::Insecure;
        }
        Security::Verified
    }
}

/// The name part of `host[:port]` (brackets of an IPv6 literal removed).
pub fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((n, p)) if p.chars().all(|c| c.is_ascii_digit()) => n,
        _ => host,
    }
}

/// 127.0.0.0/8, `localhost`, `::1`.
pub fn is_loopback(host: &str) -> bool {
    let name = host_name(host);
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks one `--insecure-registry` value.
pub fn check_insecure_entry(entry: &str) -> anyhow::Result<()> {
    if entry.contains("://") || entry.is_empty() || entry.contains(' ') {
        bail!("--insecure-registry {entry:?}: give HOST[:PORT] or a CIDR (10.0.0.0/8), without a scheme");
    }
    if let Some((net, bits)) = entry.split_once('/') {
        let ip: IpAddr = net.parse().with_context(|| {
            format!("--insecure-registry {entry:?}: {net:?} is not an IP address")
        })?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if bits.parse::<u8>().map_or(true, |b| b > max) {
            bail!("--insecure-registry {entry:?}: /{bits} is not a prefix length up to {max}");
        }
    }
    Ok(())
}

/// True when the insecure entry (`host[:port]`, `host`, or CIDR) covers `host`.
fn insecure_matches(entry: &str, host: &str) -> bool {
    if entry.eq_ignore_ascii_case(host) {
        return true;
    }
    if let Some((net, bits)) = entry.split_once('/') {
        let (Ok(net), Ok(bits), Ok(ip)) = (
            net.parse::<IpAddr>(),
            bits.parse::<u32>(),
            host_name(host).parse::<IpAddr>(),
        ) else {
            return false;
        };
        return match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        };
    }
    // An entry without a port covers the host on any port.
    !entry.contains(':') && entry.eq_ignore_ascii_case(host_name(host))
}

/// The engine's insecure registries: CIDRs and index configs marked not secure.
async fn engine_insecure() -> Vec<String> {
    let Ok(docker) = bollard::Docker::connect_with_local_defaults() else {
        return Vec::new();
    };
    let Ok(Ok(info)) = tokio::time::timeout(Duration::from_secs(5), docker.info()).await else {
        return Vec::new();
    };
    info.registry_config
        .map(|rc| insecure_from_engine(&rc))
        .unwrap_or_default()
}

/// The insecure entries of the engine's registry configuration.
pub fn insecure_from_engine(rc: &bollard::models::RegistryServiceConfig) -> Vec<String> {
    let mut out: Vec<String> = rc.insecure_registry_cidrs.clone().unwrap_or_default();
    if let Some(idx) = &rc.index_configs {
        let mut names: Vec<&String> = idx
            .iter()
            .filter(|(_, info)| info.secure == Some(false))
            .map(|(name, _)| name)
            .collect();
        names.sort();
        out.extend(names.into_iter().cloned());
    }
    out
}

/// How often and how long to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries after the first.
    pub retries: u32,
    /// Waiting allowed in all, per request.
    pub budget: Duration,
    /// The first wait; doubled each time, up to `cap`.
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            retries: 4,
            budget: Duration::from_secs(60),
            base: Duration::from_millis(500),
            cap: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The defaults with `KILN_REGISTRY_RETRIES` and `KILN_REGISTRY_RETRY_SECS` applied.
    pub fn from_env() -> anyhow::Result<RetryPolicy> {
        use crate::env;
        let mut p = RetryPolicy::default();
        if let Some(v) = env::REGISTRY_RETRIES.get() {
            p.retries = v.parse().ok().filter(|n| *n <= 100).with_context(|| {
                format!(
                    "{}={v:?}: not a number from 0 to 100",
                    env::REGISTRY_RETRIES.name
                )
            })?;
        }
        if let Some(v) = env::REGISTRY_RETRY_SECS.get() {
            let secs: u64 = v.parse().ok().filter(|n| *n <= 3600).with_context(|| {
                format!(
                    "{}={v:?}: not a number of seconds from 0 to 3600",
                    env::REGISTRY_RETRY_SECS.name
                )
            })?;
            p.budget = Duration::from_secs(secs);
        }
        Ok(p)
    }

    /// The wait before retry number `n` (1-based): `Retry-After` when the registry gave
    /// one, else `base * 2^(n-1)` capped, with full jitter in its upper half (so that
    /// parallel pushes do not come back in step).
    pub fn delay(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d;
        }
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX))
            .min(self.cap);
        exp / 2 + exp.mul_f64(fastrand::f64() / 2.0)
    }
}

/// True for the statuses worth another try.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// A `Retry-After` value: seconds, or an HTTP date (a past date is zero).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The registry's own words from a distribution error body
/// (`{"errors":[{"code":…,"message":…}]}`), e.g. `NAME_UNKNOWN: repository name not known`.
pub fn registry_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let parts: Vec<String> = v
        .get("errors")?
        .as_array()?
        .iter()
        .map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
            match (code.is_empty(), msg.is_empty()) {
                (false, false) => format!("{code}: {msg}"),
                (true, _) => msg.to_string(),
                (false, true) => code.to_string(),
            }
        })
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_insecure_hosts() {
        for h in [
            "127.0.0.1:5000",
            "127.3.4.5",
            "localhost:5000",
            "[::1]:5000",
            "LOCALHOST",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "10.0.0.1:5000",
            "registry.example.com",
            "localhost.example.com",
            "[::2]:1",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
        let t = Transport {
            insecure: vec![
                "10.231.0.0/16".into(),
                "reg.corp:5000".into(),
                "plain.corp".into(),
                "fd00::/8".into(),
            ],
            ..Default::default()
        };
        assert_eq!(t.security("127.0.0.1:1"), Security::Loopback);
        assert_eq!(t.security("10.231.7.2:5000"), Security::Insecure);
        assert_eq!(t.security("10.232.7.2:5000"), Security::Verified);
        assert_eq!(t.security("reg.corp:5000"), Security::Insecure);
        assert_eq!(t.security("reg.corp:5001"), Security::Verified);
        assert_eq!(t.security("plain.corp:443"), Security::Insecure);
        assert_eq!(t.security("[fd12::1]:5000"), Security::Insecure);
        assert_eq!(t.security("ghcr.io"), Security::Verified);
        for bad in ["http://x", "10.0.0.0/33", "x y", "nonip/8", ""] {
            assert!(Transport::new(None, vec![bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn engine_insecure_registries() {
        let mut idx = std::collections::HashMap::new();
        idx.insert(
            "reg.corp:5000".to_string(),
            bollard::models::IndexInfo {
                secure: Some(false),
                ..Default::default()
            },
        );
        idx.insert(
            "docker.io".to_string(),
            bollard::models::IndexInfo {
                secure: Some(true),
                ..Default::default()
            },
        );
        let rc = bollard::models::RegistryServiceConfig {
            insecure_registry_cidrs: Some(vec!["127.0.0.0/8".into()]),
            index_configs: Some(idx),
            ..Default::default()
        };
        assert_eq!(insecure_from_engine(&rc), ["127.0.0.0/8", "reg.corp:5000"]);
    }

    #[test]
    fn retry_after_and_backoff() {
        let now = httpdate::parse_http_date("Mon, 07 Dec 2026 10:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Mon, 07 Dec 2026 10:00:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Mon, 07 Dec 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        let p = RetryPolicy::default();
        for n in 1..=8 {
            let d = p.delay(n, None);
            let exp = (p.base * 2u32.pow(n - 1)).min(p.cap);
            assert!(d >= exp / 2 && d <= exp, "{n}: {d:?}");
        }
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert!(retryable_status(429) && retryable_status(503) && !retryable_status(404));
    }

    #[test]
    fn distribution_errors() {
        let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"x"}}]}"#;
        assert_eq!(
            registry_message(body).unwrap(),
            "NAME_UNKNOWN: repository name not known to registry"
        );
        assert_eq!(registry_message(b"<html>"), None);
        assert_eq!(registry_message(br#"{"errors":[]}"#), None);
    }
}
