//! Registry credentials from the standard Docker client configuration —
//! `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, with its `auths`,
//! `credsStore` and `credHelpers` — exactly what `docker login` writes. The secret is
//! read through the `docker_credential` crate (which runs the credential helpers);
//! kiln reads the file once more itself only to say where a login came from and whose
//! it is. The secret never reaches `Debug`, `Display`, an error message or a command
//! line.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use docker_credential::{CredentialRetrievalError, DockerCredential};
use serde::Deserialize;

/// The key `docker login` files Docker Hub's login under, whatever name the image used.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A login for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    secret: String,
    /// True when `secret` is an identity token (a refresh token for the registry's
    /// token service) rather than a password.
    pub identity_token: bool,
    /// Where the login came from, for messages (`auths in /root/.docker/config.json`).
    pub source: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials {{ username: {:?}, identity_token: {}, source: {:?}, secret: <redacted> }}",
            self.username, self.identity_token, self.source
        )
    }
}

impl Credentials {
    /// A username and password (tests, and callers with their own source).
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            secret: password.into(),
            identity_token: false,
            source: "given by the caller".into(),
        }
    }

    /// An identity token (what `docker login` stores for registries that hand out
    /// refresh tokens); `username` only names the login in messages.
    pub fn identity(username: impl Into<String>, token: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            secret: token.into(),
            identity_token: true,
            source: "given by the caller".into(),
        }
    }

    /// The same login with its origin recorded.
    pub fn from_source(mut self, source: impl Into<String>) -> Credentials {
        self.source = source.into();
        self
    }

    /// The password or token; only for the request that needs it.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The value of an `Authorization: Basic …` header.
    pub fn basic_header(&self) -> String {
        format!("Basic {}", self.basic_auth())
    }

    /// `base64(user:password)`, the `auth` field of Docker's config format.
    fn basic_auth(&self) -> String {
        let raw = format!("{}:{}", self.username, self.secret);
        base64::engine::general_purpose::STANDARD.encode(raw)
    }

    /// The Docker Engine's `X-Registry-Auth` value for `server` (for bollard).
    pub fn for_engine(&self, server: &str) -> bollard::auth::DockerCredentials {
        let mut c = bollard::auth::DockerCredentials {
            serveraddress: Some(server.to_string()),
            ..Default::default()
        };
        if self.identity_token {
            c.identitytoken = Some(self.secret.clone());
        } else {
            c.username = Some(self.username.clone());
            c.password = Some(self.secret.clone());
        }
        c
    }

    /// A podman `--authfile` body (Docker's config format) holding only this login.
    pub fn authfile_json(&self, server: &str) -> String {
        let entry = if self.identity_token {
            serde_json::json!({ "identitytoken": self.secret })
        } else {
            serde_json::json!({ "auth": self.basic_auth() })
        };
        serde_json::json!({ "auths": { server: entry } }).to_string()
    }

    /// The body of a Kubernetes `kubernetes.io/dockerconfigjson` Secret for `server`.
    /// `None` for an identity token: the kubelet reads only username and password.
    pub fn dockerconfigjson(&self, server: &str) -> Option<String> {
        if self.identity_token {
            return None;
        }
        Some(
            serde_json::json!({ "auths": { server: {
                "username": self.username,
                "password": self.secret,
                "auth": self.basic_auth(),
            } } })
            .to_string(),
        )
    }
}

/// Where the Docker client configuration is read from (for messages).
pub fn config_path() -> PathBuf {
    crate::env::DOCKER_CONFIG
        .get_os()
        .map(PathBuf::from)
        .or_else(|| crate::env::HOME.path().map(|h| h.join(".docker")))
        .unwrap_or_default()
        .join("config.json")
}

/// The key the Docker client files `host`'s login under: Docker Hub's names
/// (`docker.io`, `index.docker.io`, `registry-1.docker.io`) share
/// [`DOCKER_HUB_KEY`]; any other registry is its `host[:port]`.
pub fn config_key(host: &str) -> String {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_string(),
        _ => host.to_string(),
    }
}

/// What kiln reads of the configuration itself: which mechanism holds a login.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    identitytoken: Option<String>,
}

impl ConfigFile {
    /// The `auths` entry for `key`, also under the URL forms older clients wrote
    /// (`https://host`, `http://host/v2/`).
    fn entry(&self, key: &str) -> Option<&AuthEntry> {
        self.auths.get(key).or_else(|| {
            self.auths.iter().find_map(|(k, v)| {
                let bare = k
                    .strip_prefix("https://")
                    .or_else(|| k.strip_prefix("http://"))?;
                (bare.split('/').next() == Some(key)).then_some(v)
            })
        })
    }

    /// Where `key`'s login comes from, in docker's order: a `credHelpers` entry, an
    /// `auths` entry that holds the login, then `credsStore`. `None`: no login.
    fn source(&self, key: &str) -> Option<String> {
        let path = config_path();
        if let Some(h) = self.cred_helpers.get(key).filter(|h| !h.is_empty()) {
            return Some(format!(
                "credential helper docker-credential-{h} (credHelpers in {})",
                path.display()
            ));
        }
        if let Some(e) = self.entry(key) {
            let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
            if set(&e.auth) || set(&e.identitytoken) || set(&e.username) {
                return Some(format!("auths in {}", path.display()));
            }
        }
        self.creds_store
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| {
                format!(
                    "credential store docker-credential-{s} (credsStore in {})",
                    path.display()
                )
            })
    }

    /// The user an identity-token login belongs to (docker keeps it in `auth` as
    /// `user:`), for messages.
    fn identity_user(&self, key: &str) -> Option<String> {
        let e = self.entry(key)?;
        if let Some(u) = &e.username {
            return Some(u.clone());
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(e.auth.as_ref()?)
            .ok()?;
        let user = String::from_utf8(raw).ok()?.split(':').next()?.to_string();
        (!user.is_empty()).then_some(user)
    }
}

fn read_config() -> anyhow::Result<Option<ConfigFile>> {
    let path = config_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!(
            "cannot read the Docker client configuration {}: {e}",
            path.display()
        ),
    };
    // serde_json's message names line and column, never the value.
    serde_json::from_str(&text).map(Some).map_err(|e| {
        anyhow::anyhow!(
            "the Docker client configuration {} is not valid: {e}",
            path.display()
        )
    })
}

/// True when the configuration names a way to log in to `host` (without asking a
/// credential helper, which may prompt or reach a keychain).
pub fn has_login(host: &str) -> anyhow::Result<bool> {
    Ok(read_config()?.is_some_and(|c| c.source(&config_key(host)).is_some()))
}

/// The login for `host` (`host[:port]`, as `docker login` names it). `Ok(None)`: no
/// configuration or no login for that host (anonymous access). A configuration that
/// exists but cannot be used is an error naming the file, never the secret.
pub fn lookup(host: &str) -> anyhow::Result<Option<Credentials>> {
    let Some(config) = read_config()? else {
        return Ok(None);
    };
    let key = config_key(host);
    let Some(source) = config.source(&key) else {
        return Ok(None);
    };
    match docker_credential::get_credential(&key) {
        Ok(DockerCredential::UsernamePassword(username, password)) => Ok(Some(
            Credentials::basic(username, password).from_source(source),
        )),
        Ok(DockerCredential::IdentityToken(token)) => {
            let user = config
                .identity_user(&key)
                .unwrap_or_else(|| "<identity token>".into());
            Ok(Some(Credentials::identity(user, token).from_source(source)))
        }
        Err(CredentialRetrievalError::NoCredentialConfigured) => Ok(None),
        // A store that has nothing for this registry says so this way (docker's own
        // helper client treats it as "no login").
        Err(CredentialRetrievalError::HelperFailure { stdout, .. })
            if stdout.contains("credentials not found") =>
        {
            Ok(None)
        }
        Err(CredentialRetrievalError::HelperFailure { helper, .. }) => {
            // The helper's output is not shown: it may hold the secret.
            anyhow::bail!("the login for {host} failed: {helper} answered an error ({source})")
        }
        Err(CredentialRetrievalError::HelperCommunicationError) => {
            anyhow::bail!("the login for {host} needs a credential helper that cannot be run ({source}); is it installed?")
        }
        Err(e) => anyhow::bail!("the login for {host} ({source}) is unusable: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "hunter2-secret";

    #[test]
    fn secret_stays_out_of_debug() {
        let c = Credentials::basic("kiln", SECRET);
        assert!(!format!("{c:?}").contains("hunter2"));
        let t = Credentials::identity("kiln", SECRET);
        assert!(!format!("{t:?}").contains("hunter2"));
        assert_eq!(c.basic_header(), "Basic a2lsbjpodW50ZXIyLXNlY3JldA==");
        let file: serde_json::Value =
            serde_json::from_str(&c.authfile_json("127.0.0.1:5000")).unwrap();
        assert_eq!(
            file["auths"]["127.0.0.1:5000"]["auth"],
            "a2lsbjpodW50ZXIyLXNlY3JldA=="
        );
        let file: serde_json::Value =
            serde_json::from_str(&t.authfile_json("127.0.0.1:5000")).unwrap();
        assert_eq!(file["auths"]["127.0.0.1:5000"]["identitytoken"], SECRET);
        let engine = c.for_engine("127.0.0.1:5000");
        assert_eq!(engine.username.as_deref(), Some("kiln"));
        assert_eq!(
            t.for_engine("r.example").identitytoken.as_deref(),
            Some(SECRET)
        );
    }

    #[test]
    fn pull_secret_body_is_what_the_kubelet_reads() {
        let c = Credentials::basic("kiln", SECRET);
        let v: serde_json::Value =
            serde_json::from_str(&c.dockerconfigjson("r.example:5000").unwrap()).unwrap();
        let e = &v["auths"]["r.example:5000"];
        assert_eq!(e["username"], "kiln");
        assert_eq!(e["password"], SECRET);
        assert_eq!(e["auth"], "a2lsbjpodW50ZXIyLXNlY3JldA==");
        assert!(Credentials::identity("kiln", SECRET)
            .dockerconfigjson("r.example")
            .is_none());
    }

    #[test]
    fn docker_hub_names_share_one_key() {
        for h in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(config_key(h), DOCKER_HUB_KEY);
        }
        assert_eq!(config_key("ghcr.io"), "ghcr.io");
        assert_eq!(config_key("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    fn config(json: &str) -> ConfigFile {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn sources_in_dockers_order() {
        let c = config(
            r#"{"auths":{"a.example":{"auth":"eDp5"},"https://b.example/v2/":{"auth":"eDp5"},
                "c.example":{},"f.example":{"auth":""},"https://index.docker.io/v1/":{"auth":"dTp0","identitytoken":"t"}},
                "credsStore":"desktop","credHelpers":{"d.example":"gcloud","a.example":"pass"}}"#,
        );
        assert!(c
            .source("a.example")
            .unwrap()
            .contains("docker-credential-pass"));
        assert!(c.source("b.example").unwrap().starts_with("auths in"));
        // An empty auths entry (what docker writes beside a store) defers to the store.
        assert!(c
            .source("c.example")
            .unwrap()
            .contains("docker-credential-desktop"));
        assert!(c.source("d.example").unwrap().contains("credHelpers"));
        assert!(c.source("e.example").unwrap().contains("credsStore"));
        assert!(c.source("f.example").unwrap().contains("credsStore"));
        assert_eq!(c.identity_user(DOCKER_HUB_KEY).as_deref(), Some("u"));
        assert!(config(r#"{"auths":{}}"#).source("x.example").is_none());
    }

    #[test]
    fn reads_what_docker_login_writes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"127.0.0.1:5999":{"auth":"a2lsbjpodW50ZXIyLXNlY3JldA=="}}}"#,
        )
        .unwrap();
        let conf = std::fs::File::open(dir.path().join("config.json")).unwrap();
        match docker_credential::get_credential_from_reader(conf, "127.0.0.1:5999").unwrap() {
            DockerCredential::UsernamePassword(u, p) => {
                assert_eq!((u.as_str(), p.as_str()), ("kiln", SECRET))
            }
            DockerCredential::IdentityToken(_) => panic!("expected a password"),
        }
    }
}
