//! Inputs that once crashed the fuzz target (`fuzz/`), replayed: none may panic.

#[test]
fn fuzz_regressions_do_not_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("regression dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let data = std::fs::read(&path).expect("read");
        let name = path.display().to_string();
        // A thread with the default stack size of the main thread, so stack overflows show.
        let r = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || kiln_bake::fuzz_one(&data))
            .expect("spawn")
            .join();
        assert!(r.is_ok(), "{name} panicked");
        n += 1;
    }
    assert!(n > 0, "no regression inputs in {}", dir.display());
}
