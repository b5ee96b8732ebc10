//! The base map of an air-gapped site: public base images (`python:3.12-slim`) replaced by
//! local ones (`registry.local/python:3.12-slim`, an image in the store, or an OCI layout
//! directory), without editing the fleet's files: each build that starts `FROM` a mapped
//! reference gets a bake named context of that name (`--set T.contexts.REF=…`).
//!
//! File format (`--base-map FILE`): one `PUBLIC_REF=LOCAL_REF` a line, `#` comments and
//! blank lines skipped; `LOCAL_REF` is an image reference or `oci-layout://DIR`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::fleet::Refused;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseMap {
    /// Public reference → bake context value (`docker-image://…` or `oci-layout://…`).
    entries: BTreeMap<String, String>,
}

/// The name a bake named context must carry to bind `FROM image`: BuildKit looks a
/// base up by its familiar name without `:latest` (`ghcr.io/o/gosu:latest` →
/// `ghcr.io/o/gosu`, `docker.io/library/debian:latest` → `debian`); buildx bake passes
/// its keys on as written, so a key with `:latest` never matches.
pub fn context_key(image: &str) -> String {
    let familiar = image
        .strip_prefix("docker.io/library/")
        .or_else(|| image.strip_prefix("docker.io/"))
        .unwrap_or(image);
    familiar
        .strip_suffix(":latest")
        .unwrap_or(familiar)
        .to_string()
}

impl BaseMap {
    /// Reads a base map file.
    pub fn read(file: &Path) -> anyhow::Result<BaseMap> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Refused(format!("--base-map {}: {e}", file.display())))?;
        let mut map = BaseMap::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            map.add(line, &format!("{}:{}", file.display(), n + 1))?;
        }
        Ok(map)
    }

    /// The map of `--base-map FILE` (when given) and then each `--base` entry.
    pub fn from_flags(file: Option<&Path>, entries: &[String]) -> anyhow::Result<BaseMap> {
        let mut map = match file {
            Some(f) => BaseMap::read(f)?,
            None => BaseMap::default(),
        };
        for entry in entries {
            map.add(entry, "--base")?;
        }
        Ok(map)
    }

    /// Adds one `PUBLIC_REF=LOCAL_REF`; `origin` names where it came from in errors.
    pub fn add(&mut self, entry: &str, origin: &str) -> anyhow::Result<()> {
        let bad = |why: &str| {
            Refused(format!(
                "{origin}: {why} in {entry:?} (expected PUBLIC_REF=LOCAL_REF)"
            ))
        };
        let (public, local) = entry.split_once('=').ok_or_else(|| bad("no '='"))?;
        let (public, local) = (public.trim(), local.trim());
        if public.is_empty() || local.is_empty() {
            return Err(bad("an empty side").into());
        }
        if public.contains(char::is_whitespace) || local.contains(char::is_whitespace) {
            return Err(bad("whitespace").into());
        }
        let value = match local.strip_prefix("oci-layout://") {
            Some(dir) => {
                let layout = dir.split(['@', ':']).next().unwrap_or(dir);
                if !Path::new(layout).join("index.json").is_file() {
                    return Err(
                        bad(&format!("{layout} is not an OCI layout (no index.json)")).into(),
                    );
                }
                local.to_string()
            }
            None if local.contains("://") => {
                return Err(bad("a local reference is an image or oci-layout://DIR").into())
            }
            None => format!("docker-image://{local}"),
        };
        self.entries.insert(public.to_string(), value);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The named-context value for `image`, when it is mapped (`:latest` is implied on
    /// either side, as BuildKit matches it).
    pub fn get(&self, image: &str) -> Option<(&str, &str)> {
        let with_latest = |s: &str| {
            let name = s.rsplit('/').next().unwrap_or(s);
            if name.contains(':') || s.contains('@') {
                s.to_string()
            } else {
                format!("{s}:latest")
            }
        };
        let wanted = with_latest(image);
        self.entries
            .iter()
            .find(|(k, _)| with_latest(k) == wanted)
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keys_are_familiar_names_without_latest() {
        assert_eq!(context_key("ghcr.io/o/gosu:latest"), "ghcr.io/o/gosu");
        assert_eq!(context_key("docker.io/library/debian:latest"), "debian");
        assert_eq!(context_key("python:3.12-slim"), "python:3.12-slim");
        assert_eq!(context_key("r:5000/a/b"), "r:5000/a/b");
    }

    #[test]
    fn lines_and_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bases");
        std::fs::write(
            &f,
            "# site mirror\npython:3.12-slim=mirror.local/python:3.12-slim\n\ndebian=deb:12\n",
        )
        .unwrap();
        let m = BaseMap::read(&f).unwrap();
        assert_eq!(
            m.get("python:3.12-slim"),
            Some((
                "python:3.12-slim",
                "docker-image://mirror.local/python:3.12-slim"
            ))
        );
        assert_eq!(
            m.get("debian:latest").map(|e| e.1),
            Some("docker-image://deb:12")
        );
        assert_eq!(m.get("node:22"), None);
        std::fs::write(&f, "a=b\nnot a mapping\n").unwrap();
        let err = BaseMap::read(&f).unwrap_err().to_string();
        assert!(err.contains(&format!("{}:2:", f.display())), "{err}");
        let mut m = BaseMap::default();
        let err = m
            .add("x=oci-layout:///nonexistent/dir", "--base")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/dir is not an OCI layout"),
            "{err}"
        );
        std::fs::write(dir.path().join("index.json"), "{}").unwrap();
        m.add(
            &format!("x=oci-layout://{}", dir.path().display()),
            "--base",
        )
        .unwrap();
    }
}
