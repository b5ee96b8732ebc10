//! The model gateway's image for replaying pods: kiln's own binary on
//! `debian:bookworm-slim` (the fleet's base, present locally; kiln links glibc
//! dynamically), as the local gateway container runs it. It is built in Docker's store
//! once per kiln binary and pushed to the run registry like the eval images.

use crate::run::container::docker_cli;
use anyhow::{bail, Context as _};
use sha2::Digest as _;

use crate::labels;

/// `kiln.local/kiln-gateway:<binary id>`.
const REPOSITORY: &str = "kiln.local/kiln-gateway";

/// The gateway image in Docker's store, built when this kiln binary has none yet.
/// Returns its local reference and input digest.
pub fn ensure_image(base: &str) -> anyhow::Result<(String, String)> {
    let exe = std::env::current_exe().context("locating kiln's own binary")?;
    let binary = crate::binary::identity().context("reading kiln's own binary")?;
    let id = hex::encode(sha2::Sha256::digest(binary.as_bytes()));
    let reference = format!("{REPOSITORY}:{}", &id[..16]);
    let inputs = format!("sha256:{id}");
    if docker_cli(&["image", "inspect", &reference])?
        .status
        .success()
    {
        return Ok((reference, inputs));
    }
    let dir = tempfile::tempdir()?;
    // Debug information is most of a development build's size; the gateway needs none.
    let copy = dir.path().join("kiln");
    let stripped = which::which("strip").is_ok()
        && duct::cmd(
            "strip",
            [
                "--strip-debug",
                "-o",
                &copy.to_string_lossy(),
                &exe.to_string_lossy(),
            ],
        )
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run()
        .is_ok_and(|o| o.status.success());
    if !stripped {
        std::fs::copy(&exe, &copy).with_context(|| format!("copying {}", exe.display()))?;
    }
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {base}\nCOPY kiln /usr/local/bin/kiln\n"),
    )?;
    let created = crate::gateway::now_rfc3339();
    let label_args: Vec<String> = [
        (labels::TYPE, "gateway"),
        (labels::OCI_TITLE, "kiln model gateway"),
        (
            labels::OCI_DESCRIPTION,
            "kiln's model gateway, for replaying pods",
        ),
        (labels::OCI_SOURCE, "kiln"),
        (labels::OCI_VERSION, env!("CARGO_PKG_VERSION")),
        (labels::OCI_REVISION, &id),
        (labels::OCI_CREATED, &created),
        (labels::INPUTS_DIGEST, &inputs),
    ]
    .iter()
    .flat_map(|(k, v)| ["--label".to_string(), format!("{k}={v}")])
    .collect();
    let mut args = vec!["build", "-q", "-t", &reference];
    args.extend(label_args.iter().map(String::as_str));
    let context = dir.path().to_string_lossy().to_string();
    args.push(&context);
    let out = docker_cli(&args)?;
    if !out.status.success() {
        bail!(
            "building the gateway image {reference} from {base}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok((reference, inputs))
}
