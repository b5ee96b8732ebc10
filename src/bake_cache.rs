//! A cache of `kiln bake --print` answers, keyed by everything the answer is made
//! from: this kiln binary, the working directory, the request (files, `--set`,
//! `--var`, targets, flags), every bake file's name and bytes, and the environment
//! variables that can reach the answer — those whose name occurs as a word in a file or
//! the request (a bake variable is overridden only by its own name), `BUILDX_*`, `BAKE_*`
//! and `SOURCE_DATE_EPOCH`. Parsing and evaluating a fleet's files is most of a `kiln bake` call; a
//! repeated call with nothing changed answers from here.
//!
//! Only pure answers are kept: a file that calls `timestamp`, `uuid`, `uuidv4` or
//! `bcrypt` (different on every call) is never cached (the check is on the text, so
//! it errs towards not caching). Errors are never cached. Entries live in
//! `$XDG_CACHE_HOME/kiln/bake` (else `~/.cache/kiln/bake`), at most [`MAX_ENTRIES`];
//! `KILN_BAKE_CACHE=0` turns the cache off.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// Entries kept; the oldest go first when a new one is written.
const MAX_ENTRIES: usize = 64;

/// Text that marks a file whose answer may change between two identical calls.
const IMPURE: [&str; 3] = ["timestamp", "uuid", "bcrypt"];

/// The cache directory, or None when the cache is off or there is no home.
fn dir(env: &BTreeMap<String, String>) -> Option<PathBuf> {
    if env
        .get(crate::env::BAKE_CACHE.name)
        .is_some_and(|v| v == "0")
    {
        return None;
    }
    let base = match env.get("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env.get("HOME").filter(|v| !v.is_empty())?).join(".cache"),
    };
    Some(base.join("kiln").join("bake"))
}

/// Whether answers are cached at all (there is a cache directory and it is not off).
pub fn enabled(env: &BTreeMap<String, String>) -> bool {
    dir(env).is_some()
}

/// The key of a request, or None when it must not be cached. `request` is every
/// argument that shapes the answer, in a fixed order; `files` is (name, bytes).
pub fn key(
    cwd: &Path,
    request: &[String],
    env: &BTreeMap<String, String>,
    files: &[(String, Vec<u8>)],
) -> Option<String> {
    dir(env)?;
    let texts = || {
        let files = files.iter().map(|(_, bytes)| bytes.as_slice());
        files.chain(request.iter().map(|r| r.as_bytes()))
    };
    for word in IMPURE {
        let finder = memchr::memmem::Finder::new(word);
        if texts().any(|t| finder.find(t).is_some()) {
            return None;
        }
    }
    // HCL identifiers hold letters (any script: every non-ASCII byte counts as one),
    // digits, `_` and `-`; a variable is named by a whole word, so `_` (set by shells to
    // the last command) does not reach `BASE_IMAGE`.
    let not_word = |b: &u8| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | 0x80..));
    let mut named = foldhash::HashSet::default();
    let names: foldhash::HashSet<&[u8]> = env.keys().map(|k| k.as_bytes()).collect();
    for word in texts().flat_map(|t| t.split(not_word)) {
        if let Some(name) = names.get(word) {
            named.insert(*name);
        }
    }
    let reaches = |k: &str| {
        k.starts_with("BUILDX_")
            || k.starts_with("BAKE_")
            || k == "SOURCE_DATE_EPOCH"
            || named.contains(k.as_bytes())
    };
    let env: Vec<(&String, &String)> = env.iter().filter(|(k, _)| reaches(k)).collect();
    let mut h = Sha256::new();
    let mut part = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    part(crate::binary::identity()?.as_bytes());
    part(cwd.as_os_str().as_encoded_bytes());
    part(&(request.len() as u64).to_le_bytes());
    for r in request {
        part(r.as_bytes());
    }
    part(&(env.len() as u64).to_le_bytes());
    for (k, v) in env {
        part(k.as_bytes());
        part(v.as_bytes());
    }
    for (name, bytes) in files {
        part(name.as_bytes());
        part(bytes);
    }
    Some(hex::encode(h.finalize()))
}

/// The cached answer for `key`.
pub fn get(env: &BTreeMap<String, String>, key: &str) -> Option<String> {
    std::fs::read_to_string(dir(env)?.join(key)).ok()
}

/// Keeps `answer` under `key` (best effort: a cache that cannot be written is no cache).
pub fn put(env: &BTreeMap<String, String>, key: &str, answer: &str) {
    let Some(dir) = dir(env) else { return };
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let tmp = dir.join(format!(".{key}.{}", std::process::id()));
    if std::fs::write(&tmp, answer).is_err() || std::fs::rename(&tmp, dir.join(key)).is_err() {
        let _ = std::fs::remove_file(&tmp);
        return;
    }
    prune(&dir);
}

/// Removes the oldest entries beyond [`MAX_ENTRIES`].
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if files.len() <= MAX_ENTRIES {
        return;
    }
    files.sort();
    for (_, path) in &files[..files.len() - MAX_ENTRIES] {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(dir: &Path) -> BTreeMap<String, String> {
        BTreeMap::from([("XDG_CACHE_HOME".to_string(), dir.display().to_string())])
    }

    #[test]
    fn every_input_is_part_of_the_key_and_impure_files_are_not_cached() {
        let d = tempfile::tempdir().unwrap();
        let e = env(d.path());
        let files = vec![("a.hcl".to_string(), b"target \"x\" {}".to_vec())];
        let req = vec!["x".to_string()];
        let k = key(Path::new("/r"), &req, &e, &files).unwrap();
        assert_eq!(key(Path::new("/r"), &req, &e, &files).unwrap(), k);
        assert_ne!(key(Path::new("/s"), &req, &e, &files).unwrap(), k);
        assert_ne!(key(Path::new("/r"), &[], &e, &files).unwrap(), k);
        // A variable the files name reaches the answer; one they do not name cannot.
        let named = vec![("a.hcl".to_string(), b"variable \"TAG\" {}".to_vec())];
        let kn = key(Path::new("/r"), &req, &e, &named).unwrap();
        let mut e2 = e.clone();
        e2.insert("TAG".into(), "1".into());
        assert_ne!(key(Path::new("/r"), &req, &e2, &named).unwrap(), kn);
        e2.insert("BUILDX_BAKE_FILE".into(), "x".into());
        assert_ne!(key(Path::new("/r"), &req, &e2, &files).unwrap(), k);
        let mut e3 = e.clone();
        e3.insert("_".into(), "/usr/bin/perf".into());
        e3.insert("TA".into(), "part of a name".into());
        let with_underscores = vec![("a.hcl".to_string(), b"variable \"TAG_X\" {}".to_vec())];
        // A name in another script is one word too.
        let accented = vec![(
            "a.hcl".to_string(),
            "variable \"ÉTAGE\" {}".as_bytes().to_vec(),
        )];
        let mut e4 = e.clone();
        e4.insert("ÉTAGE".into(), "2".into());
        assert_ne!(
            key(Path::new("/r"), &req, &e4, &accented),
            key(Path::new("/r"), &req, &e, &accented)
        );
        let ku = key(Path::new("/r"), &req, &e, &with_underscores).unwrap();
        assert_eq!(
            key(Path::new("/r"), &req, &e3, &with_underscores).unwrap(),
            ku
        );
        assert_eq!(key(Path::new("/r"), &req, &e3, &files).unwrap(), k);
        let other = vec![("a.hcl".to_string(), b"target \"y\" {}".to_vec())];
        assert_ne!(key(Path::new("/r"), &req, &e, &other).unwrap(), k);
        let impure = vec![(
            "a.hcl".to_string(),
            b"target \"x\" { tags = [timestamp()] }".to_vec(),
        )];
        assert_eq!(key(Path::new("/r"), &req, &e, &impure), None);
        let mut off = e.clone();
        off.insert("KILN_BAKE_CACHE".into(), "0".into());
        assert_eq!(key(Path::new("/r"), &req, &off, &files), None);

        assert_eq!(get(&e, &k), None);
        put(&e, &k, "{}\n");
        assert_eq!(get(&e, &k).as_deref(), Some("{}\n"));
    }

    #[test]
    fn old_entries_go() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..MAX_ENTRIES + 5 {
            std::fs::write(d.path().join(format!("{i:03}")), "x").unwrap();
        }
        prune(d.path());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), MAX_ENTRIES);
    }
}
