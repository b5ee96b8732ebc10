//! The backend choice on this machine, one detected cause at a time, against the real
//! tools: the engine's own buildx builder, a real BuildKit daemon as a `remote`
//! builder, podman, and the engine.
//!
//! One cause cannot be produced here and is stood in for: **buildx missing**. Debian's
//! docker-buildx is installed system-wide and the docker CLI always finds its plugin
//! there, so a `docker` shim that answers `buildx version` with the CLI's own error
//! (and hands everything else to the real docker) plays a machine without it. Bake's
//! run-time failure to resolve a local base is produced for real in
//! `tests/build_bake.rs` (remote builder, hand-over off).
//!
//! One test function: it changes PATH, BUILDX_BUILDER and DOCKER_HOST for the process.

mod backend_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use backend_support::*;
use kiln::backend::bake::Mode;
use kiln::backend::detect::{self, FallbackCause, Requested};
use kiln::backend::BackendKind;

const NO_BUILDX: &str = r##"#!/bin/sh
# Stands in for a docker CLI without the buildx plugin; everything else is the real docker.
if [ "$1" = buildx ]; then echo "docker: 'buildx' is not a docker command." >&2; exit 1; fi
exec REAL_DOCKER "$@"
"##;

fn set(k: &str, v: &str) {
    std::env::set_var(k, v);
}

fn unset(k: &str) {
    std::env::remove_var(k);
}

fn remote_answers() -> bool {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("shared/tools/buildkit-remote.sh"))
        .find(|p| p.is_file())
        .is_some_and(|script| {
            duct::cmd("bash", [script.to_str().unwrap(), "status"])
                .stdout_null()
                .stderr_null()
                .unchecked()
                .run()
                .is_ok_and(|o| o.status.success())
        })
}

#[test]
fn backend_choice_and_each_fallback_cause() {
    if !gate("KILN_TEST_DOCKER") {
        return;
    }
    let real_path = std::env::var("PATH").unwrap();
    let repo = fixture_repo();
    let specs = fleet_specs(repo.path(), "fallback", 0);
    // The fleet's only outside base is the busybox image make-bases.sh imported: local only.
    assert_eq!(detect::external_bases(&specs), vec![ROOT_IMAGE.to_string()]);

    if std::env::var("KILN_TEST_BUILDX").is_ok_and(|v| v == "1") {
        // The engine's own builder reads the local store: bake, by capability.
        set("BUILDX_BUILDER", "default");
        let d = detect::choose(Requested::Auto, &specs).unwrap();
        assert_eq!(d.backend, BackendKind::Bake, "{}", d.reason);
        let per_image = d.reason.contains("BuildKit v0.8");
        assert_eq!(d.bake.mode == Mode::PerImage, per_image, "{}", d.reason);
        // The builder kiln is told to use wins over BUILDX_BUILDER.
        set("BUILDX_BUILDER", "no-such-builder-kiln-test");
        let d = detect::choose_on(Requested::Auto, &specs, Some("default")).unwrap();
        assert_eq!(d.bake.builder.as_deref(), Some("default"));
        assert!(d.reason.contains("builder \"default\""), "{}", d.reason);
        unset("BUILDX_BUILDER");
    } else {
        eprintln!("skipped (part): set KILN_TEST_BUILDX=1 for the engine's buildx builder");
    }

    if std::env::var("KILN_TEST_BUILDKIT").is_ok_and(|v| v == "1") && remote_answers() {
        // A remote builder cannot read the store: bases handed over...
        set("BUILDX_BUILDER", "kiln-remote");
        let d = detect::choose(Requested::Auto, &specs).unwrap();
        assert_eq!(
            (d.backend, d.bake.mode),
            (BackendKind::Bake, Mode::Requests { handover: true }),
            "{}",
            d.reason
        );
        // ...unless the hand-over is off: then the local-only base is the cause.
        set("KILN_BAKE_HANDOVER", "0");
        let d = detect::choose(Requested::Auto, &specs).unwrap();
        assert_eq!(d.backend, BackendKind::Podman, "{}", d.reason);
        assert_eq!(
            d.cause,
            Some(FallbackCause::DriverCannotSeeLocalStore {
                driver: "remote".into(),
                base: ROOT_IMAGE.into()
            })
        );
        let err = detect::choose(Requested::Bake, &specs).unwrap_err();
        assert_eq!(
            err.downcast_ref::<kiln::error::Failure>().map(|f| f.code),
            Some(3)
        );
        unset("KILN_BAKE_HANDOVER");
        unset("BUILDX_BUILDER");
    } else {
        eprintln!("skipped (part): set KILN_TEST_BUILDKIT=1 with the remote BuildKit running");
    }

    // Cause 1, stood in for (see the module doc): buildx missing → podman.
    let shims = tempfile::tempdir().unwrap();
    let real_docker = which::which("docker").unwrap();
    let shim = shims.path().join("docker");
    std::fs::write(
        &shim,
        NO_BUILDX.replace("REAL_DOCKER", &real_docker.to_string_lossy()),
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    set("PATH", &format!("{}:{real_path}", shims.path().display()));
    let d = detect::choose(Requested::Auto, &specs).unwrap();
    assert_eq!(
        (d.backend, d.cause),
        (BackendKind::Podman, Some(FallbackCause::BuildxMissing))
    );

    // Neither buildx nor podman (the shim alone on PATH), an engine that answers: the engine.
    set("PATH", &shims.path().display().to_string());
    let d = detect::choose(Requested::Auto, &specs).unwrap();
    assert_eq!(d.backend, BackendKind::Engine, "{}", d.reason);

    // Nothing able to build (nothing on PATH, no engine): exit status 3, naming what was looked for.
    let empty = tempfile::tempdir().unwrap();
    set("PATH", &empty.path().display().to_string());
    set("DOCKER_HOST", "unix:///nonexistent/kiln-test.sock");
    let err = detect::choose(Requested::Auto, &specs).unwrap_err();
    assert_eq!(
        err.downcast_ref::<kiln::error::Failure>().map(|f| f.code),
        Some(3),
        "{err}"
    );
    let msg = err.to_string();
    for needle in [
        "docker buildx",
        "podman",
        "unix:///nonexistent/kiln-test.sock",
    ] {
        assert!(msg.contains(needle), "{msg}");
    }
    unset("DOCKER_HOST");
    set("PATH", &real_path);
}
