//! Registry locations (`HOST[:PORT][/PREFIX]`, what `--registry` takes) and image
//! references in them (`HOST[:PORT]/PATH:TAG`).

use std::fmt;

use anyhow::bail;

/// A registry and the repository prefix images go under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// `host` or `host:port`, exactly as `docker login` names it.
    pub host: String,
    /// Path components put before every repository (`""` for none), without slashes at the ends.
    pub prefix: String,
}

impl Registry {
    /// Parses `HOST[:PORT][/PREFIX]`. The host must look like a registry host (a dot, a
    /// port or `localhost`), as Docker requires to tell it from a Docker Hub user.
    pub fn parse(s: &str) -> anyhow::Result<Registry> {
        let s = s.trim_end_matches('/');
        if s.contains("://") {
            bail!("registry {s:?}: give HOST[:PORT][/PREFIX], without a scheme");
        }
        let (host, prefix) = s.split_once('/').unwrap_or((s, ""));
        let (name, port) = match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            bail!("registry {s:?}: {name:?} is not a host name");
        }
        if let Some(p) = port {
            if p.parse::<u16>().map_or(true, |n| n == 0) {
                bail!("registry {s:?}: port {p:?} is not a number from 1 to 65535");
            }
        }
        if port.is_none() && !name.contains('.') && name != "localhost" {
            bail!(
                "registry {s:?}: {name:?} would be read as a Docker Hub user, not a registry host \
                 (give a host with a dot, a port, or localhost)"
            );
        }
        for part in prefix.split('/').filter(|_| !prefix.is_empty()) {
            if !valid_path_component(part) {
                bail!(
                    "registry {s:?}: prefix component {part:?} is not a valid repository name part \
                     (lowercase letters, digits, and . _ - between them)"
                );
            }
        }
        Ok(Registry {
            host: host.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// What kiln's naming puts where `${REGISTRY}` goes: `host[/prefix]`.
    pub fn naming_root(&self) -> String {
        if self.prefix.is_empty() {
            self.host.clone()
        } else {
            format!("{}/{}", self.host, self.prefix)
        }
    }

    /// True for registries on the loopback interface, which kiln talks to over plain
    /// HTTP (as the Docker Engine allows for 127.0.0.0/8 without configuration).
    pub fn is_loopback(&self) -> bool {
        let name = self
            .host
            .rsplit_once(':')
            .map_or(self.host.as_str(), |(n, _)| n);
        name == "localhost" || name.starts_with("127.") || name == "[::1]"
    }
}

impl fmt::Display for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.naming_root())
    }
}

fn valid_path_component(part: &str) -> bool {
    let b = part.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && part
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// An image reference in a registry: `host[:port]/repository:tag`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    pub host: String,
    /// The repository path (`prefix/benchmarks/x`).
    pub repository: String,
    pub tag: String,
}

impl Reference {
    /// Parses `host[:port]/path:tag` (the host part is required; a missing tag is `latest`).
    pub fn parse(s: &str) -> anyhow::Result<Reference> {
        let Some((host, rest)) = s.split_once('/') else {
            bail!("image reference {s:?} has no registry host");
        };
        Registry::parse(host).map_err(|e| anyhow::anyhow!("image reference {s:?}: {e}"))?;
        // The tag is after the last ':' that follows the last '/'.
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, t),
            _ => (rest, "latest"),
        };
        if repository.split('/').any(|p| !valid_path_component(p)) {
            bail!("image reference {s:?}: {repository:?} is not a valid repository name");
        }
        if tag.is_empty()
            || tag.len() > 128
            || !tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            || tag.starts_with(['.', '-'])
        {
            bail!("image reference {s:?}: {tag:?} is not a valid tag");
        }
        Ok(Reference {
            host: host.to_string(),
            repository: repository.to_string(),
            tag: tag.to_string(),
        })
    }

    /// `host/repository` (what `docker push` takes with a separate tag).
    pub fn name(&self) -> String {
        format!("{}/{}", self.host, self.repository)
    }

    /// The same repository with another tag.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: tag.to_string(),
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.host, self.repository, self.tag)
    }
}

/// True when `tag` is a valid image tag.
pub fn valid_tag(tag: &str) -> bool {
    Reference::parse(&format!("localhost/x:{tag}")).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries() {
        let r = Registry::parse("127.0.0.1:5000/team/evals/").unwrap();
        assert_eq!(r.host, "127.0.0.1:5000");
        assert_eq!(r.prefix, "team/evals");
        assert_eq!(r.naming_root(), "127.0.0.1:5000/team/evals");
        assert!(r.is_loopback());
        let r = Registry::parse("registry.example.com").unwrap();
        assert_eq!(
            (r.host.as_str(), r.prefix.as_str()),
            ("registry.example.com", "")
        );
        assert!(!r.is_loopback());
        assert!(Registry::parse("localhost").unwrap().is_loopback());
        for bad in [
            "",
            "http://x.io",
            "x.io:0",
            "x.io:99999",
            "myuser",
            "x.io/Upper",
            "x.io/a//b",
            "bad host:1",
        ] {
            assert!(Registry::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references() {
        let r = Reference::parse("127.0.0.1:5000/p/benchmarks/x-t1:v1.2").unwrap();
        assert_eq!(r.host, "127.0.0.1:5000");
        assert_eq!(r.repository, "p/benchmarks/x-t1");
        assert_eq!(r.tag, "v1.2");
        assert_eq!(r.to_string(), "127.0.0.1:5000/p/benchmarks/x-t1:v1.2");
        assert_eq!(r.name(), "127.0.0.1:5000/p/benchmarks/x-t1");
        assert_eq!(Reference::parse("localhost:5000/a").unwrap().tag, "latest");
        assert_eq!(r.with_tag("dev").tag, "dev");
        for bad in ["noslash", "x.io/A:1", "x.io/a:-x", "x.io/a:b c"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
        assert!(valid_tag("v0.1-3-gabc"));
        assert!(!valid_tag("a/b"));
    }
}
