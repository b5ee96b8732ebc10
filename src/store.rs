//! Image stores: Docker's (the engine and bake backends build into it) and
//! podman's. An image in one is invisible to the other, so kiln records where it
//! built each image (`.kiln/state.json` under the repository, git-ignored) and
//! looks in both stores when asked where an image is.
//!
//! For other commands: [`locate`] (which stores hold an image), [`inspect`] (one
//! store), [`list_images`] (kiln-labelled images of both stores) and
//! [`elsewhere_message`] (the sentence to print when an image is only in the other store).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

mod containers_storage;

/// A local image store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    Docker,
    Podman,
}

impl Store {
    pub fn name(self) -> &'static str {
        match self {
            Store::Docker => "docker",
            Store::Podman => "podman",
        }
    }

    pub fn other(self) -> Store {
        match self {
            Store::Docker => Store::Podman,
            Store::Podman => Store::Docker,
        }
    }
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An image as a store reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    /// The reference asked for (or, from [`list_images`], the first tag).
    pub name: String,
    /// `sha256:<hex>`.
    pub id: String,
    pub store: Store,
    pub labels: BTreeMap<String, String>,
    /// Registry digests; empty for an image that only ever lived in this store (Docker).
    #[serde(skip)]
    pub repo_digests: Vec<String>,
}

fn docker() -> anyhow::Result<bollard::Docker> {
    bollard::Docker::connect_with_local_defaults().context("connecting to the Docker Engine")
}

fn prefixed(id: &str) -> String {
    if id.starts_with("sha256:") {
        id.to_string()
    } else {
        format!("sha256:{id}")
    }
}

/// Looks `image` up in one store. `Ok(None)`: the store answered and does not have it.
pub async fn inspect(store: Store, image: &str) -> anyhow::Result<Option<ImageInfo>> {
    match store {
        Store::Docker => {
            let client = docker()?;
            match tokio::time::timeout(Duration::from_secs(10), client.inspect_image(image)).await {
                Err(_) => anyhow::bail!(
                    "the Docker Engine did not answer an image inspect of {image} within 10 s"
                ),
                Ok(Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                })) => Ok(None),
                Ok(Err(e)) => {
                    Err(e).with_context(|| format!("inspecting {image} in Docker's image store"))
                }
                Ok(Ok(info)) => Ok(Some(ImageInfo {
                    name: image.to_string(),
                    id: info.id.unwrap_or_default(),
                    store,
                    labels: info
                        .config
                        .and_then(|c| c.labels)
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                    repo_digests: info.repo_digests.unwrap_or_default(),
                })),
            }
        }
        Store::Podman => {
            let image = image.to_string();
            tokio::task::spawn_blocking(move || podman_inspect(&image)).await?
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PodmanImage {
    id: String,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    repo_digests: Option<Vec<String>>,
    #[serde(default)]
    names: Option<Vec<String>>,
}

/// Looks `image` up in podman's store: read from disk when the answer can be checked
/// ([`containers_storage`]), else by skopeo, which reads the store without starting podman's
/// runtime (18 ms here against 48 ms for `podman image inspect`). Neither gives repo
/// digests, which no podman lookup needs. Without skopeo, or if skopeo fails for any
/// other reason than a missing image, podman answers.
fn podman_inspect(image: &str) -> anyhow::Result<Option<ImageInfo>> {
    let found = match containers_storage::lookup(image) {
        Some(found) => Some(Some(found)),
        None => skopeo_inspect(image),
    };
    let Some(found) = found else {
        return podman_image_inspect(image);
    };
    Ok(found.map(|found| ImageInfo {
        name: image.to_string(),
        id: found.id,
        store: Store::Podman,
        labels: found.labels,
        repo_digests: Vec::new(),
    }))
}

/// `skopeo inspect --config --raw containers-storage:IMAGE`: the image's config as stored,
/// whose digest is the image id; `Some(None)` for a missing image, `None` when skopeo is
/// missing or could not answer.
fn skopeo_inspect(image: &str) -> Option<Option<containers_storage::Found>> {
    use sha2::Digest as _;
    let skopeo = which::which("skopeo").ok()?;
    // skopeo takes an id bare, not as `sha256:<id>`.
    let storage = format!(
        "containers-storage:{}",
        image.strip_prefix("sha256:").unwrap_or(image)
    );
    let out = duct::cmd!(skopeo, "inspect", "--config", "--raw", storage)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .ok()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return err
            .contains("does not resolve to an image ID")
            .then_some(None);
    }
    Some(Some(containers_storage::Found {
        labels: containers_storage::config_labels(&out.stdout)?,
        id: format!("sha256:{}", hex::encode(sha2::Sha256::digest(&out.stdout))),
    }))
}

fn podman_image_inspect(image: &str) -> anyhow::Result<Option<ImageInfo>> {
    let out = duct::cmd!("podman", "image", "inspect", "--format", "json", image)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .context("running podman image inspect")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("image not known") || err.contains("no such image") {
            return Ok(None);
        }
        anyhow::bail!("podman image inspect {image} failed: {}", err.trim());
    }
    let mut images: Vec<PodmanImage> =
        serde_json::from_slice(&out.stdout).context("reading podman image inspect's JSON")?;
    let Some(found) = images.pop() else {
        return Ok(None);
    };
    Ok(Some(ImageInfo {
        name: image.to_string(),
        id: prefixed(&found.id),
        store: Store::Podman,
        labels: found.labels.unwrap_or_default(),
        repo_digests: found.repo_digests.unwrap_or_default(),
    }))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The stores that hold `image` (Docker first). A store that does not answer
/// (no engine, no podman) counts as not holding it.
pub async fn locate_async(image: &str) -> Vec<Store> {
    let mut found = Vec::new();
    for store in [Store::Docker, Store::Podman] {
        if let Ok(Some(_)) = inspect(store, image).await {
            found.push(store);
        }
    }
    found
}

/// Synchronous [`locate_async`] (not from inside a tokio runtime).
pub fn locate(image: &str) -> Vec<Store> {
    runtime().block_on(locate_async(image))
}

/// What to tell a user who needs `image` in `wanted` when it is only in the other store.
pub fn elsewhere_message(image: &str, wanted: Store, found_in: &[Store]) -> Option<String> {
    if found_in.contains(&wanted) || found_in.is_empty() {
        return None;
    }
    let other = wanted.other();
    Some(format!(
        "{image} exists only in {other}'s image store, not in {wanted}'s; use it with {other}, \
         or build it again with --backend {}",
        match wanted {
            Store::Docker => "engine",
            Store::Podman => "podman",
        }
    ))
}

/// What both stores hold of kiln's fleet, and which store did not answer.
#[derive(Debug, Default)]
pub struct Listing {
    /// One entry per tag (an untagged image once, named `<untagged>`), sorted by name
    /// and store.
    pub images: Vec<ImageInfo>,
    /// The stores that did not answer, with why.
    pub unreachable: Vec<(Store, String)>,
}

/// Every image in both stores that carries an `eval.type` label (kiln's fleet).
pub async fn list_images_async() -> Listing {
    let mut out = Listing::default();
    match docker_images().await {
        Ok(mut found) => out.images.append(&mut found),
        Err(why) => out.unreachable.push((Store::Docker, why)),
    }
    match tokio::task::spawn_blocking(podman_images).await {
        Ok(Ok(mut found)) => out.images.append(&mut found),
        Ok(Err(why)) => out.unreachable.push((Store::Podman, why)),
        Err(e) => out.unreachable.push((Store::Podman, e.to_string())),
    }
    out.images
        .sort_by(|a, b| (&a.name, a.store).cmp(&(&b.name, b.store)));
    out
}

const UNTAGGED: &str = "<untagged>";

async fn docker_images() -> Result<Vec<ImageInfo>, String> {
    let client = docker().map_err(|e| format!("{e:#}"))?;
    let options = bollard::query_parameters::ListImagesOptionsBuilder::default()
        .filters(&std::collections::HashMap::from([(
            "label",
            vec![crate::labels::TYPE],
        )]))
        .build();
    let images = tokio::time::timeout(Duration::from_secs(10), client.list_images(Some(options)))
        .await
        .map_err(|_| "no answer within 10 s".to_string())?
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for image in images {
        let mut tags: Vec<String> = image
            .repo_tags
            .into_iter()
            .filter(|t| t != "<none>:<none>")
            .collect();
        if tags.is_empty() {
            tags.push(UNTAGGED.into());
        }
        for name in tags {
            out.push(ImageInfo {
                name,
                id: image.id.clone(),
                store: Store::Docker,
                labels: image.labels.clone().into_iter().collect(),
                repo_digests: image.repo_digests.clone(),
            });
        }
    }
    Ok(out)
}

fn podman_images() -> Result<Vec<ImageInfo>, String> {
    let podman = which::which("podman").map_err(|_| "podman is not on PATH".to_string())?;
    let filter = format!("label={}", crate::labels::TYPE);
    let result = duct::cmd(podman, ["images", "--format", "json", "--filter", &filter])
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .map_err(|e| e.to_string())?;
    if !result.status.success() {
        return Err(String::from_utf8_lossy(&result.stderr).trim().to_string());
    }
    let images: Vec<PodmanImage> = serde_json::from_slice(&result.stdout)
        .map_err(|e| format!("reading `podman images` JSON: {e}"))?;
    let mut out = Vec::new();
    for image in images {
        let names = image
            .names
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| vec![UNTAGGED.into()]);
        for name in names {
            out.push(ImageInfo {
                name,
                id: prefixed(&image.id),
                store: Store::Podman,
                labels: image.labels.clone().unwrap_or_default(),
                repo_digests: image.repo_digests.clone().unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// Synchronous [`list_images_async`] (not from inside a tokio runtime).
pub fn list_images() -> Listing {
    runtime().block_on(list_images_async())
}

/// `repo[:tag]` split for the tag API (`kiln.local:5000/x` has no tag).
pub fn split_ref(image: &str) -> (String, String) {
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(c) => (
            image[..slash + c].to_string(),
            image[slash + c + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

/// Gives image `id` the name `image` in `store`.
pub async fn tag(store: Store, id: &str, image: &str) -> anyhow::Result<()> {
    match store {
        Store::Docker => {
            let (repo, tag) = split_ref(image);
            docker()?
                .tag_image(
                    id,
                    Some(bollard::query_parameters::TagImageOptions {
                        repo: Some(repo),
                        tag: Some(tag),
                    }),
                )
                .await
                .with_context(|| format!("tagging {id} as {image}"))
        }
        Store::Podman => {
            let (id, image) = (id.to_string(), image.to_string());
            tokio::task::spawn_blocking(move || {
                let out = duct::cmd!("podman", "tag", &id, &image)
                    .stdout_null()
                    .stderr_capture()
                    .unchecked()
                    .run()?;
                anyhow::ensure!(
                    out.status.success(),
                    "podman tag {id} {image} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                Ok(())
            })
            .await?
        }
    }
}

/// Takes the name `image` away from image `id` (a build that failed its label check),
/// removing the image when nothing else names it. Best effort: the failure is reported
/// by the caller either way.
pub async fn discard(store: Store, id: &str, image: &str) {
    match store {
        Store::Docker => {
            if let Ok(client) = docker() {
                // Untag by name when the name points at this id, then drop the id if unnamed.
                let named = client
                    .inspect_image(image)
                    .await
                    .ok()
                    .and_then(|i| i.id)
                    .is_some_and(|found| found == id);
                if named {
                    let _ = client
                        .remove_image(
                            image,
                            None::<bollard::query_parameters::RemoveImageOptions>,
                            None,
                        )
                        .await;
                }
                let _ = client
                    .remove_image(
                        id,
                        None::<bollard::query_parameters::RemoveImageOptions>,
                        None,
                    )
                    .await;
            }
        }
        Store::Podman => {
            let (id, image) = (id.to_string(), image.to_string());
            let _ = tokio::task::spawn_blocking(move || {
                duct::cmd!("podman", "untag", &id, &image)
                    .stderr_null()
                    .stdout_null()
                    .unchecked()
                    .run()
            })
            .await;
        }
    }
}

/// One image kiln built, as recorded in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub store: Store,
    pub id: String,
    pub digest: String,
}

/// `.kiln/state.json`: where kiln built each image, by reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub images: BTreeMap<String, Record>,
}

impl State {
    pub fn path(repo: &Path) -> PathBuf {
        repo.join(".kiln").join("state.json")
    }

    /// Reads the state file; none yet (or unreadable) is an empty state.
    pub fn load(repo: &Path) -> State {
        std::fs::read(State::path(repo))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Records one built image and writes the file (atomically: temp file + rename).
    pub fn record(repo: &Path, image: &str, record: Record) -> anyhow::Result<()> {
        let dir = repo.join(".kiln");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "# kiln's local state; never committed\n*\n")?;
        }
        let mut state = State::load(repo);
        state.images.insert(image.to_string(), record);
        let tmp = tempfile::NamedTempFile::new_in(&dir)?;
        serde_json::to_writer_pretty(&tmp, &state)?;
        tmp.persist(State::path(repo))
            .context("writing .kiln/state.json")?;
        Ok(())
    }

    /// The store kiln last built `image` into, if it did.
    pub fn store_of(&self, image: &str) -> Option<Store> {
        self.images.get(image).map(|r| r.store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// skopeo's answer and the one read from disk are podman's: same id and labels, by
    /// name and by id, for every image podman lists and for a short name; a missing
    /// image is missing for all three (needs podman's store to hold debian:bookworm-slim).
    #[test]
    fn skopeo_and_the_disk_read_podmans_store_as_podman_does() {
        if std::env::var_os("KILN_TEST_PODMAN").is_none() {
            crate::printer::errln!("skipped: set KILN_TEST_PODMAN=1");
            return;
        }
        let listed = duct::cmd!("podman", "images", "--format", "{{.Repository}}:{{.Tag}}")
            .read()
            .unwrap();
        let mut names: Vec<&str> = listed.lines().filter(|n| !n.contains("<none>")).collect();
        names.push("debian:bookworm-slim");
        for image in names {
            let podman = podman_image_inspect(image)
                .unwrap()
                .expect("in podman's store");
            let want = containers_storage::Found {
                id: podman.id.clone(),
                labels: podman.labels.clone(),
            };
            let skopeo = skopeo_inspect(image)
                .expect("skopeo answers")
                .expect("found");
            assert_eq!(skopeo, want, "{image}: skopeo");
            let disk = containers_storage::lookup(image).expect("found on disk");
            assert_eq!(disk, want, "{image}: read from disk");
            let by_id = skopeo_inspect(&podman.id).expect("answers").expect("found");
            assert_eq!(by_id.id, podman.id);
            let by_id = containers_storage::lookup(&podman.id).expect("found on disk");
            assert_eq!(by_id.id, podman.id);
        }
        let absent = "kiln.local/absent:1";
        assert!(matches!(skopeo_inspect(absent), Some(None)));
        assert!(podman_image_inspect(absent).unwrap().is_none());
        assert!(containers_storage::lookup(absent).is_none());
    }

    #[test]
    fn state_round_trip_and_gitignored() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Record {
            store: Store::Podman,
            id: "sha256:1".into(),
            digest: "sha256:2".into(),
        };
        State::record(dir.path(), "kiln.local/core/base:dev", rec.clone()).unwrap();
        let state = State::load(dir.path());
        assert_eq!(
            state.store_of("kiln.local/core/base:dev"),
            Some(Store::Podman)
        );
        assert_eq!(state.images["kiln.local/core/base:dev"], rec);
        assert!(std::fs::read_to_string(dir.path().join(".kiln/.gitignore"))
            .unwrap()
            .contains('*'));
    }

    #[test]
    fn split_reference() {
        assert_eq!(
            split_ref("kiln.local/core/base:dev"),
            ("kiln.local/core/base".into(), "dev".into())
        );
        assert_eq!(
            split_ref("localhost:5000/x"),
            ("localhost:5000/x".into(), "latest".into())
        );
        assert_eq!(
            split_ref("debian:bookworm-slim"),
            ("debian".into(), "bookworm-slim".into())
        );
    }

    #[test]
    fn elsewhere_only_when_only_elsewhere() {
        assert_eq!(
            elsewhere_message("x:1", Store::Docker, &[Store::Docker, Store::Podman]),
            None
        );
        assert_eq!(elsewhere_message("x:1", Store::Docker, &[]), None);
        let msg = elsewhere_message("x:1", Store::Docker, &[Store::Podman]).unwrap();
        assert!(msg.contains("only in podman's image store"), "{msg}");
    }
}
