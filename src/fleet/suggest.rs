//! "Did you mean": the existing names closest to an unknown one.

/// Up to three of `candidates` closest to `name` (case-insensitive edit distance, then
/// name order); names sharing no more than a letter or two with `name` are left out
/// unless nothing better exists.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let lower = name.to_lowercase();
    let mut scored: Vec<(usize, &'a str)> = candidates
        .into_iter()
        .map(|c| {
            let d = strsim::levenshtein(&lower, &c.to_lowercase());
            // A prefix or substring match is as good as a one-letter typo.
            let d = if c.to_lowercase().contains(&lower) || lower.contains(&c.to_lowercase()) {
                d.min(1)
            } else {
                d
            };
            (d, c)
        })
        .collect();
    scored.sort();
    let limit = (name.chars().count() / 2).max(3);
    let near: Vec<&str> = scored
        .iter()
        .filter(|(d, _)| *d <= limit)
        .map(|(_, c)| *c)
        .take(3)
        .collect();
    if near.is_empty() {
        scored.into_iter().map(|(_, c)| c).take(3).collect()
    } else {
        near
    }
}

/// `unknown <what> "<name>"; closest: a, b, c` (or "there are none" for an empty list).
pub fn unknown(what: &str, name: &str, candidates: &[&str]) -> String {
    let near = closest(name, candidates.iter().copied());
    if near.is_empty() {
        format!("unknown {what} {name:?}: there are none")
    } else {
        format!("unknown {what} {name:?}; closest: {}", near.join(", "))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn typo_first() {
        let c = [
            "metric-backfill",
            "metric-definition-audit",
            "terminal-lite",
        ];
        assert_eq!(super::closest("metric-bakfill", c)[0], "metric-backfill");
        assert_eq!(
            super::closest("fix.config", ["Fix.Config", "count-lines"])[0],
            "Fix.Config"
        );
    }
}
