//! Real builds through the Docker Engine API (KILN_TEST_DOCKER=1).

mod backend_support;

use backend_support::*;
use kiln::backend::BackendKind;

#[test]
fn engine_builds_labels_and_rebuilds_only_what_changed() {
    if !gate("KILN_TEST_DOCKER") {
        return;
    }
    exercise(BackendKind::Engine, "engine-cycle");
}

#[test]
fn engine_honours_dockerignore_in_the_image() {
    if !gate("KILN_TEST_DOCKER") {
        return;
    }
    let ns = "engine-ignore";
    remove_images(kiln::store::Store::Docker, ns);
    let repo = fixture_repo();
    let specs = fleet_specs(repo.path(), ns, 0);
    let summary = kiln::build::run(
        &specs[..2],
        &[],
        &decision(BackendKind::Engine),
        &options(repo.path(), 1, false),
    )
    .unwrap();
    assert!(summary.ok(), "{:#?}", summary.outcomes);
    let out = duct::cmd!(
        "docker",
        "run",
        "--rm",
        &specs[1].image,
        "cat",
        "/opt/bench/listing"
    )
    .read()
    .unwrap();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["one.txt", "two.txt"]
    );
    remove_images(kiln::store::Store::Docker, ns);
}

#[test]
fn engine_refuses_secrets_before_building() {
    let repo = fixture_repo();
    let mut specs = fleet_specs(repo.path(), "engine-secret", 0);
    specs.truncate(1);
    specs[0].secrets = vec![kiln::plan::Secret {
        id: "token".into(),
        env: Some("SOME_TOKEN".into()),
        src: None,
    }];
    let summary = kiln::build::run(
        &specs,
        &[],
        &decision(BackendKind::Engine),
        &options(repo.path(), 1, false),
    )
    .unwrap();
    match &summary.outcomes[0].status {
        kiln::build::Status::Failed(msg) => assert!(msg.contains("secrets (token)"), "{msg}"),
        other => panic!("{other:?}"),
    }
}
