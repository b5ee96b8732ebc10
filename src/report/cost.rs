//! What tokens cost: a price per million input and output tokens for each model, from
//! a small built-in table that a user file replaces or extends (`kiln report --prices`,
//! docs/results.md "Prices").

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

/// US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

/// Prices by model name. A model is priced by its exact name, else by the longest
/// name in the table it starts with followed by `-` (so `claude-sonnet-4-20250514`
/// is priced as `claude-sonnet-4`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prices(pub BTreeMap<String, Price>);

/// The built-in table: the providers' published list prices for standard
/// (non-batch, uncached) use as of 2025. Prices change; check them and override with
/// `--prices`.
const BUILTIN: &[(&str, f64, f64)] = &[
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("o3-mini", 1.10, 4.40),
    ("claude-3-5-haiku", 0.80, 4.00),
    ("claude-3-5-sonnet", 3.00, 15.00),
    ("claude-3-7-sonnet", 3.00, 15.00),
    ("claude-sonnet-4", 3.00, 15.00),
    ("claude-opus-4", 15.00, 75.00),
];

impl Prices {
    pub fn builtin() -> Prices {
        Prices(
            BUILTIN
                .iter()
                .map(|&(m, i, o)| {
                    (
                        m.to_string(),
                        Price {
                            input_per_mtok: i,
                            output_per_mtok: o,
                        },
                    )
                })
                .collect(),
        )
    }

    /// The built-in table with the entries of `file` added (a model named in both
    /// takes the file's price). JSON when the name ends in `.json`, TOML otherwise:
    /// `{"my-model": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}` or
    /// `[my-model]` / `input_per_mtok = 1.0` / `output_per_mtok = 2.0`.
    pub fn with_file(file: &Path) -> anyhow::Result<Prices> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the price table {}", file.display()))?;
        let extra: BTreeMap<String, Price> =
            if file.extension().and_then(|e| e.to_str()) == Some("json") {
                serde_json::from_str(&text).with_context(|| {
                    format!(
                        "{}: not a price table (model → {{input_per_mtok, output_per_mtok}})",
                        file.display()
                    )
                })?
            } else {
                toml::from_str(&text).with_context(|| {
                    format!(
                        "{}: not a price table ([model] input_per_mtok = …, output_per_mtok = …)",
                        file.display()
                    )
                })?
            };
        for (model, p) in &extra {
            for (what, v) in [
                ("input_per_mtok", p.input_per_mtok),
                ("output_per_mtok", p.output_per_mtok),
            ] {
                if !v.is_finite() || v < 0.0 {
                    anyhow::bail!(
                        "{}: {model}.{what} = {v} is not a price (a number ≥ 0)",
                        file.display()
                    );
                }
            }
        }
        let mut prices = Prices::builtin();
        prices.0.extend(extra);
        Ok(prices)
    }

    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.0.get(model) {
            return Some(*p);
        }
        self.0
            .iter()
            .filter(|(name, _)| {
                model
                    .strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with('-'))
            })
            .max_by_key(|(name, _)| name.len())
            .map(|(_, p)| *p)
    }

    /// The cost of `input` and `output` tokens of `model` in US dollars, rounded to
    /// a millionth; None without a price.
    pub fn cost(&self, model: &str, input: u64, output: u64) -> Option<f64> {
        let p = self.price(model)?;
        let usd = (input as f64 * p.input_per_mtok + output as f64 * p.output_per_mtok) / 1e6;
        Some((usd * 1e6).round() / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_by_exact_name_then_longest_prefix() {
        let p = Prices::builtin();
        assert_eq!(p.cost("gpt-4o", 1_000_000, 0), Some(2.5));
        // gpt-4o-mini is its own entry, not gpt-4o's.
        assert_eq!(p.cost("gpt-4o-mini", 1_000_000, 1_000_000), Some(0.75));
        assert_eq!(p.cost("gpt-4o-mini-2024-07-18", 2_000_000, 0), Some(0.3));
        assert_eq!(p.cost("claude-sonnet-4-20250514", 1000, 2000), Some(0.033));
        // A name that merely starts with a known one is not that model.
        assert_eq!(p.cost("gpt-4omega", 1, 1), None);
        assert_eq!(p.cost("gpt-test", 1, 1), None);
    }

    #[test]
    fn a_user_file_adds_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let toml_file = dir.path().join("prices.toml");
        std::fs::write(
            &toml_file,
            "[gpt-test]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n[gpt-4o]\ninput_per_mtok = 0\noutput_per_mtok = 0\n",
        )
        .unwrap();
        let p = Prices::with_file(&toml_file).unwrap();
        assert_eq!(p.cost("gpt-test", 500_000, 250_000), Some(1.0));
        assert_eq!(p.cost("gpt-4o", 1_000_000, 1_000_000), Some(0.0));
        assert!(p.price("claude-opus-4").is_some(), "the rest stays");

        let json_file = dir.path().join("prices.json");
        std::fs::write(
            &json_file,
            r#"{"m": {"input_per_mtok": 3, "output_per_mtok": 4}}"#,
        )
        .unwrap();
        assert_eq!(
            Prices::with_file(&json_file)
                .unwrap()
                .cost("m", 1_000_000, 0),
            Some(3.0)
        );
    }

    #[test]
    fn bad_price_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.json");
        std::fs::write(&f, r#"{"m": {"input_per_mtok": 3, "output": 4}}"#).unwrap();
        let err = format!("{:#}", Prices::with_file(&f).unwrap_err());
        assert!(
            err.contains("p.json: not a price table") && err.contains("unknown field"),
            "{err}"
        );
        std::fs::write(&f, r#"{"m": {"input_per_mtok": -3, "output_per_mtok": 4}}"#).unwrap();
        let err = format!("{:#}", Prices::with_file(&f).unwrap_err());
        assert!(
            err.contains("m.input_per_mtok = -3 is not a price"),
            "{err}"
        );
    }
}
