//! `--ca-bundle FILE` (or `KILN_CA_BUNDLE`): a CA bundle for builds behind a
//! TLS-intercepting proxy, handed as the build secret `ca-bundle` to every image whose
//! Dockerfile mounts it (`RUN --mount=type=secret,id=ca-bundle …`). A secret is mounted
//! for one `RUN` only: it never lands in a layer or the image's history.

use std::path::Path;

use super::{BuildSpec, Secret};

/// The secret id Dockerfiles mount.
pub const ID: &str = "ca-bundle";

/// Adds the secret to the specs whose Dockerfile mounts it; returns their names.
/// Others are left alone, so the engine backend (no build secrets) still builds them.
pub fn apply(builds: &mut [BuildSpec], file: &Path) -> Vec<String> {
    let mut named = Vec::new();
    for spec in builds.iter_mut() {
        let dockerfile = spec.context.join(&spec.dockerfile);
        let mounts =
            std::fs::read_to_string(&dockerfile).is_ok_and(|t| t.contains(&format!("id={ID}")));
        if mounts && !spec.secrets.iter().any(|s| s.id == ID) {
            spec.secrets.push(Secret {
                id: ID.into(),
                env: None,
                src: Some(file.to_path_buf()),
            });
            named.push(spec.name.clone());
        }
    }
    named
}
