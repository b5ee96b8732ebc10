//! Set functions. Arguments convert to sets (sorted, deduplicated) whose element types
//! are unified first, so `setunion(["a"], [1])` is a set of strings, as in cty.

use super::support::{make_set, unify_types};
use super::{arg_err, failed, p, set_of, sig, sig_var, Body, FnError, Signature, ANY};
use crate::value::{convert, Type, Value};

pub(crate) fn lookup(name: &str) -> Option<(Signature, Body)> {
    let many = || {
        sig_var(
            vec![p("first_set", set_of(ANY))],
            p("other_sets", set_of(ANY)),
        )
    };
    Some(match name {
        "sethaselement" => (
            sig(vec![p("set", set_of(ANY)), p("elem", ANY)]),
            sethaselement,
        ),
        "setunion" => (many(), setunion),
        "setintersection" => (many(), setintersection),
        "setsymmetricdifference" => (many(), setsymmetricdifference),
        "setsubtract" => (
            sig(vec![p("a", set_of(ANY)), p("b", set_of(ANY))]),
            setsubtract,
        ),
        "setproduct" => (sig_var(vec![], p("sets", ANY)), setproduct),
        _ => return None,
    })
}

fn elems(v: &Value) -> &[Value] {
    v.as_seq().unwrap_or_default()
}

fn param_name(names: &[&'static str], i: usize) -> &'static str {
    names[i.min(names.len() - 1)]
}

/// The sets' elements converted to one element type; `names` are the parameters' names.
fn unified_sets(a: Vec<Value>, names: &[&'static str]) -> Result<Vec<Vec<Value>>, FnError> {
    let mut tys = Vec::new();
    for (i, set) in a.iter().enumerate() {
        let own: Vec<Type> = elems(set).iter().map(Value::type_of).collect();
        if unify_types(&own).is_none() {
            return Err(arg_err(
                i,
                param_name(names, i),
                "all set elements must have the same type",
            ));
        }
        tys.extend(own);
    }
    let ety = unify_types(&tys)
        .ok_or_else(|| failed("given sets must all have compatible element types"))?;
    let mut out = Vec::new();
    for (i, set) in a.iter().enumerate() {
        let items = elems(set)
            .iter()
            .map(|v| {
                convert(v.clone(), &ety).map_err(|e| arg_err(i, param_name(names, i), e.message))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push(items);
    }
    Ok(out)
}

fn has(set: &[Value], v: &Value) -> bool {
    set.iter().any(|x| x.equals(v))
}

const MANY: &[&str] = &["first_set", "other_sets"];

fn sethaselement(a: Vec<Value>) -> Result<Value, FnError> {
    let own: Vec<Type> = elems(&a[0]).iter().map(Value::type_of).collect();
    if unify_types(&own).is_none() {
        return Err(arg_err(
            0,
            "set",
            "all set elements must have the same type",
        ));
    }
    Ok(Value::Bool(has(elems(&a[0]), &a[1])))
}

fn fold(
    a: Vec<Value>,
    names: &[&'static str],
    op: fn(Vec<Value>, Vec<Value>) -> Vec<Value>,
) -> Result<Value, FnError> {
    let mut sets = unified_sets(a, names)?.into_iter();
    let first = sets.next().unwrap_or_default();
    Ok(make_set(sets.fold(first, op)))
}

fn setunion(a: Vec<Value>) -> Result<Value, FnError> {
    fold(a, MANY, |mut x, y| {
        x.extend(y);
        x
    })
}

fn setintersection(a: Vec<Value>) -> Result<Value, FnError> {
    fold(a, MANY, |x, y| {
        x.into_iter().filter(|v| has(&y, v)).collect()
    })
}

fn setsubtract(a: Vec<Value>) -> Result<Value, FnError> {
    fold(a, &["a", "b"], |x, y| {
        x.into_iter().filter(|v| !has(&y, v)).collect()
    })
}

fn setsymmetricdifference(a: Vec<Value>) -> Result<Value, FnError> {
    fold(a, MANY, |x, y| {
        let mut out: Vec<Value> = x.iter().filter(|v| !has(&y, v)).cloned().collect();
        out.extend(y.iter().filter(|v| !has(&x, v)).cloned());
        out
    })
}

/// The Cartesian product: a list of tuples when every argument is a list or tuple,
/// otherwise a set of tuples.
fn setproduct(a: Vec<Value>) -> Result<Value, FnError> {
    if a.len() < 2 {
        return Err(failed("at least two arguments are required"));
    }
    let mut all_lists = true;
    let mut columns: Vec<Vec<Value>> = Vec::new();
    for (i, arg) in a.iter().enumerate() {
        match arg {
            Value::Set(v) => {
                all_lists = false;
                columns.push(v.clone());
            }
            Value::List(v) => columns.push(v.clone()),
            Value::Tuple(v) => {
                let tys: Vec<Type> = v.iter().map(Value::type_of).collect();
                let ety = unify_types(&tys)
                    .ok_or_else(|| arg_err(i, "sets", "all elements must be of the same type"))?;
                let conv = v
                    .iter()
                    .map(|x| convert(x.clone(), &ety).unwrap_or(Value::Null));
                columns.push(conv.collect());
            }
            _ => return Err(arg_err(i, "sets", "a set or a list is required")),
        }
    }
    let total = columns
        .iter()
        .fold(1u64, |acc, c| acc.saturating_mul(c.len() as u64));
    if total > 1 << 20 {
        return Err(failed("setproduct result too large"));
    }
    let mut product: Vec<Vec<Value>> = vec![Vec::new()];
    for col in &columns {
        let mut next = Vec::with_capacity(product.len() * col.len());
        for prefix in &product {
            for v in col {
                let mut row = prefix.clone();
                row.push(v.clone());
                next.push(row);
            }
        }
        product = next;
    }
    let rows: Vec<Value> = product.into_iter().map(Value::Tuple).collect();
    Ok(if all_lists {
        Value::List(rows)
    } else {
        make_set(rows)
    })
}
