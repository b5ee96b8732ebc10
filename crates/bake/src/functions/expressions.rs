//! `try`, `can` and `convert`: HCL extension functions that work on expressions, not
//! values, so the evaluator intercepts them (see the module docs in `mod.rs`). These
//! value-level fallbacks exist so that the names are known and a stray call behaves
//! sensibly: every argument already evaluated without error.

use super::{failed, p, sig, sig_var, Body, FnError, Signature, ANY};
use crate::value::Value;

pub(crate) fn lookup(name: &str) -> Option<(Signature, Body)> {
    Some(match name {
        "try" => (sig_var(vec![], super::p_null("expressions", ANY)), try_fn),
        "can" => (sig(vec![super::p_null("expression", ANY)]), can),
        "convert" => (
            sig(vec![super::p_null("value", ANY), p("type", ANY)]),
            convert,
        ),
        _ => return None,
    })
}

/// The first argument: with evaluated values, the first one "succeeded".
fn try_fn(a: Vec<Value>) -> Result<Value, FnError> {
    a.into_iter()
        .next()
        .ok_or_else(|| failed("at least one argument is required"))
}

fn can(_: Vec<Value>) -> Result<Value, FnError> {
    Ok(Value::Bool(true))
}

fn convert(_: Vec<Value>) -> Result<Value, FnError> {
    Err(failed(
        "convert() needs a type expression; the evaluator must handle it",
    ))
}
