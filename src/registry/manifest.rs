//! Manifests as a registry serves them: a single image (config and layers) or a
//! multi-platform index (OCI image index, Docker manifest list), told apart by media
//! type so callers never mistake one for the other.

use anyhow::{anyhow, Context as _};
use serde::Deserialize;

/// Every manifest kind a tag can name: Docker's and OCI's single-image manifests and
/// their multi-platform lists (a registry answers 404 to a tag whose kind is not
/// accepted, which would make an existing multi-platform tag look absent).
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.index.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// One blob a manifest points at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: Option<String>,
    pub digest: String,
    pub size: u64,
}

/// A manifest as the registry serves it: a single image (`config`, `layers`), or a
/// multi-platform index / manifest list (`manifests`; `config` then has an empty digest).
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest's digest (what a tag resolves to).
    pub digest: String,
    /// Its media type (from the body, else the `Content-Type`).
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// The per-platform manifests of an index.
    pub manifests: Vec<Descriptor>,
}

impl Manifest {
    /// True for an OCI image index or a Docker manifest list.
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestJson {
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    manifests: Option<Vec<Descriptor>>,
}

/// A manifest body: a single image or an index, told apart by its media type (the
/// body's `mediaType`, else `content_type`) or, failing both, by its fields.
pub(super) fn parse_manifest(
    digest: String,
    content_type: &str,
    body: &[u8],
) -> anyhow::Result<Manifest> {
    let parsed: ManifestJson =
        serde_json::from_slice(body).context("the manifest is not valid JSON")?;
    let media_type = parsed
        .media_type
        .filter(|m| !m.is_empty())
        .or_else(|| {
            let ct = content_type.split(';').next().unwrap_or("").trim();
            (!ct.is_empty() && ct != "application/json").then(|| ct.to_string())
        })
        .unwrap_or_else(|| {
            if parsed.manifests.is_some() {
                OCI_INDEX.to_string()
            } else {
                "application/vnd.oci.image.manifest.v1+json".to_string()
            }
        });
    let mut m = Manifest {
        digest,
        media_type,
        config: Descriptor {
            media_type: None,
            digest: String::new(),
            size: 0,
        },
        layers: parsed.layers,
        manifests: parsed.manifests.unwrap_or_default(),
    };
    if m.is_index() {
        return Ok(m);
    }
    m.config = parsed
        .config
        .ok_or_else(|| anyhow!("a {} without a config", m.media_type))?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_and_indexes_are_told_apart() {
        let image = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"x","digest":"sha256:c","size":3},"layers":[{"digest":"sha256:l","size":5}]}"#;
        let m = parse_manifest("sha256:m".into(), "", image).unwrap();
        assert!(!m.is_index());
        assert_eq!((m.config.digest.as_str(), m.layers.len()), ("sha256:c", 1));
        let index = br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:a","size":7}]}"#;
        let i = parse_manifest("sha256:i".into(), "", index).unwrap();
        assert!(i.is_index());
        assert_eq!(i.manifests[0].digest, "sha256:a");
        let listed = parse_manifest("sha256:i".into(), DOCKER_LIST, index).unwrap();
        assert_eq!(listed.media_type, DOCKER_LIST);
        let oci_image = br#"{"schemaVersion":2,"config":{"digest":"sha256:c","size":3}}"#;
        assert!(!parse_manifest(
            "d".into(),
            "application/vnd.oci.image.manifest.v1+json",
            oci_image
        )
        .unwrap()
        .is_index());
        assert!(parse_manifest("d".into(), "", br#"{"schemaVersion":2}"#).is_err());
    }
}
