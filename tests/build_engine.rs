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

/// Whether the local engine builds with BuildKit (kiln's own detection).
fn engine_offers_buildkit() -> bool {
    rt().block_on(async {
        match bollard::Docker::connect_with_local_defaults() {
            Ok(docker) => kiln::backend::engine::offers_buildkit(&docker).await,
            Err(_) => false,
        }
    })
}

#[test]
fn engine_refuses_secrets_without_buildkit() {
    if std::env::var("KILN_ENGINE_BUILDER").as_deref() != Ok("legacy") && engine_offers_buildkit() {
        eprintln!("skipped: this engine builds with BuildKit, which takes secrets");
        return;
    }
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

#[test]
fn engine_passes_secrets_through_buildkit() {
    if !gate("KILN_TEST_DOCKER") {
        return;
    }
    if std::env::var("KILN_ENGINE_BUILDER").as_deref() == Ok("legacy") || !engine_offers_buildkit()
    {
        eprintln!("skipped: no BuildKit (this engine, or KILN_ENGINE_BUILDER=legacy)");
        return;
    }
    let ns = "engine-secret-bk";
    remove_images(kiln::store::Store::Docker, ns);
    let repo = fixture_repo();
    let value = "kiln-engine-secret-0123456789";
    std::fs::write(repo.path().join("token.txt"), value).unwrap();
    std::fs::write(
        repo.path().join("base/Dockerfile"),
        format!(
            "FROM {ROOT_IMAGE}\n\
             RUN --mount=type=secret,id=token,required=true wc -c < /run/secrets/token > /env-len\n\
             RUN --mount=type=secret,id=file,required=true wc -c < /run/secrets/file > /file-len\n"
        ),
    )
    .unwrap();
    let mut specs = fleet_specs(repo.path(), ns, 0);
    specs.truncate(1);
    // SAFETY: no other test reads or writes this variable.
    std::env::set_var("KILN_TEST_ENGINE_SECRET", value);
    specs[0].secrets = vec![
        kiln::plan::Secret {
            id: "token".into(),
            env: Some("KILN_TEST_ENGINE_SECRET".into()),
            src: None,
        },
        kiln::plan::Secret {
            id: "file".into(),
            env: None,
            src: Some(repo.path().join("token.txt")),
        },
    ];
    let summary = kiln::build::run(
        &specs,
        &[],
        &decision(BackendKind::Engine),
        &options(repo.path(), 1, false),
    )
    .unwrap();
    assert!(summary.ok(), "{:#?}", summary.outcomes);
    let image = &specs[0].image;
    let out = duct::cmd!(
        "docker",
        "run",
        "--rm",
        image,
        "cat",
        "/env-len",
        "/file-len"
    )
    .read()
    .unwrap();
    let len = value.len().to_string();
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), [&len, &len]);
    let labels = labels_of(kiln::store::Store::Docker, image).unwrap();
    assert_eq!(labels.get("eval.type").map(String::as_str), Some("core"));
    let history = duct::cmd!("docker", "history", "--no-trunc", image)
        .read()
        .unwrap();
    let inspect = duct::cmd!("docker", "image", "inspect", image)
        .read()
        .unwrap();
    assert!(!history.contains(value) && !inspect.contains(value));
    remove_images(kiln::store::Store::Docker, ns);
}
