//! Answering a registry's `WWW-Authenticate` challenge the way docker does (the
//! distribution spec's "token authentication" and "OAuth2" pages):
//!
//! - `Basic`: the login, on every later request too.
//! - `Bearer realm=… service=… scope=…`: a token from the realm — `GET` without a login
//!   (anonymous, e.g. pulls of public repositories), `GET` with the login as Basic, or,
//!   when the login is an identity token, the OAuth2 `POST` with
//!   `grant_type=refresh_token`. The answer's `token` (or `access_token`) is cached
//!   per scope — repository and actions; the client is per registry — until a little
//!   before `expires_in` (60 s when absent) from `issued_at` runs out.
//!
//! The scope a request needs is known from its path, so a cached token is only ever
//! sent for the repository and actions it was granted for. One fresh token is fetched
//! after a 401 (expired early, revoked, or short of a scope); a second 401 is an error
//! naming the registry, the user and where the login came from — never the secret.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use bytes::Bytes;
use hyper::{Method, StatusCode};

use super::auth::{self, Credentials};

/// What a token may live when the token service does not say (the spec's default).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
/// Renew at most this long before a token runs out (a quarter of shorter lifetimes).
const RENEW_EARLY: Duration = Duration::from_secs(10);

/// The one HTTP exchange the token flow needs from the client's transport.
pub trait Transport {
    /// Sends `method url` with an optional `Authorization` value and an optional
    /// `application/x-www-form-urlencoded` body; answers status and body.
    fn exchange(
        &self,
        method: Method,
        url: &str,
        authorization: Option<&str>,
        form: Option<String>,
    ) -> impl Future<Output = anyhow::Result<(StatusCode, Bytes)>> + Send;
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `basic` or `bearer` (lowercase).
    pub scheme: String,
    pub realm: Option<String>,
    pub service: Option<String>,
    /// Every scope asked for (the `scope` parameter holds them space-separated).
    pub scopes: Vec<String>,
}

impl Challenge {
    pub fn parse(header: &str) -> Challenge {
        let (scheme, _) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        let params = parse_params(header);
        Challenge {
            scheme: scheme.to_ascii_lowercase(),
            realm: params.get("realm").cloned(),
            service: params.get("service").cloned(),
            scopes: params
                .get("scope")
                .map(|s| s.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
        }
    }
}

/// The `key="value"` parameters of a challenge.
fn parse_params(challenge: &str) -> HashMap<String, String> {
    let rest = challenge.trim().split_once(' ').map_or("", |(_, r)| r);
    let mut out = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut escaped = false;
            for c in chars.by_ref() {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => break,
                    _ => {
                        value.push(c);
                        escaped = false;
                    }
                }
            }
            for c in chars.by_ref() {
                if c == ',' {
                    break;
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        out.insert(key, value.trim().to_string());
    }
    out
}

/// The scope a request to `path` needs: `repository:NAME:pull` for reads,
/// `repository:NAME:pull,push` for writes, `registry:catalog:*` for the catalog;
/// `None` for `/v2/` itself.
pub fn scope_for(method: &Method, path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let rest = path.strip_prefix("/v2/")?;
    if rest.is_empty() {
        return None;
    }
    if rest == "_catalog" {
        return Some("registry:catalog:*".into());
    }
    let name = ["/manifests/", "/blobs/", "/tags/"]
        .iter()
        .filter_map(|m| rest.find(m).map(|i| &rest[..i]))
        .min_by_key(|n| n.len())?;
    let actions = match *method {
        Method::GET | Method::HEAD => "pull",
        Method::DELETE => "delete",
        _ => "pull,push",
    };
    Some(format!("repository:{name}:{actions}"))
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
struct Token {
    value: String,
    renew_at: Instant,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Token {{ value: <redacted>, renew_at: {:?} }}",
            self.renew_at
        )
    }
}

/// A client's authentication state: whether the registry takes Basic, and its tokens.
#[derive(Debug, Default)]
pub struct Tokens {
    basic: AtomicBool,
    cache: Mutex<HashMap<String, Token>>,
    fetched: AtomicUsize,
}

impl Tokens {
    /// Tokens fetched from token services so far.
    pub fn fetched(&self) -> usize {
        self.fetched.load(Ordering::Relaxed)
    }

    /// The `Authorization` value to send first for a request needing `scope`: a
    /// current token for exactly that scope, else Basic where the registry took it.
    pub fn authorization(
        &self,
        scope: Option<&str>,
        creds: Option<&Credentials>,
    ) -> Option<String> {
        let key = scope.unwrap_or("");
        let cache = self.cache.lock().expect("token cache");
        if let Some(t) = cache.get(key).filter(|t| Instant::now() < t.renew_at) {
            return Some(format!("Bearer {}", t.value));
        }
        if self.basic.load(Ordering::Relaxed) {
            return creds
                .filter(|c| !c.identity_token)
                .map(Credentials::basic_header);
        }
        None
    }

    /// Answers a 401's challenge: the `Authorization` value for the one retry. Any
    /// cached token for `scope` is dropped first (the registry just refused it).
    pub async fn answer<T: Transport>(
        &self,
        transport: &T,
        host: &str,
        challenge: Option<&str>,
        scope: Option<&str>,
        creds: Option<&Credentials>,
        sent: Option<&str>,
    ) -> anyhow::Result<String> {
        let key = scope.unwrap_or("").to_string();
        self.cache.lock().expect("token cache").remove(&key);
        let c = Challenge::parse(challenge.unwrap_or(""));
        match c.scheme.as_str() {
            "bearer" => {
                let mut scopes = c.scopes.clone();
                if let Some(s) = scope {
                    if !scopes.iter().any(|x| x == s) {
                        scopes.push(s.to_string());
                    }
                }
                let token = self.fetch(transport, host, &c, &scopes, creds).await?;
                let header = format!("Bearer {}", token.value);
                self.cache.lock().expect("token cache").insert(key, token);
                Ok(header)
            }
            "basic" => {
                let Some(creds) = creds else {
                    return Err(no_login(host));
                };
                if creds.identity_token || sent.is_some_and(|s| s.starts_with("Basic ")) {
                    return Err(refused(host, creds, scope));
                }
                self.basic.store(true, Ordering::Relaxed);
                Ok(creds.basic_header())
            }
            _ => bail!(
                "registry {host} asks for authentication kiln does not know ({:?})",
                challenge.unwrap_or("no WWW-Authenticate header")
            ),
        }
    }

    /// A token from the challenge's realm for `scopes`.
    async fn fetch<T: Transport>(
        &self,
        transport: &T,
        host: &str,
        c: &Challenge,
        scopes: &[String],
        creds: Option<&Credentials>,
    ) -> anyhow::Result<Token> {
        let realm = c
            .realm
            .as_deref()
            .ok_or_else(|| anyhow!("registry {host}: a Bearer challenge without a realm"))?;
        let mut params: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = &c.service {
            params.push(("service", s));
        }
        params.extend(scopes.iter().map(|s| ("scope", s.as_str())));
        let (status, body) = match creds {
            Some(cr) if cr.identity_token => {
                params.extend([
                    ("grant_type", "refresh_token"),
                    ("refresh_token", cr.secret()),
                    ("client_id", "kiln"),
                ]);
                transport
                    .exchange(Method::POST, realm, None, Some(form(&params)))
                    .await?
            }
            _ => {
                let sep = if realm.contains('?') { '&' } else { '?' };
                let url = format!("{realm}{sep}{}", form(&params));
                let authz = creds.map(Credentials::basic_header);
                transport
                    .exchange(Method::GET, &url, authz.as_deref(), None)
                    .await?
            }
        };
        self.fetched.fetch_add(1, Ordering::Relaxed);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(match creds {
                Some(cr) => refused(host, cr, scopes.first().map(String::as_str)),
                None => no_login(host),
            });
        }
        if !status.is_success() {
            let mut text = String::from_utf8_lossy(&body).trim().to_string();
            if let Some(cr) = creds {
                // A token service echoing the request must not put the secret in a message.
                text = text.replace(cr.secret(), "<redacted>");
            }
            bail!(
                "registry {host}: its token service {realm} answered {status}: {}",
                text.chars().take(300).collect::<String>()
            );
        }
        let token = parse_token(&body, std::time::SystemTime::now())
            .map_err(|e| anyhow!("registry {host}: the token service {realm}: {e}"))?;
        Ok(token)
    }
}

/// The token in a token service's answer, with when to renew it.
fn parse_token(body: &[u8], now: std::time::SystemTime) -> anyhow::Result<Token> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| anyhow!("its answer is not JSON"))?;
    let value = json
        .get("token")
        .or_else(|| json.get("access_token"))
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| anyhow!("its answer holds no token"))?
        .to_string();
    let lifetime = json
        .get("expires_in")
        .and_then(|v| v.as_u64())
        .filter(|s| *s > 0)
        .map_or(DEFAULT_LIFETIME, Duration::from_secs);
    // Time already spent since `issued_at`, when the clocks agree well enough to say.
    let age = json
        .get("issued_at")
        .and_then(|v| v.as_str())
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .and_then(|t| now.duration_since(std::time::SystemTime::from(t)).ok())
        .filter(|a| *a < lifetime)
        .unwrap_or_default();
    let left = lifetime - age;
    let early = RENEW_EARLY.min(lifetime / 4);
    Ok(Token {
        value,
        renew_at: Instant::now() + left.saturating_sub(early),
    })
}

/// `application/x-www-form-urlencoded` (also the query string of a GET).
fn form(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The registry wants a login and there is none.
pub fn no_login(host: &str) -> anyhow::Error {
    anyhow!(
        "registry {host} requires a login and {} has none for it (run `docker login {host}`)",
        auth::config_path().display()
    )
}

/// The registry or its token service refused the login.
pub fn refused(host: &str, creds: &Credentials, scope: Option<&str>) -> anyhow::Error {
    let what = scope.map(|s| format!(" for {s}")).unwrap_or_default();
    anyhow!(
        "registry {host} refused the login of user {:?}{what} (login from {}): wrong credentials \
         or no access? run `docker login {host}`",
        creds.username,
        creds.source
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="http://127.0.0.1:5001/token",service="registry",scope="repository:a/b:pull,push repository:c:pull""#,
        );
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.realm.as_deref(), Some("http://127.0.0.1:5001/token"));
        assert_eq!(c.service.as_deref(), Some("registry"));
        assert_eq!(c.scopes, ["repository:a/b:pull,push", "repository:c:pull"]);
        let b = Challenge::parse(r#"Basic realm="Registry \"Realm\"""#);
        assert_eq!(
            (b.scheme.as_str(), b.realm.as_deref()),
            ("basic", Some("Registry \"Realm\""))
        );
        assert!(Challenge::parse("Basic").realm.is_none());
        let unquoted = Challenge::parse("Bearer realm=https://auth.example/token, service=reg");
        assert_eq!(
            unquoted.realm.as_deref(),
            Some("https://auth.example/token")
        );
        assert_eq!(unquoted.service.as_deref(), Some("reg"));
    }

    #[test]
    fn scopes_follow_the_request() {
        let s = |m: Method, p: &str| scope_for(&m, p);
        assert_eq!(s(Method::GET, "/v2/"), None);
        assert_eq!(
            s(Method::HEAD, "/v2/team/a/manifests/v1").as_deref(),
            Some("repository:team/a:pull")
        );
        assert_eq!(
            s(Method::PUT, "/v2/a/manifests/v1").as_deref(),
            Some("repository:a:pull,push")
        );
        assert_eq!(
            s(Method::GET, "/v2/a/tags/list?n=1000").as_deref(),
            Some("repository:a:pull")
        );
        // A repository named like a route part: the first route segment decides.
        assert_eq!(
            s(Method::GET, "/v2/x/blobs/y/blobs/sha256:1").as_deref(),
            Some("repository:x:pull")
        );
        assert_eq!(
            s(Method::GET, "/v2/_catalog?n=1").as_deref(),
            Some("registry:catalog:*")
        );
    }

    #[test]
    fn token_answers_and_lifetimes() {
        let now = std::time::SystemTime::now();
        let t = parse_token(br#"{"token":"abc","expires_in":300}"#, now).unwrap();
        let left = t.renew_at - Instant::now();
        assert!(
            left > Duration::from_secs(285) && left <= Duration::from_secs(290),
            "{left:?}"
        );
        // access_token (OAuth2), no expires_in: 60 s, renewed 10 s early.
        let t = parse_token(br#"{"access_token":"abc"}"#, now).unwrap();
        assert_eq!(t.value, "abc");
        let left = t.renew_at - Instant::now();
        assert!(
            left > Duration::from_secs(48) && left <= Duration::from_secs(50),
            "{left:?}"
        );
        // Issued 100 s ago, lives 120 s: renew within 20 s (minus the margin).
        let issued = chrono::DateTime::<chrono::Utc>::from(now - Duration::from_secs(100));
        let body = format!(
            r#"{{"token":"x","expires_in":120,"issued_at":"{}"}}"#,
            issued.to_rfc3339()
        );
        let left = parse_token(body.as_bytes(), now).unwrap().renew_at - Instant::now();
        assert!(left <= Duration::from_secs(10), "{left:?}");
        // Short test tokens are renewed a quarter early.
        let left = parse_token(br#"{"token":"x","expires_in":4}"#, now)
            .unwrap()
            .renew_at
            - Instant::now();
        assert!(left <= Duration::from_secs(3), "{left:?}");
        assert!(parse_token(br#"{"token":""}"#, now).is_err());
        assert!(parse_token(b"<html>", now).is_err());
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form(&[("scope", "repository:a/b:pull,push"), ("service", "my reg")]),
            "scope=repository%3Aa%2Fb%3Apull%2Cpush&service=my%20reg"
        );
    }

    #[test]
    fn secrets_stay_out_of_messages_and_debug() {
        let secret = "s3cr3t-value-kiln";
        let creds = Credentials::basic("alice", secret).from_source("auths in /x/config.json");
        let token = Token {
            value: secret.into(),
            renew_at: Instant::now(),
        };
        let tokens = Tokens::default();
        tokens
            .cache
            .lock()
            .unwrap()
            .insert("repository:a:pull".into(), token.clone());
        let texts = [
            format!("{creds:?}"),
            format!("{token:?}"),
            format!("{tokens:?}"),
            refused("r.example", &creds, Some("repository:a:pull")).to_string(),
            format!("{:?}", refused("r.example", &creds, None)),
            no_login("r.example").to_string(),
        ];
        for t in &texts {
            assert!(!t.contains(secret), "{t}");
        }
        assert!(
            texts[3].contains("alice")
                && texts[3].contains("/x/config.json")
                && texts[3].contains("r.example")
        );
    }

    /// Method, URL, Authorization, form body.
    type Sent = (Method, String, Option<String>, Option<String>);

    /// A token service that answers from a list and records what it was sent.
    #[derive(Default)]
    struct Service {
        answers: Mutex<Vec<(StatusCode, &'static str)>>,
        sent: Mutex<Vec<Sent>>,
    }

    impl Transport for Service {
        async fn exchange(
            &self,
            method: Method,
            url: &str,
            authorization: Option<&str>,
            form: Option<String>,
        ) -> anyhow::Result<(StatusCode, Bytes)> {
            self.sent.lock().unwrap().push((
                method,
                url.to_string(),
                authorization.map(str::to_string),
                form,
            ));
            let (status, body) = self.answers.lock().unwrap().remove(0);
            Ok((status, Bytes::from(body)))
        }
    }

    fn block<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    const BEARER: &str =
        r#"Bearer realm="http://auth.example/token",service="reg",scope="repository:a:pull""#;

    #[test]
    fn identity_tokens_go_in_a_post_body_and_tokens_stay_in_their_scope() {
        let service = Service::default();
        service.answers.lock().unwrap().push((
            StatusCode::OK,
            r#"{"access_token":"tok-a","expires_in":300}"#,
        ));
        let creds = Credentials::identity("alice", "refresh-secret-1");
        let tokens = Tokens::default();
        let scope = Some("repository:a:pull");
        let header = block(tokens.answer(
            &service,
            "r.example",
            Some(BEARER),
            scope,
            Some(&creds),
            None,
        ))
        .unwrap();
        assert_eq!(header, "Bearer tok-a");
        let sent = service.sent.lock().unwrap().clone();
        let (method, url, authz, form) = &sent[0];
        assert_eq!(
            (method, url.as_str(), authz),
            (&Method::POST, "http://auth.example/token", &None)
        );
        assert_eq!(
            form.as_deref(),
            Some("service=reg&scope=repository%3Aa%3Apull&grant_type=refresh_token&refresh_token=refresh-secret-1&client_id=kiln")
        );
        assert_eq!(
            tokens.authorization(scope, Some(&creds)).as_deref(),
            Some("Bearer tok-a")
        );
        assert_eq!(
            tokens.authorization(Some("repository:b:pull"), Some(&creds)),
            None
        );
        assert_eq!(
            tokens.authorization(Some("repository:a:pull,push"), Some(&creds)),
            None
        );
        assert_eq!(tokens.fetched(), 1);
    }

    #[test]
    fn anonymous_basic_and_refusals() {
        // No login: the realm is asked without Authorization.
        let service = Service::default();
        service
            .answers
            .lock()
            .unwrap()
            .push((StatusCode::OK, r#"{"token":"anon"}"#));
        let tokens = Tokens::default();
        block(tokens.answer(&service, "r.example", Some(BEARER), None, None, None)).unwrap();
        let sent = service.sent.lock().unwrap().clone();
        assert_eq!(sent[0].0, Method::GET);
        assert_eq!(
            sent[0].1,
            "http://auth.example/token?service=reg&scope=repository%3Aa%3Apull"
        );
        assert_eq!(sent[0].2, None);
        // Basic: no login is an error; a Basic login refused once is not sent again.
        let basic = Some(r#"Basic realm="reg""#);
        let err = block(tokens.answer(&service, "r.example", basic, None, None, None)).unwrap_err();
        assert!(err.to_string().contains("requires a login"), "{err}");
        let creds = Credentials::basic("bob", "pw-secret-2");
        let h =
            block(tokens.answer(&service, "r.example", basic, None, Some(&creds), None)).unwrap();
        assert_eq!(h, creds.basic_header());
        assert_eq!(
            tokens.authorization(Some("repository:z:pull"), Some(&creds)),
            Some(h.clone())
        );
        let err = block(tokens.answer(&service, "r.example", basic, None, Some(&creds), Some(&h)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bob") && !err.contains("pw-secret-2"), "{err}");
    }

    #[test]
    fn token_service_errors_never_echo_the_secret() {
        let service = Service::default();
        service.answers.lock().unwrap().extend([
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "bad request: refresh_token=echo-secret-3",
            ),
            (StatusCode::UNAUTHORIZED, "no"),
        ]);
        let creds = Credentials::identity("carol", "echo-secret-3").from_source("credsStore x");
        let tokens = Tokens::default();
        let err = format!(
            "{:#}",
            block(tokens.answer(
                &service,
                "r.example",
                Some(BEARER),
                None,
                Some(&creds),
                None
            ))
            .unwrap_err()
        );
        assert!(
            err.contains("r.example") && err.contains("500") && !err.contains("echo-secret-3"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            block(tokens.answer(
                &service,
                "r.example",
                Some(BEARER),
                None,
                Some(&creds),
                None
            ))
            .unwrap_err()
        );
        assert!(
            err.contains("carol") && err.contains("credsStore x"),
            "{err}"
        );
        assert!(!err.contains("echo-secret-3"), "{err}");
    }
}
