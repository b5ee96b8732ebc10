//! `format` and `formatlist`: go-cty's printf dialect. The scanner accepts what cty's
//! ragel machine accepts (`%[flags][[n]][width][.prec]verb`, `%%`); strings pad by
//! grapheme cluster, integers print like Go's `big.Int` formatter and floats like
//! `big.Float`'s, whose rounding is that of the 512-bit binary value cty holds.

use bigdecimal::num_bigint::{BigUint, Sign};
use bigdecimal::{BigDecimal, Zero};

use super::support::grapheme_len;
use super::text::{go_quote, go_quote_rune, json_text, s};
use super::{arg_err, failed, p, p_null, sig_var, Body, FnError, Signature, ANY, S};
use crate::print::write_str;
use crate::value::{convert, Number, Type, Value};
use unicode_segmentation::UnicodeSegmentation;

pub(crate) fn lookup(name: &str) -> Option<(Signature, Body)> {
    Some(match name {
        "format" => (sig_var(vec![p("format", S)], p_null("args", ANY)), format),
        "formatlist" => (
            sig_var(vec![p("format", S)], p_null("args", ANY)),
            formatlist,
        ),
        _ => return None,
    })
}

/// Widths and precisions beyond this are refused rather than printed.
const MAX_WIDTH: usize = 1 << 20;

/// One `%...` sequence.
#[derive(Default, Clone)]
struct Verb {
    raw: String,
    offset: usize,
    arg_num: usize,
    mode: char,
    zero: bool,
    sharp: bool,
    plus: bool,
    minus: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn format(a: Vec<Value>) -> Result<Value, FnError> {
    format_str(s(&a, 0), &a[1..]).map(Value::String)
}

/// Formats `fmt` with `args`. The error is go-cty's: an argument error for unused
/// arguments (index counted in the call, after the format string), otherwise a failure.
fn format_str(fmt: &str, args: &[Value]) -> Result<String, FnError> {
    let bytes = fmt.as_bytes();
    let mut buf = String::new();
    let mut next_arg = 1usize;
    let mut highest = 0usize;
    let mut i = 0usize;
    let unrecognized = |at: usize| {
        let c = fmt[at..].chars().next().unwrap_or('\u{fffd}');
        failed(format!(
            "unrecognized format character {} at offset {at}",
            go_quote_rune(c)
        ))
    };
    let eof = || {
        failed(format!(
            "invalid format string starting at offset {}",
            fmt.len()
        ))
    };
    while i < bytes.len() {
        if bytes[i] != b'%' {
            let c = fmt[i..].chars().next().unwrap_or_default();
            buf.push(c);
            i += c.len_utf8();
            continue;
        }
        if bytes.get(i + 1) == Some(&b'%') {
            buf.push('%');
            i += 2;
            continue;
        }
        let start = i;
        i += 1;
        let mut v = Verb {
            arg_num: next_arg,
            offset: start,
            ..Verb::default()
        };
        while let Some(&c) = bytes.get(i) {
            match c {
                b'0' => v.zero = true,
                b'#' => v.sharp = true,
                b'-' => v.minus = true,
                b'+' => v.plus = true,
                b' ' => v.space = true,
                _ => break,
            }
            i += 1;
        }
        let read_num = |i: &mut usize| {
            let mut n = 0usize;
            while let Some(d @ b'0'..=b'9') = bytes.get(*i) {
                n = n.saturating_mul(10).saturating_add((d - b'0') as usize);
                *i += 1;
            }
            n
        };
        let read_index = |i: &mut usize, v: &mut Verb| -> Result<(), FnError> {
            *i += 1;
            match bytes.get(*i) {
                Some(b'1'..=b'9') => v.arg_num = read_num(i),
                Some(_) => return Err(unrecognized(*i)),
                None => return Err(eof()),
            }
            match bytes.get(*i) {
                Some(b']') => {
                    *i += 1;
                    Ok(())
                }
                Some(_) => Err(unrecognized(*i)),
                None => Err(eof()),
            }
        };
        if bytes.get(i) == Some(&b'[') {
            read_index(&mut i, &mut v)?;
        }
        if let Some(b'1'..=b'9') = bytes.get(i) {
            v.width = Some(read_num(&mut i));
            if bytes.get(i) == Some(&b'[') {
                read_index(&mut i, &mut v)?;
            }
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            v.prec = Some(read_num(&mut i));
        }
        match bytes.get(i) {
            Some(c) if c.is_ascii_alphabetic() => {
                v.mode = *c as char;
                i += 1;
            }
            Some(_) => return Err(unrecognized(i)),
            None => return Err(eof()),
        }
        v.raw = fmt[start..i].to_string();
        if v.width.max(v.prec).unwrap_or(0) > MAX_WIDTH {
            return Err(failed(format!(
                "width or precision too large in {} at offset {start}",
                go_quote(&v.raw)
            )));
        }
        highest = highest.max(v.arg_num);
        append_verb(&v, &mut buf, args)?;
        next_arg = v.arg_num + 1;
    }
    if highest < args.len() {
        let first_bad = highest + 1;
        let msg = if highest == 0 {
            "too many arguments; no verbs in format string".to_string()
        } else {
            format!("too many arguments; only {highest} used by format string")
        };
        return Err(arg_err(first_bad, "args", msg));
    }
    Ok(buf)
}

fn append_verb(v: &Verb, buf: &mut String, args: &[Value]) -> Result<(), FnError> {
    let raw = go_quote(&v.raw);
    if v.arg_num > args.len() {
        return Err(failed(format!(
            "not enough arguments for {raw} at {}: need index {} but have {} total",
            v.offset,
            v.arg_num,
            args.len()
        )));
    }
    let arg = &args[v.arg_num - 1];
    if v.mode != 'v' && arg.is_null() {
        return Err(failed(format!(
            "unsupported value for {raw} at {}: null value cannot be formatted",
            v.offset
        )));
    }
    let unsupported = |msg: String| {
        failed(format!(
            "unsupported value for {raw} at {}: {msg}",
            v.offset
        ))
    };
    match v.mode {
        'v' => {
            let text = match arg {
                Value::String(s) if !v.sharp => s.clone(),
                Value::Number(n) if !v.sharp => float_text(n, 'g', None),
                other => json_text(other).unwrap_or_default(),
            };
            buf.push_str(&pad_width(v, text));
        }
        't' => {
            let b = convert(arg.clone(), &Type::Bool).map_err(|e| unsupported(e.message))?;
            buf.push_str(if b.as_bool() == Some(true) {
                "true"
            } else {
                "false"
            });
        }
        'b' | 'd' | 'o' | 'x' | 'X' | 'e' | 'E' | 'f' | 'g' | 'G' => {
            let n = convert(arg.clone(), &Type::Number).map_err(|e| unsupported(e.message))?;
            let n = n.as_number().expect("number");
            if matches!(v.mode, 'b' | 'd' | 'o' | 'x' | 'X') {
                if !n.is_integer() {
                    return Err(unsupported("an integer is required".into()));
                }
                buf.push_str(&format_int(v, n));
            } else {
                let (int, scale) = n.as_decimal().as_bigint_and_exponent();
                let exp10 = int.magnitude().to_string().len() as i64 - scale;
                if matches!(v.mode, 'f') && exp10 > MAX_WIDTH as i64 {
                    return Err(unsupported("number too large to format".into()));
                }
                buf.push_str(&format_float(v, n));
            }
        }
        's' | 'q' => {
            let sv = convert(arg.clone(), &Type::String).map_err(|e| unsupported(e.message))?;
            let mut text = sv.as_str().unwrap_or_default().to_string();
            if let Some(prec) = v.prec.filter(|p| *p > 0) {
                text = text.graphemes(true).take(prec).collect();
            }
            if v.mode == 'q' {
                let mut q = String::new();
                write_str(&mut q, &text);
                text = q;
            }
            buf.push_str(&pad_width(v, text));
        }
        m => {
            return Err(failed(format!(
                "unsupported format verb {} in {raw} at offset {}",
                go_quote_rune(m),
                v.offset
            )))
        }
    }
    Ok(())
}

/// cty's own padding (strings, `%v`): width in grapheme clusters, `0` flag pads with
/// zeros, `-` pads on the right (with the same pad character).
fn pad_width(v: &Verb, text: String) -> String {
    let Some(width) = v.width else { return text };
    let len = grapheme_len(&text);
    if len >= width {
        return text;
    }
    let pads = (if v.zero { "0" } else { " " }).repeat(width - len);
    if v.minus {
        text + &pads
    } else {
        pads + &text
    }
}

/// Go's `big.Int` `Format`: sign, base prefix with `#`, precision as minimum digits,
/// width padded with spaces (left, or right with `-`) or zeros.
fn format_int(v: &Verb, n: &Number) -> String {
    let (bi, _) = n.as_decimal().with_scale(0).into_bigint_and_exponent();
    let neg = bi.sign() == Sign::Minus;
    let mag: BigUint = bi.magnitude().clone();
    let mut digits = match v.mode {
        'b' => mag.to_str_radix(2),
        'o' => mag.to_str_radix(8),
        'x' => mag.to_str_radix(16),
        'X' => mag.to_str_radix(16).to_uppercase(),
        _ => mag.to_str_radix(10),
    };
    let sign = if neg {
        "-"
    } else if v.plus {
        "+"
    } else if v.space {
        " "
    } else {
        ""
    };
    let prefix = match (v.sharp, v.mode) {
        (true, 'b') => "0b",
        (true, 'o') => "0",
        (true, 'x') => "0x",
        (true, 'X') => "0X",
        _ => "",
    };
    let mut zeros = 0usize;
    if let Some(prec) = v.prec {
        if digits.len() < prec {
            zeros = prec - digits.len();
        } else if digits == "0" && prec == 0 {
            digits.clear();
        }
    }
    let (mut left, mut right) = (0usize, 0usize);
    let length = sign.len() + prefix.len() + zeros + digits.len();
    if let Some(width) = v.width.filter(|w| *w > length) {
        let d = width - length;
        if v.minus {
            right = d;
        } else if v.zero && v.prec.is_none() {
            zeros = d;
        } else {
            left = d;
        }
    }
    format!(
        "{}{sign}{prefix}{}{digits}{}",
        " ".repeat(left),
        "0".repeat(zeros),
        " ".repeat(right)
    )
}

/// Go's `big.Float` `Format` for `%e %E %f %g %G`: sign and padding around `float_text`.
fn format_float(v: &Verb, n: &Number) -> String {
    let mode = v.mode;
    let prec = match mode {
        'g' | 'G' => v.prec,
        _ => Some(v.prec.unwrap_or(6)),
    };
    let text = float_text(&Number::from_decimal(n.as_decimal().abs()), mode, prec);
    let sign = if n.is_negative() {
        "-"
    } else if v.plus {
        "+"
    } else if v.space {
        " "
    } else {
        ""
    };
    let pad = v
        .width
        .map_or(0, |w| w.saturating_sub(sign.len() + text.len()));
    if v.zero && !v.minus {
        format!("{sign}{}{text}", "0".repeat(pad))
    } else if v.minus {
        format!("{sign}{text}{}", " ".repeat(pad))
    } else {
        format!("{}{sign}{text}", " ".repeat(pad))
    }
}

/// A decimal `0.digits × 10^exp` (Go's `big.decimal`), digits without trailing zeros.
#[derive(Clone, Debug)]
struct Dec {
    digits: Vec<u8>,
    exp: i64,
    /// The exact value, to settle ties the way the 512-bit binary value would.
    value: BigDecimal,
}

impl Dec {
    fn new(value: &BigDecimal) -> Dec {
        let value = value.abs().normalized();
        if value.is_zero() {
            return Dec {
                digits: Vec::new(),
                exp: 0,
                value,
            };
        }
        let (int, scale) = value.as_bigint_and_exponent();
        let digits = int.magnitude().to_string().into_bytes();
        let exp = digits.len() as i64 - scale;
        let mut d = Dec { digits, exp, value };
        d.trim();
        d
    }

    fn trim(&mut self) {
        while self.digits.last() == Some(&b'0') {
            self.digits.pop();
        }
        if self.digits.is_empty() {
            self.exp = 0;
        }
    }

    fn at(&self, i: i64) -> u8 {
        if i < 0 {
            return b'0';
        }
        self.digits.get(i as usize).copied().unwrap_or(b'0')
    }

    /// Rounds to `n` digits, to nearest; ties go the way the binary value lies, and
    /// to even when the value is exactly binary.
    fn round(&mut self, n: i64) {
        if n < 0 || n as usize >= self.digits.len() {
            return;
        }
        let n = n as usize;
        let up = match self.digits[n] {
            b'5' if n + 1 == self.digits.len() => match binary_above(&self.value) {
                Some(above) => above,
                None => n > 0 && (self.digits[n - 1] - b'0') % 2 == 1,
            },
            d => d >= b'5',
        };
        if up {
            self.round_up(n)
        } else {
            self.digits.truncate(n);
            self.trim();
        }
    }

    fn round_up(&mut self, n: usize) {
        let mut k = n;
        while k > 0 && self.digits[k - 1] >= b'9' {
            k -= 1;
        }
        if k == 0 {
            self.digits = vec![b'1'];
            self.exp += 1;
            return;
        }
        self.digits[k - 1] += 1;
        self.digits.truncate(k);
        self.trim();
    }
}

/// For a decimal that is not exactly binary: whether its 512-bit binary rounding (what
/// cty holds) lies above it. `None` when the decimal is exactly binary.
fn binary_above(v: &BigDecimal) -> Option<bool> {
    let (m, scale) = v.as_bigint_and_exponent();
    let m = m.magnitude().clone();
    if scale <= 0 || m.is_zero() || scale > 20_000 {
        return None;
    }
    let five_s = BigUint::from(5u32).pow(scale as u32);
    if (&m % &five_s).is_zero() {
        return None;
    }
    let ten_s = BigUint::from(10u32).pow(scale as u32);
    // Find k with 2^511 <= m·2^k / 10^s < 2^512, then round that quotient to nearest.
    let mut k: i64 = 512 - (m.bits() as i64 - ten_s.bits() as i64);
    let quot = |k: i64| -> (BigUint, BigUint, BigUint) {
        let (num, den) = if k >= 0 {
            (&m << (k as u64), ten_s.clone())
        } else {
            (m.clone(), &ten_s << ((-k) as u64))
        };
        (&num / &den, num, den)
    };
    let (mut q, mut num, mut den) = quot(k);
    while q.bits() > 512 {
        k -= 1;
        (q, num, den) = quot(k);
    }
    while q.bits() < 512 {
        k += 1;
        (q, num, den) = quot(k);
    }
    let rem = &num - &q * &den;
    // Not exactly binary, so the remainder is never zero and never exactly half.
    let rounded_up = (rem << 1u32) > den;
    Some(rounded_up)
}

/// `big.Float.Append` of a non-negative value for `e`, `f`, `g` (and upper-case forms);
/// `prec` `None` means shortest.
fn float_text(n: &Number, mode: char, prec: Option<usize>) -> String {
    let neg = n.is_negative();
    let mut d = Dec::new(n.as_decimal());
    let lower = mode.to_ascii_lowercase();
    let shortest = prec.is_none();
    let mut prec = prec.map_or(0, |p| p as i64);
    if shortest {
        prec = match lower {
            'e' => d.digits.len() as i64 - 1,
            'f' => (d.digits.len() as i64 - d.exp).max(0),
            _ => d.digits.len() as i64,
        };
    } else {
        match lower {
            'e' => d.round(1 + prec),
            'f' => d.round(d.exp + prec),
            _ => {
                if prec == 0 {
                    prec = 1;
                }
                d.round(prec);
            }
        }
    }
    let upper = mode.is_ascii_uppercase();
    let body = match lower {
        'e' => fmt_e(&d, prec, upper),
        'f' => fmt_f(&d, prec),
        _ => {
            let mut eprec = prec;
            if eprec > d.digits.len() as i64 && d.digits.len() as i64 >= d.exp {
                eprec = d.digits.len() as i64;
            }
            if shortest {
                eprec = 6;
            }
            let exp = d.exp - 1;
            if exp < -4 || exp >= eprec {
                let p = prec.min(d.digits.len() as i64);
                fmt_e(&d, p - 1, upper)
            } else {
                let p = if prec > d.exp {
                    d.digits.len() as i64
                } else {
                    prec
                };
                fmt_f(&d, (p - d.exp).max(0))
            }
        }
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

fn fmt_e(d: &Dec, prec: i64, upper: bool) -> String {
    let mut out = String::new();
    out.push(d.digits.first().map_or('0', |c| *c as char));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(d.at(i) as char);
        }
    }
    out.push(if upper { 'E' } else { 'e' });
    let exp = if d.digits.is_empty() { 0 } else { d.exp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    out.push_str(&format!("{:02}", exp.abs()));
    out
}

fn fmt_f(d: &Dec, prec: i64) -> String {
    let mut out = String::new();
    if d.exp > 0 {
        for i in 0..d.exp {
            out.push(d.at(i) as char);
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec {
            out.push(d.at(d.exp + i) as char);
        }
    }
    out
}

/// Like `format`, once per element of the list arguments (which must agree in length);
/// other arguments repeat.
fn formatlist(a: Vec<Value>) -> Result<Value, FnError> {
    let fmt = s(&a, 0).to_string();
    let args = &a[1..];
    if args.is_empty() {
        return Ok(Value::List(vec![Value::String(format_str(&fmt, args)?)]));
    }
    let mut iter_len: Option<(usize, usize)> = None;
    for (i, arg) in args.iter().enumerate() {
        if let Some(items) = arg.as_seq() {
            match iter_len {
                None => iter_len = Some((items.len(), i)),
                Some((len, chooser)) if len != items.len() => {
                    return Err(arg_err(
                        i + 1,
                        "args",
                        format!(
                            "argument {} has length {}, which is inconsistent with argument {} of length {len}",
                            i + 1,
                            items.len(),
                            chooser + 1
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
    }
    let count = iter_len.map_or(1, |(len, _)| len);
    let mut out = Vec::with_capacity(count);
    for k in 0..count {
        let row: Vec<Value> = args
            .iter()
            .map(|arg| match arg.as_seq() {
                Some(items) => items[k].clone(),
                None => arg.clone(),
            })
            .collect();
        let text = format_str(&fmt, &row).map_err(|e| {
            let msg = match e {
                FnError::Arg { message, .. } | FnError::Failed { message } => message,
                other => format!("{other:?}"),
            };
            failed(format!("error on format iteration {k}: {msg}"))
        })?;
        out.push(Value::String(text));
    }
    Ok(Value::List(out))
}
