//! Number, comparison and logic functions. Arithmetic is exact (decimal); the functions
//! go-cty computes in float64 (`log`, `pow`, `ceil`, `floor`) do so here too, and their
//! results print the way Go's `big.Float` prints a 53-bit float (shortest digits over a
//! symmetric rounding interval, so `pow(2, 64)` is `18446744073709550000`).

use bigdecimal::num_bigint::{BigInt, BigUint, Sign};
use bigdecimal::{BigDecimal, RoundingMode};

use super::support::{friendly, to_int};
use super::{arg_err, failed, p, p_null, sig, sig_var, Body, FnError, Signature, ANY, B, N};
use crate::value::{Number, Value};

pub(crate) fn lookup(name: &str) -> Option<(Signature, Body)> {
    let one = || sig(vec![p("num", N)]);
    let two = || sig(vec![p("a", N), p("b", N)]);
    Some(match name {
        "absolute" => (one(), absolute),
        "add" => (two(), add),
        "subtract" => (two(), subtract),
        "multiply" => (two(), multiply),
        "divide" => (two(), divide),
        "modulo" => (two(), modulo),
        "negate" => (one(), negate),
        "int" => (one(), int),
        "ceil" => (one(), ceil),
        "floor" => (one(), floor),
        "signum" => (one(), signum),
        "log" => (sig(vec![p("num", N), p("base", N)]), log),
        "pow" => (sig(vec![p("num", N), p("power", N)]), pow),
        "min" => (sig_var(vec![], p("numbers", N)), min),
        "max" => (sig_var(vec![], p("numbers", N)), max),
        "parseint" => (sig(vec![p("number", ANY), p("base", N)]), parseint),
        "greaterthan" => (two(), |a| cmp(a, |o| o.is_gt())),
        "greaterthanorequalto" => (two(), |a| cmp(a, |o| o.is_ge())),
        "lessthan" => (two(), |a| cmp(a, |o| o.is_lt())),
        "lessthanorequalto" => (two(), |a| cmp(a, |o| o.is_le())),
        "equal" => (sig(vec![p_null("a", ANY), p_null("b", ANY)]), equal),
        "notequal" => (sig(vec![p_null("a", ANY), p_null("b", ANY)]), notequal),
        "and" => (sig(vec![p("a", B), p("b", B)]), and),
        "or" => (sig(vec![p("a", B), p("b", B)]), or),
        "not" => (sig(vec![p("val", B)]), not),
        _ => return None,
    })
}

fn n(a: &[Value], i: usize) -> &Number {
    a[i].as_number().expect("converted to number")
}

fn b(a: &[Value], i: usize) -> bool {
    a[i].as_bool().unwrap_or(false)
}

fn num(x: Number) -> Result<Value, FnError> {
    Ok(Value::Number(x))
}

fn absolute(a: Vec<Value>) -> Result<Value, FnError> {
    let x = n(&a, 0);
    num(if x.is_negative() { x.neg() } else { x.clone() })
}

fn add(a: Vec<Value>) -> Result<Value, FnError> {
    num(n(&a, 0).add(n(&a, 1)))
}

fn subtract(a: Vec<Value>) -> Result<Value, FnError> {
    num(n(&a, 0).sub(n(&a, 1)))
}

fn multiply(a: Vec<Value>) -> Result<Value, FnError> {
    num(n(&a, 0).mul(n(&a, 1)))
}

fn divide(a: Vec<Value>) -> Result<Value, FnError> {
    match n(&a, 0).div(n(&a, 1)) {
        Some(q) => num(q),
        None if n(&a, 0).is_zero() => {
            Err(failed("can't divide zero by zero or infinity by infinity"))
        }
        // cty would give an infinity, which bake cannot print either.
        None => Err(failed("division by zero")),
    }
}

/// Truncated modulo: the sign of the dividend (`-17 % 5 = -2`).
fn modulo(a: Vec<Value>) -> Result<Value, FnError> {
    n(&a, 0)
        .rem(n(&a, 1))
        .map(Value::Number)
        .ok_or_else(|| failed("can't use modulo with zero and infinity"))
}

fn negate(a: Vec<Value>) -> Result<Value, FnError> {
    num(n(&a, 0).neg())
}

/// Drops the fraction, rounding toward zero.
fn int(a: Vec<Value>) -> Result<Value, FnError> {
    let d = n(&a, 0)
        .as_decimal()
        .with_scale_round(0, RoundingMode::Down);
    num(Number::from_decimal(d))
}

/// go-cty goes through float64 and back to an int64.
fn int_from_f64(f: f64) -> Result<Value, FnError> {
    if !f.is_finite() {
        return Err(failed("value must be a finite number"));
    }
    num(Number::from_i64(f as i64))
}

fn ceil(a: Vec<Value>) -> Result<Value, FnError> {
    int_from_f64(n(&a, 0).to_f64().ceil())
}

fn floor(a: Vec<Value>) -> Result<Value, FnError> {
    int_from_f64(n(&a, 0).to_f64().floor())
}

fn signum(a: Vec<Value>) -> Result<Value, FnError> {
    let i = to_int(n(&a, 0)).map_err(failed)?;
    num(Number::from_i64(i.signum()))
}

fn log(a: Vec<Value>) -> Result<Value, FnError> {
    let (x, base) = (n(&a, 0).to_f64(), n(&a, 1).to_f64());
    float_value(x.ln() / base.ln())
}

fn pow(a: Vec<Value>) -> Result<Value, FnError> {
    float_value(go_pow(n(&a, 0).to_f64(), n(&a, 1).to_f64()))
}

fn min(a: Vec<Value>) -> Result<Value, FnError> {
    let first = a
        .first()
        .ok_or_else(|| failed("must pass at least one number"))?;
    let mut best = first.as_number().expect("number");
    for v in &a[1..] {
        let x = v.as_number().expect("number");
        if x < best {
            best = x;
        }
    }
    num(best.clone())
}

fn max(a: Vec<Value>) -> Result<Value, FnError> {
    let first = a
        .first()
        .ok_or_else(|| failed("must pass at least one number"))?;
    let mut best = first.as_number().expect("number");
    for v in &a[1..] {
        let x = v.as_number().expect("number");
        if x > best {
            best = x;
        }
    }
    num(best.clone())
}

fn cmp(a: Vec<Value>, f: fn(std::cmp::Ordering) -> bool) -> Result<Value, FnError> {
    Ok(Value::Bool(f(n(&a, 0).cmp(n(&a, 1)))))
}

fn equal(a: Vec<Value>) -> Result<Value, FnError> {
    Ok(Value::Bool(a[0].equals(&a[1])))
}

fn notequal(a: Vec<Value>) -> Result<Value, FnError> {
    Ok(Value::Bool(!a[0].equals(&a[1])))
}

fn and(a: Vec<Value>) -> Result<Value, FnError> {
    Ok(Value::Bool(b(&a, 0) && b(&a, 1)))
}

fn or(a: Vec<Value>) -> Result<Value, FnError> {
    Ok(Value::Bool(b(&a, 0) || b(&a, 1)))
}

fn not(a: Vec<Value>) -> Result<Value, FnError> {
    Ok(Value::Bool(!b(&a, 0)))
}

/// `parseint(string, base)`, Go's `big.Int.SetString` rules: an optional sign, digits
/// `0-9a-z` (case-insensitive up to base 36), then `A-Z` for bases 37 to 62.
fn parseint(a: Vec<Value>) -> Result<Value, FnError> {
    let Some(text) = a[0].as_str() else {
        return Err(arg_err(
            0,
            "number",
            format!("first argument must be a string, not {}", friendly(&a[0])),
        ));
    };
    let base = to_int(n(&a, 1)).map_err(|e| arg_err(1, "base", e))?;
    if !(2..=62).contains(&base) {
        return Err(arg_err(
            1,
            "base",
            "base must be a whole number between 2 and 62 inclusive",
        ));
    }
    let bad = || {
        arg_err(
            0,
            "number",
            format!(
                "cannot parse {} as a base {base} integer",
                super::text::go_quote(text)
            ),
        )
    };
    let (neg, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        return Err(bad());
    }
    let mut acc = BigUint::from(0u32);
    for c in digits.chars() {
        let d = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'a'..='z' => c as u32 - 'a' as u32 + 10,
            'A'..='Z' if base <= 36 => c as u32 - 'A' as u32 + 10,
            'A'..='Z' => c as u32 - 'A' as u32 + 36,
            _ => return Err(bad()),
        };
        if d as i64 >= base {
            return Err(bad());
        }
        acc = acc * BigUint::from(base as u32) + BigUint::from(d);
    }
    let sign = if neg { Sign::Minus } else { Sign::Plus };
    num(Number::from_decimal(BigDecimal::from(
        BigInt::from_biguint(sign, acc),
    )))
}

/// A float64 result as a number; NaN and infinities cannot be represented in bake output.
pub(crate) fn float_value(f: f64) -> Result<Value, FnError> {
    go_float_number(f).map(Value::Number).ok_or_else(|| {
        failed(if f.is_nan() {
            "result is not a number"
        } else {
            "result is infinite"
        })
    })
}

/// Go's `big.Float` shortest decimal for a value of 53-bit precision (`Text('f', -1)`).
pub(crate) fn go_float_number(f: f64) -> Option<Number> {
    if !f.is_finite() {
        return None;
    }
    if f == 0.0 {
        return Some(Number::from_i64(0));
    }
    let bits = f.abs().to_bits();
    let raw_exp = ((bits >> 52) & 0x7ff) as i64;
    let frac = bits & ((1u64 << 52) - 1);
    let (mut m, mut e) = if raw_exp == 0 {
        (frac, -1074)
    } else {
        (frac | (1 << 52), raw_exp - 1075)
    };
    while m < (1 << 52) {
        m <<= 1;
        e -= 1;
    }
    // mant has prec+1 bits; its lowest bit is half an ulp.
    let mant = BigUint::from(m) << 1u32;
    let exp = e - 1;
    let inclusive = m % 2 == 0;
    let mut d = Decimal::from_binary(&mant, exp);
    let lower = Decimal::from_binary(&(mant.clone() - 1u32), exp);
    let upper = Decimal::from_binary(&(mant + 1u32), exp);
    d.round_shortest(&lower, &upper, inclusive);
    let text = format!("{}0.{}e{}", if f < 0.0 { "-" } else { "" }, d.digits, d.exp);
    Number::parse(&text)
}

/// A decimal `0.digits × 10^exp`, digits without trailing zeros (Go's `big.decimal`).
struct Decimal {
    digits: String,
    exp: i64,
}

impl Decimal {
    /// The exact decimal of `mant × 2^exp`.
    fn from_binary(mant: &BigUint, exp: i64) -> Decimal {
        let (digits, exp10) = if exp >= 0 {
            let v = mant << (exp as u64);
            let s = v.to_string();
            let len = s.len() as i64;
            (s, len)
        } else {
            let k = (-exp) as u32;
            let v = mant * BigUint::from(5u32).pow(k);
            let s = v.to_string();
            let len = s.len() as i64;
            (s, len - k as i64)
        };
        let mut d = Decimal { digits, exp: exp10 };
        d.trim();
        d
    }

    fn trim(&mut self) {
        while self.digits.ends_with('0') {
            self.digits.pop();
        }
        if self.digits.is_empty() {
            self.exp = 0;
        }
    }

    fn at(&self, i: usize) -> u8 {
        self.digits.as_bytes().get(i).copied().unwrap_or(b'0')
    }

    fn round_down(&mut self, n: usize) {
        self.digits.truncate(n);
        self.trim();
    }

    fn round_up(&mut self, n: usize) {
        let mut bytes: Vec<u8> = self.digits.as_bytes()[..n.min(self.digits.len())].to_vec();
        while let Some(last) = bytes.last_mut() {
            if *last < b'9' {
                *last += 1;
                self.digits = String::from_utf8(bytes).unwrap_or_default();
                self.trim();
                return;
            }
            bytes.pop();
        }
        self.digits = "1".into();
        self.exp += 1;
    }

    fn round(&mut self, n: usize) {
        let b = self.digits.as_bytes();
        if n >= b.len() {
            return;
        }
        let up = if b[n] == b'5' && n + 1 == b.len() {
            n > 0 && (b[n - 1] - b'0') % 2 == 1
        } else {
            b[n] >= b'5'
        };
        if up {
            self.round_up(n)
        } else {
            self.round_down(n)
        }
    }

    /// Go's `roundShortest` from math/big: walk until `self` differs from both bounds.
    fn round_shortest(&mut self, lower: &Decimal, upper: &Decimal, inclusive: bool) {
        for i in 0..self.digits.len() {
            let (l, m, u) = (lower.at(i), self.at(i), upper.at(i));
            let okdown = l != m || inclusive && i + 1 == lower.digits.len();
            let okup = m != u && (inclusive || m + 1 < u || i + 1 < upper.digits.len());
            match (okdown, okup) {
                (true, true) => return self.round(i + 1),
                (true, false) => return self.round_down(i + 1),
                (false, true) => return self.round_up(i + 1),
                _ => {}
            }
        }
    }
}

fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let (mut x, mut e) = (x, 0i32);
    if x.abs() < f64::MIN_POSITIVE {
        x *= (1u64 << 52) as f64;
        e = -52;
    }
    let bits = x.to_bits();
    e += ((bits >> 52) & 0x7ff) as i32 - 1022;
    let bits = (bits & !(0x7ffu64 << 52)) | (1022u64 << 52);
    (f64::from_bits(bits), e)
}

fn ldexp(frac: f64, exp: i32) -> f64 {
    let mut r = frac;
    let mut e = exp;
    while e > 1000 {
        r *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        r *= 2f64.powi(-1000);
        e += 1000;
    }
    r * 2f64.powi(e)
}

/// Go's `math.Pow`, which is not the C library's: integer powers by repeated squaring.
pub(crate) fn go_pow(x: f64, y: f64) -> f64 {
    if y == 0.0 || x == 1.0 {
        return 1.0;
    }
    if y == 1.0 {
        return x;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 || y.is_infinite() || x.is_infinite() {
        return x.powf(y);
    }
    if y == 0.5 {
        return x.sqrt();
    }
    if y == -0.5 {
        return 1.0 / x.sqrt();
    }
    let (mut yi, mut yf) = (y.abs().trunc(), y.abs().fract());
    if yf != 0.0 && x < 0.0 {
        return f64::NAN;
    }
    if yi >= i64::MAX as f64 {
        return x.powf(y);
    }
    let mut a1 = 1.0f64;
    let mut ae = 0i32;
    if yf != 0.0 {
        if yf > 0.5 {
            yf -= 1.0;
            yi += 1.0;
        }
        a1 = (yf * x.ln()).exp();
    }
    let (mut x1, mut xe) = frexp(x);
    let mut i = yi as i64;
    while i != 0 {
        if !(-(1 << 12)..=(1 << 12)).contains(&xe) {
            ae += xe;
            break;
        }
        if i & 1 == 1 {
            a1 *= x1;
            ae += xe;
        }
        x1 *= x1;
        xe <<= 1;
        if x1 < 0.5 {
            x1 += x1;
            xe -= 1;
        }
        i >>= 1;
    }
    if y < 0.0 {
        a1 = 1.0 / a1;
        ae = -ae;
    }
    ldexp(a1, ae)
}
