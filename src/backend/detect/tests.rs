use super::*;

fn probes() -> Probes {
    Probes {
        docker: Some("/usr/bin/docker".into()),
        buildx: Some("github.com/docker/buildx v0.19.0".into()),
        builder_flag: None,
        builder: Some(builder("docker", "v0.12.5")),
        skopeo: Some("/usr/bin/skopeo".into()),
        handover: true,
        engine_endpoint: "unix:///var/run/docker.sock".into(),
        engine: Ok("27.0".into()),
        podman: Some("/usr/bin/podman".into()),
    }
}

fn builder(driver: &str, buildkit: &str) -> Builder {
    Builder {
        name: "b".into(),
        driver: driver.into(),
        buildkit: Some(buildkit.into()),
    }
}

fn exit_code(err: &anyhow::Error) -> u8 {
    err.downcast_ref::<crate::error::Failure>()
        .map(|f| f.code)
        .unwrap()
}

#[test]
fn docker_driver_keeps_bake_with_podman_for_resolve_failures() {
    let d = decide(
        Requested::Auto,
        &probes(),
        &["kiln.local/core/base:dev".into()],
    )
    .unwrap();
    assert_eq!(d.backend, BackendKind::Bake);
    assert_eq!(d.cause, None);
    assert_eq!(d.fallback, Some(BackendKind::Podman));
}

#[test]
fn capability_decides_how_bake_runs() {
    // Docker 20.10's BuildKit v0.8 on the docker driver: one bake per image.
    let mut p = probes();
    p.builder = Some(builder("docker", "v0.8+unknown"));
    let d = decide(Requested::Auto, &p, &[]).unwrap();
    assert_eq!(
        (d.backend, d.bake.mode),
        (BackendKind::Bake, Mode::PerImage)
    );
    assert!(d.reason.contains("no named contexts"), "{}", d.reason);
    // A remote builder with named contexts: requests, bases handed over.
    for driver in ["docker-container", "remote", "kubernetes"] {
        p.builder = Some(builder(driver, "v0.26-dev-73ed682"));
        let d = decide(Requested::Auto, &p, &["debian:bookworm-slim".into()]).unwrap();
        assert_eq!(
            (d.backend, d.bake.mode),
            (BackendKind::Bake, Mode::Requests { handover: true }),
            "{driver}"
        );
    }
    // Without named contexts a store-blind builder cannot build the fleet at all.
    p.builder = Some(builder("remote", "v0.9.3"));
    let d = decide(Requested::Auto, &p, &[]).unwrap();
    assert_eq!(d.backend, BackendKind::Podman);
    assert!(matches!(
        d.cause,
        Some(FallbackCause::NoNamedContexts { .. })
    ));
    let err = decide(Requested::Bake, &p, &[]).unwrap_err();
    assert_eq!(exit_code(&err), 3);
    assert!(err.to_string().contains("named contexts"), "{err}");
    // The builder kiln was told to use is passed on.
    let mut p = probes();
    p.builder_flag = Some("kiln-remote".into());
    let d = decide(Requested::Bake, &p, &[]).unwrap();
    assert_eq!(d.bake.builder.as_deref(), Some("kiln-remote"));
}

#[test]
fn buildkit_versions() {
    assert_eq!(parse_buildkit_version("v0.8+unknown"), Some((0, 8)));
    assert_eq!(parse_buildkit_version("v0.26-dev-73ed682"), Some((0, 26)));
    assert_eq!(parse_buildkit_version("0.12.5"), Some((0, 12)));
    assert_eq!(parse_buildkit_version("unknown"), None);
    assert!(!builder("docker", "v0.9.3").named_contexts());
    assert!(builder("docker", "v0.10.0").named_contexts());
    assert!(builder("docker", "v1.0.0").named_contexts());
}

#[test]
fn container_driver_with_local_only_base_falls_back_without_handover() {
    for (driver, skopeo, handover) in [
        ("docker-container", true, false),
        ("remote", false, true),
        ("kubernetes", true, false),
    ] {
        let mut p = probes();
        p.builder = Some(builder(driver, "v0.26.0"));
        p.handover = handover;
        if !skopeo {
            p.skopeo = None;
        }
        let d = decide(Requested::Auto, &p, &["debian:bookworm-slim".into()]).unwrap();
        assert_eq!(d.backend, BackendKind::Podman);
        assert_eq!(
            d.cause,
            Some(FallbackCause::DriverCannotSeeLocalStore {
                driver: driver.into(),
                base: "debian:bookworm-slim".into()
            })
        );
        assert!(
            d.reason.contains(driver) && d.reason.contains("debian:bookworm-slim"),
            "{}",
            d.reason
        );
    }
}

#[test]
fn container_driver_without_local_only_base_keeps_bake() {
    let mut p = probes();
    p.builder = Some(builder("docker-container", "v0.26.0"));
    p.handover = false;
    assert_eq!(
        decide(Requested::Auto, &p, &[]).unwrap().backend,
        BackendKind::Bake
    );
}

#[test]
fn container_driver_without_podman_uses_engine() {
    let mut p = probes();
    p.builder = Some(builder("docker-container", "v0.26.0"));
    p.handover = false;
    p.podman = None;
    let d = decide(Requested::Auto, &p, &["b:1".into()]).unwrap();
    assert_eq!(d.backend, BackendKind::Engine);
}

#[test]
fn buildx_missing_falls_back_to_podman() {
    let mut p = probes();
    p.buildx = None;
    p.builder = None;
    let d = decide(Requested::Auto, &p, &[]).unwrap();
    assert_eq!(
        (d.backend, d.cause),
        (BackendKind::Podman, Some(FallbackCause::BuildxMissing))
    );
    assert!(d.reason.contains("buildx is not installed"));
}

#[test]
fn neither_buildx_nor_podman_uses_engine() {
    let mut p = probes();
    p.buildx = None;
    p.podman = None;
    let d = decide(Requested::Auto, &p, &[]).unwrap();
    assert_eq!(d.backend, BackendKind::Engine);
    assert_eq!(d.cause, Some(FallbackCause::BuildxMissing));
    assert!(d.reason.contains("podman is not installed"), "{}", d.reason);
}

#[test]
fn nothing_is_exit_3_naming_what_was_looked_for() {
    let p = Probes {
        docker: None,
        buildx: None,
        builder_flag: None,
        builder: None,
        skopeo: None,
        handover: true,
        engine_endpoint: "unix:///var/run/docker.sock".into(),
        engine: Err("connection refused".into()),
        podman: None,
    };
    let err = decide(Requested::Auto, &p, &[]).unwrap_err();
    assert_eq!(exit_code(&err), 3);
    let msg = err.to_string();
    for needle in [
        "docker buildx",
        "podman",
        "unix:///var/run/docker.sock",
        "connection refused",
    ] {
        assert!(msg.contains(needle), "{msg}");
    }
}

#[test]
fn explicit_backend_missing_is_exit_3() {
    let mut p = probes();
    p.podman = None;
    assert_eq!(
        exit_code(&decide(Requested::Podman, &p, &[]).unwrap_err()),
        3
    );
    p.engine = Err("refused".into());
    assert_eq!(
        exit_code(&decide(Requested::Engine, &p, &[]).unwrap_err()),
        3
    );
    p.buildx = None;
    assert_eq!(exit_code(&decide(Requested::Bake, &p, &[]).unwrap_err()), 3);
    // An explicit choice never falls back.
    assert_eq!(
        decide(Requested::Bake, &probes(), &[]).unwrap().fallback,
        None
    );
}

#[test]
fn builder_parsed_from_inspect() {
    let out = "Name:   default\nDriver: docker\n\nNodes:\nName:             default\nEndpoint:         default\n\
               Status:           running\nBuildKit version: v0.8+unknown\nPlatforms:        linux/amd64\n";
    assert_eq!(
        parse_builder(out),
        Some(builder_named("default", "docker", Some("v0.8+unknown")))
    );
    let old = "Name:          builder\nDriver:        docker-container\nNodes:\nName: builder0\nBuildkit: v0.11.6\n";
    assert_eq!(
        parse_builder(old),
        Some(builder_named(
            "builder",
            "docker-container",
            Some("v0.11.6")
        ))
    );
    assert_eq!(parse_builder("Name: x\n"), None);
}

fn builder_named(name: &str, driver: &str, buildkit: Option<&str>) -> Builder {
    Builder {
        name: name.into(),
        driver: driver.into(),
        buildkit: buildkit.map(str::to_string),
    }
}

#[test]
fn resolve_failures_recognised_only_for_local_bases() {
    let local = |r: &str| r == "kiln.local/core/base:dev" || r == "debian:bookworm-slim";
    let e1 = "ERROR: failed to solve: kiln.local/core/base:dev: failed to resolve source metadata for kiln.local/core/base:dev: failed to do request: dial tcp: lookup kiln.local: no such host";
    assert_eq!(
        bake_resolve_failure(e1, local).as_deref(),
        Some("kiln.local/core/base:dev")
    );
    let e2 = "ERROR: failed to solve: failed to resolve source metadata for docker.io/library/debian:bookworm-slim: pull access denied";
    assert_eq!(
        bake_resolve_failure(e2, local).as_deref(),
        Some("debian:bookworm-slim")
    );
    let e3 = "ERROR: docker.io/library/debian:bookworm-slim: not found";
    assert_eq!(
        bake_resolve_failure(e3, local).as_deref(),
        Some("debian:bookworm-slim")
    );
    // A base that is not local, or an unrelated failure, is not a fallback cause.
    let e4 = "failed to resolve source metadata for docker.io/library/alpine:3: not found";
    assert_eq!(bake_resolve_failure(e4, local), None);
    let e5 = "ERROR: process \"/bin/sh -c make\" did not complete successfully: exit code: 2";
    assert_eq!(bake_resolve_failure(e5, local), None);
}
