//! Registry credentials from the standard Docker client configuration —
//! `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, with its `auths`,
//! `credsStore` and `credHelpers` — exactly what `docker login` writes (read through
//! the `docker_credential` crate). The secret never reaches `Debug`, `Display`, an
//! error message or a command line.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use docker_credential::{CredentialRetrievalError, DockerCredential};

/// A login for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    secret: String,
    /// True when `secret` is an identity token (a refresh token for the registry's
    /// token service) rather than a password.
    pub identity_token: bool,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials {{ username: {:?}, secret: <redacted> }}",
            self.username
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
        }
    }

    /// The password or token; only for the request that needs it.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The value of an `Authorization: Basic …` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
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
        let raw = format!("{}:{}", self.username, self.secret);
        serde_json::json!({
            "auths": { server: { "auth": base64::engine::general_purpose::STANDARD.encode(raw) } }
        })
        .to_string()
    }
}

/// Where the Docker client configuration is read from (for messages).
pub fn config_path() -> PathBuf {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .unwrap_or_default()
        .join("config.json")
}

/// The login for `host` (`host[:port]`, as `docker login` names it). `Ok(None)`: no
/// configuration or no login for that host (anonymous access). A configuration that
/// exists but cannot be used is an error naming the file, never the secret.
pub fn lookup(host: &str) -> anyhow::Result<Option<Credentials>> {
    // `docker login` keys auths by the bare host; older clients wrote a URL.
    let keys = [
        host.to_string(),
        format!("https://{host}"),
        format!("http://{host}"),
    ];
    for key in &keys {
        match docker_credential::get_credential(key) {
            Ok(DockerCredential::UsernamePassword(username, password)) => {
                return Ok(Some(Credentials::basic(username, password)));
            }
            Ok(DockerCredential::IdentityToken(token)) => {
                return Ok(Some(Credentials {
                    username: "<token>".into(),
                    secret: token,
                    identity_token: true,
                }));
            }
            Err(CredentialRetrievalError::NoCredentialConfigured) => continue,
            Err(CredentialRetrievalError::ConfigNotFound)
            | Err(CredentialRetrievalError::ConfigReadError) => {
                if config_path().exists() {
                    anyhow::bail!(
                        "cannot read the Docker client configuration {}",
                        config_path().display()
                    );
                }
                return Ok(None);
            }
            Err(CredentialRetrievalError::HelperFailure { helper, .. }) => {
                // The helper's output is not shown: it may hold the secret.
                anyhow::bail!(
                    "the credential helper {helper} (configured in {}) failed for {host}",
                    config_path().display()
                );
            }
            Err(e) => anyhow::bail!(
                "the login for {host} in {} is unusable: {e}",
                config_path().display()
            ),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_stays_out_of_debug() {
        let c = Credentials::basic("kiln", "hunter2-secret");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.basic_header(), "Basic a2lsbjpodW50ZXIyLXNlY3JldA==");
        let file: serde_json::Value =
            serde_json::from_str(&c.authfile_json("127.0.0.1:5000")).unwrap();
        assert_eq!(
            file["auths"]["127.0.0.1:5000"]["auth"],
            "a2lsbjpodW50ZXIyLXNlY3JldA=="
        );
        let engine = c.for_engine("127.0.0.1:5000");
        assert_eq!(engine.username.as_deref(), Some("kiln"));
    }

    #[test]
    fn reads_what_docker_login_writes() {
        // docker_credential reads $DOCKER_CONFIG: a child process keeps this test's
        // environment change away from the others.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"127.0.0.1:5999":{"auth":"a2lsbjpodW50ZXIyLXNlY3JldA=="}}}"#,
        )
        .unwrap();
        let conf = std::fs::File::open(dir.path().join("config.json")).unwrap();
        match docker_credential::get_credential_from_reader(conf, "127.0.0.1:5999").unwrap() {
            DockerCredential::UsernamePassword(u, p) => {
                assert_eq!((u.as_str(), p.as_str()), ("kiln", "hunter2-secret"))
            }
            DockerCredential::IdentityToken(_) => panic!("expected a password"),
        }
    }
}
