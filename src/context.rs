//! The build context: the files under the context directory that `.dockerignore`
//! lets through, walked in a fixed order, as a tar for the Engine API and as
//! (path, mode, content) records for the input digest.
//!
//! `.dockerignore` follows moby's rules: one pattern per line, `#` comments, blank
//! lines skipped; patterns are anchored at the context root (a leading `/` is
//! dropped, the pattern is path-cleaned); `*` and `?` never cross `/`; `**` spans
//! any number of directories; a pattern that matches a directory excludes
//! everything under it; `!` re-includes; the last matching pattern wins. As with
//! `docker build`, the Dockerfile and `.dockerignore` are still sent (they are
//! needed to build) even when ignored.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context as _};
use globset::{GlobBuilder, GlobMatcher};

/// The name a Dockerfile gets in the tar when it is not sent from the context itself
/// (it lies outside, or kiln rewrote it); the tar's `.dockerignore` lists it, so the
/// engine drops it from the context after reading it, as it does for `docker build`.
pub const EXTRA_DOCKERFILE: &str = ".kiln.Dockerfile";

/// One `.dockerignore` rule.
#[derive(Debug, Clone)]
struct Rule {
    matcher: GlobMatcher,
    /// `!pattern`: re-includes what earlier rules excluded.
    include: bool,
}

/// The parsed `.dockerignore` of one context.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

/// Cleans a pattern like Go's `filepath.Clean`, relative to the context root.
fn clean_pattern(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

impl DockerIgnore {
    /// Parses `.dockerignore` text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> anyhow::Result<DockerIgnore> {
        let mut rules = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (include, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern = clean_pattern(pattern);
            if pattern.is_empty() {
                continue;
            }
            let glob = GlobBuilder::new(&pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .with_context(|| {
                    format!("{}:{}: bad pattern {:?}", origin.display(), n + 1, raw)
                })?;
            rules.push(Rule {
                matcher: glob.compile_matcher(),
                include,
            });
        }
        Ok(DockerIgnore { rules })
    }

    /// Reads `<context>/.dockerignore` (no file: nothing ignored).
    pub fn load(context: &Path) -> anyhow::Result<DockerIgnore> {
        let path = context.join(".dockerignore");
        match fs::read_to_string(&path) {
            Ok(text) => DockerIgnore::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerIgnore::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Whether `rel` (a `/`-separated path relative to the context root) is excluded.
    /// A rule matches a path when it matches the path itself or one of its parents.
    pub fn is_excluded(&self, rel: &str) -> bool {
        let mut excluded = false;
        for rule in &self.rules {
            if rule.include == excluded && self.matches_or_parent(&rule.matcher, rel) {
                excluded = !rule.include;
            }
        }
        excluded
    }

    fn matches_or_parent(&self, matcher: &GlobMatcher, rel: &str) -> bool {
        if matcher.is_match(rel) {
            return true;
        }
        let mut prefix = rel;
        while let Some(at) = prefix.rfind('/') {
            prefix = &prefix[..at];
            if matcher.is_match(prefix) {
                return true;
            }
        }
        false
    }

    /// Whether any rule re-includes (then an excluded directory must still be walked).
    fn has_includes(&self) -> bool {
        self.rules.iter().any(|r| r.include)
    }
}

/// What a context entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink(PathBuf),
}

/// One file, directory or symlink of the context, after `.dockerignore`.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `/`-separated, relative to the context root.
    pub rel: String,
    pub path: PathBuf,
    pub kind: EntryKind,
    /// Permission bits.
    pub mode: u32,
    pub size: u64,
    pub mtime: u64,
}

/// A walked build context.
#[derive(Debug, Clone)]
pub struct Context {
    pub root: PathBuf,
    pub entries: Vec<Entry>,
    /// The Dockerfile's path inside the context, or [`EXTRA_DOCKERFILE`] when it lies outside.
    pub dockerfile_in_tar: String,
    /// The Dockerfile on disk.
    pub dockerfile: PathBuf,
}

fn rel_string(rel: &Path) -> String {
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Walks `root` (sorted, so the order is stable), applying its `.dockerignore`.
/// `dockerfile` is relative to `root` unless absolute; it is always part of the context.
pub fn walk(root: &Path, dockerfile: &Path) -> anyhow::Result<Context> {
    if !root.is_dir() {
        bail!("build context {} is not a directory", root.display());
    }
    let ignore = DockerIgnore::load(root)?;
    let dockerfile_path = if dockerfile.is_absolute() {
        dockerfile.to_path_buf()
    } else {
        root.join(dockerfile)
    };
    if !dockerfile_path.is_file() {
        bail!("Dockerfile {} does not exist", dockerfile_path.display());
    }
    // A Dockerfile outside the context is sent under a name of its own, as `docker build` does.
    let inside = fs::canonicalize(&dockerfile_path)?
        .strip_prefix(fs::canonicalize(root)?)
        .map(rel_string)
        .ok();
    let dockerfile_in_tar = inside
        .clone()
        .unwrap_or_else(|| EXTRA_DOCKERFILE.to_string());
    let always = |rel: &str| rel == ".dockerignore" || Some(rel) == inside.as_deref();

    let mut entries = Vec::new();
    let mut it = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter();
    while let Some(item) = it.next() {
        let item = item.with_context(|| format!("walking build context {}", root.display()))?;
        let rel = rel_string(
            item.path()
                .strip_prefix(root)
                .expect("walkdir stays under its root"),
        );
        let ft = item.file_type();
        if ignore.is_excluded(&rel) && !always(&rel) {
            if ft.is_dir() && !ignore.has_includes() {
                it.skip_current_dir();
            }
            continue;
        }
        let meta = item
            .metadata()
            .with_context(|| format!("reading {}", item.path().display()))?;
        let kind = if ft.is_symlink() {
            EntryKind::Symlink(fs::read_link(item.path())?)
        } else if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_file() {
            EntryKind::File
        } else {
            continue; // sockets, fifos: docker skips them too
        };
        entries.push(Entry {
            rel,
            path: item.path().to_path_buf(),
            size: if kind == EntryKind::File {
                meta.len()
            } else {
                0
            },
            kind,
            mode: meta.permissions().mode() & 0o7777,
            mtime: meta.mtime().max(0) as u64,
        });
    }
    Ok(Context {
        root: root.to_path_buf(),
        entries,
        dockerfile_in_tar,
        dockerfile: dockerfile_path,
    })
}

impl Context {
    /// The context as an uncompressed tar (uid/gid 0, modes and mtimes kept), as the
    /// Engine API's `POST /build` takes it, and the Dockerfile's name in it.
    /// `dockerfile` replaces the Dockerfile's text (kiln's labelled copy); it and an
    /// outside Dockerfile travel as [`EXTRA_DOCKERFILE`], listed in the tar's
    /// `.dockerignore` so the engine removes it (and `.dockerignore`) after reading.
    pub fn tar(&self, dockerfile: Option<&str>) -> anyhow::Result<(Vec<u8>, String)> {
        let mut builder = tar::Builder::new(Vec::new());
        builder.mode(tar::HeaderMode::Complete);
        let extra = dockerfile.is_some() || self.dockerfile_in_tar == EXTRA_DOCKERFILE;
        let file_header = |size: usize| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_size(size as u64);
            h
        };
        if extra {
            let text = match dockerfile {
                Some(text) => text.as_bytes().to_vec(),
                None => fs::read(&self.dockerfile)
                    .with_context(|| format!("reading {}", self.dockerfile.display()))?,
            };
            let mut ignore = match self.entries.iter().find(|e| e.rel == ".dockerignore") {
                Some(e) => fs::read_to_string(&e.path)?,
                None => String::new(),
            };
            if !ignore.is_empty() && !ignore.ends_with('\n') {
                ignore.push('\n');
            }
            ignore.push_str(&format!("{EXTRA_DOCKERFILE}\n.dockerignore\n"));
            builder.append_data(&mut file_header(text.len()), EXTRA_DOCKERFILE, &text[..])?;
            builder.append_data(
                &mut file_header(ignore.len()),
                ".dockerignore",
                ignore.as_bytes(),
            )?;
        }
        for entry in &self.entries {
            if extra && (entry.rel == ".dockerignore" || entry.rel == EXTRA_DOCKERFILE) {
                continue;
            }
            let mut header = tar::Header::new_gnu();
            header.set_mode(entry.mode);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(entry.mtime);
            match &entry.kind {
                EntryKind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    builder.append_data(
                        &mut header,
                        format!("{}/", entry.rel),
                        std::io::empty(),
                    )?;
                }
                EntryKind::Symlink(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    builder.append_link(&mut header, &entry.rel, target)?;
                }
                EntryKind::File => {
                    let file = fs::File::open(&entry.path)
                        .with_context(|| format!("reading {}", entry.path.display()))?;
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(entry.size);
                    builder.append_data(&mut header, &entry.rel, file.take(entry.size))?;
                }
            }
        }
        let name = if extra {
            EXTRA_DOCKERFILE.to_string()
        } else {
            self.dockerfile_in_tar.clone()
        };
        Ok((builder.into_inner()?, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text, Path::new(".dockerignore")).unwrap()
    }

    /// (patterns, path, excluded?) — moby's semantics, one row each.
    #[test]
    fn dockerignore_table() {
        let table: &[(&str, &str, bool)] = &[
            ("", "a.txt", false),
            ("# comment\n\n", "a.txt", false),
            ("*.md", "README.md", true),
            ("*.md", "docs/README.md", false), // anchored at the root; * stops at /
            ("**/*.md", "docs/deep/README.md", true),
            ("**/*.md", "README.md", true), // ** spans zero directories too
            ("docs", "docs/a/b.txt", true), // a matched directory excludes its contents
            ("docs/", "docs/a.txt", true),
            ("/docs", "docs/a.txt", true),    // leading / dropped
            ("./docs/../tmp", "tmp/x", true), // path-cleaned
            ("d?c", "doc", true),
            ("d?c", "d/c", false), // ? stops at /
            ("*", "a/b", true),    // matches the parent directory a
            (
                "node_modules\n!node_modules/keep",
                "node_modules/keep",
                false,
            ),
            (
                "node_modules\n!node_modules/keep",
                "node_modules/drop",
                true,
            ),
            ("!a.txt\n*.txt", "a.txt", true), // last match wins
            ("*.txt\n!a.txt", "a.txt", false),
            ("*.txt\n!a.txt\na*", "a.txt", true),
            ("a/**/c", "a/c", true),
            ("a/**/c", "a/b/x/c", true),
            ("a/**", "a/b", true),
            ("[ab].txt", "b.txt", true),
            ("[!a].txt", "a.txt", false),
            ("  spaced.txt  ", "spaced.txt", true), // surrounding blanks trimmed
            ("secret\\*", "secret*", true),         // backslash escapes
            ("secret\\*", "secretX", false),
        ];
        for (patterns, path, want) in table {
            assert_eq!(
                ignore(patterns).is_excluded(path),
                *want,
                "patterns {patterns:?} path {path:?}"
            );
        }
    }

    #[test]
    fn bad_pattern_names_file_and_line() {
        let err = DockerIgnore::parse("ok\n[unclosed", Path::new("ctx/.dockerignore")).unwrap_err();
        assert!(err.to_string().starts_with("ctx/.dockerignore:2:"), "{err}");
    }

    #[test]
    fn walk_applies_ignore_and_keeps_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(
            root.join(".dockerignore"),
            "Dockerfile\nbuild\n*.log\n!keep.log\n",
        )
        .unwrap();
        fs::create_dir_all(root.join("build/deep")).unwrap();
        fs::write(root.join("build/deep/x"), "x").unwrap();
        fs::write(root.join("a.log"), "a").unwrap();
        fs::write(root.join("keep.log"), "k").unwrap();
        fs::create_dir(root.join("src")).unwrap();
        fs::write(root.join("src/main.rs"), "fn main(){}").unwrap();
        let ctx = walk(root, Path::new("Dockerfile")).unwrap();
        let rels: Vec<&str> = ctx.entries.iter().map(|e| e.rel.as_str()).collect();
        assert_eq!(
            rels,
            [
                ".dockerignore",
                "Dockerfile",
                "keep.log",
                "src",
                "src/main.rs"
            ]
        );
        assert_eq!(ctx.dockerfile_in_tar, "Dockerfile");

        let (tar_bytes, name) = ctx.tar(None).unwrap();
        assert_eq!(name, "Dockerfile");
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                ".dockerignore",
                "Dockerfile",
                "keep.log",
                "src/",
                "src/main.rs"
            ]
        );
    }

    #[test]
    fn dockerfile_outside_context_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("ctx")).unwrap();
        fs::write(dir.path().join("Other.Dockerfile"), "FROM scratch\n").unwrap();
        let ctx = walk(
            &dir.path().join("ctx"),
            &dir.path().join("Other.Dockerfile"),
        )
        .unwrap();
        assert_eq!(ctx.dockerfile_in_tar, EXTRA_DOCKERFILE);
        assert!(ctx.entries.is_empty());
        let (tar_bytes, name) = ctx.tar(None).unwrap();
        assert_eq!(name, EXTRA_DOCKERFILE);
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let mut files = BTreeMap::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
            files.insert(e.path().unwrap().to_string_lossy().into_owned(), text);
        }
        assert_eq!(files[EXTRA_DOCKERFILE], "FROM scratch\n");
        assert_eq!(files[".dockerignore"], ".kiln.Dockerfile\n.dockerignore\n");
    }

    #[test]
    fn rewritten_dockerfile_travels_beside_the_original() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(dir.path().join(".dockerignore"), "*.log").unwrap();
        let ctx = walk(dir.path(), Path::new("Dockerfile")).unwrap();
        let (tar_bytes, name) = ctx.tar(Some("FROM scratch\nLABEL a=b\n")).unwrap();
        assert_eq!(name, EXTRA_DOCKERFILE);
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [EXTRA_DOCKERFILE, ".dockerignore", "Dockerfile"]);
    }
}
