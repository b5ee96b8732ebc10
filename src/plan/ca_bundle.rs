//! `--ca-bundle FILE` (or `KILN_CA_BUNDLE`): a CA bundle for builds behind a
//! TLS-intercepting proxy, handed as the build secret `ca-bundle` to every image whose
//! Dockerfile mounts it (`RUN --mount=type=secret,id=ca-bundle …`). A secret is mounted
//! for one `RUN` only: it never lands in a layer or the image's history.

use std::path::Path;

use super::{BakeRequest, BuildSpec, Secret};

/// The secret id Dockerfiles mount.
pub const ID: &str = "ca-bundle";

/// Adds the secret to the specs whose Dockerfile mounts it; returns their names.
/// Others are left alone, so the engine backend (no build secrets) still builds them.
/// Contexts are relative to the repository `root` (kiln may run from elsewhere, `-C`).
pub fn apply(root: &Path, builds: &mut [BuildSpec], file: &Path) -> Vec<String> {
    let mut named = Vec::new();
    for spec in builds.iter_mut() {
        let dockerfile = root.join(&spec.context).join(&spec.dockerfile);
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

/// The same for bake: `--set <target>.secrets=id=ca-bundle,src=FILE` for every target
/// of a request that builds a spec holding the secret (the path is shown, never the bundle).
pub fn apply_bake(requests: &mut [BakeRequest], builds: &[BuildSpec], file: &Path) {
    for request in requests.iter_mut() {
        for &i in &request.builds {
            let Some(spec) = builds.get(i) else { continue };
            let set = format!(
                "{}.secrets=id={ID},src={}",
                spec.bake_target,
                file.display()
            );
            if spec.secrets.iter().any(|s| s.id == ID) && !request.sets.contains(&set) {
                request.sets.push(set);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, name: &str, dockerfile: &str) -> BuildSpec {
        let ctx = dir.join(name);
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        BuildSpec {
            name: name.into(),
            bake_target: format!("agent-{name}"),
            image: format!("kiln.local/agents/{name}:dev"),
            context: ctx,
            dockerfile: "Dockerfile".into(),
            target: None,
            args: Default::default(),
            labels: Default::default(),
            secrets: vec![],
            bases: vec![],
            deps: vec![],
        }
    }

    #[test]
    fn only_dockerfiles_that_mount_it_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut builds = vec![
            spec(dir.path(), "plain", "FROM x\nRUN true\n"),
            spec(
                dir.path(),
                "pip",
                "FROM x\nRUN --mount=type=secret,id=ca-bundle pip install y\n",
            ),
        ];
        let ca = Path::new("/etc/ssl/certs/ca-certificates.crt");
        assert_eq!(apply(Path::new("/"), &mut builds, ca), ["pip"]);
        assert!(builds[0].secrets.is_empty());
        assert_eq!(builds[1].secrets[0].src.as_deref(), Some(ca));
        // Applying twice adds nothing.
        assert!(apply(Path::new("/"), &mut builds, ca).is_empty());
        let mut bake = vec![BakeRequest {
            files: vec![],
            vars: Default::default(),
            sets: vec![],
            targets: vec![],
            builds: vec![0, 1],
        }];
        apply_bake(&mut bake, &builds, ca);
        assert_eq!(
            bake[0].sets,
            ["agent-pip.secrets=id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt"]
        );
    }
}
