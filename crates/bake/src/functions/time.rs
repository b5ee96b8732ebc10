//! Date and time: `formatdate` (go-cty's mnemonic format), `timeadd` (Go durations) and
//! buildx's `timestamp()` (the current UTC time, so not reproducible, as in bake).
//! Timestamps are RFC 3339 and keep their own UTC offset.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Timelike, Utc};

use super::text::go_quote;
use super::text::{s, str_val};
use super::{arg_err, failed, p, sig, Body, FnError, Signature, S};
use crate::value::Value;

pub(crate) fn lookup(name: &str) -> Option<(Signature, Body)> {
    Some(match name {
        "formatdate" => (sig(vec![p("format", S), p("time", S)]), formatdate),
        "timeadd" => (sig(vec![p("timestamp", S), p("duration", S)]), timeadd),
        "timestamp" => (sig(vec![]), timestamp),
        _ => return None,
    })
}

fn timestamp(_: Vec<Value>) -> Result<Value, FnError> {
    str_val(rfc3339(&Utc::now().fixed_offset()))
}

/// Go's `time.RFC3339` output: whole seconds, `Z` for a zero offset.
fn rfc3339(t: &DateTime<FixedOffset>) -> String {
    let off = t.offset().local_minus_utc();
    let zone = if off == 0 {
        "Z".to_string()
    } else {
        let sign = if off < 0 { '-' } else { '+' };
        let a = off.abs();
        format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{zone}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

const BAD: &str = "not a valid RFC3339 timestamp";

/// Go's `time.Parse(time.RFC3339, s)` with go-cty's rewording of its errors.
fn parse_timestamp(text: &str) -> Result<DateTime<FixedOffset>, String> {
    let mut rest = text;
    fn num(rest: &mut &str, what: &str, digits: usize) -> Result<u32, String> {
        let ok = rest.len() >= digits && rest.as_bytes()[..digits].iter().all(u8::is_ascii_digit);
        if !ok {
            return Err(if rest.is_empty() {
                format!("{BAD}: end of string before {what}")
            } else {
                format!("{BAD}: cannot use {} as {what}", go_quote(rest))
            });
        }
        let n = rest[..digits].parse().unwrap_or(0);
        *rest = &rest[digits..];
        Ok(n)
    }
    fn lit(rest: &mut &str, sep: &str) -> Result<(), String> {
        if let Some(r) = rest.strip_prefix(sep) {
            *rest = r;
            return Ok(());
        }
        if sep == "T" {
            return Err(format!("{BAD}: missing required time introducer 'T'"));
        }
        Err(if rest.is_empty() {
            format!("{BAD}: end of string where {} is expected", go_quote(sep))
        } else {
            format!(
                "{BAD}: found {} where {} is expected",
                go_quote(rest),
                go_quote(sep)
            )
        })
    }
    let year = num(&mut rest, "year", 4)?;
    lit(&mut rest, "-")?;
    let month = num(&mut rest, "month", 2)?;
    if !(1..=12).contains(&month) {
        return Err(format!("{BAD}: cannot use {} as month", go_quote(rest)));
    }
    lit(&mut rest, "-")?;
    let day = num(&mut rest, "day of month", 2)?;
    lit(&mut rest, "T")?;
    let hour = num(&mut rest, "hour", 2)?;
    if hour > 23 {
        return Err(format!("{BAD}: cannot use {} as hour", go_quote(rest)));
    }
    lit(&mut rest, ":")?;
    let minute = num(&mut rest, "minute", 2)?;
    if minute > 59 {
        return Err(format!("{BAD}: cannot use {} as minute", go_quote(rest)));
    }
    lit(&mut rest, ":")?;
    let second = num(&mut rest, "second", 2)?;
    if second > 59 {
        return Err(format!("{BAD}: cannot use {} as second", go_quote(rest)));
    }
    let mut nanos = 0u32;
    if let Some(r) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(',')) {
        let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return Err(format!(
                "{BAD}: cannot use {} as UTC offset",
                go_quote(rest)
            ));
        }
        let padded = format!("{:0<9}", &digits[..digits.len().min(9)]);
        nanos = padded.parse().unwrap_or(0);
        rest = &r[digits.len()..];
    }
    let offset = if let Some(r) = rest.strip_prefix('Z') {
        rest = r;
        0
    } else {
        let bytes = rest.as_bytes();
        let ok = bytes.len() >= 6
            && matches!(bytes[0], b'+' | b'-')
            && bytes[1..3].iter().all(u8::is_ascii_digit)
            && bytes[3] == b':'
            && bytes[4..6].iter().all(u8::is_ascii_digit);
        if !ok {
            return Err(if rest.is_empty() {
                format!("{BAD}: end of string before UTC offset")
            } else {
                format!("{BAD}: cannot use {} as UTC offset", go_quote(rest))
            });
        }
        let h: i32 = rest[1..3].parse().unwrap_or(0);
        let m: i32 = rest[4..6].parse().unwrap_or(0);
        if h > 23 || m > 59 {
            return Err(format!("{BAD}: UTC offset out of range"));
        }
        let secs = h * 3600 + m * 60;
        rest = &rest[6..];
        if bytes[0] == b'-' {
            -secs
        } else {
            secs
        }
    };
    if !rest.is_empty() {
        return Err(format!("{BAD}: extra text: {}", go_quote(rest)));
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)
        .ok_or_else(|| format!("{BAD}: day out of range"))?;
    let naive = date
        .and_hms_nano_opt(hour, minute, second, nanos)
        .ok_or_else(|| format!("{BAD}: second out of range"))?;
    let tz =
        FixedOffset::east_opt(offset).ok_or_else(|| format!("{BAD}: UTC offset out of range"))?;
    naive
        .and_local_timezone(tz)
        .single()
        .ok_or_else(|| format!("{BAD}: UTC offset out of range"))
}

/// Splits a date format into literal runs, quoted literals and runs of one letter.
fn tokens(fmt: &str) -> Vec<&str> {
    let b = fmt.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i] == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                i += 2;
            } else {
                i += 1;
                loop {
                    match b.get(i) {
                        None => break,
                        Some(b'\'') if b.get(i + 1) == Some(&b'\'') => i += 2,
                        Some(b'\'') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
        } else if b[i].is_ascii_alphabetic() {
            while i < b.len() && b[i] == b[start] {
                i += 1;
            }
        } else {
            while i < b.len() && b[i] != b'\'' && !b[i].is_ascii_alphabetic() {
                i += 1;
            }
        }
        out.push(&fmt[start..i]);
    }
    out
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn offset_text(t: &DateTime<FixedOffset>, colon: bool) -> String {
    let off = t.offset().local_minus_utc();
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.abs();
    let (h, m) = (a / 3600, (a % 3600) / 60);
    if colon {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}")
    }
}

fn formatdate(a: Vec<Value>) -> Result<Value, FnError> {
    let t = parse_timestamp(s(&a, 1)).map_err(|e| arg_err(1, "time", e))?;
    let mut out = String::new();
    let bad = |tok: &str, why: &str| {
        let detail = if why.is_empty() {
            String::new()
        } else {
            format!(": {why}")
        };
        Err(arg_err(
            0,
            "format",
            format!("invalid date format verb {}{detail}", go_quote(tok)),
        ))
    };
    for tok in tokens(s(&a, 0)) {
        let first = tok.as_bytes()[0];
        let n = tok.len();
        match first {
            b'\'' => {
                if n == 1 || !tok.ends_with('\'') {
                    return Err(arg_err(0, "format", "unterminated literal '"));
                }
                if n == 2 {
                    out.push('\'');
                } else {
                    out.push_str(&tok[1..n - 1].replace("''", "'"));
                }
            }
            b'Y' => match n {
                2 => out.push_str(&format!("{:02}", t.year() % 100)),
                4 => out.push_str(&format!("{:04}", t.year())),
                _ => return bad(tok, "year must either be \"YY\" or \"YYYY\""),
            },
            b'M' => match n {
                1 => out.push_str(&t.month().to_string()),
                2 => out.push_str(&format!("{:02}", t.month())),
                3 => out.push_str(&MONTHS[t.month0() as usize][..3]),
                4 => out.push_str(MONTHS[t.month0() as usize]),
                _ => return bad(tok, "month must be \"M\", \"MM\", \"MMM\", or \"MMMM\""),
            },
            b'D' => match n {
                1 => out.push_str(&t.day().to_string()),
                2 => out.push_str(&format!("{:02}", t.day())),
                _ => return bad(tok, "day of month must either be \"D\" or \"DD\""),
            },
            b'E' => {
                let day = DAYS[t.weekday().num_days_from_monday() as usize];
                match n {
                    3 => out.push_str(&day[..3]),
                    4 => out.push_str(day),
                    _ => return bad(tok, "day of week must either be \"EEE\" or \"EEEE\""),
                }
            }
            b'h' => match n {
                1 => out.push_str(&t.hour().to_string()),
                2 => out.push_str(&format!("{:02}", t.hour())),
                _ => return bad(tok, "24-hour must either be \"h\" or \"hh\""),
            },
            b'H' => {
                let h = match t.hour() % 12 {
                    0 => 12,
                    h => h,
                };
                match n {
                    1 => out.push_str(&h.to_string()),
                    2 => out.push_str(&format!("{h:02}")),
                    _ => return bad(tok, "12-hour must either be \"H\" or \"HH\""),
                }
            }
            b'A' | b'a' => {
                if n != 2 {
                    let c = first as char;
                    return bad(tok, &format!("must be \"{c}{c}\""));
                }
                let pm = t.hour() >= 12;
                out.push_str(match (first == b'A', pm) {
                    (true, false) => "AM",
                    (true, true) => "PM",
                    (false, false) => "am",
                    (false, true) => "pm",
                });
            }
            b'm' => match n {
                1 => out.push_str(&t.minute().to_string()),
                2 => out.push_str(&format!("{:02}", t.minute())),
                _ => return bad(tok, "minute must either be \"m\" or \"mm\""),
            },
            b's' => match n {
                1 => out.push_str(&t.second().to_string()),
                2 => out.push_str(&format!("{:02}", t.second())),
                _ => return bad(tok, "second must either be \"s\" or \"ss\""),
            },
            b'Z' => {
                let zero = t.offset().local_minus_utc() == 0;
                match n {
                    1 if zero => out.push('Z'),
                    1 => out.push_str(&offset_text(&t, true)),
                    3 if zero => out.push_str("UTC"),
                    3 | 4 => out.push_str(&offset_text(&t, false)),
                    5 => out.push_str(&offset_text(&t, true)),
                    _ => return bad(tok, "timezone must be Z, ZZZZ, or ZZZZZ"),
                }
            }
            c if c.is_ascii_alphabetic() => return bad(tok, ""),
            _ => out.push_str(tok),
        }
    }
    str_val(out)
}

/// Go's `time.ParseDuration`: `[-+]` then number+unit pairs (`ns us µs ms s m h`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(text));
    let mut rest = text;
    let neg = match rest.as_bytes().first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    if rest == "0" {
        return Ok(Duration::zero());
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &r[..n];
            rest = &r[n..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {}", go_quote(text))),
            u => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(u),
                    go_quote(text)
                ))
            }
        };
        let value: f64 = format!(
            "{}.{}",
            if int_part.is_empty() { "0" } else { int_part },
            frac_part
        )
        .trim_end_matches('.')
        .parse()
        .map_err(|_| invalid())?;
        total += value * scale;
        if total > i64::MAX as f64 {
            return Err(invalid());
        }
    }
    let nanos = total.round() as i64;
    Ok(Duration::nanoseconds(if neg { -nanos } else { nanos }))
}

fn timeadd(a: Vec<Value>) -> Result<Value, FnError> {
    let t = parse_timestamp(s(&a, 0)).map_err(failed)?;
    let d = parse_duration(s(&a, 1)).map_err(failed)?;
    let sum = t
        .checked_add_signed(d)
        .ok_or_else(|| failed("time out of range"))?;
    str_val(rfc3339(&sum))
}
