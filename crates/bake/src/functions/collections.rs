//! Collection functions: lists, tuples, maps and objects (go-cty's collection.go and
//! sequence.go, plus buildx's `indexof`). cty keeps lists apart from tuples and maps
//! apart from objects; results keep the kind cty would give them.

use std::collections::BTreeMap;

use super::support::{as_list, friendly, to_int, unify_types, unify_values};
use super::{
    arg_err, failed, list_of, p, p_null, sig, sig_var, Body, FnError, Signature, ANY, N, S,
};
use crate::value::{convert, Number, Type, Value};

pub(crate) fn lookup(name: &str) -> Option<(Signature, Body)> {
    Some(match name {
        "length" => (sig(vec![p("collection", ANY)]), length),
        "element" => (sig(vec![p("list", ANY), p("index", N)]), element),
        "index" => (sig(vec![p("collection", ANY), p("key", ANY)]), index),
        "hasindex" => (sig(vec![p("collection", ANY), p("key", ANY)]), hasindex),
        "indexof" => (sig(vec![p("list", ANY), p("value", ANY)]), indexof),
        "coalesce" => (sig_var(vec![], p_null("vals", ANY)), coalesce),
        "coalescelist" => (sig_var(vec![], p_null("vals", ANY)), coalescelist),
        "compact" => (sig(vec![p("list", list_of(S))]), compact),
        "concat" => (sig_var(vec![], p("seqs", ANY)), concat),
        "contains" => (sig(vec![p("list", ANY), p("value", ANY)]), contains),
        "distinct" => (sig(vec![p("list", list_of(ANY))]), distinct),
        "chunklist" => (sig(vec![p("list", list_of(ANY)), p("size", N)]), chunklist),
        "flatten" => (sig(vec![p("list", ANY)]), flatten),
        "keys" => (sig(vec![p("inputMap", ANY)]), keys),
        "values" => (sig(vec![p("values", ANY)]), values),
        "lookup" => (
            sig(vec![p("inputMap", ANY), p("key", S), p("default", ANY)]),
            lookup_fn,
        ),
        "merge" => (sig_var(vec![], p_null("maps", ANY)), merge),
        "reverselist" => (sig(vec![p("list", ANY)]), reverselist),
        "slice" => (
            sig(vec![p("list", ANY), p("start_index", N), p("end_index", N)]),
            slice,
        ),
        "zipmap" => (sig(vec![p("keys", list_of(S)), p("values", ANY)]), zipmap),
        "range" => (sig_var(vec![], p("params", N)), range),
        _ => return None,
    })
}

fn num(v: &Value) -> &Number {
    v.as_number().expect("converted to number")
}

fn length(a: Vec<Value>) -> Result<Value, FnError> {
    match &a[0] {
        Value::List(v) | Value::Tuple(v) | Value::Set(v) => Ok(Value::number(v.len() as i64)),
        Value::Map(m) => Ok(Value::number(m.len() as i64)),
        _ => Err(failed("collection must be a list, a map or a tuple")),
    }
}

fn element(a: Vec<Value>) -> Result<Value, FnError> {
    let idx = num(&a[1]);
    if idx.is_negative() {
        return Err(failed("cannot use element function with a negative index"));
    }
    let items = match &a[0] {
        Value::List(v) | Value::Tuple(v) => v,
        other => {
            return Err(failed(format!(
                "cannot read elements from {}",
                friendly(other)
            )))
        }
    };
    let i = to_int(idx).map_err(|e| failed(format!("invalid index: {e}")))?;
    if items.is_empty() {
        return Err(failed("cannot use element function with an empty list"));
    }
    Ok(items[(i as usize) % items.len()].clone())
}

/// `true` when `key` indexes `coll` (cty's `HasIndex`).
fn has_index(coll: &Value, key: &Value) -> bool {
    match (coll, key) {
        (Value::List(v) | Value::Tuple(v), Value::Number(n)) => {
            n.to_i64().is_some_and(|i| i >= 0 && (i as usize) < v.len())
        }
        (Value::Map(m), Value::String(k)) => m.contains_key(k),
        _ => false,
    }
}

fn index(a: Vec<Value>) -> Result<Value, FnError> {
    let (coll, key) = (&a[0], &a[1]);
    match coll {
        Value::Tuple(v) => {
            let Value::Number(n) = key else {
                return Err(failed("key for tuple must be number"));
            };
            let i = to_int(n).map_err(|e| failed(format!("invalid key for tuple: {e}")))?;
            if i < 0 || i as usize >= v.len() {
                return Err(failed(format!(
                    "key must be between 0 and {} inclusive",
                    v.len()
                )));
            }
            Ok(v[i as usize].clone())
        }
        Value::List(v) => {
            if !matches!(key, Value::Number(_) | Value::Null) {
                return Err(failed("key for list must be number"));
            }
            if !has_index(coll, key) {
                return Err(failed("invalid index"));
            }
            let i = key.as_number().and_then(Number::to_i64).unwrap_or(0) as usize;
            Ok(v[i].clone())
        }
        Value::Map(m) => {
            let Value::String(k) = key else {
                return Err(failed("key for map must be string"));
            };
            m.get(k).cloned().ok_or_else(|| failed("invalid index"))
        }
        _ => Err(failed("collection must be a list, a map or a tuple")),
    }
}

fn hasindex(a: Vec<Value>) -> Result<Value, FnError> {
    if !matches!(a[0], Value::List(_) | Value::Tuple(_) | Value::Map(_)) {
        return Err(failed("collection must be a list, a map or a tuple"));
    }
    Ok(Value::Bool(has_index(&a[0], &a[1])))
}

/// buildx's `indexof(list, value)`: the position of the first equal element.
fn indexof(a: Vec<Value>) -> Result<Value, FnError> {
    let items = match &a[0] {
        Value::List(v) | Value::Tuple(v) => v,
        _ => return Err(failed("argument must be a list or tuple")),
    };
    if items.is_empty() {
        return Err(failed("cannot search an empty list"));
    }
    items
        .iter()
        .position(|v| v.equals(&a[1]))
        .map(|i| Value::number(i as i64))
        .ok_or_else(|| failed("item not found"))
}

/// The first non-null argument, converted to the arguments' common type; `""` counts.
fn coalesce(a: Vec<Value>) -> Result<Value, FnError> {
    if a.is_empty() {
        return Err(failed("all arguments must have the same type"));
    }
    let unified = unify_values(a).ok_or_else(|| failed("all arguments must have the same type"))?;
    unified
        .into_iter()
        .find(|v| !v.is_null())
        .ok_or_else(|| failed("no non-null arguments"))
}

fn coalescelist(a: Vec<Value>) -> Result<Value, FnError> {
    if a.is_empty() {
        return Err(failed("at least one argument is required"));
    }
    if a.iter()
        .any(|v| !matches!(v, Value::List(_) | Value::Tuple(_) | Value::Null))
    {
        return Err(failed("coalescelist arguments must be lists or tuples"));
    }
    a.into_iter()
        .find(|v| v.as_seq().is_some_and(|s| !s.is_empty()))
        .ok_or_else(|| failed("no non-null arguments"))
}

fn compact(a: Vec<Value>) -> Result<Value, FnError> {
    let items = a[0].as_seq().unwrap_or_default();
    let kept = items
        .iter()
        .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        .cloned();
    Ok(Value::List(kept.collect()))
}

/// Lists of one common element type give a list; anything else (tuples) a tuple.
fn concat(a: Vec<Value>) -> Result<Value, FnError> {
    if a.is_empty() {
        return Err(failed("at least one argument is required"));
    }
    if a.iter().all(|v| matches!(v, Value::List(_))) {
        let tys: Vec<Type> = a.iter().map(Value::type_of).collect();
        if let Some(ty) = unify_types(&tys) {
            let mut out = Vec::new();
            for (i, list) in a.into_iter().enumerate() {
                match convert(list, &ty) {
                    Ok(Value::List(items)) => out.extend(items),
                    Ok(_) => {}
                    Err(e) => return Err(arg_err(i, "seqs", e.message)),
                }
            }
            return Ok(Value::List(out));
        }
    }
    let mut out = Vec::new();
    for (i, seq) in a.into_iter().enumerate() {
        match seq {
            Value::List(items) | Value::Tuple(items) => out.extend(items),
            other => {
                return Err(arg_err(
                    i,
                    "seqs",
                    format!(
                        "all arguments must be lists or tuples; got {}",
                        friendly(&other)
                    ),
                ))
            }
        }
    }
    Ok(Value::Tuple(out))
}

fn contains(a: Vec<Value>) -> Result<Value, FnError> {
    let items = match &a[0] {
        Value::List(v) | Value::Tuple(v) | Value::Set(v) => v,
        _ => return Err(failed("argument must be list, tuple, or set")),
    };
    Ok(Value::Bool(items.iter().any(|v| a[1].equals(v))))
}

fn distinct(a: Vec<Value>) -> Result<Value, FnError> {
    let items =
        as_list(a.into_iter().next().unwrap_or_default()).map_err(|m| arg_err(0, "list", m))?;
    let mut out: Vec<Value> = Vec::new();
    for v in items {
        if !out.iter().any(|o| o.equals(&v)) {
            out.push(v);
        }
    }
    Ok(Value::List(out))
}

fn chunklist(a: Vec<Value>) -> Result<Value, FnError> {
    let mut a = a.into_iter();
    let items = as_list(a.next().unwrap_or_default()).map_err(|m| arg_err(0, "list", m))?;
    let size = a.next().unwrap_or_default();
    let size = to_int(num(&size)).map_err(|e| failed(format!("invalid size: {e}")))?;
    if size < 0 {
        return Err(failed("the size argument must be positive"));
    }
    if items.is_empty() {
        return Ok(Value::List(Vec::new()));
    }
    if size == 0 {
        return Ok(Value::List(vec![Value::List(items)]));
    }
    let chunks = items
        .chunks(size as usize)
        .map(|c| Value::List(c.to_vec()))
        .collect();
    Ok(Value::List(chunks))
}

fn flatten_into(items: &[Value], out: &mut Vec<Value>) {
    for v in items {
        match v {
            Value::List(inner) | Value::Tuple(inner) | Value::Set(inner) => {
                flatten_into(inner, out)
            }
            other => out.push(other.clone()),
        }
    }
}

fn flatten(a: Vec<Value>) -> Result<Value, FnError> {
    let Some(items) = a[0].as_seq() else {
        return Err(failed("can only flatten lists, sets and tuples"));
    };
    let mut out = Vec::new();
    flatten_into(items, &mut out);
    Ok(Value::Tuple(out))
}

/// Sorted keys: a list for a map, a tuple for an object.
fn keys(a: Vec<Value>) -> Result<Value, FnError> {
    match &a[0] {
        Value::Map(m) => Ok(Value::List(m.keys().map(Value::string).collect())),
        Value::Object(m) => Ok(Value::Tuple(m.keys().map(Value::string).collect())),
        _ => Err(arg_err(0, "inputMap", "must have map or object type")),
    }
}

/// Values in sorted-key order.
fn values(a: Vec<Value>) -> Result<Value, FnError> {
    match a.into_iter().next().unwrap_or_default() {
        Value::Map(m) => Ok(Value::List(m.into_values().collect())),
        Value::Object(m) => Ok(Value::Tuple(m.into_values().collect())),
        _ => Err(failed("values() requires a map as the first argument")),
    }
}

fn lookup_fn(a: Vec<Value>) -> Result<Value, FnError> {
    let mut a = a.into_iter();
    let (coll, key, default) = (
        a.next().unwrap_or_default(),
        a.next().unwrap_or_default(),
        a.next().unwrap_or_default(),
    );
    let key = key.as_str().unwrap_or_default().to_string();
    match coll {
        Value::Object(mut m) => Ok(m.remove(&key).unwrap_or(default)),
        Value::Map(mut m) => {
            let ety = m.values().next().map_or(Type::Any, Value::type_of);
            let default = convert(default, &ety).map_err(|_| {
                arg_err(
                    2,
                    "default",
                    "the default value must have the same type as the map elements",
                )
            })?;
            Ok(m.remove(&key).unwrap_or(default))
        }
        _ => Err(arg_err(
            0,
            "inputMap",
            "lookup() requires a map as the first argument",
        )),
    }
}

/// Later arguments win. All maps of one type give a map, anything else an object.
fn merge(a: Vec<Value>) -> Result<Value, FnError> {
    for v in &a {
        if !matches!(v, Value::Map(_) | Value::Object(_) | Value::Null) {
            return Err(failed(format!(
                "arguments must be maps or objects, got \"{}\"",
                friendly(v)
            )));
        }
    }
    let all_maps = !a.is_empty() && a.iter().all(|v| matches!(v, Value::Map(_)));
    let same_type = a.windows(2).all(|w| w[0].type_of() == w[1].type_of());
    let mut out = BTreeMap::new();
    for v in a {
        if let Value::Map(m) | Value::Object(m) = v {
            out.extend(m);
        }
    }
    Ok(if all_maps && same_type {
        Value::Map(out)
    } else {
        Value::Object(out)
    })
}

fn reverselist(a: Vec<Value>) -> Result<Value, FnError> {
    match a.into_iter().next().unwrap_or_default() {
        Value::Tuple(mut v) => {
            v.reverse();
            Ok(Value::Tuple(v))
        }
        Value::List(mut v) | Value::Set(mut v) => {
            v.reverse();
            Ok(Value::List(v))
        }
        other => Err(arg_err(
            0,
            "list",
            format!(
                "can only reverse list or tuple values, not {}",
                friendly(&other)
            ),
        )),
    }
}

fn slice(a: Vec<Value>) -> Result<Value, FnError> {
    let (items, is_tuple) = match &a[0] {
        Value::Set(_) => {
            return Err(arg_err(0, "list", "cannot slice a set, because its elements do not have indices; explicitly convert to a list if the ordering of the result is not important"))
        }
        Value::List(v) => (v, false),
        Value::Tuple(v) => (v, true),
        _ => return Err(arg_err(0, "list", "must be a list or tuple value")),
    };
    let len = items.len() as i64;
    let start = to_int(num(&a[1]))
        .map_err(|e| arg_err(1, "start_index", format!("invalid start index: {e}")))?;
    if start < 0 {
        return Err(arg_err(
            1,
            "start_index",
            "start index must not be less than zero",
        ));
    }
    if start > len {
        return Err(arg_err(
            1,
            "start_index",
            "start index must not be greater than the length of the list",
        ));
    }
    let end = to_int(num(&a[2]))
        .map_err(|e| arg_err(2, "end_index", format!("invalid end index: {e}")))?;
    if end < 0 {
        return Err(arg_err(
            2,
            "end_index",
            "end index must not be less than zero",
        ));
    }
    if end > len {
        return Err(arg_err(
            2,
            "end_index",
            "end index must not be greater than the length of the list",
        ));
    }
    if start > end {
        return Err(arg_err(
            1,
            "start_index",
            "start index must not be greater than end index",
        ));
    }
    let part = items[start as usize..end as usize].to_vec();
    Ok(if is_tuple {
        Value::Tuple(part)
    } else {
        Value::List(part)
    })
}

/// A map from a list of values, an object from a tuple.
fn zipmap(a: Vec<Value>) -> Result<Value, FnError> {
    let keys = a[0].as_seq().unwrap_or_default();
    let (vals, is_tuple) = match &a[1] {
        Value::List(v) => (v, false),
        Value::Tuple(v) => (v, true),
        _ => return Err(failed("values argument must be a list or tuple value")),
    };
    if keys.len() != vals.len() {
        return Err(failed(format!(
            "number of keys ({}) does not match number of values ({})",
            keys.len(),
            vals.len()
        )));
    }
    let mut out = BTreeMap::new();
    for (i, (k, v)) in keys.iter().zip(vals).enumerate() {
        let Some(k) = k.as_str() else {
            return Err(failed(format!("keys list has null value at index {i}")));
        };
        out.insert(k.to_string(), v.clone());
    }
    Ok(if is_tuple {
        Value::Object(out)
    } else {
        Value::Map(out)
    })
}

/// `range(end)`, `range(start, end)`, `range(start, end, step)`; at most 1024 values.
fn range(a: Vec<Value>) -> Result<Value, FnError> {
    let n: Vec<&Number> = a.iter().map(num).collect();
    let zero = Number::from_i64(0);
    let one = Number::from_i64(1);
    let minus_one = Number::from_i64(-1);
    let (start, end, step) = match n.as_slice() {
        [end] => {
            let step = if end.is_negative() { minus_one } else { one };
            (zero, (*end).clone(), step)
        }
        [start, end] => {
            let step = if end < start { minus_one } else { one };
            ((*start).clone(), (*end).clone(), step)
        }
        [start, end, step] => ((*start).clone(), (*end).clone(), (*step).clone()),
        _ => return Err(failed("must have one, two, or three arguments")),
    };
    let down = step.is_negative();
    if down && end > start {
        return Err(arg_err(
            1,
            "params",
            "end must be less than start when step is negative",
        ));
    }
    if !down && end < start {
        return Err(arg_err(
            1,
            "params",
            "end must be greater than start when step is positive",
        ));
    }
    let mut out = Vec::new();
    let mut cur = start;
    loop {
        if (down && cur <= end) || (!down && cur >= end) {
            break;
        }
        if out.len() >= 1024 {
            return Err(failed("more than 1024 values were generated; either decrease the difference between start and end or use a smaller step"));
        }
        out.push(Value::Number(cur.clone()));
        cur = cur.add(&step);
    }
    Ok(Value::List(out))
}
