//! Helpers shared by the function families: cty-style type unification, whole-number
//! extraction with go-cty's error text, and grapheme-cluster counting.

use std::collections::BTreeMap;

use unicode_segmentation::UnicodeSegmentation;

use crate::value::{convert, Number, Type, Value};

/// go-cty's `gocty.FromCtyValue(number, &int)` failure text.
pub(crate) const WHOLE_NUMBER: &str =
    "value must be a whole number, between -9223372036854775808 and 9223372036854775807";

/// The number as an `i64`, or go-cty's whole-number error.
pub(crate) fn to_int(n: &Number) -> Result<i64, String> {
    n.to_i64().ok_or_else(|| WHOLE_NUMBER.to_string())
}

/// The value's cty friendly type name (`string`, `list of string`, `tuple`, ...).
pub(crate) fn friendly(v: &Value) -> String {
    v.type_of().friendly_name()
}

/// Number of user-perceived characters (extended grapheme clusters), as cty counts them.
pub(crate) fn grapheme_len(s: &str) -> usize {
    s.graphemes(true).count()
}

/// A common type all of `tys` convert to, after cty's unification rules: equal types
/// stay, mixed primitives become string when a string is among them, collections unify their elements, objects with
/// differing attributes become maps. Untyped nulls (`Any`) fit anything.
pub(crate) fn unify_types(tys: &[Type]) -> Option<Type> {
    let tys: Vec<&Type> = tys.iter().filter(|t| **t != Type::Any).collect();
    let Some(first) = tys.first() else {
        return Some(Type::Any);
    };
    if tys.iter().all(|t| t == first) {
        return Some((*first).clone());
    }
    if tys.iter().all(|t| t.is_primitive()) {
        // Only a type among the given ones can be the target: string takes numbers and
        // bools, but a number and a bool have nothing in common.
        return tys
            .iter()
            .any(|t| **t == Type::String)
            .then_some(Type::String);
    }
    let elems = |f: fn(&Type) -> Option<Vec<Type>>| -> Option<Vec<Type>> {
        let mut all = Vec::new();
        for t in &tys {
            all.extend(f(t)?);
        }
        Some(all)
    };
    if tys.iter().all(|t| matches!(t, Type::List(_))) {
        let e = elems(|t| match t {
            Type::List(e) => Some(vec![(**e).clone()]),
            _ => None,
        })?;
        return Some(Type::List(Box::new(unify_types(&e)?)));
    }
    if tys.iter().all(|t| matches!(t, Type::Set(_))) {
        let e = elems(|t| match t {
            Type::Set(e) => Some(vec![(**e).clone()]),
            _ => None,
        })?;
        return Some(Type::Set(Box::new(unify_types(&e)?)));
    }
    if tys.iter().all(|t| matches!(t, Type::Tuple(_))) {
        let lens: Vec<usize> = tys
            .iter()
            .map(|t| match t {
                Type::Tuple(v) => v.len(),
                _ => 0,
            })
            .collect();
        if lens.iter().all(|l| *l == lens[0]) {
            let mut out = Vec::new();
            for i in 0..lens[0] {
                let col: Vec<Type> = tys
                    .iter()
                    .map(|t| match t {
                        Type::Tuple(v) => v[i].clone(),
                        _ => Type::Any,
                    })
                    .collect();
                out.push(unify_types(&col)?);
            }
            return Some(Type::Tuple(out));
        }
    }
    if tys
        .iter()
        .all(|t| matches!(t, Type::List(_) | Type::Tuple(_) | Type::Set(_)))
    {
        let e = elems(|t| match t {
            Type::List(e) | Type::Set(e) => Some(vec![(**e).clone()]),
            Type::Tuple(v) => Some(v.clone()),
            _ => None,
        })?;
        return Some(Type::List(Box::new(unify_types(&e)?)));
    }
    if tys.iter().all(|t| matches!(t, Type::Object(_))) {
        let keys: Vec<Vec<&String>> = tys
            .iter()
            .map(|t| match t {
                Type::Object(m) => m.keys().collect(),
                _ => Vec::new(),
            })
            .collect();
        if keys.iter().all(|k| *k == keys[0]) {
            let mut out = BTreeMap::new();
            for k in &keys[0] {
                let col: Vec<Type> = tys
                    .iter()
                    .map(|t| match t {
                        Type::Object(m) => m[*k].clone(),
                        _ => Type::Any,
                    })
                    .collect();
                out.insert((*k).clone(), unify_types(&col)?);
            }
            return Some(Type::Object(out));
        }
    }
    if tys
        .iter()
        .all(|t| matches!(t, Type::Object(_) | Type::Map(_)))
    {
        let e = elems(|t| match t {
            Type::Map(e) => Some(vec![(**e).clone()]),
            Type::Object(m) => Some(m.values().cloned().collect()),
            _ => None,
        })?;
        return Some(Type::Map(Box::new(unify_types(&e)?)));
    }
    None
}

/// Converts every value to their unified type; `None` when there is none.
pub(crate) fn unify_values(vals: Vec<Value>) -> Option<Vec<Value>> {
    let tys: Vec<Type> = vals.iter().map(Value::type_of).collect();
    let ty = unify_types(&tys)?;
    vals.into_iter().map(|v| convert(v, &ty).ok()).collect()
}

/// The elements of a list/tuple/set argument made homogeneous, as a conversion to
/// `list(any)` does; the error is cty's.
pub(crate) fn as_list(v: Value) -> Result<Vec<Value>, String> {
    let items = match v {
        Value::List(items) | Value::Set(items) | Value::Tuple(items) => items,
        other => {
            return Err(format!(
                "list of dynamic required, but have {}",
                friendly(&other)
            ))
        }
    };
    unify_values(items).ok_or_else(|| "all list elements must have the same type".to_string())
}

/// cty's total order for set elements: strings bytewise, numbers by value, false < true;
/// anything else by its JSON text so the order is at least stable.
pub(crate) fn set_cmp(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => {
            let ja = super::text::json_text(a).unwrap_or_default();
            let jb = super::text::json_text(b).unwrap_or_default();
            ja.cmp(&jb)
        }
    }
}

/// Sorts and dedupes into a set value.
pub(crate) fn make_set(mut items: Vec<Value>) -> Value {
    items.sort_by(set_cmp);
    items.dedup_by(|a, b| a.equals(b));
    Value::Set(items)
}
