//! Dockerfiles kiln writes for a build (a base map's rewritten `FROM` lines, a prebuilt
//! image's one-line build) are kept once per content: `<dir>/<digest>/Dockerfile`, named
//! by the digest of their text. Thousands of tasks of a dataset mostly share a handful
//! of Dockerfiles, so a plan writes a handful of files, and only those not already there;
//! an unchanged file keeps its mtime, and a build names the same file every time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The file name every shared Dockerfile has in its folder (BuildKit then looks for no
/// `<name>.dockerignore` beside it, and the build context's `.dockerignore` applies).
const FILE: &str = "Dockerfile";

/// The shared Dockerfiles under one folder of kiln's cache.
pub struct SharedDockerfiles {
    dir: PathBuf,
    /// Digest → path of the files this plan already has (written or found).
    known: HashMap<String, PathBuf>,
}

impl SharedDockerfiles {
    pub fn new(dir: PathBuf) -> SharedDockerfiles {
        SharedDockerfiles {
            dir,
            known: HashMap::new(),
        }
    }

    /// The path of the Dockerfile holding `text`, written unless it is already there.
    pub fn path(&mut self, text: &str) -> anyhow::Result<PathBuf> {
        let digest = digest(text);
        if let Some(p) = self.known.get(&digest) {
            return Ok(p.clone());
        }
        let folder = self.dir.join(&digest);
        let file = folder.join(FILE);
        if !file.is_file() {
            write_new(&folder, &file, text)?;
        }
        self.known.insert(digest, file.clone());
        Ok(file)
    }
}

/// The first 128 bits of the text's sha256, in hex.
fn digest(text: &str) -> String {
    use sha2::{Digest as _, Sha256};
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

/// Writes `text` through a temporary file renamed into place: a reader (or a concurrent
/// kiln) sees the whole file or none.
fn write_new(folder: &Path, file: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(folder)
        .with_context(|| format!("writing in {}", folder.display()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())
        .with_context(|| format!("writing {}", file.display()))?;
    tmp.persist(file)
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_per_content_written_only_when_absent() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = SharedDockerfiles::new(dir.path().join("dockerfiles"));
        let a = files.path("FROM debian:bookworm-slim\n").unwrap();
        let again = files.path("FROM debian:bookworm-slim\n").unwrap();
        let b = files.path("FROM alpine\n").unwrap();
        assert_eq!(a, again);
        assert_ne!(a, b);
        assert_eq!(a.file_name().unwrap(), "Dockerfile");
        assert_eq!(
            std::fs::read_to_string(&a).unwrap(),
            "FROM debian:bookworm-slim\n"
        );
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "FROM alpine\n");
        // Two files, nothing else (no temporary file left behind).
        let all: Vec<_> = walkdir::WalkDir::new(dir.path())
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .collect();
        assert_eq!(all.len(), 2);

        // A later plan finds the file and leaves it alone (its mtime stays).
        let old = filetime(&a);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut later = SharedDockerfiles::new(dir.path().join("dockerfiles"));
        assert_eq!(later.path("FROM debian:bookworm-slim\n").unwrap(), a);
        assert_eq!(filetime(&a), old);
        // The same text in another cache folder is another file with the same name.
        let mut other = SharedDockerfiles::new(dir.path().join("other"));
        let c = other.path("FROM debian:bookworm-slim\n").unwrap();
        assert_eq!(
            c.strip_prefix(dir.path().join("other")).unwrap(),
            a.strip_prefix(dir.path().join("dockerfiles")).unwrap()
        );
    }

    fn filetime(p: &Path) -> std::time::SystemTime {
        std::fs::metadata(p).unwrap().modified().unwrap()
    }
}
