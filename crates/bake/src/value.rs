//! The evaluator's value model, after go-cty (the value library under HCL and bake).
//!
//! cty tells lists from tuples and maps from objects: a literal `[1, "a"]` is a tuple,
//! a typed variable `list(string)` holds a list. `length`, `jsonencode` and the
//! conversions care, so the distinction is kept here. Maps and objects are `BTreeMap`s
//! because cty always iterates them in bytewise key order.
//!
//! Numbers are arbitrary-precision decimals: cty uses 512-bit floats, and every value the
//! corpus prints (`0.1+0.2` → `0.3`, `7/2` → `3.5`, 20-digit integers) comes out the
//! same from an exact decimal printed as the shortest plain decimal.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use bigdecimal::{BigDecimal, ToPrimitive, Zero};

/// Digits kept by a division that does not terminate (`10/3`).
const DIV_DIGITS: u64 = 100;

/// Largest decimal exponent accepted in number text.
const MAX_EXPONENT: i64 = 4096;

/// An arbitrary-precision number; `Display` gives the shortest plain decimal (no exponent).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Number(BigDecimal);

impl Number {
    pub fn from_i64(n: i64) -> Number {
        Number(BigDecimal::from(n))
    }

    /// A float result (e.g. from `pow`); `None` for NaN and infinities.
    pub fn from_f64(f: f64) -> Option<Number> {
        if !f.is_finite() {
            return None;
        }
        // Rust's shortest round-trip text, so 0.1 stays 0.1 and not its binary expansion.
        BigDecimal::from_str(&format!("{f:?}"))
            .ok()
            .map(|d| Number(d.normalized()))
    }

    /// Parses HCL / JSON / Go `ParseFloat`-style decimal text (`1.5`, `-2`, `1e3`).
    /// Rejects `NaN`, `Inf`, hex and empty text.
    pub fn parse(text: &str) -> Option<Number> {
        let t = text.strip_prefix('+').unwrap_or(text);
        let digits = t.strip_prefix('-').unwrap_or(t);
        let ok = !digits.is_empty()
            && digits
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
            && digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
            && digits.chars().any(|c| c.is_ascii_digit());
        if !ok {
            return None;
        }
        // A decimal exponent this large would print millions of digits; no bake file needs it.
        if let Some(i) = digits.find(['e', 'E']) {
            match digits[i + 1..].trim_start_matches('+').parse::<i64>() {
                Ok(e) if e.abs() <= MAX_EXPONENT => {}
                _ => return None,
            }
        }
        BigDecimal::from_str(t).ok().map(|d| Number(d.normalized()))
    }

    pub fn to_f64(&self) -> f64 {
        self.0.to_f64().unwrap_or(f64::NAN)
    }

    /// The value as an `i64` when it is a whole number in range.
    pub fn to_i64(&self) -> Option<i64> {
        if self.0.is_integer() {
            self.0.to_i64()
        } else {
            None
        }
    }

    pub fn is_integer(&self) -> bool {
        self.0.is_integer()
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    pub fn is_negative(&self) -> bool {
        self.0 < BigDecimal::zero()
    }

    pub fn add(&self, o: &Number) -> Number {
        Number((&self.0 + &o.0).normalized())
    }

    pub fn sub(&self, o: &Number) -> Number {
        Number((&self.0 - &o.0).normalized())
    }

    pub fn mul(&self, o: &Number) -> Number {
        Number((&self.0 * &o.0).normalized())
    }

    /// Real division; `None` when dividing by zero.
    pub fn div(&self, o: &Number) -> Option<Number> {
        if o.0.is_zero() {
            return None;
        }
        let q = (&self.0 / &o.0).with_prec(DIV_DIGITS);
        Some(Number(q.normalized()))
    }

    /// Truncated modulo: the result takes the sign of the dividend (`-17 % 5 = -2`).
    pub fn rem(&self, o: &Number) -> Option<Number> {
        if o.0.is_zero() {
            return None;
        }
        Some(Number((&self.0 % &o.0).normalized()))
    }

    pub fn neg(&self) -> Number {
        Number(-self.0.clone())
    }

    /// Rounds toward negative infinity.
    pub fn floor(&self) -> Number {
        let r = self.0.with_scale_round(0, bigdecimal::RoundingMode::Floor);
        Number(r.normalized())
    }

    /// Rounds toward positive infinity.
    pub fn ceil(&self) -> Number {
        let r = self
            .0
            .with_scale_round(0, bigdecimal::RoundingMode::Ceiling);
        Number(r.normalized())
    }

    /// The underlying decimal, for functions that need more than the methods above.
    pub fn as_decimal(&self) -> &BigDecimal {
        &self.0
    }

    pub fn from_decimal(d: BigDecimal) -> Number {
        Number(d.normalized())
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.normalized();
        if n.is_zero() {
            return f.write_str("0");
        }
        f.write_str(&n.to_plain_string())
    }
}

/// A cty type, as declared by `variable { type = ... }` and used for conversions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    String,
    Number,
    Bool,
    /// `any` (cty's dynamic pseudo-type): conversion keeps the value as it is.
    Any,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Tuple(Vec<Type>),
    Object(BTreeMap<String, Type>),
}

impl Type {
    pub fn is_primitive(&self) -> bool {
        matches!(self, Type::String | Type::Number | Type::Bool)
    }

    /// cty's "friendly name", used in conversion errors: `list of string`, `map of number`.
    pub fn friendly_name(&self) -> String {
        match self {
            Type::String => "string".into(),
            Type::Number => "number".into(),
            Type::Bool => "bool".into(),
            Type::Any => "dynamic".into(),
            Type::List(e) => format!("list of {}", e.friendly_name()),
            Type::Set(e) => format!("set of {}", e.friendly_name()),
            Type::Map(e) => format!("map of {}", e.friendly_name()),
            Type::Tuple(_) => "tuple".into(),
            Type::Object(_) => "object".into(),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.friendly_name())
    }
}

/// A value. `Null` is untyped here: nothing in bake depends on a null's type.
#[derive(Clone, Debug, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    /// Homogeneous list (from a typed variable or a conversion).
    List(Vec<Value>),
    /// A `[...]` literal or `for` result: elements of any types.
    Tuple(Vec<Value>),
    /// Sorted and deduplicated.
    Set(Vec<Value>),
    /// Homogeneous map (from a typed variable or a conversion).
    Map(BTreeMap<String, Value>),
    /// A `{...}` literal: attributes of any types.
    Object(BTreeMap<String, Value>),
}

/// A failed conversion; `message` reads like cty's (`list of string required`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvertError {
    pub message: String,
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConvertError {}

fn mismatch(msg: impl Into<String>) -> ConvertError {
    ConvertError {
        message: msg.into(),
    }
}

impl Value {
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn number(n: i64) -> Value {
        Value::Number(Number::from_i64(n))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// Elements of a list, tuple or set.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Tuple(v) | Value::Set(v) => Some(v),
            _ => None,
        }
    }

    /// Entries of a map or object, in key order.
    pub fn as_entries(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) | Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The short kind name cty prints in messages: `string`, `tuple`, `object`, ...
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Set(_) => "set",
            Value::Map(_) => "map",
            Value::Object(_) => "object",
        }
    }

    /// The value's type. A collection's element type is taken from its first element.
    pub fn type_of(&self) -> Type {
        match self {
            Value::Null => Type::Any,
            Value::Bool(_) => Type::Bool,
            Value::Number(_) => Type::Number,
            Value::String(_) => Type::String,
            Value::List(v) => Type::List(Box::new(v.first().map_or(Type::Any, Value::type_of))),
            Value::Set(v) => Type::Set(Box::new(v.first().map_or(Type::Any, Value::type_of))),
            Value::Tuple(v) => Type::Tuple(v.iter().map(Value::type_of).collect()),
            Value::Map(m) => Type::Map(Box::new(
                m.values().next().map_or(Type::Any, Value::type_of),
            )),
            Value::Object(m) => {
                Type::Object(m.iter().map(|(k, v)| (k.clone(), v.type_of())).collect())
            }
        }
    }

    /// The value as template text: strings as they are, numbers and bools printed;
    /// `None` for null and collections (which cannot be interpolated).
    pub fn to_template_string(&self) -> Option<String> {
        match self {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// cty equality: different kinds are unequal (`"3" == 3` is false), numbers compare
    /// by value (`1 == 1.0`), null equals only null.
    pub fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::List(a), Value::List(b))
            | (Value::Tuple(a), Value::Tuple(b))
            | (Value::Set(a), Value::Set(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equals(y))
            }
            (Value::Map(a), Value::Map(b)) | (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka == kb && va.equals(vb))
            }
            _ => false,
        }
    }

    /// Builds a value from decoded JSON: arrays become tuples, objects objects.
    pub fn from_json(j: &serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                Number::parse(&n.to_string()).map_or(Value::Null, Value::Number)
            }
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::Tuple(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.equals(other)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

/// Orders set elements the way cty does for primitives (strings bytewise, numbers by
/// value, false before true); other kinds fall back to their kind name.
fn set_order(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a.kind_name().cmp(b.kind_name()),
    }
}

/// Sorts and dedupes values into a set.
pub fn make_set(mut items: Vec<Value>) -> Value {
    items.sort_by(set_order);
    items.dedup_by(|a, b| a.equals(b));
    Value::Set(items)
}

/// Converts `v` to type `ty` following cty's (HCL's) conversion rules: primitives convert
/// between each other where the text allows it (`"7"` → 7, `"true"` → true, 42 → `"42"`),
/// sequences convert element-wise, `null` stays null.
pub fn convert(v: Value, ty: &Type) -> Result<Value, ConvertError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    match ty {
        Type::Any => Ok(v),
        Type::String => match v {
            Value::String(_) => Ok(v),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            _ => Err(mismatch("string required")),
        },
        Type::Number => match v {
            Value::Number(_) => Ok(v),
            Value::String(s) => Number::parse(&s)
                .map(Value::Number)
                .ok_or_else(|| mismatch("a number is required")),
            _ => Err(mismatch("number required")),
        },
        Type::Bool => match v {
            Value::Bool(_) => Ok(v),
            Value::String(s) => match s.as_str() {
                "true" | "1" => Ok(Value::Bool(true)),
                "false" | "0" => Ok(Value::Bool(false)),
                _ => Err(mismatch("a bool is required")),
            },
            _ => Err(mismatch("bool required")),
        },
        Type::List(elem) | Type::Set(elem) => {
            let items = match v {
                Value::List(items) | Value::Tuple(items) | Value::Set(items) => items,
                _ => return Err(mismatch(format!("{} required", ty.friendly_name()))),
            };
            let items = items
                .into_iter()
                .map(|item| convert(item, elem))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if matches!(ty, Type::Set(_)) {
                make_set(items)
            } else {
                Value::List(items)
            })
        }
        Type::Map(elem) => {
            let entries = match v {
                Value::Map(m) | Value::Object(m) => m,
                _ => return Err(mismatch(format!("{} required", ty.friendly_name()))),
            };
            let entries = entries
                .into_iter()
                .map(|(k, item)| convert(item, elem).map(|c| (k, c)))
                .collect::<Result<BTreeMap<_, _>, _>>()?;
            Ok(Value::Map(entries))
        }
        Type::Tuple(types) => {
            let items = match v {
                Value::List(items) | Value::Tuple(items) | Value::Set(items) => items,
                _ => return Err(mismatch("tuple required")),
            };
            if items.len() != types.len() {
                return Err(mismatch(format!(
                    "tuple required with {} elements",
                    types.len()
                )));
            }
            let items = items
                .into_iter()
                .zip(types)
                .map(|(item, t)| convert(item, t))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::Tuple(items))
        }
        Type::Object(attrs) => {
            let mut entries = match v {
                Value::Map(m) | Value::Object(m) => m,
                _ => return Err(mismatch("object required")),
            };
            let mut out = BTreeMap::new();
            for (name, t) in attrs {
                let Some(item) = entries.remove(name) else {
                    return Err(mismatch(format!("attribute \"{name}\" is required")));
                };
                out.insert(name.clone(), convert(item, t)?);
            }
            Ok(Value::Object(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Number {
        Number::parse(s).unwrap()
    }

    #[test]
    fn numbers_print_as_shortest_plain_decimal() {
        let cases = [
            (num("1.50").to_string(), "1.5"),
            (num("1e3").to_string(), "1000"),
            (num("0.1").add(&num("0.2")).to_string(), "0.3"),
            (num("7").div(&num("2")).unwrap().to_string(), "3.5"),
            (
                num("12345678901234567890").to_string(),
                "12345678901234567890",
            ),
            (num("1.0").to_string(), "1"),
            (num("-17").rem(&num("5")).unwrap().to_string(), "-2"),
            (num("10").div(&num("4")).unwrap().to_string(), "2.5"),
            (num("0.000").to_string(), "0"),
            (num("-0").to_string(), "0"),
            (num("2.5").mul(&num("4")).to_string(), "10"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn number_parse_rejects_go_parsefloat_failures() {
        for bad in ["", "abc", "NaN", "Inf", "0x10", "-", ".", "1e", "e5"] {
            assert!(Number::parse(bad).is_none(), "{bad:?} should not parse");
        }
        for good in ["1", "-2.5", "1e2", ".5", "5.", "+3"] {
            assert!(Number::parse(good).is_some(), "{good:?} should parse");
        }
    }

    #[test]
    fn conversions_follow_cty() {
        let s = |x: &str| Value::string(x);
        let cases: Vec<(Value, Type, Result<Value, &str>)> = vec![
            (Value::number(42), Type::String, Ok(s("42"))),
            (s("7"), Type::Number, Ok(Value::number(7))),
            (s("true"), Type::Bool, Ok(Value::Bool(true))),
            (s("yes"), Type::Bool, Err("a bool is required")),
            (
                Value::Tuple(vec![Value::number(1), Value::Bool(true)]),
                Type::List(Box::new(Type::String)),
                Ok(Value::List(vec![s("1"), s("true")])),
            ),
            (
                Value::Tuple(vec![s("zeta"), s("alpha"), s("zeta")]),
                Type::Set(Box::new(Type::String)),
                Ok(Value::Set(vec![s("alpha"), s("zeta")])),
            ),
            (
                s("x"),
                Type::List(Box::new(Type::String)),
                Err("list of string required"),
            ),
            (Value::Null, Type::Number, Ok(Value::Null)),
        ];
        for (v, t, want) in cases {
            let got = convert(v, &t).map_err(|e| e.message);
            match (got, want) {
                (Ok(g), Ok(w)) => assert!(g.equals(&w), "{g:?} != {w:?}"),
                (Err(g), Err(w)) => assert_eq!(g, w),
                (g, w) => panic!("{g:?} vs {w:?}"),
            }
        }
    }

    #[test]
    fn equality_does_not_coerce() {
        assert!(!Value::string("3").equals(&Value::number(3)));
        assert!(Value::number(1).equals(&Value::Number(num("1.0"))));
        assert!(Value::Null.equals(&Value::Null));
    }
}
