//! Disagreements with the real buildx found outside the shared parity corpus, each kept
//! as a case. Every expected value here is what `docker buildx bake --print -f FILE`
//! (buildx 0.13.1) printed for the same bytes.

use kiln_bake::{BakeFiles, ResolveOptions};

fn resolve(name: &str, bytes: &[u8]) -> Result<kiln_bake::Resolved, String> {
    let files = BakeFiles::from_bytes(vec![(name.to_string(), bytes.to_vec())])
        .map_err(|e| e.to_string())?;
    files
        .resolve(&ResolveOptions::default())
        .map_err(|e| e.to_string())
}

fn args(r: &kiln_bake::Resolved) -> Vec<(String, String)> {
    r.targets["default"]
        .args
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

const BAD_ENCODING: &str = "Invalid character encoding; All input files must be UTF-8 encoded. \
     Ensure that UTF-8 encoding is selected in your editor., and 1 other diagnostic(s)";

/// Rule: a byte that is not UTF-8 anywhere but in a comment is refused, at its position.
#[test]
fn bytes_that_are_not_utf8_are_refused_outside_comments() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"target \"default\" {\n  args = { A = \"x\xff\" }\n}\n",
            "u.hcl:2,18-19",
        ),
        // Columns count characters: the `\xc3\xa9` before the bad byte is one.
        (
            b"target \"default\" {\n  args = { A = \"\xc3\xa9\xff\" }\n}\n",
            "u.hcl:2,18-19",
        ),
        (b"target \"d\xffefault\" {\n}\n", "u.hcl:1,10-11"),
        (
            b"target \"default\" {\n  args = { A\xff = \"1\" }\n}\n",
            "u.hcl:2,13-14",
        ),
        (
            b"target \"default\" {\n  args = { A = <<EOT\n  a\xff\nEOT\n }\n}\n",
            "u.hcl:3,4-5",
        ),
        (b"\xff", "u.hcl:1,1-2"),
    ];
    for (bytes, at) in cases {
        let got = resolve("u.hcl", bytes).map(|_| ()).unwrap_err();
        assert_eq!(
            got,
            format!("{at}: {BAD_ENCODING}"),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    // In a comment the bytes are never decoded; in JSON they become U+FFFD.
    let r = resolve(
        "u.hcl",
        b"target \"default\" {\n  # \xff\n  args = { A = \"x\" }\n}\n",
    )
    .unwrap();
    assert_eq!(args(&r), [("A".into(), "x".into())]);
    let r = resolve(
        "u.json",
        b"{\"target\": {\"default\": {\"args\": {\"A\": \"x\xff\"}}}}",
    )
    .unwrap();
    assert_eq!(args(&r), [("A".into(), "x\u{fffd}".into())]);
}

/// Rule: a leading byte-order mark is skipped, and counts for no column.
#[test]
fn a_leading_byte_order_mark_is_skipped() {
    let r = resolve(
        "u.hcl",
        b"\xef\xbb\xbftarget \"default\" {\n  args = { A = \"x\" }\n}\n",
    )
    .unwrap();
    assert_eq!(args(&r), [("A".into(), "x".into())]);
    let err = resolve(
        "u.hcl",
        b"\xef\xbb\xbftarget \"default\" { args = { A = x } \n}\n",
    )
    .unwrap_err();
    // buildx: `u.hcl:1,37-2,1: Invalid single-argument block definition; …` (the wording of
    // syntax errors is hcl-edit's here; the column is what this rule is about).
    assert!(err.starts_with("u.hcl:1,37-"), "{err}");
}

/// Rule: `target.<name>.<attr>` has the type of buildx's struct field: `args` and `labels`
/// are maps of string (so `length` takes them), lists are lists of string, `pull` a bool.
#[test]
fn another_targets_attribute_has_its_field_type() {
    let file = br#"
target "a" {
  args = { X = 1, Y = true }
  tags = [1, "x"]
  context = 5
  pull = "true"
  platforms = ["linux/amd64"]
  output = ["type=docker"]
  cache-from = ["type=local,src=x"]
  contexts = { a = "b" }
}
target "default" {
  args = { a = jsonencode(target.a.args), t = jsonencode(target.a.tags), c = jsonencode(target.a.context), p = jsonencode(target.a.pull), l = length(target.a.contexts), o = jsonencode(target.a.output), cf = jsonencode(target.a.cache-from), pl = jsonencode(concat(target.a.platforms, ["x"])), n = length(target.a.args) }
}
"#;
    let r = resolve("docker-bake.hcl", file).unwrap();
    let want: Vec<(String, String)> = [
        ("a", r#"{"X":"1","Y":"true"}"#),
        ("c", r#""5""#),
        ("cf", r#"["type=local,src=x"]"#),
        ("l", "1"),
        ("n", "2"),
        ("o", r#"["type=docker"]"#),
        ("p", "true"),
        ("pl", r#"["linux/amd64","x"]"#),
        ("t", r#"["1","x"]"#),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(args(&r), want);
}

/// Rule (confirmed, not yet met): buildx accepts any nesting depth and any chain of binary
/// operators, in expressions and in templates; hcl-edit, kiln's parser, refuses more than
/// 64 nested levels and 128 chained operators. Meeting it needs a parser of kiln's own.
#[test]
#[ignore = "hcl-edit caps nesting at 64 levels and operator chains at 128"]
fn deep_nesting_that_buildx_accepts() {
    let deep = |open: &str, inner: &str, close: &str, n: usize| {
        format!(
            "target \"default\" {{\n  args = {{ A = {}{inner}{} }}\n}}\n",
            open.repeat(n),
            close.repeat(n)
        )
    };
    let cases = [
        (deep("(", "1", ")", 100), "1"),
        (deep("upper(", "\"x\"", ")", 100), "X"),
        (deep("\"${", "\"x\"", "}\"", 100), "x"),
        (
            format!(
                "target \"default\" {{\n  args = {{ A = {} }}\n}}\n",
                vec!["1"; 200].join("+")
            ),
            "200",
        ),
    ];
    for (file, want) in cases {
        let r = resolve("docker-bake.hcl", file.as_bytes()).unwrap();
        assert_eq!(args(&r), [("A".into(), want.into())]);
    }
}
