//! Line numbers in a task's TOML file (`task.toml`, `scenario.toml`): where a table or a
//! key of it is, for a finding to point at. A text scan, as for bake files: the line is a
//! pointer for a person, and the file already parsed.

/// The 1-based line of `key` in `table` (`""` the top level, `agent`, `steps.agent`),
/// in the `nth` `[[steps]]` entry for a table under `steps`; else the table's header;
/// else 1.
pub fn line_of(text: &str, table: &str, nth: usize, key: Option<&str>) -> usize {
    let mut current = String::new();
    let mut steps_seen: usize = 0;
    let mut header = None;
    let in_wanted = |current: &str, steps_seen: usize| {
        current == table && (!table.starts_with("steps") || steps_seen == nth + 1)
    };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(name) = line
            .strip_prefix("[[")
            .and_then(|r| r.split_once("]]"))
            .map(|(n, _)| n)
            .or_else(|| {
                line.strip_prefix('[')
                    .and_then(|r| r.split_once(']'))
                    .map(|(n, _)| n)
            })
        {
            current = name.trim().replace(' ', "");
            if line.starts_with("[[") && current == "steps" {
                steps_seen += 1;
            }
            if in_wanted(&current, steps_seen) && header.is_none() {
                header = Some(i + 1);
            }
            continue;
        }
        if let Some(k) = key {
            if in_wanted(&current, steps_seen)
                && line
                    .strip_prefix(k)
                    .is_some_and(|r| r.trim_start().starts_with('='))
            {
                return i + 1;
            }
        }
    }
    header.unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::line_of;

    #[test]
    fn tables_keys_and_steps() {
        let t = "version = \"1.0\"\n[agent]\ntimeout_sec = 1\n[[steps]]\nname = \"a\"\n[steps.agent]\nuser = \"x\"\n[[steps]]\nname = \"b\"\n[steps.agent]\ntimeout_sec = 2\n";
        assert_eq!(line_of(t, "", 0, Some("version")), 1);
        assert_eq!(line_of(t, "agent", 0, Some("timeout_sec")), 3);
        assert_eq!(line_of(t, "agent", 0, Some("user")), 2);
        assert_eq!(line_of(t, "steps.agent", 1, Some("timeout_sec")), 11);
        assert_eq!(line_of(t, "steps.agent", 0, Some("timeout_sec")), 6);
        assert_eq!(line_of(t, "steps", 1, None), 8);
        assert_eq!(line_of(t, "verifier", 0, Some("timeout_sec")), 1);
    }
}
