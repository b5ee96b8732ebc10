//! `registry::push_and_verify` against a real registry (basic auth over plain HTTP on
//! 127.0.0.1) from Docker's store: the tag resolves to the pushed digest, labels and
//! layers are there, and a wrong login is a clear error without the password.
//! Opt-in: `KILN_TEST_DOCKER=1`.

mod registry_support;

use kiln::registry::{Client, Credentials, PushRequest, Reference, Registry};
use kiln::store::Store;
use registry_support::{TestRegistry, USER};

fn tiny_image(tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM kiln.local/bases/busybox:latest\nRUN echo {tag} > /tag\nLABEL kiln.test=yes eval.type=core\n"),
    )
    .unwrap();
    let ok = std::process::Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(dir.path())
        .status()
        .unwrap()
        .success();
    assert!(ok, "docker build failed");
}

#[test]
fn push_and_verify_from_docker_store() {
    if !registry_support::gate() {
        return;
    }
    let reg = TestRegistry::start();
    let local = format!("kiln.local/test-registry-push/tiny:{}", reg.port);
    tiny_image(&local);
    let registry = Registry::parse(&format!("{}/team", reg.host())).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = Client::with_credentials(
        &registry,
        Some(Credentials::basic(USER, reg.password.clone())),
    )
    .unwrap();
    let target = Reference::parse(&format!("{}/team/core/tiny:v1", reg.host())).unwrap();
    let req = PushRequest {
        source: local.clone(),
        store: Store::Docker,
        target: target.clone(),
        required_labels: vec!["kiln.test".into(), "eval.type".into()],
    };
    let published = rt
        .block_on(kiln::registry::push_and_verify(&client, &req))
        .unwrap();
    assert!(published.pushed);
    assert_eq!(published.reference, target.to_string());
    let served = rt
        .block_on(client.manifest_digest("team/core/tiny", "v1"))
        .unwrap();
    assert_eq!(served.as_deref(), Some(published.digest.as_str()));
    assert_eq!(
        rt.block_on(client.catalog()).unwrap(),
        vec!["team/core/tiny".to_string()]
    );
    // The engine's registry tag was removed again.
    let gone = std::process::Command::new("docker")
        .args(["image", "inspect", &target.to_string()])
        .output()
        .unwrap();
    assert!(
        !gone.status.success(),
        "the push left its registry tag behind"
    );

    // A required label the image lacks fails verification, naming it.
    let mut bad = req.clone();
    bad.required_labels
        .push("org.opencontainers.image.revision".into());
    bad.target = target.with_tag("v2");
    let err = rt
        .block_on(kiln::registry::push_and_verify(&client, &bad))
        .unwrap_err()
        .to_string();
    assert!(err.contains("org.opencontainers.image.revision"), "{err}");

    // A wrong password: a clear error naming the registry, never the password.
    let wrong = Client::with_credentials(
        &registry,
        Some(Credentials::basic(USER, "wrong-secret-value")),
    )
    .unwrap();
    let err = format!("{:#}", rt.block_on(wrong.ping()).unwrap_err());
    assert!(
        err.contains(&reg.host()) && err.contains("refused the login"),
        "{err}"
    );
    assert!(!err.contains("wrong-secret-value"), "{err}");
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", &local])
        .output();
}
