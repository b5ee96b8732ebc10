//! Fail-fast: a registry that refuses every upload (disk full, a broken proxy) would
//! otherwise let each reference go through the engine's own retries, about 45 s
//! apiece. After [`LIMIT`] failures of the same kind in a row against the registry —
//! failed pushes, or upload attempts the engine says it retries — the release stops
//! with that error. Any success (a layer that reaches the registry, a verified image)
//! starts the count again.

use std::sync::Mutex;

/// Failures of one kind in a row that stop a release.
pub const LIMIT: usize = 3;

/// The kind of an upload attempt the engine retries (it does not say why).
pub const RETRIED: &str = "upload retried by the engine";

#[derive(Default)]
struct Count {
    kind: String,
    n: usize,
}

/// The consecutive failures against one registry.
#[derive(Default)]
pub struct FailFast {
    count: Mutex<Count>,
}

impl FailFast {
    /// A success: the count starts again.
    pub fn success(&self) {
        *self.count.lock().expect("count") = Count::default();
    }

    /// One failure of `kind` ([`kind_of`] an error, or [`RETRIED`]); true when it is
    /// the [`LIMIT`]th of that kind in a row.
    pub fn failure(&self, kind: &str) -> bool {
        let mut c = self.count.lock().expect("count");
        if c.kind != kind {
            *c = Count {
                kind: kind.to_string(),
                n: 0,
            };
        }
        c.n += 1;
        c.n >= LIMIT
    }
}

/// What makes two push errors "the same kind": their text without the reference, the
/// image names and the digests that differ from one image to the next.
pub fn kind_of(error: &str, reference: &str, source: &str) -> String {
    let text = error.replace(reference, "<ref>").replace(source, "<image>");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("sha256:") {
        out.push_str(&rest[..i]);
        out.push_str("<digest>");
        rest = rest[i + 7..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_of_a_kind_in_a_row_stop() {
        let f = FailFast::default();
        assert!(!f.failure("a"));
        assert!(!f.failure("a"));
        assert!(f.failure("a"));
        f.success();
        assert!(!f.failure("a"));
        assert!(!f.failure("a"));
        assert!(!f.failure("b"), "another kind starts again");
        assert!(!f.failure("b"));
        assert!(f.failure("b"));
    }

    #[test]
    fn kinds_ignore_references_and_digests() {
        let a = kind_of(
            "127.0.0.1:5000/core/base:v1: pushing kiln.local/core/base:dev to 127.0.0.1:5000/core/base:v1 failed: received unexpected HTTP status: 500 Internal Server Error",
            "127.0.0.1:5000/core/base:v1",
            "kiln.local/core/base:dev",
        );
        let b = kind_of(
            "127.0.0.1:5000/agents/null:v1: pushing kiln.local/agents/null:dev to 127.0.0.1:5000/agents/null:v1 failed: received unexpected HTTP status: 500 Internal Server Error",
            "127.0.0.1:5000/agents/null:v1",
            "kiln.local/agents/null:dev",
        );
        assert_eq!(a, b);
        let (r, s) = ("127.0.0.1:5000/x:v1", "kiln.local/x:dev");
        assert_eq!(
            kind_of("layer sha256:0123abc is missing", r, s),
            kind_of("layer sha256:fedc987 is missing", r, s)
        );
        assert_ne!(a, kind_of("manifest invalid", r, s));
    }
}
