//! The input digest of one image, stamped as the label `kiln.inputs.digest`:
//! same digest ⇒ same inputs ⇒ the existing image is up to date.
//!
//! It is sha256 over, in this order and each field length-prefixed: a format tag;
//! the Dockerfile's content and its path in the context; the target stage; every
//! context entry after `.dockerignore` (path, kind, permission bits, and the file
//! content or symlink target); the build args; the labels; the secret ids (never a
//! value); and, per base image, its reference and image id.
//!
//! Labels left out, on purpose: `kiln.inputs.digest` itself, and the build-time
//! provenance labels kiln derives from git (`labels::BUILD_TIME`:
//! `org.opencontainers.image.{source,revision,version,created}`). `created` is the
//! commit time and `revision`/`version` name the commit, so they change with every
//! commit even when nothing the image is made of changed; with them in, every
//! commit would rebuild the whole fleet. So an up-to-date image keeps the
//! provenance labels of the commit it was built at — an earlier commit whose
//! inputs were the same — while its content and its authored labels are exactly
//! what the current commit would build; `--force` restamps them. mtimes are not
//! hashed either (checkouts reset them).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

use crate::context::{Context, EntryKind};
use crate::labels;
use crate::plan::BuildSpec;

/// Labels that do not take part in the digest (see the module docs).
pub const EXCLUDED_LABELS: &[&str] = &[
    labels::INPUTS_DIGEST,
    labels::OCI_SOURCE,
    labels::OCI_REVISION,
    labels::OCI_VERSION,
    labels::OCI_CREATED,
];

struct Hasher(Sha256);

impl Hasher {
    fn field(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }
    fn str(&mut self, s: &str) {
        self.field(s.as_bytes());
    }
}

/// The input digest (`sha256:<hex>`) of `spec` built from `context`, on top of the
/// bases in `base_ids` (reference → image id, one per `spec.bases`).
pub fn input_digest(
    spec: &BuildSpec,
    context: &Context,
    base_ids: &BTreeMap<String, String>,
) -> anyhow::Result<String> {
    let mut h = Hasher(Sha256::new());
    h.str("kiln-inputs-v1");
    let dockerfile = fs::read(&context.dockerfile)
        .with_context(|| format!("reading {}", context.dockerfile.display()))?;
    h.field(&dockerfile);
    h.str(&context.dockerfile_in_tar);
    h.str(spec.target.as_deref().unwrap_or(""));

    h.str("context");
    h.field(&(context.entries.len() as u64).to_le_bytes());
    let mut buf = vec![0u8; 64 * 1024];
    for entry in &context.entries {
        h.str(&entry.rel);
        h.field(&entry.mode.to_le_bytes());
        match &entry.kind {
            EntryKind::Dir => h.str("dir"),
            EntryKind::Symlink(target) => {
                h.str("symlink");
                h.str(&target.to_string_lossy());
            }
            EntryKind::File => {
                h.str("file");
                let mut file = fs::File::open(&entry.path)
                    .with_context(|| format!("reading {}", entry.path.display()))?;
                let mut content = Sha256::new();
                loop {
                    let n = file.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    content.update(&buf[..n]);
                }
                h.field(&content.finalize());
            }
        }
    }

    h.str("args");
    for (k, v) in &spec.args {
        h.str(k);
        h.str(v);
    }
    h.str("labels");
    for (k, v) in spec
        .labels
        .iter()
        .filter(|(k, _)| !EXCLUDED_LABELS.contains(&k.as_ref()))
    {
        h.str(k);
        h.str(v);
    }
    h.str("secrets");
    // The CA bundle (`--ca-bundle`) only lets a build reach what it downloads; the
    // image is the same with or without it, so it is not an input: an image built
    // with it stays up to date for a build (say on the engine) that does not pass it.
    for secret in spec
        .secrets
        .iter()
        .filter(|s| s.id != crate::plan::ca_bundle::ID)
    {
        h.str(&secret.id);
    }
    h.str("bases");
    for base in &spec.bases {
        h.str(base);
        h.str(base_ids.get(base).map(String::as_str).unwrap_or(""));
    }
    Ok(format!("sha256:{}", hex::encode(h.0.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::walk;
    use std::path::Path;

    fn spec(context: &Path) -> BuildSpec {
        let mut s = crate::backend::test_support::sample();
        s.context = context.to_path_buf();
        s.target = None;
        s
    }

    fn digest_of(dir: &Path, spec: &BuildSpec, bases: &BTreeMap<String, String>) -> String {
        input_digest(spec, &walk(dir, Path::new("Dockerfile")).unwrap(), bases).unwrap()
    }

    #[test]
    fn every_input_counts_and_volatile_labels_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("Dockerfile"), "FROM x\n").unwrap();
        fs::write(root.join(".dockerignore"), "*.tmp\n").unwrap();
        fs::write(root.join("a.txt"), "a").unwrap();
        let s = spec(root);
        let bases = BTreeMap::from([(
            "kiln.local/core/base:dev".to_string(),
            "sha256:1".to_string(),
        )]);
        let d0 = digest_of(root, &s, &bases);
        assert!(d0.starts_with("sha256:") && d0.len() == 71);
        assert_eq!(d0, digest_of(root, &s, &bases), "stable");

        // Ignored files, created, revision and the digest label itself change nothing.
        fs::write(root.join("scratch.tmp"), "junk").unwrap();
        let mut s2 = s.clone();
        s2.labels
            .insert(labels::OCI_CREATED.into(), "2026-01-01T00:00:00Z".into());
        s2.labels.insert(labels::OCI_REVISION.into(), "abc".into());
        s2.labels.insert(labels::OCI_VERSION.into(), "abc1".into());
        s2.labels
            .insert(labels::OCI_SOURCE.into(), "https://elsewhere".into());
        s2.labels
            .insert(labels::INPUTS_DIGEST.into(), "sha256:old".into());
        // Nor does the CA bundle, which only lets the build reach its downloads.
        s2.secrets.push(crate::plan::Secret {
            id: crate::plan::ca_bundle::ID.into(),
            env: None,
            src: Some("/etc/ssl/certs/ca-certificates.crt".into()),
        });
        assert_eq!(d0, digest_of(root, &s2, &bases));

        // Each real input changes it.
        let mut changed = Vec::new();
        let mut s3 = s.clone();
        s3.args.insert("X".into(), "1".into());
        changed.push(digest_of(root, &s3, &bases));
        let mut s4 = s.clone();
        s4.labels.insert(labels::OCI_TITLE.into(), "renamed".into());
        changed.push(digest_of(root, &s4, &bases));
        let other_base = BTreeMap::from([(
            "kiln.local/core/base:dev".to_string(),
            "sha256:2".to_string(),
        )]);
        changed.push(digest_of(root, &s, &other_base));
        let mut s5 = s.clone();
        s5.target = Some("t".into());
        changed.push(digest_of(root, &s5, &bases));
        fs::set_permissions(root.join("a.txt"), fs::Permissions::from_mode(0o755)).unwrap();
        changed.push(digest_of(root, &s, &bases));
        fs::write(root.join("a.txt"), "b").unwrap();
        changed.push(digest_of(root, &s, &bases));
        fs::write(root.join("Dockerfile"), "FROM y\n").unwrap();
        changed.push(digest_of(root, &s, &bases));
        for d in &changed {
            assert_ne!(&d0, d);
        }
        let unique: std::collections::HashSet<&String> = changed.iter().collect();
        assert_eq!(unique.len(), changed.len());
    }

    use std::os::unix::fs::PermissionsExt;
}
