//! `agent-image-test-leak`: a `COPY`/`ADD` of the agent's image whose source is, in fact,
//! the task's tests or solution: a symlink into them, or a file byte-identical to one of
//! theirs. A task's own application tests (`environment/app/tests/`) are not graders and
//! are not reported; only what resolves to the hidden files is.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::copies::Copied;
use crate::context::{Context, EntryKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The verifier's files (Harbor's `tests/`, kiln's `grading/`).
    Tests,
    Solution,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::Tests => "the tests, which only the verifier may see",
            Kind::Solution => "the solution, which the agent must not see",
        }
    }
}

/// The files the agent must not see.
pub struct Hidden {
    /// Canonical directories, with what they hold and how to name them.
    dirs: Vec<(PathBuf, Kind, PathBuf)>,
    /// Non-empty files by size: (how to name it, kind, path on disk).
    by_size: HashMap<u64, Vec<(PathBuf, Kind, PathBuf)>>,
    hashes: HashMap<PathBuf, [u8; 32]>,
}

impl Hidden {
    /// The files under `dirs` (relative to `root`, each with its kind; missing ones skipped).
    pub fn read(root: &Path, dirs: &[(PathBuf, Kind)]) -> Hidden {
        let mut hidden = Hidden {
            dirs: Vec::new(),
            by_size: HashMap::new(),
            hashes: HashMap::new(),
        };
        for (rel, kind) in dirs {
            let abs = root.join(rel);
            let Ok(canonical) = std::fs::canonicalize(&abs) else {
                continue;
            };
            hidden.dirs.push((canonical, *kind, rel.clone()));
            for e in walkdir::WalkDir::new(&abs).into_iter().flatten() {
                if !e.file_type().is_file() {
                    continue;
                }
                let size = e.metadata().map_or(0, |m| m.len());
                if size > 0 {
                    let name = e
                        .path()
                        .strip_prefix(root)
                        .unwrap_or(e.path())
                        .to_path_buf();
                    hidden.by_size.entry(size).or_default().push((
                        name,
                        *kind,
                        e.path().to_path_buf(),
                    ));
                }
            }
        }
        hidden
    }

    /// What `path` (a symlink or file of the context) is among the hidden files.
    fn identify(
        &mut self,
        path: &Path,
        symlink: Option<&Path>,
        size: u64,
    ) -> Option<(Kind, String)> {
        if let Some(target) = symlink {
            let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| {
                normalize(&path.parent().unwrap_or(Path::new("/")).join(target))
            });
            for (dir, kind, name) in &self.dirs {
                if let Ok(rest) = resolved.strip_prefix(dir) {
                    return Some((*kind, format!("a symlink to {}", name.join(rest).display())));
                }
            }
            return None;
        }
        let candidates = self.by_size.get(&size)?.clone();
        let mine = hash(path)?;
        for (name, kind, disk) in candidates {
            let theirs = match self.hashes.get(&disk) {
                Some(h) => *h,
                None => {
                    let h = hash(&disk)?;
                    self.hashes.insert(disk.clone(), h);
                    h
                }
            };
            if theirs == mine {
                return Some((kind, format!("byte-identical to {}", name.display())));
            }
        }
        None
    }
}

/// One finding per leaking instruction: `(line, message)`. `tests_hidden_under`: an
/// image directory the runner closes to the agent (kiln's `/kiln/`), where the tests may go.
pub fn check(
    ctx: &Context,
    copies: &[Copied],
    hidden: &mut Hidden,
    tests_hidden_under: Option<&str>,
    context_name: &Path,
) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for c in copies {
        if out.last().is_some_and(|(l, _)| *l == c.line) {
            continue;
        }
        let e = &ctx.entries[c.entry];
        let symlink = match &e.kind {
            EntryKind::Symlink(t) => Some(t.as_path()),
            EntryKind::File => None,
            EntryKind::Dir => continue,
        };
        let Some((kind, how)) = hidden.identify(&e.path, symlink, e.size) else {
            continue;
        };
        if kind == Kind::Tests && tests_hidden_under.is_some_and(|p| c.dest.starts_with(p)) {
            continue;
        }
        out.push((
            c.line,
            format!(
                "{} lands in the agent's image at {}, and it is {how}: {}",
                context_name.join(&e.rel).display(),
                c.dest,
                kind.what()
            ),
        ));
    }
    out
}

fn hash(path: &Path) -> Option<[u8; 32]> {
    let bytes = std::fs::read(path).ok()?;
    Some(Sha256::digest(&bytes).into())
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::dockerfile::Dockerfile;

    #[test]
    fn symlinks_and_identical_files_leak_application_tests_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let task = dir.path();
        let write = |rel: &str, text: &str| {
            let p = task.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("tests/test_outputs.py", "assert graded()\n");
        write("solution/solve.sh", "echo answer\n");
        write("environment/Dockerfile", "x");
        write("environment/app/tests/test_app.py", "assert app()\n");
        write("environment/copy_of_tests.py", "assert graded()\n");
        std::os::unix::fs::symlink("../solution", task.join("environment/sol")).unwrap();
        let df = Dockerfile::parse(
            "FROM x\nCOPY app/ /app/\nCOPY copy_of_tests.py /app/\nCOPY sol /s\n",
        );
        let env = task.join("environment");
        let ctx = crate::context::walk(&env, Path::new("Dockerfile")).unwrap();
        let copies = super::super::copies::copied(&df, &ctx);
        let mut hidden = Hidden::read(
            task,
            &[
                ("tests".into(), Kind::Tests),
                ("solution".into(), Kind::Solution),
            ],
        );
        let found = check(&ctx, &copies, &mut hidden, None, Path::new("environment"));
        let lines: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [3, 4], "{found:?}");
        assert!(
            found[0]
                .1
                .contains("byte-identical to tests/test_outputs.py"),
            "{found:?}"
        );
        assert!(found[1].1.contains("a symlink to solution"), "{found:?}");
        // Tests under a directory the runner hides are fine; a solution never is.
        let found = check(
            &ctx,
            &copies,
            &mut hidden,
            Some("/app/"),
            Path::new("environment"),
        );
        assert_eq!(found.len(), 1);
    }
}
