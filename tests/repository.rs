//! What the repository tracks: source, never state. kiln writes its state under
//! `.kiln/` (OCI hand-overs, validation records, caches) and cargo under `target/`;
//! a file from either in git turns the tree dirty as soon as kiln prunes it, and
//! `kiln release` then refuses to run.

use std::process::Command;

#[test]
fn nothing_under_kiln_state_or_target_is_tracked() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("git")
        .args(["-C", root, "ls-files", "--", ".kiln", "target"])
        .output();
    let Ok(out) = out else {
        eprintln!("skipped: git is not installed");
        return;
    };
    if !out.status.success() {
        eprintln!("skipped: {root} is not a git work tree");
        return;
    }
    let tracked = String::from_utf8_lossy(&out.stdout);
    assert!(
        tracked.trim().is_empty(),
        "tracked state files (remove them with `git rm --cached`):\n{tracked}"
    );
}
