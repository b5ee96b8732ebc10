//! Registry authentication against real parts: Debian's `docker-registry` with
//! `auth.token` fed by the tests' own token service (ES256 JWTs, see
//! `registry_support::token_server`), and with htpasswd Basic auth; images pushed by
//! the real engine. Logins come from a temporary `DOCKER_CONFIG`, never the machine's.
//! Opt-in: `KILN_TEST_DOCKER=1`.
//!
//! Proven here: Basic → Bearer by GET, anonymous tokens for public pulls, the OAuth2
//! refresh_token POST for identity-token logins (read from config.json, and from a
//! credential store), one token per repository and actions until it expires, renewal
//! after expiry, one fresh try after a 401, and errors that name the registry, the
//! user and the login's origin but never the secret.

mod registry_support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use kiln::registry::{push_and_verify, Client, Credentials, PushRequest, Reference, Registry};
use kiln::store::Store;
use registry_support::token_server::{by_scope, TokenServer};
use registry_support::{TestRegistry, USER};

const REFRESH: &str = "kiln-test-refresh-token-0f3c";
const LIFETIME_SEC: u64 = 3;

/// A one-file image imported into the engine (no base image needed).
fn tiny_image(name: &str) {
    let mut tarball = tar::Builder::new(Vec::new());
    let data = format!("{name}\n");
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tarball
        .append_data(&mut header, "tag.txt", data.as_bytes())
        .unwrap();
    let bytes = tarball.into_inner().unwrap();
    let mut child = Command::new("docker")
        .args(["import", "--change", "LABEL kiln.test=auth", "-", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    assert!(child.wait().unwrap().success(), "docker import {name}");
}

/// Removes the test's image when the test ends, however it ends.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", &self.0]).output();
    }
}

fn push(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    local: &str,
    target: &str,
) -> anyhow::Result<()> {
    let req = PushRequest {
        source: local.to_string(),
        store: Store::Docker,
        target: Reference::parse(target).unwrap(),
        required_labels: vec!["kiln.test".into()],
    };
    rt.block_on(push_and_verify(client, &req)).map(|_| ())
}

fn head(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    repo: &str,
) -> anyhow::Result<Option<String>> {
    rt.block_on(client.manifest_digest(repo, "v1"))
}

#[test]
fn token_service_logins() {
    if !registry_support::gate() {
        return;
    }
    let password = TestRegistry::new_password();
    let tokens = TokenServer::start(USER, &password, REFRESH, LIFETIME_SEC);
    let reg = TestRegistry::start_with_auth(tokens.registry_auth_yaml(), password.clone());
    let registry = Registry::parse(&reg.host()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let local = format!("kiln.local/test-auth/tiny:{}", reg.port);
    tiny_image(&local);
    let _image = Image(local.clone());

    // A wrong password: refused by the token service, named, never shown; nothing pushed.
    let wrong = Client::with_credentials(
        &registry,
        Some(Credentials::basic(USER, "not-the-password-9d2").from_source("auths in test")),
    )
    .unwrap();
    let err = format!(
        "{:#}",
        push(&rt, &wrong, &local, &format!("{}/team/a:v1", reg.host())).unwrap_err()
    );
    // (The engine's own message; kiln's commands check the login first, below.)
    assert!(
        err.contains(&reg.host()) && err.contains("unauthorized"),
        "{err}"
    );
    assert!(!err.contains("not-the-password"), "{err}");
    let err = format!("{:#}", rt.block_on(wrong.ping()).unwrap_err());
    assert!(
        err.contains(&reg.host())
            && err.contains(USER)
            && err.contains("refused the login")
            && err.contains("auths in test"),
        "{err}"
    );
    assert!(!err.contains("not-the-password"), "{err}");

    // The right login: the engine pushes two repositories (its own token flow), kiln
    // reads them back (Basic → Bearer by GET).
    let client =
        Client::with_credentials(&registry, Some(Credentials::basic(USER, password.clone())))
            .unwrap();
    assert!(
        head(&rt, &client, "team/a").unwrap().is_none(),
        "the wrong login pushed"
    );
    for repo in ["team/a", "team/b", "public/tiny"] {
        push(&rt, &client, &local, &format!("{}/{repo}:v1", reg.host())).unwrap();
    }
    assert!(tokens
        .seen()
        .iter()
        .any(|s| s.how == format!("basic:{USER}")));

    // Per-scope cache: three HEADs on one repository fetch one token, another
    // repository fetches its own; the tokens are renewed once they expire.
    let client =
        Client::with_credentials(&registry, Some(Credentials::basic(USER, password.clone())))
            .unwrap();
    let before = tokens.seen().len();
    let t0 = Instant::now();
    for _ in 0..3 {
        assert!(head(&rt, &client, "team/a").unwrap().is_some());
    }
    assert!(head(&rt, &client, "team/b").unwrap().is_some());
    assert!(
        t0.elapsed() < Duration::from_secs(LIFETIME_SEC - 1),
        "too slow to count"
    );
    let fetched = by_scope(&tokens.seen()[before..]);
    assert_eq!(
        fetched.get("repository:team/a:pull"),
        Some(&1),
        "{fetched:?}"
    );
    assert_eq!(
        fetched.get("repository:team/b:pull"),
        Some(&1),
        "{fetched:?}"
    );
    assert_eq!(client.token_fetches(), 2);
    // 4 HEADs, 2 challenges answered (a 401 and a retry each), 2 token fetches, and
    // the one probe that finds out whether this loopback registry speaks TLS.
    assert_eq!(client.request_count(), 4 + 2 + 2 + 1);
    std::thread::sleep(Duration::from_secs(LIFETIME_SEC));
    assert!(head(&rt, &client, "team/a").unwrap().is_some());
    assert_eq!(
        client.token_fetches(),
        3,
        "an expired token was not renewed"
    );

    // One fresh try after a 401: a token short of its scope fails once...
    let fresh =
        Client::with_credentials(&registry, Some(Credentials::basic(USER, password.clone())))
            .unwrap();
    tokens.deny_next(1);
    let err = format!("{:#}", head(&rt, &fresh, "team/b").unwrap_err());
    assert!(
        err.contains("repository:team/b:pull") && err.contains(USER),
        "{err}"
    );
    // ... and the cached bad token is replaced by a fresh one at the next request.
    assert!(head(&rt, &fresh, "team/b").unwrap().is_some());
    assert_eq!(fresh.token_fetches(), 2);

    // Anonymous: a pull-only token without credentials for a public repository.
    let anonymous = Client::with_credentials(&registry, None).unwrap();
    let before = tokens.seen().len();
    assert!(head(&rt, &anonymous, "public/tiny").unwrap().is_some());
    let seen = tokens.seen()[before..].to_vec();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].how.as_str()),
        ("GET", "anonymous")
    );
    let err = format!("{:#}", head(&rt, &anonymous, "team/a").unwrap_err());
    assert!(
        err.contains(&reg.host()) && err.contains("docker login"),
        "{err}"
    );

    // Identity-token logins through DOCKER_CONFIG: the OAuth2 refresh_token POST.
    // (This test alone changes the environment of this test binary.)
    let user_only = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:"));
    let config = reg.write_config(
        "docker-config-identity",
        &serde_json::json!({"auths": {reg.host(): {"auth": user_only, "identitytoken": REFRESH}}}),
    );
    std::env::set_var("DOCKER_CONFIG", &config);
    let identity = Client::new(&registry).unwrap();
    let creds = identity.credentials().unwrap();
    assert!(creds.identity_token && creds.username == USER, "{creds:?}");
    let before = tokens.seen().len();
    assert!(head(&rt, &identity, "team/a").unwrap().is_some());
    let seen = tokens.seen()[before..].to_vec();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].how.as_str()),
        ("POST", "refresh_token")
    );
    assert_eq!(seen[0].client_id.as_deref(), Some("kiln"));
    assert_eq!(seen[0].scopes, ["repository:team/a:pull"]);
    // The engine takes the identity token too (and makes its own POST).
    push(&rt, &identity, &local, &format!("{}/team/c:v1", reg.host())).unwrap();

    // A revoked identity token: the error names user and file, never the token.
    let config = reg.write_config(
        "docker-config-revoked",
        &serde_json::json!({"auths": {reg.host(): {"auth": user_only, "identitytoken": "revoked-token-77"}}}),
    );
    std::env::set_var("DOCKER_CONFIG", &config);
    let revoked = Client::new(&registry).unwrap();
    let err = format!("{:#}", rt.block_on(revoked.ping()).unwrap_err());
    assert!(
        err.contains(&reg.host())
            && err.contains(USER)
            && err.contains(&config.join("config.json").display().to_string()),
        "{err}"
    );
    assert!(!err.contains("revoked-token-77"), "{err}");

    // A credential store (credsStore): docker's helper protocol, the login read
    // through a helper program on PATH.
    let helpers = tempfile::tempdir().unwrap();
    let helper = helpers.path().join("docker-credential-kilntest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\n[ \"$1\" = get ] || exit 1\nif [ \"$server\" = \"{}\" ]; then printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{password}\"}}' \"$server\"; else echo 'credentials not found in native keychain'; exit 1; fi\n",
            reg.host()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = reg.write_config(
        "docker-config-store",
        &serde_json::json!({"auths": {}, "credsStore": "kilntest"}),
    );
    std::env::set_var("DOCKER_CONFIG", &config);
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::set_var("PATH", format!("{}:{path}", helpers.path().display()));
    let stored = Client::new(&registry).unwrap();
    let creds = stored.credentials().unwrap();
    assert!(
        creds.source.contains("credsStore") && creds.username == USER,
        "{creds:?}"
    );
    assert!(head(&rt, &stored, "team/b").unwrap().is_some());
    // The store has nothing for another registry: anonymous, not an error.
    assert!(kiln::registry::auth::lookup("127.0.0.1:1")
        .unwrap()
        .is_none());
    std::env::set_var("PATH", path);
    std::env::remove_var("DOCKER_CONFIG");
}

/// htpasswd Basic auth: the right login pushes and reads; a wrong one is refused,
/// named, and pushes nothing.
#[test]
fn basic_auth_logins() {
    if !registry_support::gate() {
        return;
    }
    let reg = TestRegistry::start();
    let registry = Registry::parse(&reg.host()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let local = format!("kiln.local/test-auth/basic:{}", reg.port);
    tiny_image(&local);
    let _image = Image(local.clone());
    let wrong = Client::with_credentials(
        &registry,
        Some(Credentials::basic(USER, "wrong-basic-secret")),
    )
    .unwrap();
    let err = format!(
        "{:#}",
        push(&rt, &wrong, &local, &format!("{}/x:v1", reg.host())).unwrap_err()
    );
    assert!(err.contains(&reg.host()), "{err}");
    assert!(!err.contains("wrong-basic-secret"), "{err}");
    let client = Client::with_credentials(
        &registry,
        Some(Credentials::basic(USER, reg.password.clone())),
    )
    .unwrap();
    assert_eq!(
        rt.block_on(client.catalog()).unwrap(),
        Vec::<String>::new(),
        "a wrong login pushed"
    );
    push(&rt, &client, &local, &format!("{}/x:v1", reg.host())).unwrap();
    // Basic is sent up front once the registry asked for it: one challenge in all.
    let n = client.request_count();
    for _ in 0..3 {
        assert!(head(&rt, &client, "x").unwrap().is_some());
    }
    assert_eq!(client.request_count(), n + 3);
    assert_eq!(client.token_fetches(), 0);
}
