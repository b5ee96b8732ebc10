//! Small file-system helpers: hashing, copying fixtures, ownership, atomic writes.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Copies `from` into `to` recursively (modes kept, symlinks recreated) and returns
/// the regular files copied, relative to `to`, with `/` separators, sorted.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<Vec<String>> {
    let mut files = Vec::new();
    copy_tree_into(from, to, "", &mut files)?;
    files.sort();
    Ok(files)
}

fn copy_tree_into(from: &Path, to: &Path, rel: &str, files: &mut Vec<String>) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        let rel_child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let (src, dst) = (entry.path(), to.join(&name));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree_into(&src, &dst, &rel_child, files)?;
            fs::set_permissions(&dst, fs::metadata(&src)?.permissions())?;
        } else if kind.is_symlink() {
            let _ = fs::remove_file(&dst);
            symlink(fs::read_link(&src)?, &dst)?;
        } else if kind.is_file() {
            fs::copy(&src, &dst)?;
            files.push(rel_child);
        }
    }
    Ok(())
}

/// `chown -R uid:gid path` without following symlinks.
pub fn chown_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    lchown(path, Some(uid), Some(gid))?;
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Regular files under `root`, relative and sorted, skipping `.git` directories.
pub fn walk_files(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let rel_child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && name != ".git" {
                walk(&entry.path(), &rel_child, out);
            } else if kind.is_file() {
                out.push(rel_child);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, "", &mut out);
    out.sort();
    out
}

/// Symlinks under `root` (not followed) whose target resolves into one of `hidden`:
/// an agent cannot read the grading tree, but a root-run grader would follow such a
/// link for it. Returns (relative path, resolved target).
pub fn symlinks_into(root: &Path, hidden: &[PathBuf]) -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, rel: &str, hidden: &[PathBuf], out: &mut Vec<(String, PathBuf)>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let rel_child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_symlink() {
                if let Ok(target) = fs::canonicalize(entry.path()) {
                    if hidden.iter().any(|h| target.starts_with(h)) {
                        out.push((rel_child, target));
                    }
                }
            } else if kind.is_dir() {
                walk(&entry.path(), &rel_child, hidden, out);
            }
        }
    }
    let hidden: Vec<PathBuf> = hidden
        .iter()
        .filter_map(|h| fs::canonicalize(h).ok())
        .collect();
    let mut out = Vec::new();
    if !hidden.is_empty() {
        walk(root, "", &hidden, &mut out);
    }
    out
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename,
/// so a reader sees either the old file or the whole new one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        std::process::id()
    ));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    fs::rename(&tmp, path)
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn now() -> String {
    rfc3339(SystemTime::now())
}

/// Random hex from the kernel, for run ids.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_err()
    {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seed = nanos ^ u128::from(std::process::id());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8;
        }
    }
    hex::encode(buf)
}

/// The last `max` bytes of a file as text ("" if unreadable).
pub fn read_tail(path: &Path, max: usize) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    let start = bytes.len().saturating_sub(max);
    crate::check::tail(&String::from_utf8_lossy(&bytes[start..]), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_tree_keeps_modes_and_lists_files() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("in/deep")).unwrap();
        fs::write(src.join("in/a.csv"), "a").unwrap();
        fs::write(src.join("in/deep/run.sh"), "#!/bin/sh").unwrap();
        fs::set_permissions(
            src.join("in/deep/run.sh"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        symlink("a.csv", src.join("in/link")).unwrap();
        let dst = tmp.path().join("dst");
        let files = copy_tree(&src, &dst).unwrap();
        assert_eq!(files, vec!["in/a.csv", "in/deep/run.sh"]);
        assert_eq!(
            fs::metadata(dst.join("in/deep/run.sh"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
        assert_eq!(
            fs::read_link(dst.join("in/link")).unwrap(),
            PathBuf::from("a.csv")
        );
        assert_eq!(
            sha256_file(&dst.join("in/a.csv")).unwrap(),
            "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
        );
    }

    #[test]
    fn finds_links_into_hidden_trees() {
        let tmp = tempfile::tempdir().unwrap();
        let hidden = tmp.path().join("kiln/grading");
        fs::create_dir_all(&hidden).unwrap();
        fs::write(hidden.join("expected"), "x").unwrap();
        let ws = tmp.path().join("ws");
        fs::create_dir_all(ws.join("sub")).unwrap();
        symlink(hidden.join("expected"), ws.join("out.txt")).unwrap();
        symlink(&hidden, ws.join("sub/dir")).unwrap();
        symlink("/bin/sh", ws.join("sh")).unwrap();
        symlink(
            tmp.path().join("kiln/../kiln/grading/../grading/missing"),
            ws.join("dangling"),
        )
        .unwrap();
        let found: Vec<String> = symlinks_into(&ws, &[tmp.path().join("kiln")])
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.contains(&"out.txt".to_string()) && found.contains(&"sub/dir".to_string()));
    }

    #[test]
    fn atomic_write_replaces() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("out/result.json");
        write_atomic(&p, b"one", 0o644).unwrap();
        write_atomic(&p, b"two", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(fs::read_dir(tmp.path().join("out")).unwrap().count(), 1);
    }
}
