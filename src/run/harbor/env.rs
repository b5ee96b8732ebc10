//! The env tables of `task.toml` (`environment.env`, `verifier.env`, `solution.env`):
//! `${VAR}` taken from kiln's environment at run time, handed to `docker` as `-e NAME`
//! with the value in the client's environment, never in an argument.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context as _};

use super::docker::s;
use crate::fleet::layout::harbor::Task;

/// `${VAR}` and `${VAR:-default}` in an env table's value, from this process's environment.
pub fn expand_env(value: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find('}')
            .ok_or_else(|| anyhow!("unclosed ${{ in {value:?}"))?;
        let inner = &rest[i + 2..i + end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match (crate::env::named(name), default) {
            (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                anyhow::bail!("the variable {name} is not set in kiln's environment")
            }
        }
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `-e NAME` arguments, and the (name, value) pairs for the docker client's environment.
pub(super) type EnvArgs = (Vec<String>, Vec<(String, String)>);

pub(super) fn env_args(
    table: &BTreeMap<String, String>,
    what: &str,
    task: &Task,
) -> anyhow::Result<EnvArgs> {
    let mut args = Vec::new();
    let mut values = Vec::new();
    for (k, v) in table {
        let value = expand_env(v).with_context(|| format!("task {}: {what}.{k}", task.id))?;
        args.push(s("-e"));
        args.push(k.clone());
        values.push((k.clone(), value));
    }
    Ok((args, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_expand_from_the_environment_only() {
        std::env::set_var("KILN_TEST_HARBOR_X", "v");
        assert_eq!(expand_env("a${KILN_TEST_HARBOR_X}b").unwrap(), "avb");
        assert_eq!(expand_env("${KILN_TEST_HARBOR_NOPE:-d}").unwrap(), "d");
        let err = expand_env("${KILN_TEST_HARBOR_NOPE}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("KILN_TEST_HARBOR_NOPE"), "{err}");
    }
}
