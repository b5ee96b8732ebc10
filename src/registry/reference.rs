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

    /// True for registries on the loopback interface, which kiln may talk to over plain
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

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's API endpoint (`docker.io` is only a name).
pub const DOCKER_HUB_ENDPOINT: &str = "registry-1.docker.io";
/// The key `docker login` stores Docker Hub's login under.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// The host a registry name is reached at: Docker Hub's names (`docker.io`,
/// `index.docker.io`) go to `registry-1.docker.io`; any other host is itself.
pub fn endpoint_host(host: &str) -> &str {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_ENDPOINT,
        other => other,
    }
}

/// The key of a registry's login in the Docker client configuration: Docker Hub's is
/// `https://index.docker.io/v1/`, any other registry's its `host[:port]`.
pub fn credentials_key(host: &str) -> String {
    if endpoint_host(host) == DOCKER_HUB_ENDPOINT {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        host.to_string()
    }
}

/// Any image reference, normalised as docker's reference grammar does
/// (github.com/distribution/reference `ParseNormalizedNamed`): `x` is
/// `docker.io/library/x`, `index.docker.io` is `docker.io`, the tag defaults to `latest`
/// only when there is no digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// `docker.io`, `host`, `host:port` or `[v6]:port`.
    pub domain: String,
    /// The repository path (`library/x`).
    pub path: String,
    pub tag: Option<String>,
    /// `algorithm:hex`.
    pub digest: Option<String>,
}

impl ImageName {
    /// Parses and normalises `s`; an invalid reference is an error saying why.
    pub fn parse_normalized(s: &str) -> anyhow::Result<ImageName> {
        let bad = |why: &str| anyhow::anyhow!("image reference {s:?}: {why}");
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(bad(
                "a 64-hex identifier is an image id, not a repository name",
            ));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (s, None),
        };
        let (name, tag) = match rest.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') && !t.contains(']') => (n, Some(t)),
            _ => (rest, None),
        };
        // The first component is a domain if it has a dot or a port, is localhost, or
        // has an uppercase letter (which a repository path cannot).
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first, remainder.to_string())
            }
            _ => (DOCKER_HUB, name.to_string()),
        };
        let domain = if domain == "index.docker.io" {
            DOCKER_HUB
        } else {
            domain
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("the repository name must be lowercase"));
        }
        if !valid_domain(domain) {
            return Err(bad(&format!("{domain:?} is not a valid registry host")));
        }
        let path = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.split('/').any(|c| !valid_grammar_component(c)) {
            return Err(bad(&format!(
                "{path:?} is not a valid repository path (lowercase letters and digits, \
                 separated by . _ __ or dashes, components joined by /)"
            )));
        }
        if domain.len() + 1 + path.len() > 255 {
            return Err(bad("the name is longer than 255 characters"));
        }
        if let Some(t) = tag {
            let b = t.as_bytes();
            let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
            if b.is_empty()
                || b.len() > 128
                || !word(b[0])
                || !b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
            {
                return Err(bad(&format!("{t:?} is not a valid tag")));
            }
        }
        if let Some(d) = digest {
            valid_digest(d).map_err(|why| bad(&why))?;
        }
        Ok(ImageName {
            domain: domain.to_string(),
            path,
            tag: match (tag, digest) {
                (None, None) => Some("latest".into()),
                (t, _) => t.map(str::to_string),
            },
            digest: digest.map(str::to_string),
        })
    }

    /// The host to send API requests to.
    pub fn endpoint(&self) -> &str {
        endpoint_host(&self.domain)
    }

    /// What to ask the registry for: the digest when there is one, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `host[:port]` or `[ipv6]:port` as the reference grammar allows.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty() || !v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return false;
        }
        match after.strip_prefix(':') {
            Some(p) => ("", Some(p)),
            None if after.is_empty() => ("", None),
            None => return false,
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if d.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        })
}

/// A path component: `[a-z0-9]+` runs separated by `.`, `_`, `__` or one or more `-`.
fn valid_grammar_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// `algorithm:hex`, with sha256 (64) and sha512 (128) lengths checked.
fn valid_digest(d: &str) -> Result<(), String> {
    let Some((alg, hex)) = d.split_once(':') else {
        return Err(format!("{d:?} is not a digest (algorithm:hex)"));
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|p| {
        p.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && p.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if !alg_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{d:?} is not a digest (algorithm:hex)"));
    }
    let want = match alg {
        "sha256" => Some(64),
        "sha512" => Some(128),
        _ => None,
    };
    if want.is_some_and(|n| n != hex.len()) {
        return Err(format!(
            "{d:?}: a {alg} digest has {} hex digits",
            want.unwrap_or(0)
        ));
    }
    Ok(())
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

    /// Cases from github.com/distribution/reference's normalize tests.
    #[test]
    fn docker_normalisation() {
        let d = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";
        for (input, want) in [
            ("redis", "docker.io/library/redis:latest".to_string()),
            ("redis:latest", "docker.io/library/redis:latest".into()),
            ("docker.io/library/redis:latest", "docker.io/library/redis:latest".into()),
            (&format!("redis@{d}"), format!("docker.io/library/redis@{d}")),
            ("dmcgowan/myapp", "docker.io/dmcgowan/myapp:latest".into()),
            ("docker.io/mcgowan/myapp:latest", "docker.io/mcgowan/myapp:latest".into()),
            (&format!("dmcgowan/myapp@{d}"), format!("docker.io/dmcgowan/myapp@{d}")),
            ("dbcc1", "docker.io/library/dbcc1:latest".into()),
            ("index.docker.io/library/ubuntu", "docker.io/library/ubuntu:latest".into()),
            ("docker.io/foo", "docker.io/library/foo:latest".into()),
            ("library/foo/bar", "docker.io/library/foo/bar:latest".into()),
            ("127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase:latest".into()),
            ("example.com:8000/privatebasee", "example.com:8000/privatebasee:latest".into()),
            ("Foo/bar", "Foo/bar:latest".into()),
            ("test_com/foo", "docker.io/test_com/foo:latest".into()),
            ("xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo:latest".into()),
            ("[fc00::1]:5000/docker/docker", "[fc00::1]:5000/docker/docker:latest".into()),
            ("192.168.0.1", "docker.io/library/192.168.0.1:latest".into()),
            (
                "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa",
                "docker.io/library/busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa".into(),
            ),
        ] {
            let got = ImageName::parse_normalized(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got.to_string(), want, "{input}");
        }
        for valid in [
            "docker---rules/docker",
            "dock__er/docker",
            "d/docker",
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
            "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
            "192.168.0.1:8/debian",
        ] {
            assert!(ImageName::parse_normalized(valid).is_ok(), "{valid}");
        }
        for invalid in [
            "https://github.com/docker/docker",
            "docker/Docker",
            "-docker",
            "-docker/docker",
            "-docker.io/docker/docker",
            "docker///docker",
            "docker.io/docker/Docker",
            "[fc00::1]",
            "[fc00::1]:5000",
            "fc00::1:5000/debian",
            "[fe80::1%eth0]:5000/debian",
            "[2001:db8:3:4::192.0.2.33]:5000/debian",
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "docker-/docker",
            "____/____",
            "_docker/_docker",
            "dock..er/docker",
            "dock_.er/docker",
            "dock-.er/docker",
            "docker/",
            "busybox:-foo",
            "busybox@foo",
            "busybox@sha256:abcd",
        ] {
            assert!(ImageName::parse_normalized(invalid).is_err(), "{invalid}");
        }
        let long = format!("{}/docker", "a".repeat(256));
        assert!(ImageName::parse_normalized(&long).is_err());
    }

    #[test]
    fn docker_hub_endpoint_and_login_key() {
        let n = ImageName::parse_normalized("ubuntu").unwrap();
        assert_eq!(n.endpoint(), "registry-1.docker.io");
        assert_eq!(n.manifest_reference(), "latest");
        assert_eq!(credentials_key("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(
            credentials_key("index.docker.io"),
            "https://index.docker.io/v1/"
        );
        assert_eq!(credentials_key("ghcr.io"), "ghcr.io");
        assert_eq!(endpoint_host("ghcr.io:443"), "ghcr.io:443");
        let pinned = ImageName::parse_normalized(
            "ghcr.io/o/x:v1@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa",
        )
        .unwrap();
        assert_eq!(pinned.tag.as_deref(), Some("v1"));
        assert!(pinned.manifest_reference().starts_with("sha256:"));
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
