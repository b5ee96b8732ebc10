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
    assert_eq!(
        err,
        "u.hcl:1,37-2,1: Invalid single-argument block definition; An argument definition on \
         the same line as its containing block creates a single-line block definition, which \
         must also be closed on the same line. Place the block's closing brace immediately \
         after the argument definition."
    );
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

/// Rule: buildx accepts any nesting depth and any chain of binary operators, in
/// expressions and in templates. kiln accepts up to 500 levels (see `fuzz_regressions.rs`).
#[test]
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

fn assert_args(file: &str, want: &[(&str, &str)]) {
    let r = resolve("docker-bake.hcl", file.as_bytes()).unwrap();
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(args(&r), want, "{file}");
}

fn assert_errors(cases: &[(&str, &str)]) {
    for (file, want) in cases {
        let got = resolve("docker-bake.hcl", file.as_bytes())
            .map(|_| ())
            .unwrap_err();
        assert_eq!(&got, want, "{file}");
    }
}

/// Rule: binary operators bind as in Go's HCL, loosest first: `||`, `&&`, `==` `!=`,
/// comparisons, `+` `-`, `*` `/` `%`; each level is left-associative, `? :` is
/// right-associative, and unary `-`/`!` take only the term after them.
#[test]
fn long_mixed_operator_chains_keep_precedence_and_left_associativity() {
    let (file, want) = ("target \"default\" {\n  args = {\n    A = 10 - 2 - 3 * 2 / 4 % 3 + 8 / 2 / 2 - 1\n    B = 1 + 2 * 3 - 4 / 2 % 3 == 5 || !true && 2 < 3 ? \"y\" : \"n\"\n    C = 2 * 3 + 4 > 9 == true && 1 - 1 - 1 < 0 || false\n    D = 100 / 10 / 5 * 3 % 4 - -2 + 7 % 4 * 2\n    E = true ? false ? \"a\" : \"b\" : \"c\"\n    F = -3 + 5 * -2 - -4 / 2\n    G = 1 < 2 == 2 < 3 != false\n    H = !false == true\n    I = 2 - 3 - 4 - 5 - 6 - 7 - 8 - 9 - 10 * 2 / 4 / 5 % 3 + 1 - 1 + 64 / 2 / 2 / 2 / 2 / 2 / 2\n  }\n}\n", &[("A", "7.5"), ("B", "y"), ("C", "true"), ("D", "10"), ("E", "b"), ("F", "-11"), ("G", "true"), ("H", "true"), ("I", "-40")]);
    assert_args(file, want);
}

/// Rule: `~` trims whitespace only from the neighbouring piece of template text, and a
/// heredoc's text comes in one piece per line: `${~` after an indented line start trims
/// that indentation and not the line before.
#[test]
fn strip_markers_trim_only_the_neighbouring_line() {
    let (file, want) = ("target \"default\" {\n  args = {\n    A = <<EOT\na   \n   ${~\"x\"}\nEOT\n    B = <<EOT\n${\"x\"~}   \n  b\nEOT\n    C = \"a  ${~\"x\"~}  b\"\n    D = <<EOT\n  l1 %{~ if true ~}\n    yes\n  %{~ endif ~}\n  end\nEOT\n  }\n}\n", &[("A", "a   \nx\n"), ("B", "x  b\n"), ("C", "axb"), ("D", "  l1    yes\n  end\n")]);
    assert_args(file, want);
}

/// Rule: `<<-` removes the least indentation of the lines (blank lines do not count, a
/// line starting with an interpolation counts as none); a heredoc's closing marker may be
/// indented, and only a whole line closes it.
#[test]
fn heredoc_indentation_and_closing_markers() {
    let (file, want) = ("target \"default\" {\n  args = {\n    A = <<-EOT\n        four\n      two\n\n          six\n      EOT\n    B = <<-EOT\n      a\n    ${\"x\"}\n      b\n    EOT\n    C = <<-EOT\n\ttab\n\t  tab2\n\tEOT\n    D = <<-EOT\n    x ${\"y\"}\n      z\n    EOT\n    E = <<EOT\n  x\n  EOT\n    F = <<EOT\n${\"a\"}EOT\nEOT\n    G = <<EOT\nEOT\n  }\n}\n", &[("A", "  four\ntwo\n\n    six\n"), ("B", "  a\nx\n  b\n"), ("C", "tab\n  tab2\n"), ("D", "x y\n  z\n"), ("E", "  x\n"), ("F", "aEOT\n"), ("G", "")]);
    assert_args(file, want);
    let (file, want) = ("variable \"X\" {\r\n  default = \"v\"\r\n}\r\ntarget \"default\" {\r\n  args = {\r\n    A = <<-EOT\r\n      a ${X}\r\n        b\r\n      EOT\r\n    B = \"x\" # c\r\n  }\r\n}\r\n", &[("A", "a v\r\n  b\r\n"), ("B", "x")]);
    assert_args(file, want);
}

/// Rule: a template that is one interpolation and nothing else passes its value through
/// (a number stays a number); any text beside it, even emptied by `~`, makes a string.
#[test]
fn a_lone_interpolation_keeps_its_type() {
    let (file, want) = ("target \"default\" {\n  args = {\n    A = jsonencode(\"${1~} \")\n    B = jsonencode(\"${1}\")\n    C = jsonencode(\"%{if true}${1}%{endif}\")\n    D = jsonencode(<<EOT\n${1}\nEOT\n)\n  }\n}\n", &[("A", "\"1\""), ("B", "1"), ("C", "\"1\""), ("D", "\"1\\n\"")]);
    assert_args(file, want);
}

/// Rule: bare `true`, `false` and `null` are literal object keys like any bare name; a
/// key in parentheses is an expression; `for` opens a for expression, even as a key.
#[test]
fn keywords_as_object_keys() {
    let (file, want) = ("target \"default\" {\n  args = {\n    A = jsonencode({ true = 1, null = 2, false = 3, \"x\" = 4, (1) = 5 })\n  }\n}\n", &[("A", "{\"1\":5,\"false\":3,\"null\":2,\"true\":1,\"x\":4}")]);
    assert_args(file, want);
    assert_errors(&[("target \"default\" {\n  args = {\n    A = jsonencode({ for = 1 })\n  }\n}\n", "docker-bake.hcl:3,26-27: Invalid 'for' expression; For expression requires variable name after 'for'.")]);
}

/// Rule: `.0` is an index (HCL's legacy syntax), `.*` carries only the `.name`/`.0` steps
/// after it while `[*]` carries every step; `.0.0` and `.*.*` are refused.
#[test]
fn legacy_indexes_and_splats() {
    let (file, want) = ("variable \"L\" {\n  default = [{a = 1, b = [10, 20]}, {a = 2, b = [30, 40]}]\n}\ntarget \"default\" {\n  args = {\n    A = jsonencode(L.0)\n    B = jsonencode(L.*.a)\n    C = jsonencode(L[*].b[1])\n    D = jsonencode(L.*.b.0)\n    E = jsonencode(L.*.b[0])\n    F = L.1.a\n  }\n}\n", &[("A", "{\"a\":1,\"b\":[10,20]}"), ("B", "[1,2]"), ("C", "[20,40]"), ("D", "[10,30]"), ("E", "[10,20]"), ("F", "2")]);
    assert_args(file, want);
    assert_errors(&[
        ("variable \"L\" {\n  default = [[1]]\n}\ntarget \"default\" {\n  args = {\n    A = jsonencode(L.0.0)\n  }\n}\n", "docker-bake.hcl:6,22-25: Invalid legacy index syntax; When using the legacy index syntax, chaining two indexes together is not permitted. Use the proper index syntax instead, like [0][0]."),
        ("variable \"L\" {\n  default = [[1]]\n}\ntarget \"default\" {\n  args = {\n    A = jsonencode(L.*.*)\n  }\n}\n", "docker-bake.hcl:6,24-25: Nested splat expression not allowed; A splat expression (*) cannot be used inside another attribute-only splat expression."),
    ]);
}

/// Rule: template directives, escapes and their errors, as Go's HCL gives them.
#[test]
fn template_directives_and_escapes() {
    let (file, want) = ("target \"default\" {\n  args = {\n    A = \"%{ for i, x in [\"a\", \"b\"] }${i}=${x};%{ endfor }\"\n    B = \"x%{ if false }y%{ else }z%{ endif }\"\n    C = <<EOT\n%{ for x in [1,2] ~}\nitem ${x}\n%{ endfor ~}\ndone\nEOT\n  }\n}\n", &[("A", "0=a;1=b;"), ("B", "xz"), ("C", "item 1\nitem 2\ndone\n")]);
    assert_args(file, want);
    let (file, want) = ("target \"default\" {\n  args = {\n    A = \"$${x} %%{y} a$ $$ \\u00e9 \\t|\\\"\\\\\"\n    B = <<EOT\n$${x} \\n %%{y}\nEOT\n  }\n}\n", &[("A", "${x} %{y} a$ $$ é \t|\"\\"), ("B", "${x} \\n %{y}\n")]);
    assert_args(file, want);
    assert_errors(&[
        ("target \"default\" {\n  args = {\n    A = \"a%{ endif }\"\n  }\n}\n", "docker-bake.hcl:3,11-21: Unexpected endif directive; The control directives within this template are unbalanced."),
        ("target \"default\" {\n  args = {\n    A = \"a%{ if true }b\"\n  }\n}\n", "docker-bake.hcl:3,24-25: Unexpected end of template; The if directive at docker-bake.hcl:3,11-23 is missing its corresponding endif directive."),
        ("target \"default\" {\n  args = { A = \"%{ if true }a%{ else }b%{ else }c%{ endif }\" }\n}\n", "docker-bake.hcl:2,40-49: Unexpected else directive; Already in the else clause for the if started at docker-bake.hcl:2,17-29., and 1 other diagnostic(s)"),
        ("target \"default\" {\n  args = { A = \"%{ for x in [1] }${x}%{ endif }\" }\n}\n", "docker-bake.hcl:2,38-48: Unexpected endif directive; Expecting an endfor directive corresponding to the for directive at docker-bake.hcl:2,17-34."),
        ("target \"default\" {\n  args = {\n    A = \"a\\qb\"\n  }\n}\n", "docker-bake.hcl:3,11-13: Invalid escape sequence; The symbol \"q\" is not a valid escape sequence selector."),
        ("target \"default\" {\n  args = {\n    A = \"\\u12\"\n  }\n}\n", "docker-bake.hcl:3,10-14: Invalid escape sequence; The \\u escape sequence must be followed by four hexadecimal digits."),
    ]);
}

/// Rule: newlines end attributes (not inside brackets or parentheses), commas or newlines
/// separate object items, and comments end lines.
#[test]
fn layout_newlines_and_comments() {
    let (file, want) = ("target \"default\" {\n  args = {\n    \"a-b\" = \"1\"\n    \"${\"c\"}\" = \"2\"\n    d: \"3\",\n    e = \"4\", # comment\n    f = (true ?\n     \"5\" : \"6\")\n  }\n  tags = [\n    \"a\",\n    \"b\"\n  ]\n  platforms = [\"linux/amd64\",\n  ] /* a\n  comment */\n}\n# no newline at the end", &[("a-b", "1"), ("c", "2"), ("d", "3"), ("e", "4"), ("f", "5")]);
    assert_args(file, want);
}

/// Rule: syntax errors carry Go HCL's summary, detail and range; the scanner's errors
/// (stray characters, newlines in quoted strings) come first, counting the parse error.
#[test]
fn syntax_errors_name_buildxs_position_and_wording() {
    assert_errors(&[
        ("target \"default\" {\n  args = { A = \"x\" }, tags = []\n}\n", "docker-bake.hcl:2,21-22: Unexpected comma after argument; Argument definitions must be separated by newlines, not commas. An argument definition must end with a newline."),
        ("target \"default\" {\n  tags = [\"a\"] dockerfile = \"x\"\n}\n", "docker-bake.hcl:2,16-26: Missing newline after argument; An argument definition must end with a newline."),
        ("target \"default\" {\n  tags = [\"a\"]\n", "docker-bake.hcl:1,18-19: Unclosed configuration block; There is no closing brace for this block before the end of the file. This may be caused by incorrect brace nesting elsewhere in this file."),
        ("}\ntarget \"default\" {\n}\n", "docker-bake.hcl:1,1-2: Argument or block definition required; An argument or block definition is required here."),
        ("target \"default\" {\n  \"tags\" = [\"a\"]\n}\n", "docker-bake.hcl:2,3-4: Invalid argument name; Argument names must not be quoted."),
        ("target \"default\" { tags = [\"a\"], dockerfile = \"x\" }\n", "docker-bake.hcl:1,32-33: Invalid single-argument block definition; Single-line block syntax can include only one argument definition. To define multiple arguments, use the multi-line block syntax with one argument definition per line."),
        ("target \"default\" {\n  args = { A = 1 + }\n}\n", "docker-bake.hcl:2,20-21: Invalid expression; Expected the start of an expression, but found an invalid expression token."),
        ("target \"default\" {\n  args = { A = (1 }\n}\n", "docker-bake.hcl:2,19-20: Unbalanced parentheses; Expected a closing parenthesis to terminate the expression."),
        ("target \"default\" {\n  args = { A = upper(\"a\" \"b\") }\n}\n", "docker-bake.hcl:2,26-27: Missing argument separator; A comma is required to separate each function argument from the next."),
        ("target \"default\" {\n  tags = [\"a\" \"b\"]\n}\n", "docker-bake.hcl:2,15-16: Missing item separator; Expected a comma to mark the beginning of the next item."),
        ("target \"default\" {\n  args = { A = \"1\" B = \"2\" }\n}\n", "docker-bake.hcl:2,20-21: Missing attribute separator; Expected a newline or comma to mark the beginning of the next attribute."),
        ("target \"default\" {\n  args = { A = \"1\", B }\n}\n", "docker-bake.hcl:2,23-24: Missing key/value separator; Expected an equals sign (\"=\") to mark the beginning of the attribute value."),
        ("target \"default\" {\n  args = { A = 1 +", "docker-bake.hcl:2,19-19: Missing expression; Expected the start of an expression, but found the end of the file."),
        ("target \"default\" {\n  args = { A = \"a\" } # c\n  tags = [\"x\"] /* multi\n  line */ dockerfile = \"y\"\n}\n", "docker-bake.hcl:4,11-21: Missing newline after argument; An argument definition must end with a newline."),
        ("target \"default\" {\n  args = { A = 1 ; B = 2 }\n}\n", "docker-bake.hcl:2,18-19: Invalid character; The \";\" character is not valid. Use newlines to separate arguments and blocks, and commas to separate items in collection values., and 1 other diagnostic(s)"),
        ("target \"default\" {\n  args = { A = 'x' }\n}\n", "docker-bake.hcl:2,16-17: Invalid character; Single quotes are not valid. Use double quotes (\") to enclose strings., and 1 other diagnostic(s)"),
        ("target \"default\" {\n  args = { A = 1 & 2 }\n}\n", "docker-bake.hcl:2,18-19: Unsupported operator; Bitwise operators are not supported. Did you mean boolean AND (\"&&\")?, and 1 other diagnostic(s)"),
        ("target \"default\" {\n  args = { A = \"@\" @ @ }\n}\n", "docker-bake.hcl:2,20-21: Invalid character; This character is not used within the language., and 2 other diagnostic(s)"),
        ("target \"default\" = {\n}\n", "docker-bake.hcl:1,18-19: Invalid block definition; The equals sign \"=\" indicates an argument definition, and must not be used when defining a block."),
        ("target \"default\"\n{\n}\n", "docker-bake.hcl:1,17-2,1: Invalid block definition; A block definition must have block content delimited by \"{\" and \"}\", starting on the same line as the block header."),
        ("target \"default\" {\n  args = { A = \"x\" }}\n", "docker-bake.hcl:2,21-22: Missing newline after argument; An argument definition must end with a newline."),
        ("target \"d${x}\" {\n}\n", "docker-bake.hcl:1,10-12: Invalid string literal; Template sequences are not allowed in this string. To include a literal \"$\", double it (as \"$$\") to escape it."),
        ("target \"default\" {\n  args = { A = [for x in [1]: x if] }\n}\n", "docker-bake.hcl:2,35-36: Invalid expression; Expected the start of an expression, but found an invalid expression token."),
        ("target \"default\" {\n  args = { A = {for x in [1]: x} }\n}\n", "docker-bake.hcl:2,31-32: Invalid 'for' expression; Key expression is required when building an object."),
        ("target \"default\" {\n  args = { A = <<EOT\nx\nEOT", "docker-bake.hcl:4,4-4: Unterminated template string; No closing marker was found for the string."),
        ("target \"default\" {\n  args = { A = 1 ? 2 }\n}\n", "docker-bake.hcl:2,22-23: Missing false expression in conditional; The conditional operator (...?...:...) requires a false expression, delimited by a colon."),
        ("target \"default\" {\n  args = { A = concat([1], [2]..., [3]) }\n}\n", "docker-bake.hcl:2,31-34: Missing closing parenthesis; An expanded function argument (with ...) must be immediately followed by closing parentheses."),
        ("target \"default\" {\n  args = { A = \"a }\n}\n", "docker-bake.hcl:2,20-3,1: Invalid multi-line string; Quoted strings may not be split over multiple lines. To produce a multi-line string, either use the \\n escape to represent a newline character or use the \"heredoc\" multi-line template syntax., and 2 other diagnostic(s)"),
        ("target \"default\" {\n  args = { A = a. }\n}\n", "docker-bake.hcl:2,19-20: Invalid attribute name; An attribute name is required after a dot."),
        ("target \"default\" {\n  args = { A = \"x\" }\n  foo {\n    a = 1\n", "docker-bake.hcl:3,7-8: Unclosed configuration block; There is no closing brace for this block before the end of the file. This may be caused by incorrect brace nesting elsewhere in this file."),
        ("target \"default\" {\n  args = { A = 1.2.3 }\n}\n", "docker-bake.hcl:2,16-21: Invalid number literal; Failed to recognize the value of this number literal."),
        ("target \"default\" {\n  args = { A = true ?\n     \"a\" : \"b\" }\n}\n", "docker-bake.hcl:2,22-3,1: Invalid expression; Expected the start of an expression, but found an invalid expression token."),
        ("target \"default\" {\n  args = { A = \"${a:b}\" }\n}\n", "docker-bake.hcl:2,20-21: Extra characters after interpolation expression; Template interpolation doesn't expect a colon at this location. Did you intend this to be a literal sequence to be processed as part of another language? If so, you can escape it by starting with \"$${\" instead of just \"${\"."),
        ("target \"default\" {\n  args = { A = \"%{ if true }a\" }\n  tags = []\n}\n", "docker-bake.hcl:2,30-31: Unexpected end of template; The if directive at docker-bake.hcl:2,17-29 is missing its corresponding endif directive."),
        ("target \"default\" {\n  args = { A = \"a\r\nb\" }\n}\n", "docker-bake.hcl:2,18-3,1: Invalid multi-line string; Quoted strings may not be split over multiple lines. To produce a multi-line string, either use the \\n escape to represent a newline character or use the \"heredoc\" multi-line template syntax., and 1 other diagnostic(s)"),
        ("target \"default\" {\n  args = { A = 1 }\r}\n", "docker-bake.hcl:2,19-20: Invalid character; This character is not used within the language., and 1 other diagnostic(s)"),
        ("target \"default\" {\n  args = { A = a::upper(\"x\") }\n}\n", "docker-bake.hcl:2,17-18: Missing attribute separator; Expected a newline or comma to mark the beginning of the next attribute."),
        ("target \"default\" {\n  args = { A = 2 ** 3 }\n}\n", "docker-bake.hcl:2,19-20: Invalid expression; Expected the start of an expression, but found an invalid expression token."),
    ]);
}

/// Rule: a file that cannot be read is named with Go's wording, as buildx prints it
/// (`docker buildx bake -f nope.hcl --print`; `-f` a directory).
#[test]
fn unreadable_files_are_reported_in_gos_words() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    let err = |name: &str| {
        BakeFiles::read(dir.path(), &[name.to_string()])
            .map(|_| ())
            .expect_err("refused")
            .to_string()
    };
    assert_eq!(err("nope.hcl"), "open nope.hcl: no such file or directory");
    assert_eq!(err("d"), "read d: is a directory");
}
