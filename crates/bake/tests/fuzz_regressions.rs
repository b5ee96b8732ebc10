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

/// kiln refuses expressions nested more than 500 levels deep (`parse::MAX_DEPTH`; Go's
/// HCL has no limit, but kiln recurses over the tree). Every kind of nesting, up to the
/// limit, parses and resolves within the main thread's 8 MB of stack, debug build included;
/// one level more is an error naming the place.
#[test]
fn nesting_up_to_the_limit_fits_the_stack() {
    fn r(s: &str, n: usize) -> String {
        s.repeat(n)
    }
    /// What nests, an expression nested `n` deep, and the deepest `n` accepted.
    type Kind = (&'static str, fn(usize) -> String, usize);
    let kinds: [Kind; 8] = [
        (
            "parentheses",
            |n| format!("{}1{}", r("(", n), r(")", n)),
            498,
        ),
        (
            "calls",
            |n| format!("{}\"x\"{}", r("upper(", n), r(")", n)),
            498,
        ),
        (
            "templates",
            |n| format!("{}\"x\"{}", r("\"${", n), r("}\"", n)),
            498,
        ),
        (
            "heredocs",
            |n| format!("{}\"x\"{}", r("<<EOT\n${", n), r("}\nEOT\n", n)),
            498,
        ),
        ("operator chain", |n| vec!["1"; n + 1].join("+"), 498),
        (
            "for expressions",
            |n| format!("jsonencode({}[1]{})", r("[for x in ", n), r(": x]", n)),
            496,
        ),
        (
            "indexes",
            |n| format!("{}0{}", r("[0][0+", n), r("]", n)),
            249,
        ),
        (
            "directives",
            |n| format!("\"{}x{}\"", r("%{if true}", n), r("%{endif}", n)),
            498,
        ),
    ];
    for (what, expr, deepest) in kinds {
        let file = |n| {
            format!(
                "target \"default\" {{\n  args = {{ A = {} }}\n}}\n",
                expr(n)
            )
        };
        let (ok, too_deep) = (file(deepest), file(deepest + 1));
        let outcome = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || {
                let resolve = |text: String| {
                    kiln_bake::BakeFiles::from_sources(vec![("docker-bake.hcl".into(), text)])
                        .and_then(|f| f.resolve(&kiln_bake::ResolveOptions::default()))
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                };
                (resolve(ok), resolve(too_deep))
            })
            .expect("spawn")
            .join();
        let (ok, too_deep) = outcome.unwrap_or_else(|_| panic!("{what}: overflowed the stack"));
        assert_eq!(ok, Ok(()), "{what}");
        let err = too_deep.expect_err(what);
        assert!(
            err.starts_with("docker-bake.hcl:") && err.contains(": Nesting too deep; kiln reads"),
            "{what}: {err}"
        );
    }
}
