//! Table tests for every function family: inputs → the value (as cty JSON text) or the
//! exact diagnostic text bake prints. Run with `cargo test -p kiln-bake functions`.

use super::text::json_text;
use super::{call, exists, FnError};
use crate::value::{Number, Value};

fn s(x: &str) -> Value {
    Value::string(x)
}

fn n(x: i64) -> Value {
    Value::number(x)
}

fn num(x: &str) -> Value {
    Value::Number(Number::parse(x).expect("number literal"))
}

/// A literal as HCL would build it: arrays are tuples, objects objects.
fn j(text: &str) -> Value {
    Value::from_json(&serde_json::from_str(text).expect("json literal"))
}

fn list(items: Vec<Value>) -> Value {
    Value::List(items)
}

fn map(text: &str) -> Value {
    match j(text) {
        Value::Object(m) => Value::Map(m),
        other => other,
    }
}

/// Calls `name` and returns the result as JSON text, or the rendered error.
fn run(name: &str, args: Vec<Value>) -> Result<String, String> {
    call(name, args)
        .map(|v| json_text(&v).unwrap_or_default())
        .map_err(|e| e.to_message(name))
}

fn table(cases: Vec<(&str, Vec<Value>, &str)>) {
    let mut failures = Vec::new();
    for (name, args, want) in cases {
        let shown = format!("{name}({args:?})");
        let got = match run(name, args) {
            Ok(v) => v,
            Err(e) => format!("ERR {e}"),
        };
        if got != want {
            failures.push(format!("{shown}\n   got: {got}\n  want: {want}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn functions_registry_knows_bake_names() {
    for name in [
        "join",
        "regex_replace",
        "indexof",
        "sanitize",
        "semvercmp",
        "homedir",
        "try",
    ] {
        assert!(exists(name), "{name}");
    }
    for name in ["tostring", "tonumber", "file", "strrev", "startswith"] {
        assert!(!exists(name), "{name} is not a bake function");
    }
    assert_eq!(super::names().len(), 104);
    for name in super::names() {
        assert!(exists(name), "{name} listed but not implemented");
    }
}

#[test]
fn functions_arity_and_argument_errors() {
    table(vec![
        ("upper", vec![], "ERR Not enough function arguments; Function \"upper\" expects 1 argument(s). Missing value for \"str\"."),
        ("join", vec![], "ERR Not enough function arguments; Function \"join\" expects at least 1 argument(s). Missing value for \"separator\"."),
        ("upper", vec![s("a"), s("b")], "ERR Too many function arguments; Function \"upper\" expects only 1 argument(s)."),
        ("upper", vec![Value::Null], "ERR Invalid function argument; Invalid value for \"str\" parameter: argument must not be null."),
        ("upper", vec![j("[1]")], "ERR Invalid function argument; Invalid value for \"str\" parameter: string required."),
        ("join", vec![s(","), s("x")], "ERR Invalid function argument; Invalid value for \"lists\" parameter: list of string required."),
        ("substr", vec![s("abc"), s("x"), n(1)], "ERR Invalid function argument; Invalid value for \"offset\" parameter: a number is required."),
        ("upper", vec![n(42)], "\"42\""),
        ("lookup", vec![j(r#"{"a":1}"#), s("a")], "ERR Not enough function arguments; Function \"lookup\" expects 3 argument(s). Missing value for \"default\"."),
    ]);
    let e = call("length", vec![s("abc")]).unwrap_err();
    assert_eq!(
        e,
        FnError::Failed {
            message: "collection must be a list, a map or a tuple".into()
        }
    );
    assert_eq!(
        e.render("length"),
        (
            "Error in function call".to_string(),
            "Call to function \"length\" failed: collection must be a list, a map or a tuple."
                .to_string()
        )
    );
}

#[test]
fn functions_strings() {
    table(vec![
        // Case 040.
        ("join", vec![s("-"), j(r#"["etl","nightly","v2"]"#)], r#""etl-nightly-v2""#),
        ("join", vec![s("/"), j(r#"["a","b"]"#), j(r#"["c"]"#)], r#""a/b/c""#),
        ("join", vec![s(",")], "ERR Error in function call; Call to function \"join\" failed: at least one list is required."),
        ("join", vec![s(","), j(r#"["a",null]"#)], "ERR Invalid function argument; Invalid value for \"lists\" parameter: element 1 is null; cannot concatenate null values."),
        ("join", vec![s(","), j(r#"["a"]"#), j(r#"[null]"#)], "ERR Invalid function argument; Invalid value for \"lists\" parameter: element 0 of list 2 is null; cannot concatenate null values."),
        ("join", vec![s(","), j("[1, true]")], r#""1,true""#),
        ("split", vec![s(","), s("x,,y")], r#"["x","","y"]"#),
        ("split", vec![s(","), s("")], r#"[""]"#),
        ("split", vec![s(""), s("abc")], r#"["a","b","c"]"#),
        ("lower", vec![s("Data Pipeline")], r#""data pipeline""#),
        ("upper", vec![s("ümlaut")], r#""ÜMLAUT""#),
        ("upper", vec![s("straße")], r#""STRAßE""#),
        ("lower", vec![s("ÀÉÎ")], r#""àéî""#),
        ("title", vec![s("hello bake world")], r#""Hello Bake World""#),
        ("title", vec![s("hello-world foo_bar 1st")], r#""Hello-World Foo_bar 1st""#),
        ("title", vec![s("ǆemal élan")], r#""ǅemal Élan""#),
        ("substr", vec![s("Data Pipeline"), n(5), n(8)], r#""Pipeline""#),
        ("substr", vec![s("hello"), n(1), n(-1)], r#""ello""#),
        ("substr", vec![s("hello"), n(-3), n(2)], r#""ll""#),
        ("substr", vec![s("hello"), n(-3), n(0)], r#""llo""#),
        ("substr", vec![s("hello"), n(1), n(0)], r#""""#),
        ("substr", vec![s("hello"), n(10), n(2)], r#""""#),
        ("substr", vec![s("hello"), n(5), n(2)], r#""""#),
        ("substr", vec![s("hello"), n(0), n(100)], r#""hello""#),
        ("substr", vec![s("e\u{301}abc"), n(1), n(1)], r#""a""#),
        ("substr", vec![s("hello"), num("1.5"), n(1)], "ERR Error in function call; Call to function \"substr\" failed: value must be a whole number, between -9223372036854775808 and 9223372036854775807."),
        ("strlen", vec![s("Data Pipeline")], "13"),
        ("strlen", vec![s("e\u{301}🇫🇷")], "2"),
        ("reverse", vec![s("abc")], r#""cba""#),
        ("sort", vec![j(r#"["b","C","a"]"#)], r#"["C","a","b"]"#),
        ("sort", vec![j(r#"["b",null]"#)], "ERR Error in function call; Call to function \"sort\" failed: given list element 1 is null; a null string cannot be sorted."),
        // Case 040's slug: replace is a plain substring replace (F2).
        ("replace", vec![s("Data Pipeline"), s(" "), s("-")], r#""Data-Pipeline""#),
        ("replace", vec![s("a/b/c"), s("/b/"), s("X")], r#""aXc""#),
        ("replace", vec![s("abc"), s(""), s("-")], r#""-a-b-c-""#),
    ]);
}

#[test]
fn functions_trim_family() {
    table(vec![
        // Case 042.
        ("trimspace", vec![s("  v3.11.4-rc1  ")], r#""v3.11.4-rc1""#),
        (
            "trimprefix",
            vec![s("v3.11.4-rc1"), s("v")],
            r#""3.11.4-rc1""#,
        ),
        ("trimprefix", vec![s("release-1"), s("v")], r#""release-1""#),
        (
            "trimsuffix",
            vec![s("v3.11.4-rc1"), s("-rc1")],
            r#""v3.11.4""#,
        ),
        ("trim", vec![s("--==core==--"), s("-=")], r#""core""#),
        ("chomp", vec![s("line\n\n")], r#""line""#),
        ("chomp", vec![s("a\r\n\r\n")], r#""a""#),
        ("chomp", vec![s("a\nb\n")], r#""a\nb""#),
        ("indent", vec![n(2), s("a\nb\nc")], r#""a\n  b\n  c""#),
        ("indent", vec![n(4), s("one")], r#""one""#),
        ("trimspace", vec![s("\t\n x \u{a0}")], r#""x""#),
    ]);
}

#[test]
fn functions_paths_and_sanitize() {
    table(vec![
        ("basename", vec![s("/opt/app/bin/server")], r#""server""#),
        ("basename", vec![s("")], r#"".""#),
        ("basename", vec![s("/")], r#""/""#),
        ("basename", vec![s("foo/bar/")], r#""bar""#),
        (
            "dirname",
            vec![s("/opt/app/bin/server")],
            r#""/opt/app/bin""#,
        ),
        ("dirname", vec![s("")], r#"".""#),
        ("dirname", vec![s("/")], r#""/""#),
        ("dirname", vec![s("foo")], r#"".""#),
        ("dirname", vec![s("/foo/bar...")], r#""/foo""#),
        ("sanitize", vec![s("my.app/v1+beta")], r#""my_app_v1_beta""#),
        ("sanitize", vec![s("foo/🍕bar")], r#""foo__bar""#),
        (
            "sanitize",
            vec![s("foo/bar!@(ba+z)")],
            r#""foo_bar___ba_z_""#,
        ),
    ]);
}

#[test]
fn functions_regex() {
    table(vec![
        ("regex", vec![s("[a-z]+"), s("123abc456")], r#""abc""#),
        ("regex", vec![s("(\\d+)-(\\d+)"), s("v 10-20")], r#"["10","20"]"#),
        ("regex", vec![s("(?P<major>\\d+)\\.(?P<minor>\\d+)"), s("1.22")], r#"{"major":"1","minor":"22"}"#),
        ("regex", vec![s("(a)|(b)"), s("b")], r#"[null,"b"]"#),
        ("regex", vec![s("x"), s("abc")], "ERR Error in function call; Call to function \"regex\" failed: pattern did not match any part of the given string."),
        ("regex", vec![s("(?P<a>x)(y)"), s("xy")], "ERR Invalid function argument; Invalid value for \"pattern\" parameter: invalid regexp pattern: cannot mix both named and unnamed capture groups."),
        ("regex", vec![s("(x"), s("xy")], "ERR Invalid function argument; Invalid value for \"pattern\" parameter: invalid regexp pattern: missing closing ) in (x."),
        ("regexall", vec![s("-(alpha|beta|rc)"), s("1.5.0-rc1")], r#"[["rc"]]"#),
        ("regexall", vec![s("-(alpha|beta|rc)"), s("1.4.0")], "[]"),
        ("regexall", vec![s("[0-9]+"), s("a1b22c333")], r#"["1","22","333"]"#),
        // Go's \d is ASCII only.
        ("regexall", vec![s("\\d"), s("1٣2")], r#"["1","2"]"#),
        ("regexall", vec![s("[\\d.]+"), s("v1.2 x")], r#"["1.2"]"#),
        ("regex_replace", vec![s("hello world"), s("(\\w+) (\\w+)"), s("$2 $1")], r#""world hello""#),
        ("regex_replace", vec![s("a.b.c"), s("\\."), s("-")], r#""a-b-c""#),
        ("regex_replace", vec![s("abc"), s("(?P<x>b)"), s("[${x}]")], r#""a[b]c""#),
        ("regex_replace", vec![s("abc"), s("b"), s("$$")], r#""a$c""#),
        ("regex_replace", vec![s("abc"), s("("), s("x")], "ERR Error in function call; Call to function \"regex_replace\" failed: error parsing regexp: missing closing ): `(`."),
    ]);
}

#[test]
fn functions_coalesce_lookup_element() {
    table(vec![
        // Case 043.
        ("coalesce", vec![s(""), s("fallback")], r#""""#),
        ("coalesce", vec![Value::Null, s("second")], r#""second""#),
        ("coalesce", vec![Value::Null, n(1), s("x")], r#""1""#),
        ("coalesce", vec![Value::Null, Value::Null], "ERR Error in function call; Call to function \"coalesce\" failed: no non-null arguments."),
        ("coalesce", vec![n(1), Value::Bool(true)], "ERR Error in function call; Call to function \"coalesce\" failed: all arguments must have the same type."),
        ("coalesce", vec![s("a"), j("[1]")], "ERR Error in function call; Call to function \"coalesce\" failed: all arguments must have the same type."),
        ("coalescelist", vec![j("[]"), j(r#"["x","y"]"#)], r#"["x","y"]"#),
        ("coalescelist", vec![Value::Null, j("[]"), j("[1]")], "[1]"),
        ("coalescelist", vec![j("[]")], "ERR Error in function call; Call to function \"coalescelist\" failed: no non-null arguments."),
        ("coalescelist", vec![s("x")], "ERR Error in function call; Call to function \"coalescelist\" failed: coalescelist arguments must be lists or tuples."),
        ("lookup", vec![j(r#"{"eu":"eu.m","us":"us.m"}"#), s("eu"), s("none")], r#""eu.m""#),
        ("lookup", vec![j(r#"{"eu":"eu.m"}"#), s("ap"), s("default.m")], r#""default.m""#),
        ("lookup", vec![map(r#"{"a":"x"}"#), s("b"), n(5)], r#""5""#),
        ("lookup", vec![map(r#"{"a":"x"}"#), s("b"), j("[1]")], "ERR Invalid function argument; Invalid value for \"default\" parameter: the default value must have the same type as the map elements."),
        ("lookup", vec![s("x"), s("b"), s("c")], "ERR Invalid function argument; Invalid value for \"inputMap\" parameter: lookup() requires a map as the first argument."),
        ("element", vec![j(r#"["red","green","blue"]"#), n(1)], r#""green""#),
        ("element", vec![j(r#"["red","green","blue"]"#), n(4)], r#""green""#),
        ("element", vec![j(r#"["red","green","blue"]"#), n(-1)], "ERR Error in function call; Call to function \"element\" failed: cannot use element function with a negative index."),
        ("element", vec![j("[]"), n(0)], "ERR Error in function call; Call to function \"element\" failed: cannot use element function with an empty list."),
        ("element", vec![s("x"), n(0)], "ERR Error in function call; Call to function \"element\" failed: cannot read elements from string."),
        ("indexof", vec![j(r#"["red","green","blue"]"#), s("blue")], "2"),
        ("indexof", vec![j(r#"["1",2]"#), n(2)], "1"),
        ("indexof", vec![j(r#"["a"]"#), s("z")], "ERR Error in function call; Call to function \"indexof\" failed: item not found."),
        ("indexof", vec![j("[]"), s("z")], "ERR Error in function call; Call to function \"indexof\" failed: cannot search an empty list."),
        ("index", vec![j(r#"["red","green","blue"]"#), n(2)], r#""blue""#),
        ("index", vec![j(r#"["a"]"#), n(3)], "ERR Error in function call; Call to function \"index\" failed: key must be between 0 and 1 inclusive."),
        ("index", vec![list(vec![s("a")]), n(3)], "ERR Error in function call; Call to function \"index\" failed: invalid index."),
        ("index", vec![map(r#"{"k":"v"}"#), s("k")], r#""v""#),
        ("hasindex", vec![j(r#"["a"]"#), n(0)], "true"),
        ("hasindex", vec![map(r#"{"k":"v"}"#), s("z")], "false"),
    ]);
}

#[test]
fn functions_lists() {
    table(vec![
        ("length", vec![j("[1,2,3]")], "3"),
        ("length", vec![map(r#"{"a":1}"#)], "1"),
        ("length", vec![j(r#"{"a":1}"#)], "ERR Error in function call; Call to function \"length\" failed: collection must be a list, a map or a tuple."),
        ("length", vec![s("abc")], "ERR Error in function call; Call to function \"length\" failed: collection must be a list, a map or a tuple."),
        ("concat", vec![j(r#"["a"]"#), j("[1, true]")], r#"["a",1,true]"#),
        ("concat", vec![j(r#"["a"]"#), s("b")], "ERR Invalid function argument; Invalid value for \"seqs\" parameter: all arguments must be lists or tuples; got string."),
        ("concat", vec![], "ERR Error in function call; Call to function \"concat\" failed: at least one argument is required."),
        ("contains", vec![j(r#"["bookworm","bullseye"]"#), s("bullseye")], "true"),
        ("contains", vec![j(r#"["3"]"#), n(3)], "false"),
        ("contains", vec![s("x"), s("x")], "ERR Error in function call; Call to function \"contains\" failed: argument must be list, tuple, or set."),
        ("distinct", vec![j(r#"["a","b","a","c","b"]"#)], r#"["a","b","c"]"#),
        ("distinct", vec![j(r#"[1,"1"]"#)], r#"["1"]"#),
        ("distinct", vec![j("[1,true]")], "ERR Invalid function argument; Invalid value for \"list\" parameter: all list elements must have the same type."),
        ("flatten", vec![j(r#"[["a","b"],[],["c",["d"]]]"#)], r#"["a","b","c","d"]"#),
        ("flatten", vec![s("x")], "ERR Error in function call; Call to function \"flatten\" failed: can only flatten lists, sets and tuples."),
        ("reverselist", vec![j("[1,2,3]")], "[3,2,1]"),
        ("slice", vec![j(r#"["a","b","c","d"]"#), n(1), n(3)], r#"["b","c"]"#),
        ("slice", vec![j(r#"["a"]"#), n(2), n(1)], "ERR Invalid function argument; Invalid value for \"start_index\" parameter: start index must not be greater than the length of the list."),
        ("slice", vec![j(r#"["a","b"]"#), n(2), n(1)], "ERR Invalid function argument; Invalid value for \"start_index\" parameter: start index must not be greater than end index."),
        ("sort", vec![j(r#"["10","9","1"]"#)], r#"["1","10","9"]"#),
        ("compact", vec![j(r#"["a","",null,"b"]"#)], r#"["a","b"]"#),
        ("range", vec![n(3)], "[0,1,2]"),
        ("range", vec![n(1), n(4)], "[1,2,3]"),
        ("range", vec![n(5), n(1)], "[5,4,3,2]"),
        ("range", vec![n(0), n(1), num("0.25")], "[0,0.25,0.5,0.75]"),
        ("range", vec![n(-3)], "[0,-1,-2]"),
        ("range", vec![n(1), n(5), n(-1)], "ERR Invalid function argument; Invalid value for \"params\" parameter: end must be less than start when step is negative."),
        ("range", vec![], "ERR Error in function call; Call to function \"range\" failed: must have one, two, or three arguments."),
        ("zipmap", vec![j(r#"["a","b"]"#), j("[1,2]")], r#"{"a":1,"b":2}"#),
        ("zipmap", vec![j(r#"["a"]"#), j("[1,2]")], "ERR Error in function call; Call to function \"zipmap\" failed: number of keys (1) does not match number of values (2)."),
        ("chunklist", vec![j(r#"["a","b","c"]"#), n(2)], r#"[["a","b"],["c"]]"#),
        ("chunklist", vec![j(r#"["a","b"]"#), n(0)], r#"[["a","b"]]"#),
        ("chunklist", vec![j(r#"["a"]"#), n(-1)], "ERR Error in function call; Call to function \"chunklist\" failed: the size argument must be positive."),
    ]);
}

#[test]
fn functions_maps() {
    let labels = j(r#"{"team":"search","tier":"backend","contact":"search@example.com"}"#);
    table(vec![
        // Case 045.
        ("keys", vec![labels.clone()], r#"["contact","team","tier"]"#),
        ("values", vec![labels.clone()], r#"["search@example.com","search","backend"]"#),
        ("merge", vec![j(r#"{"a":1,"b":2}"#), j(r#"{"b":3}"#), j(r#"{"c":4}"#)], r#"{"a":1,"b":3,"c":4}"#),
        ("merge", vec![labels.clone(), j(r#"{"tier":"frontend","extra":"yes"}"#)], r#"{"contact":"search@example.com","extra":"yes","team":"search","tier":"frontend"}"#),
        ("merge", vec![j(r#"{"a":1}"#), Value::Null], r#"{"a":1}"#),
        ("merge", vec![], "{}"),
        ("merge", vec![j(r#"{"a":1}"#), s("x")], "ERR Error in function call; Call to function \"merge\" failed: arguments must be maps or objects, got \"string\"."),
        ("keys", vec![s("x")], "ERR Invalid function argument; Invalid value for \"inputMap\" parameter: must have map or object type."),
        ("values", vec![j("[1]")], "ERR Error in function call; Call to function \"values\" failed: values() requires a map as the first argument."),
    ]);
    assert!(matches!(
        call("merge", vec![map(r#"{"a":"x"}"#), map(r#"{"b":"y"}"#)]),
        Ok(Value::Map(_))
    ));
    assert!(matches!(call("keys", vec![labels]), Ok(Value::Tuple(_))));
}

#[test]
fn functions_sets() {
    table(vec![
        ("setunion", vec![j(r#"["b","a"]"#), j(r#"["c","a"]"#)], r#"["a","b","c"]"#),
        ("setunion", vec![j(r#"["a"]"#), j("[1]")], r#"["1","a"]"#),
        ("setintersection", vec![j(r#"["a","b","c"]"#), j(r#"["b","c","d"]"#), j(r#"["c","b"]"#)], r#"["b","c"]"#),
        ("setsubtract", vec![j(r#"["a","b","c"]"#), j(r#"["a","c"]"#)], r#"["b"]"#),
        ("setsymmetricdifference", vec![j(r#"["a","b"]"#), j(r#"["b","c"]"#)], r#"["a","c"]"#),
        ("sethaselement", vec![j(r#"["a","b"]"#), s("b")], "true"),
        ("setproduct", vec![j(r#"["a","b"]"#), j(r#"["x","y"]"#)], r#"[["a","x"],["a","y"],["b","x"],["b","y"]]"#),
        ("setunion", vec![j(r#"["a"]"#), j("[1,true]")], "ERR Invalid function argument; Invalid value for \"other_sets\" parameter: all set elements must have the same type."),
        ("setsubtract", vec![j("[1,true]"), j("[]")], "ERR Invalid function argument; Invalid value for \"a\" parameter: all set elements must have the same type."),
        ("setproduct", vec![j(r#"["a"]"#)], "ERR Error in function call; Call to function \"setproduct\" failed: at least two arguments are required."),
        ("setunion", vec![j(r#"["a"]"#), j("[[1]]")], "ERR Error in function call; Call to function \"setunion\" failed: given sets must all have compatible element types."),
    ]);
}

#[test]
fn functions_numbers() {
    table(vec![
        ("absolute", vec![n(-5)], "5"),
        ("add", vec![num("0.1"), num("0.2")], "0.3"),
        ("subtract", vec![n(3), n(5)], "-2"),
        ("multiply", vec![num("2.5"), n(4)], "10"),
        ("divide", vec![n(10), n(4)], "2.5"),
        ("divide", vec![n(1), n(0)], "ERR Error in function call; Call to function \"divide\" failed: division by zero."),
        ("modulo", vec![n(-17), n(5)], "-2"),
        ("modulo", vec![n(17), n(-5)], "2"),
        ("negate", vec![n(3)], "-3"),
        ("int", vec![num("-1.5")], "-1"),
        ("int", vec![num("2.9")], "2"),
        ("ceil", vec![num("1.2")], "2"),
        ("floor", vec![num("-1.2")], "-2"),
        ("signum", vec![n(-7)], "-1"),
        ("signum", vec![n(0)], "0"),
        ("signum", vec![num("2.5")], "ERR Error in function call; Call to function \"signum\" failed: value must be a whole number, between -9223372036854775808 and 9223372036854775807."),
        ("log", vec![n(16), n(2)], "4"),
        ("pow", vec![n(2), n(10)], "1024"),
        ("pow", vec![n(2), n(64)], "18446744073709550000"),
        ("pow", vec![n(2), num("0.5")], "1.4142135623730951"),
        ("pow", vec![n(10), n(-2)], "0.01"),
        ("max", vec![n(1), n(7), n(3)], "7"),
        ("min", vec![n(1), n(-7), n(3)], "-7"),
        ("max", vec![], "ERR Error in function call; Call to function \"max\" failed: must pass at least one number."),
        ("parseint", vec![s("ff"), n(16)], "255"),
        ("parseint", vec![s("-101"), n(2)], "-5"),
        ("parseint", vec![s("zZ"), n(62)], "2231"),
        ("parseint", vec![s("12345678901234567890123"), n(10)], "12345678901234567890123"),
        ("parseint", vec![s("xyz"), n(10)], "ERR Invalid function argument; Invalid value for \"number\" parameter: cannot parse \"xyz\" as a base 10 integer."),
        ("parseint", vec![s("1"), n(1)], "ERR Invalid function argument; Invalid value for \"base\" parameter: base must be a whole number between 2 and 62 inclusive."),
        ("parseint", vec![n(10), n(10)], "ERR Invalid function argument; Invalid value for \"number\" parameter: first argument must be a string, not number."),
        ("greaterthan", vec![n(2), n(1)], "true"),
        ("greaterthanorequalto", vec![n(1), n(1)], "true"),
        ("lessthan", vec![n(2), n(1)], "false"),
        ("lessthanorequalto", vec![num("1.0"), n(1)], "true"),
        ("lessthan", vec![s("1"), n(2)], "true"),
    ]);
}

#[test]
fn functions_logic() {
    table(vec![
        ("equal", vec![n(1), num("1.0")], "true"),
        ("equal", vec![s("3"), n(3)], "false"),
        ("equal", vec![Value::Null, Value::Null], "true"),
        ("notequal", vec![s("a"), Value::Null], "true"),
        ("and", vec![Value::Bool(true), Value::Bool(false)], "false"),
        ("or", vec![Value::Bool(true), Value::Bool(false)], "true"),
        ("not", vec![s("true")], "false"),
        (
            "and",
            vec![Value::Bool(true), Value::Null],
            "ERR Invalid function argument; Invalid value for \"b\" parameter: argument must not be null.",
        ),
        ("semvercmp", vec![s("1.2.3"), s(">= 1.2.0")], "true"),
        ("semvercmp", vec![s("1.2.3"), s(">1.2.3")], "false"),
        ("semvercmp", vec![s("v2.0.0"), s("^1.4")], "false"),
        ("semvercmp", vec![s("1.9.9"), s("^1.4")], "true"),
        ("semvercmp", vec![s("1.2.9"), s("~1.2.3")], "true"),
        ("semvercmp", vec![s("1.3.0"), s("~1.2.3")], "false"),
        ("semvercmp", vec![s("1.2.5"), s("1.2.x")], "true"),
        ("semvercmp", vec![s("1.5.0"), s(">=1.0, <1.4 || >=1.5")], "true"),
        ("semvercmp", vec![s("1.4.2"), s(">=1.0, <1.4 || >=1.5")], "false"),
        ("semvercmp", vec![s("1.5.0-rc1"), s(">=1.0")], "false"),
        ("semvercmp", vec![s("1.5.0-rc1"), s(">=1.5.0-rc0")], "true"),
        ("semvercmp", vec![s("1.5.0"), s("1.2 - 1.6")], "true"),
        ("semvercmp", vec![s("0.2.5"), s("^0.2.3")], "true"),
        ("semvercmp", vec![s("0.3.0"), s("^0.2.3")], "false"),
        ("semvercmp", vec![s("1.5.0"), s(">1")], "false"),
        ("semvercmp", vec![s("2.0.0"), s(">1")], "true"),
        ("semvercmp", vec![s("1.2.9"), s("<=1.2")], "true"),
        ("semvercmp", vec![s("1.3.0"), s("<=1.2")], "false"),
        ("semvercmp", vec![s("1.3.0"), s("!=1.x")], "false"),
        ("semvercmp", vec![s("2.3.0"), s("!=1.x")], "true"),
        ("semvercmp", vec![s("1.9.0"), s("~1")], "true"),
        ("semvercmp", vec![s("2.0.0"), s("~1")], "false"),
        ("semvercmp", vec![s("1.2.7"), s("=1.2")], "true"),
        ("semvercmp", vec![s("1.0.0"), s("^*")], "false"),
        ("semvercmp", vec![s("0.0.3"), s("^0.0.3")], "true"),
        ("semvercmp", vec![s("0.0.4"), s("^0.0.3")], "false"),
        ("semvercmp", vec![s("1.6.9"), s("1.2 - 1.6")], "true"),
        ("semvercmp", vec![s("1.2.3"), s("")], "ERR Error in function call; Call to function \"semvercmp\" failed: improper constraint: ."),
        (
            "semvercmp",
            vec![s("nope"), s(">1")],
            "ERR Error in function call; Call to function \"semvercmp\" failed: Invalid Semantic Version.",
        ),
    ]);
}

#[test]
fn functions_encoding_and_hashes() {
    table(vec![
        // Case 047.
        ("jsonencode", vec![j(r#"{"name":"svc","ports":[80,443],"tls":true,"extra":null}"#)], r#""{\"extra\":null,\"name\":\"svc\",\"ports\":[80,443],\"tls\":true}""#),
        ("base64encode", vec![s("bake:secret")], r#""YmFrZTpzZWNyZXQ=""#),
        ("base64decode", vec![s("aGVsbG8=")], r#""hello""#),
        ("base64decode", vec![s("aGVsbG8")], "ERR Error in function call; Call to function \"base64decode\" failed: failed to decode base64 data 'aGVsbG8'."),
        ("base64decode", vec![s("/w==")], "ERR Error in function call; Call to function \"base64decode\" failed: the result of decoding the the provided string is not valid UTF-8."),
        ("sha256", vec![s("corpus")], r#""6b17b8fcc411a533c822a5117e33cf73fa6766739d7d36ac86dc4bea883af4fe""#),
        ("md5", vec![s("corpus")], r#""9a91380374d05f93bd6ab9362deaec79""#),
        ("sha1", vec![s("corpus")], r#""62892ff8a183f45ee191a696796927ae39b2a604""#),
        ("sha512", vec![s("")], r#""cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e""#),
        ("urlencode", vec![s("a b&c/d")], r#""a+b%26c%2Fd""#),
        ("urlencode", vec![s("é~-_.")], r#""%C3%A9~-_.""#),
        ("sanitize", vec![s("my.app/v1+beta")], r#""my_app_v1_beta""#),
        ("uuidv5", vec![s("dns"), s("example.com")], r#""cfbff0d1-9375-5685-968c-48ce8b15ae17""#),
        ("uuidv5", vec![s("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), s("example.com")], r#""cfbff0d1-9375-5685-968c-48ce8b15ae17""#),
        ("uuidv5", vec![s("abc"), s("x")], "ERR Error in function call; Call to function \"uuidv5\" failed: uuidv5() doesn't support namespace abc (invalid UUID length: 3)."),
        ("byteslen", vec![s("abc")], "ERR Invalid function argument; Invalid value for \"buf\" parameter: bytes required."),
    ]);
    // Case 047: jsondecode(...).a.b[1] and csvdecode(...)[1].name.
    let decoded = call("jsondecode", vec![s("{\"a\":{\"b\":[10,20]}}")]).unwrap();
    assert_eq!(json_text(&decoded).unwrap(), r#"{"a":{"b":[10,20]}}"#);
    assert!(matches!(decoded, Value::Object(_)));
    table(vec![
        ("csvdecode", vec![s("name,port\nweb,80\ndb,5432\n")], r#"[{"name":"web","port":"80"},{"name":"db","port":"5432"}]"#),
        ("csvdecode", vec![s("a,b\r\n\"x,1\",\"say \"\"hi\"\"\"\r\n\r\n")], r#"[{"a":"x,1","b":"say \"hi\""}]"#),
        ("csvdecode", vec![s("a,b\n\"multi\nline\",2")], r#"[{"a":"multi\nline","b":"2"}]"#),
        ("csvdecode", vec![s("")], "ERR Error in function call; Call to function \"csvdecode\" failed: missing header line."),
        ("csvdecode", vec![s("a,b\n1\n")], "ERR Error in function call; Call to function \"csvdecode\" failed: CSV parse error on line 2: wrong number of fields."),
        ("csvdecode", vec![s("a\nx\"y\n")], "ERR Error in function call; Call to function \"csvdecode\" failed: CSV parse error on line 2: bare \" in non-quoted-field."),
        ("csvdecode", vec![s("a,a\n")], "ERR Error in function call; Call to function \"csvdecode\" failed: duplicate column name \"a\"."),
        ("jsondecode", vec![s("{")], "ERR Error in function call; Call to function \"jsondecode\" failed: unexpected EOF."),
        ("jsondecode", vec![s("")], "ERR Error in function call; Call to function \"jsondecode\" failed: EOF."),
        ("jsondecode", vec![s("[1, x]")], "ERR Error in function call; Call to function \"jsondecode\" failed: invalid character 'x' looking for beginning of value."),
        ("jsondecode", vec![s("{\"a\" 1}")], "ERR Error in function call; Call to function \"jsondecode\" failed: invalid character '1' after object key."),
        ("jsondecode", vec![s("tru")], "ERR Error in function call; Call to function \"jsondecode\" failed: unexpected EOF."),
        ("jsondecode", vec![s("{\"a\":1,\"a\":2}")], "ERR Error in function call; Call to function \"jsondecode\" failed: duplicate \"a\" property in JSON object."),
        ("jsondecode", vec![s("1 2")], "ERR Error in function call; Call to function \"jsondecode\" failed: extraneous data after JSON object."),
        ("jsondecode", vec![s(" [12345678901234567890123, 0.1, -2e3, \"\\u00e9\\ud83d\\ude00\"] ")], r#"[12345678901234567890123,0.1,-2000,"é😀"]"#),
        ("jsonencode", vec![Value::Null], r#""null""#),
        ("jsonencode", vec![s("<a&b>\u{2028}\u{1}")], r#""\"\\u003ca\\u0026b\\u003e\\u2028\\u0001\"""#),
        ("jsonencode", vec![j(r#"["a",1,true,null]"#)], r#""[\"a\",1,true,null]""#),
        ("jsonencode", vec![j(r#"{"b":1,"a":[2,3],"c":{"z":null}}"#)], r#""{\"a\":[2,3],\"b\":1,\"c\":{\"z\":null}}""#),
    ]);
    let hash = call("bcrypt", vec![s("pw")]).unwrap();
    assert!(hash.as_str().unwrap().starts_with("$2a$10$"), "{hash:?}");
    let id = call("uuidv4", vec![]).unwrap();
    assert_eq!(id.as_str().unwrap().len(), 36);
}

#[test]
fn functions_format_verbs() {
    table(vec![
        // Case 048.
        ("format", vec![s("build-%05d"), n(42)], r#""build-00042""#),
        ("format", vec![s("%.2f"), num("3.14159")], r#""3.14""#),
        ("format", vec![s("%q"), s("hi")], r#""\"hi\"""#),
        ("format", vec![s("[%6s|%-6s]"), s("r"), s("l")], r#""[     r|l     ]""#),
        ("format", vec![s("%x %X"), n(255), n(255)], r#""ff FF""#),
        ("format", vec![s("%t"), Value::Bool(true)], r#""true""#),
        ("format", vec![s("%v/%v"), s("a"), n(1)], r#""a/1""#),
        ("format", vec![s("100%%")], r#""100%""#),
        ("format", vec![s("%[2]s-%[1]s"), s("first"), s("second")], r#""second-first""#),
        // More of Go's verbs and flags.
        ("format", vec![s("%d items"), s("12")], r#""12 items""#),
        ("format", vec![s("%-5d|"), n(42)], r#""42   |""#),
        ("format", vec![s("%+d %+d"), n(5), n(-5)], r#""+5 -5""#),
        ("format", vec![s("%05d"), n(-42)], r#""-0042""#),
        ("format", vec![s("%o %b %#x %#o"), n(8), n(5), n(255), n(8)], r#""10 101 0xff 010""#),
        ("format", vec![s("%.3d"), n(7)], r#""007""#),
        ("format", vec![s("%8.3f|%-8.2f|%08.3f"), num("3.14159"), num("2.5"), num("-3.14159")], r#""   3.142|2.50    |-003.142""#),
        ("format", vec![s("%f"), n(1)], r#""1.000000""#),
        ("format", vec![s("%e"), num("1234.5678")], r#""1.234568e+03""#),
        ("format", vec![s("%E"), num("0.000123")], r#""1.230000E-04""#),
        ("format", vec![s("%g %g %g"), num("1234.5678"), n(1000000), num("0.00001")], r#""1234.5678 1e+06 1e-05""#),
        ("format", vec![s("%.3g"), num("1234.5678")], r#""1.23e+03""#),
        ("format", vec![s("%v %v"), n(1000000), num("0.5")], r#""1e+06 0.5""#),
        ("format", vec![s("%v %v %v"), Value::Bool(true), j("[1,\"a\"]"), Value::Null], r#""true [1,\"a\"] null""#),
        ("format", vec![s("%#v"), s("x")], r#""\"x\"""#),
        ("format", vec![s("%.1f %.1f %.1f %.1f"), num("0.25"), num("0.35"), num("0.15"), num("0.75")], r#""0.2 0.3 0.2 0.8""#),
        ("format", vec![s("%.2f %.0f %.0f"), num("2.675"), num("2.5"), num("3.5")], r#""2.67 2 4""#),
        ("format", vec![s("%.2s|%05s|%-05s"), s("hello"), s("ab"), s("ab")], r#""he|000ab|ab000""#),
        ("format", vec![s("%s %s"), n(7), Value::Bool(false)], r#""7 false""#),
        ("format", vec![s("%6.2f%%"), num("99.5")], r#"" 99.50%""#),
        ("format", vec![s("%s")], "ERR Error in function call; Call to function \"format\" failed: not enough arguments for \"%s\" at 0: need index 1 but have 0 total."),
        ("format", vec![s("%d"), s("x")], "ERR Error in function call; Call to function \"format\" failed: unsupported value for \"%d\" at 0: a number is required."),
        ("format", vec![s("%d"), num("1.5")], "ERR Error in function call; Call to function \"format\" failed: unsupported value for \"%d\" at 0: an integer is required."),
        ("format", vec![s("%s"), Value::Null], "ERR Error in function call; Call to function \"format\" failed: unsupported value for \"%s\" at 0: null value cannot be formatted."),
        ("format", vec![s("%s"), j("[1]")], "ERR Error in function call; Call to function \"format\" failed: unsupported value for \"%s\" at 0: string required."),
        ("format", vec![s("x"), n(1)], "ERR Invalid function argument; Invalid value for \"args\" parameter: too many arguments; no verbs in format string."),
        ("format", vec![s("%s"), n(1), n(2)], "ERR Invalid function argument; Invalid value for \"args\" parameter: too many arguments; only 1 used by format string."),
        ("format", vec![s("%y"), n(1)], "ERR Error in function call; Call to function \"format\" failed: unsupported format verb 'y' in \"%y\" at offset 0."),
        ("format", vec![s("100%")], "ERR Error in function call; Call to function \"format\" failed: invalid format string starting at offset 4."),
        ("format", vec![s("%!")], "ERR Error in function call; Call to function \"format\" failed: unrecognized format character '!' at offset 1."),
        ("format", vec![s("a %[0]s")], "ERR Error in function call; Call to function \"format\" failed: unrecognized format character '0' at offset 4."),
        ("formatlist", vec![s("%s=%d"), j(r#"["a","b"]"#), j("[1,2]")], r#"["a=1","b=2"]"#),
        ("formatlist", vec![s("%s-%s"), s("x"), j(r#"["a","b"]"#)], r#"["x-a","x-b"]"#),
        ("formatlist", vec![s("%s"), j("[]")], "[]"),
        ("formatlist", vec![s("plain")], r#"["plain"]"#),
        ("formatlist", vec![s("%s%s"), j(r#"["a"]"#), j(r#"["a","b"]"#)], "ERR Invalid function argument; Invalid value for \"args\" parameter: argument 2 has length 2, which is inconsistent with argument 1 of length 1."),
        ("formatlist", vec![s("%d"), j(r#"["x"]"#)], "ERR Error in function call; Call to function \"formatlist\" failed: error on format iteration 0: unsupported value for \"%d\" at 0: a number is required."),
    ]);
}

#[test]
fn functions_dates() {
    table(vec![
        ("formatdate", vec![s("YYYY-MM-DD hh:mm:ss ZZZ"), s("2024-03-05T07:08:09Z")], r#""2024-03-05 07:08:09 UTC""#),
        ("formatdate", vec![s("EEEE, DD-MMM-YY HH:mm aa Z"), s("2024-03-05T19:08:09+02:00")], r#""Tuesday, 05-Mar-24 07:08 pm +02:00""#),
        ("formatdate", vec![s("D/M 'at' h 'o''clock' ZZZZZ"), s("2024-12-25T09:00:00-05:30")], r#""25/12 at 9 o'clock -05:30""#),
        ("formatdate", vec![s("YYY"), s("2024-03-05T07:08:09Z")], "ERR Invalid function argument; Invalid value for \"format\" parameter: invalid date format verb \"YYY\": year must either be \"YY\" or \"YYYY\"."),
        ("formatdate", vec![s("YYYY"), s("2024-03-05")], "ERR Invalid function argument; Invalid value for \"time\" parameter: not a valid RFC3339 timestamp: missing required time introducer 'T'."),
        ("formatdate", vec![s("'abc"), s("2024-03-05T07:08:09Z")], "ERR Invalid function argument; Invalid value for \"format\" parameter: unterminated literal '."),
        ("timeadd", vec![s("2024-01-01T00:00:00Z"), s("1h30m")], r#""2024-01-01T01:30:00Z""#),
        ("timeadd", vec![s("2024-01-01T00:00:00+01:00"), s("-25h")], r#""2023-12-30T23:00:00+01:00""#),
        ("timeadd", vec![s("2024-01-01T00:00:00Z"), s("1.5s")], r#""2024-01-01T00:00:01Z""#),
        ("timeadd", vec![s("2024-01-01T00:00:00Z"), s("1d")], "ERR Error in function call; Call to function \"timeadd\" failed: time: unknown unit \"d\" in duration \"1d\"."),
        ("timeadd", vec![s("2024-01-01T00:00:00Z"), s("5")], "ERR Error in function call; Call to function \"timeadd\" failed: time: missing unit in duration \"5\"."),
    ]);
    let now = call("timestamp", vec![]).unwrap();
    assert!(now.as_str().unwrap().ends_with('Z'));
}

#[test]
fn functions_cidr() {
    table(vec![
        ("cidrhost", vec![s("10.12.112.0/20"), n(16)], r#""10.12.112.16""#),
        ("cidrhost", vec![s("10.12.112.0/20"), n(-2)], r#""10.12.127.254""#),
        ("cidrhost", vec![s("fd00:fd12:3456:7890::/56"), n(16)], r#""fd00:fd12:3456:7800::10""#),
        ("cidrhost", vec![s("10.0.0.0/30"), n(4)], "ERR Error in function call; Call to function \"cidrhost\" failed: prefix of 30 does not accommodate a host numbered 4."),
        ("cidrnetmask", vec![s("172.16.0.0/12")], r#""255.240.0.0""#),
        ("cidrnetmask", vec![s("bad")], "ERR Error in function call; Call to function \"cidrnetmask\" failed: invalid CIDR expression: invalid CIDR address: bad."),
        ("cidrsubnet", vec![s("172.16.0.0/12"), n(4), n(2)], r#""172.18.0.0/16""#),
        ("cidrsubnet", vec![s("10.1.2.0/24"), n(4), n(15)], r#""10.1.2.240/28""#),
        ("cidrsubnet", vec![s("fd00:fd12:3456:7890::/56"), n(16), n(162)], r#""fd00:fd12:3456:7800:a200::/72""#),
        ("cidrsubnet", vec![s("10.0.0.0/30"), n(4), n(0)], "ERR Error in function call; Call to function \"cidrsubnet\" failed: insufficient address space to extend prefix of 30 by 4."),
        ("cidrsubnets", vec![s("10.1.0.0/16"), n(4), n(4), n(8), n(4)], r#"["10.1.0.0/20","10.1.16.0/20","10.1.32.0/24","10.1.48.0/20"]"#),
        ("cidrsubnets", vec![s("fd00:fd12:3456:7890::/56"), n(16), n(16), n(16), n(32)], r#"["fd00:fd12:3456:7800::/72","fd00:fd12:3456:7800:100::/72","fd00:fd12:3456:7800:200::/72","fd00:fd12:3456:7800:300::/88"]"#),
        ("cidrsubnets", vec![s("10.0.0.0/30"), n(1), n(1), n(1)], "ERR Invalid function argument; Invalid value for \"newbits\" parameter: not enough remaining address space for a subnet with a prefix of 31 bits after 10.0.0.2/31."),
    ]);
}

#[test]
fn functions_try_and_can_fallbacks() {
    table(vec![
        ("try", vec![s("a"), s("b")], r#""a""#),
        ("can", vec![n(1)], "true"),
    ]);
}

#[test]
fn functions_never_panic_on_edge_inputs() {
    let edge = [
        ("cidrsubnet", vec![s("::/0"), n(0), n(0)]),
        ("cidrsubnet", vec![s("::/0"), n(-3), n(0)]),
        ("cidrhost", vec![s("::/0"), n(-1)]),
        ("cidrhost", vec![s("::1/128"), n(0)]),
        ("cidrnetmask", vec![s("::1/128")]),
        ("cidrsubnets", vec![s("::/0"), n(1), n(1), n(1)]),
        ("cidrsubnets", vec![s("0.0.0.0/0"), n(0)]),
        ("indent", vec![n(1_000_000_000_000), s("a\nb")]),
        ("format", vec![s("%999999999999d"), n(1)]),
        ("format", vec![s("%.99999999999f"), n(1)]),
        ("format", vec![s("%f"), num("1e300")]),
        (
            "format",
            vec![s("%v %e %g"), num("1e-300"), num("1e300"), num("-0.5")],
        ),
        (
            "semvercmp",
            vec![
                s("18446744073709551615.18446744073709551615.18446744073709551615"),
                s("^18446744073709551615"),
            ],
        ),
        ("setproduct", vec![j("[1,2,3,4,5,6,7,8,9,10]"); 8]),
        ("jsondecode", vec![s(&"[".repeat(100_000))]),
        ("range", vec![n(0), n(10), n(0)]),
        ("element", vec![j("[1]"), num("1e30")]),
        ("substr", vec![s("abc"), num("-1e30"), n(1)]),
        ("parseint", vec![s("-"), n(10)]),
        ("timeadd", vec![s("9999-12-31T23:59:59Z"), s("9999999999h")]),
        ("formatdate", vec![s("'"), s("2020-01-01T00:00:00Z")]),
        ("regex", vec![s("\\"), s("x")]),
        ("pow", vec![n(0), n(-1)]),
        ("log", vec![n(0), n(10)]),
        ("ceil", vec![num("1e400")]),
    ];
    for (name, args) in edge {
        let _ = call(name, args);
    }
    assert_eq!(
        run("range", vec![n(0), n(10), n(0)]).unwrap_err(),
        "Error in function call; Call to function \"range\" failed: more than 1024 values were generated; either decrease the difference between start and end or use a smaller step."
    );
}
