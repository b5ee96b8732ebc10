//! The `--print` JSON, byte for byte as Go's `json.MarshalIndent(v, "", "  ")` writes it:
//! fields in buildx's struct order, map keys sorted, HTML-safe string escaping.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::target::{Entry, Target};
use crate::{Group, Resolved};

/// Writes `s` as a Go JSON string (HTML-safe: `<`, `>`, `&`, U+2028/9 escaped).
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `${` → `$${` and `%{` → `%%{`, as buildx re-escapes args, labels and similar values.
fn reescape(s: &str) -> String {
    if !s.contains("${") && !s.contains("%{") {
        return s.to_string();
    }
    s.replace("${", "$${").replace("%{", "%%{")
}

/// A small JSON tree, enough for the print format.
enum J {
    Str(String),
    Bool(bool),
    Arr(Vec<J>),
    /// Fields in the order given.
    Obj(Vec<(String, J)>),
}

fn write(out: &mut String, v: &J, indent: usize) {
    match v {
        J::Str(s) => write_str(out, s),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Arr(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent + 1);
                write(out, item, indent + 1);
            }
            newline(out, indent);
            out.push(']');
        }
        J::Obj(fields) => {
            if fields.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent + 1);
                write_str(out, k);
                out.push_str(": ");
                write(out, item, indent + 1);
            }
            newline(out, indent);
            out.push('}');
        }
    }
}

fn newline(out: &mut String, indent: usize) {
    out.push('\n');
    for _ in 0..indent {
        out.push_str("  ");
    }
}

fn strs(items: &[String]) -> J {
    J::Arr(items.iter().map(|s| J::Str(s.clone())).collect())
}

fn map(m: &BTreeMap<String, String>, re: bool) -> J {
    J::Obj(
        m.iter()
            .map(|(k, v)| (k.clone(), J::Str(if re { reescape(v) } else { v.clone() })))
            .collect(),
    )
}

fn entry(e: &Entry, skip_empty_dest: bool) -> J {
    let mut m: BTreeMap<String, String> = e.attrs.clone();
    if skip_empty_dest && m.get("dest").is_some_and(|d| d.is_empty()) {
        m.remove("dest");
    }
    m.insert("type".into(), e.kind.clone());
    map(&m, false)
}

fn target_json(t: &Target) -> J {
    let mut f: Vec<(String, J)> = Vec::new();
    let mut put = |k: &str, v: J| f.push((k.to_string(), v));
    if !t.description.is_empty() {
        put("description", J::Str(t.description.clone()));
    }
    if !t.annotations.is_empty() {
        put(
            "annotations",
            J::Arr(t.annotations.iter().map(|s| J::Str(reescape(s))).collect()),
        );
    }
    if !t.attest.is_empty() {
        put(
            "attest",
            J::Arr(
                t.attest
                    .iter()
                    .map(|a| {
                        let mut m: BTreeMap<String, J> = a
                            .attrs
                            .iter()
                            .map(|(k, v)| (k.clone(), J::Str(v.clone())))
                            .collect();
                        m.insert("type".into(), J::Str(a.kind.clone()));
                        if a.disabled {
                            m.insert("disabled".into(), J::Bool(true));
                        }
                        J::Obj(m.into_iter().collect())
                    })
                    .collect(),
            ),
        );
    }
    put("context", J::Str(t.context().to_string()));
    if !t.contexts.is_empty() {
        put("contexts", map(&t.contexts, false));
    }
    put("dockerfile", J::Str(t.dockerfile().to_string()));
    if let Some(d) = &t.dockerfile_inline {
        put("dockerfile-inline", J::Str(reescape(d)));
    }
    if !t.args.is_empty() {
        put("args", map(&t.args, true));
    }
    if !t.labels.is_empty() {
        put("labels", map(&t.labels, true));
    }
    if !t.tags.is_empty() {
        put("tags", strs(&t.tags));
    }
    if !t.cache_from.is_empty() {
        put(
            "cache-from",
            J::Arr(t.cache_from.iter().map(|e| entry(e, false)).collect()),
        );
    }
    if !t.cache_to.is_empty() {
        put(
            "cache-to",
            J::Arr(t.cache_to.iter().map(|e| entry(e, false)).collect()),
        );
    }
    if let Some(x) = &t.target {
        put("target", J::Str(x.clone()));
    }
    if !t.secrets.is_empty() {
        put(
            "secret",
            J::Arr(
                t.secrets
                    .iter()
                    .map(|s| {
                        let mut o = Vec::new();
                        for (k, v) in [("id", &s.id), ("src", &s.src), ("env", &s.env)] {
                            if !v.is_empty() {
                                o.push((k.to_string(), J::Str(v.clone())));
                            }
                        }
                        J::Obj(o)
                    })
                    .collect(),
            ),
        );
    }
    if !t.ssh.is_empty() {
        put(
            "ssh",
            J::Arr(
                t.ssh
                    .iter()
                    .map(|s| {
                        let mut o = Vec::new();
                        if !s.id.is_empty() {
                            o.push(("id".to_string(), J::Str(s.id.clone())));
                        }
                        if !s.paths.is_empty() {
                            o.push(("paths".to_string(), strs(&s.paths)));
                        }
                        J::Obj(o)
                    })
                    .collect(),
            ),
        );
    }
    if !t.platforms.is_empty() {
        put("platforms", strs(&t.platforms));
    }
    if !t.outputs.is_empty() {
        put(
            "output",
            J::Arr(t.outputs.iter().map(|e| entry(e, true)).collect()),
        );
    }
    if let Some(b) = t.pull {
        put("pull", J::Bool(b));
    }
    if let Some(b) = t.no_cache {
        put("no-cache", J::Bool(b));
    }
    if t.network.is_some() {
        // buildx drops the value of a network set through --set; from files it is kept.
        put("network", J::Str(t.network.clone().unwrap_or_default()));
    }
    if !t.no_cache_filter.is_empty() {
        put("no-cache-filter", strs(&t.no_cache_filter));
    }
    if let Some(s) = &t.shm_size {
        put("shm-size", J::Str(s.clone()));
    }
    if !t.ulimits.is_empty() {
        put("ulimits", strs(&t.ulimits));
    }
    if let Some(c) = &t.call {
        put("call", J::Str(c.clone()));
    }
    if !t.entitlements.is_empty() {
        put("entitlements", strs(&t.entitlements));
    }
    if !t.extra_hosts.is_empty() {
        put("extra-hosts", map(&t.extra_hosts, true));
    }
    J::Obj(f)
}

fn group_json(g: &Group) -> J {
    let mut f = Vec::new();
    if !g.description.is_empty() {
        f.push(("description".to_string(), J::Str(g.description.clone())));
    }
    f.push(("targets".to_string(), strs(&g.targets)));
    J::Obj(f)
}

/// The complete `--print` output, trailing newline included.
pub fn print_json(r: &Resolved) -> String {
    let mut top = Vec::new();
    if !r.groups.is_empty() {
        top.push((
            "group".to_string(),
            J::Obj(
                r.groups
                    .iter()
                    .map(|(k, g)| (k.clone(), group_json(g)))
                    .collect(),
            ),
        ));
    }
    top.push((
        "target".to_string(),
        J::Obj(
            r.targets
                .iter()
                .map(|(k, t)| (k.clone(), target_json(t)))
                .collect(),
        ),
    ));
    let mut out = String::with_capacity(4096);
    write(&mut out, &J::Obj(top), 0);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_html_safe_escaping() {
        let cases = [
            ("a<b>&c", r#""a\u003cb\u003e\u0026c""#),
            ("q\"\\\n\r\t\u{8}\u{c}", r#""q\"\\\n\r\t\b\f""#),
            ("\u{1}\u{1f}", r#""\u0001\u001f""#),
            ("\u{2028}\u{2029}", r#""\u2028\u2029""#),
            ("café\u{7f}", "\"café\u{7f}\""),
        ];
        for (input, want) in cases {
            let mut out = String::new();
            write_str(&mut out, input);
            assert_eq!(out, want);
        }
    }

    #[test]
    fn template_reescaping() {
        for (input, want) in [
            ("${X}", "$${X}"),
            ("%{ y }", "%%{ y }"),
            ("cost $5 and $$", "cost $5 and $$"),
            ("$${", "$$${"),
        ] {
            assert_eq!(reescape(input), want);
        }
    }
}
