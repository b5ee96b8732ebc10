//! The backend choice on this machine and the fallback from bake to podman, one
//! detected cause at a time. A `docker` shim on PATH stands in for a buildx
//! installation (version, builder driver, and a bake that fails to resolve a base);
//! it never claims to build anything. Every image these tests call built is built
//! for real, by podman.
//!
//! One test function: it changes PATH and DOCKER_HOST for the whole process.

mod backend_support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use backend_support::*;
use kiln::backend::detect::{self, FallbackCause, Requested};
use kiln::backend::BackendKind;
use kiln::build::Status;
use kiln::plan::BakeRequest;
use kiln::store::Store;

const SHIM: &str = r##"#!/bin/sh
# A stand-in for `docker` with a buildx plugin; everything else goes to the real docker.
case "$1 $2" in
  "buildx version")
    [ -n "$SHIM_NO_BUILDX" ] && { echo "docker: 'buildx' is not a docker command." >&2; exit 1; }
    echo "github.com/docker/buildx v0.19.3-shim 0000000"; exit 0 ;;
  "buildx inspect")
    printf 'Name:          shim\nDriver:        %s\n' "${SHIM_DRIVER:-docker-container}"; exit 0 ;;
  "buildx bake")
    echo "#0 building with \"shim\" instance using ${SHIM_DRIVER} driver" >&2
    if [ "$SHIM_BAKE_ERROR" = resolve ]; then
      echo "ERROR: failed to solve: kiln.local/bases/busybox:latest: failed to resolve source metadata for kiln.local/bases/busybox:latest: failed to do request: Head \"https://kiln.local/v2/bases/busybox/manifests/latest\": dial tcp: lookup kiln.local: no such host" >&2
    else
      echo "ERROR: failed to solve: process \"/bin/sh -c make\" did not complete successfully: exit code: 2" >&2
    fi
    exit 1 ;;
esac
exec REAL_DOCKER "$@"
"##;

fn set(k: &str, v: &str) {
    std::env::set_var(k, v);
}

fn unset(k: &str) {
    std::env::remove_var(k);
}

fn requests_for(specs: &[kiln::plan::BuildSpec]) -> Vec<BakeRequest> {
    vec![BakeRequest {
        files: vec!["docker-bake.hcl".into()],
        vars: BTreeMap::new(),
        sets: specs
            .iter()
            .map(|s| format!("{}.tags={}", s.bake_target, s.image))
            .collect(),
        targets: specs.iter().map(|s| s.bake_target.clone()).collect(),
        builds: (0..specs.len()).collect(),
    }]
}

#[test]
fn backend_choice_and_each_fallback_cause() {
    if !gate("KILN_TEST_DOCKER") {
        return;
    }
    let real_path = std::env::var("PATH").unwrap();
    let real_docker = which::which("docker").unwrap();
    let shims = tempfile::tempdir().unwrap();
    let shim = shims.path().join("docker");
    std::fs::write(
        &shim,
        SHIM.replace("REAL_DOCKER", &real_docker.to_string_lossy()),
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let with_shim = format!("{}:{real_path}", shims.path().display());

    let repo = fixture_repo();
    let ns = "fallback";
    let specs = fleet_specs(repo.path(), ns, 0);
    // The fleet's only outside base is the busybox image make-bases.sh imported: local only.
    assert_eq!(detect::external_bases(&specs), vec![ROOT_IMAGE.to_string()]);

    // Cause 2: a builder driver that cannot read the local store, with a local-only base.
    set("PATH", &with_shim);
    for driver in ["docker-container", "remote", "kubernetes"] {
        set("SHIM_DRIVER", driver);
        let d = detect::choose(Requested::Auto, &specs).unwrap();
        assert_eq!(d.backend, BackendKind::Podman, "{driver}: {}", d.reason);
        assert_eq!(
            d.cause,
            Some(FallbackCause::DriverCannotSeeLocalStore {
                driver: driver.into(),
                base: ROOT_IMAGE.into()
            })
        );
    }
    // The docker driver reads the local store: bake, with podman kept for resolve failures.
    set("SHIM_DRIVER", "docker");
    let bake = detect::choose(Requested::Auto, &specs).unwrap();
    assert_eq!(
        (bake.backend, bake.fallback, bake.cause.clone()),
        (BackendKind::Bake, Some(BackendKind::Podman), None)
    );

    // Cause 1: buildx missing (this machine as it is).
    set("PATH", &real_path);
    let d = detect::choose(Requested::Auto, &specs).unwrap();
    assert_eq!(
        (d.backend, d.cause),
        (BackendKind::Podman, Some(FallbackCause::BuildxMissing))
    );

    // Neither buildx nor podman, an engine that answers: the engine backend.
    set("PATH", &shims.path().display().to_string());
    set("SHIM_NO_BUILDX", "1");
    let d = detect::choose(Requested::Auto, &specs).unwrap();
    assert_eq!(d.backend, BackendKind::Engine, "{}", d.reason);
    unset("SHIM_NO_BUILDX");

    // Nothing able to build: exit status 3, naming what was looked for.
    set("PATH", &empty.path().display().to_string());
    set("DOCKER_HOST", "unix:///nonexistent/kiln-test.sock");
    let err = detect::choose(Requested::Auto, &specs).unwrap_err();
    assert_eq!(
        err.downcast_ref::<kiln::cli::Failure>().map(|f| f.code),
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

    // Cause 3, at run time: bake fails to resolve a base that exists locally → podman builds.
    if std::env::var("KILN_TEST_PODMAN").is_ok_and(|v| v == "1") {
        set("PATH", &with_shim);
        set("SHIM_DRIVER", "docker");
        remove_images(Store::Podman, ns);
        let requests = requests_for(&specs);

        // An unrelated bake failure is a failure, never a reason to try podman.
        set("SHIM_BAKE_ERROR", "other");
        let failed =
            kiln::build::run(&specs, &requests, &bake, &options(repo.path(), 2, false)).unwrap();
        assert!(failed
            .outcomes
            .iter()
            .all(|o| matches!(o.status, Status::Failed(_)) && o.store == Store::Docker));
        assert!(labels_of(Store::Podman, &specs[0].image).is_none());

        set("SHIM_BAKE_ERROR", "resolve");
        let summary =
            kiln::build::run(&specs, &requests, &bake, &options(repo.path(), 2, false)).unwrap();
        assert!(summary.ok(), "{:#?}", summary.outcomes);
        for (spec, outcome) in specs.iter().zip(&summary.outcomes) {
            assert_eq!(outcome.store, Store::Podman);
            assert!(matches!(outcome.status, Status::Built { .. }));
            let labels = labels_of(Store::Podman, &spec.image).expect("built by podman for real");
            assert_eq!(
                labels.get(kiln::labels::TYPE),
                spec.labels.get(kiln::labels::TYPE)
            );
        }
        assert_eq!(
            kiln::store::State::load(Path::new(repo.path())).store_of(&specs[3].image),
            Some(Store::Podman)
        );
        remove_images(Store::Podman, ns);
    }
    set("PATH", &real_path);
}
