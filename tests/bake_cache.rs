//! `kiln bake --print` answers a repeated request from its cache, and anything that
//! changes the answer — a file's bytes, a variable from the environment — misses it.

use std::path::Path;
use std::process::Command;

fn bake(dir: &Path, cache: &Path, env: &[(&str, &str)]) -> (String, bool) {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["bake", "--print", "app"])
        .current_dir(dir)
        .env("XDG_CACHE_HOME", cache)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries = std::fs::read_dir(cache.join("kiln/bake"))
        .map(|d| d.count())
        .unwrap_or(0);
    (String::from_utf8(out.stdout).unwrap(), entries > 0)
}

#[test]
fn cached_answers_equal_fresh_ones_and_changes_miss() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let file = dir.path().join("docker-bake.hcl");
    std::fs::write(
        &file,
        "variable \"TAG\" {\n  default = \"1\"\n}\ntarget \"app\" {\n  tags = [\"app:${TAG}\"]\n}\n",
    )
    .unwrap();
    let (fresh, stored) = bake(dir.path(), cache.path(), &[]);
    assert!(stored, "the answer was not kept");
    let (again, _) = bake(dir.path(), cache.path(), &[]);
    assert_eq!(again, fresh);
    let (uncached, _) = bake(dir.path(), cache.path(), &[("KILN_BAKE_CACHE", "0")]);
    assert_eq!(uncached, fresh);
    assert!(fresh.contains("app:1"), "{fresh}");

    let (from_env, _) = bake(dir.path(), cache.path(), &[("TAG", "2")]);
    assert!(from_env.contains("app:2"), "{from_env}");
    std::fs::write(
        &file,
        "variable \"TAG\" {\n  default = \"3\"\n}\ntarget \"app\" {\n  tags = [\"app:${TAG}\"]\n}\n",
    )
    .unwrap();
    let (edited, _) = bake(dir.path(), cache.path(), &[]);
    assert!(edited.contains("app:3"), "{edited}");
    // An impure file is never kept.
    let impure_cache = tempfile::tempdir().unwrap();
    std::fs::write(
        &file,
        "target \"app\" {\n  tags = [\"app:${timestamp()}\"]\n}\n",
    )
    .unwrap();
    let (_, stored) = bake(dir.path(), impure_cache.path(), &[]);
    assert!(!stored, "an answer with timestamp() was kept");
}
