//! Faults between kiln and a real registry (`docker-registry`, basic auth), injected by
//! a proxy written in the tests: a connection cut during the engine's blob upload,
//! then 429 with `Retry-After`, 503 and a dropped connection on kiln's own reads.
//! kiln's client retries and succeeds; a bound that runs out and a 404 on an unknown
//! repository each fail with the registry's words, the latter at once.
//! Opt-in: `KILN_TEST_DOCKER=1`.

mod registry_support;

use std::time::{Duration, Instant};

use kiln::registry::{Client, Credentials, PushRequest, Reference, Registry, Transport};
use kiln::store::Store;
use registry_support::fault_proxy::{Fault, FaultProxy, Rule};
use registry_support::{tiny_image, TestRegistry, USER};

#[test]
fn retries_transient_faults_and_fails_fast_on_4xx() {
    if !registry_support::gate() {
        return;
    }
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    let local = format!("kiln.local/test-tls-retry/tiny:{}", proxy.port);
    tiny_image(&local);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let creds = Some(Credentials::basic(USER, reg.password.clone()));
    let client =
        Client::with_credentials(&Registry::parse(&proxy.host()).unwrap(), creds.clone()).unwrap();
    let target = Reference::parse(&format!("{}/retry/tiny:v1", proxy.host())).unwrap();
    let req = PushRequest {
        source: local.clone(),
        store: Store::Docker,
        target: target.clone(),
        required_labels: vec!["kiln.test".into()],
    };

    // The engine's upload is cut once; the engine retries it and kiln verifies.
    proxy.add(Rule::new("PATCH", "/blobs/uploads/", Fault::Cut, 1));
    let published = rt
        .block_on(kiln::registry::push_and_verify(&client, &req))
        .unwrap();
    assert!(published.pushed);

    // kiln's own reads: 429 with Retry-After, 503 twice, a dropped connection.
    proxy.add(Rule::new(
        "HEAD",
        "/manifests/v1",
        Fault::Status(429, Some("1".into())),
        1,
    ));
    proxy.add(Rule::new(
        "GET",
        "/manifests/sha256:",
        Fault::Status(503, None),
        2,
    ));
    proxy.add(Rule::new("GET", "/blobs/sha256:", Fault::Cut, 1));
    proxy.add(Rule::new(
        "HEAD",
        "/blobs/sha256:",
        Fault::Status(502, None),
        1,
    ));
    let local_id = published.config_digest.clone();
    let started = Instant::now();
    let again = rt
        .block_on(kiln::registry::push::verify(&client, &req, &local_id, None))
        .unwrap();
    assert_eq!(again.digest, published.digest);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured ({:?})",
        started.elapsed()
    );
    for (rule, fired) in proxy.fired() {
        assert!(fired >= 1, "{rule} never fired");
    }

    // A bound that runs out: the registry's words and the tries made.
    let mut transport = Transport::new(None, vec![]).unwrap();
    transport.retry.retries = 2;
    let short = Client::with_credentials(&Registry::parse(&proxy.host()).unwrap(), creds)
        .unwrap()
        .over(&transport)
        .unwrap();
    proxy.add(Rule::new(
        "GET",
        "/tags/list",
        Fault::Status(503, None),
        100,
    ));
    let err = format!("{:#}", rt.block_on(short.tags("retry/tiny")).unwrap_err());
    assert!(
        err.contains(&proxy.host()) && err.contains("503") && err.contains("gave up after 3 tries"),
        "{err}"
    );

    // A 4xx: at once, with the registry's message.
    let before = client.request_count();
    let err = format!(
        "{:#}",
        rt.block_on(client.config_labels("retry/nobody", &published.config_digest))
            .unwrap_err()
    );
    assert!(
        err.contains(&proxy.host()) && err.contains("404") && err.contains("UNKNOWN"),
        "{err}"
    );
    assert_eq!(client.request_count() - before, 1, "a 404 was retried");
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", &local])
        .output();
}
