//! CIDR functions (go-cty-funcs over `apparentlymart/go-cidr`): `cidrhost`,
//! `cidrnetmask`, `cidrsubnet`, `cidrsubnets`. Addresses are handled as integers of
//! 32 or 128 bits.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::support::to_int;
use super::text::{s, str_val};
use super::{arg_err, failed, p, sig, sig_var, Body, FnError, Signature, N, S};
use crate::value::Value;

pub(crate) fn lookup(name: &str) -> Option<(Signature, Body)> {
    Some(match name {
        "cidrhost" => (sig(vec![p("prefix", S), p("hostnum", N)]), cidrhost),
        "cidrnetmask" => (sig(vec![p("prefix", S)]), cidrnetmask),
        "cidrsubnet" => (
            sig(vec![p("prefix", S), p("newbits", N), p("netnum", N)]),
            cidrsubnet,
        ),
        "cidrsubnets" => (sig_var(vec![p("prefix", S)], p("newbits", N)), cidrsubnets),
        _ => return None,
    })
}

/// A network: its base address as an integer, the address width and prefix length.
#[derive(Clone, Copy)]
struct Net {
    addr: u128,
    bits: u32,
    len: u32,
}

impl Net {
    fn mask(&self) -> u128 {
        if self.len == 0 {
            0
        } else {
            let all = if self.bits == 32 {
                u32::MAX as u128
            } else {
                u128::MAX
            };
            all & !all.checked_shr(self.len).unwrap_or(0)
        }
    }

    fn ip_text(&self, addr: u128) -> String {
        if self.bits == 32 {
            Ipv4Addr::from(addr as u32).to_string()
        } else {
            Ipv6Addr::from(addr).to_string()
        }
    }

    fn text(&self) -> String {
        format!("{}/{}", self.ip_text(self.addr), self.len)
    }

    fn contains(&self, addr: u128) -> bool {
        addr & self.mask() == self.addr
    }
}

/// Go's `net.ParseCIDR`, masked to the network address.
fn parse_cidr(text: &str) -> Result<Net, String> {
    let bad = || format!("invalid CIDR address: {text}");
    let (ip, len) = text.split_once('/').ok_or_else(bad)?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let (addr, bits) = match ip {
        IpAddr::V4(a) => (u32::from(a) as u128, 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    };
    let len: u32 = len.parse().map_err(|_| bad())?;
    if len > bits {
        return Err(bad());
    }
    let mut net = Net { addr, bits, len };
    net.addr &= net.mask();
    Ok(net)
}

fn int_arg(a: &[Value], i: usize) -> Result<i64, String> {
    to_int(a[i].as_number().expect("number"))
}

fn cidrhost(a: Vec<Value>) -> Result<Value, FnError> {
    let num = int_arg(&a, 1).map_err(failed)?;
    let net = parse_cidr(s(&a, 0)).map_err(|e| failed(format!("invalid CIDR expression: {e}")))?;
    let host_len = net.bits - net.len;
    let max: u128 = if host_len >= 128 {
        u128::MAX
    } else {
        (1u128 << host_len) - 1
    };
    let host = if num < 0 {
        let back = (-(num as i128) - 1) as u128;
        if back > max {
            return Err(failed(format!(
                "prefix of {} does not accommodate a host numbered {num}",
                net.len
            )));
        }
        max - back
    } else {
        if num as u128 > max {
            return Err(failed(format!(
                "prefix of {} does not accommodate a host numbered {num}",
                net.len
            )));
        }
        num as u128
    };
    str_val(net.ip_text(net.addr | host))
}

fn cidrnetmask(a: Vec<Value>) -> Result<Value, FnError> {
    let net = parse_cidr(s(&a, 0)).map_err(|e| failed(format!("invalid CIDR expression: {e}")))?;
    str_val(net.ip_text(net.mask()))
}

/// go-cidr's `Subnet`.
fn subnet(net: Net, newbits: i64, num: i64) -> Result<Net, String> {
    if newbits < 0 {
        return Err(format!("prefix extension of {newbits} is invalid"));
    }
    let new_len = net.len as i64 + newbits;
    if new_len > net.bits as i64 {
        return Err(format!(
            "insufficient address space to extend prefix of {} by {newbits}",
            net.len
        ));
    }
    let max: u128 = if newbits >= 64 {
        u64::MAX as u128
    } else {
        (1u128 << newbits) - 1
    };
    if num < 0 || num as u128 > max {
        return Err(format!(
            "prefix extension of {newbits} does not accommodate a subnet numbered {num}"
        ));
    }
    let shift = net.bits as i64 - new_len;
    let addr = net.addr | (num as u128).checked_shl(shift as u32).unwrap_or(0);
    Ok(Net {
        addr,
        bits: net.bits,
        len: new_len as u32,
    })
}

fn cidrsubnet(a: Vec<Value>) -> Result<Value, FnError> {
    let newbits = int_arg(&a, 1).map_err(failed)?;
    let num = int_arg(&a, 2).map_err(failed)?;
    let net = parse_cidr(s(&a, 0)).map_err(|e| failed(format!("invalid CIDR expression: {e}")))?;
    if newbits > 32 {
        return Err(failed("may not extend prefix by more than 32 bits"));
    }
    let sub = subnet(net, newbits, num).map_err(failed)?;
    str_val(sub.text())
}

/// Consecutive subnets of the given extra lengths, packed in order.
fn cidrsubnets(a: Vec<Value>) -> Result<Value, FnError> {
    let net = parse_cidr(s(&a, 0))
        .map_err(|e| arg_err(0, "prefix", format!("invalid CIDR expression: {e}")))?;
    let lens = &a[1..];
    if lens.is_empty() {
        return Ok(Value::List(Vec::new()));
    }
    let first = int_arg(&a, 1).map_err(|e| arg_err(1, "newbits", e))?;
    // `current` starts as the subnet just before the first one of that length.
    let first_len = (net.len as i64 + first).clamp(0, net.bits as i64) as u32;
    // 2^(bits-len) addresses; 0 stands for 2^128.
    let size = |len: u32| -> u128 { 1u128.checked_shl(net.bits - len).unwrap_or(0) };
    let limit = if net.bits == 32 {
        u32::MAX as u128
    } else {
        u128::MAX
    };
    let prev = Net {
        addr: net.addr.wrapping_sub(1) & limit,
        bits: net.bits,
        len: first_len,
    };
    let mut current = Net {
        addr: prev.addr & prev.mask(),
        ..prev
    };
    let mut out = Vec::new();
    for i in 0..lens.len() {
        let length = int_arg(&a, i + 1).map_err(|e| arg_err(i + 1, "newbits", e))?;
        if length < 1 {
            return Err(arg_err(
                i + 1,
                "newbits",
                "must extend prefix by at least one bit",
            ));
        }
        if length > 32 {
            return Err(arg_err(
                i + 1,
                "newbits",
                "may not extend prefix by more than 32 bits",
            ));
        }
        let length = length + net.len as i64;
        if length > net.bits as i64 {
            let protocol = if net.bits == 32 { "IPv4" } else { "IPv6" };
            return Err(arg_err(
                i + 1,
                "newbits",
                format!("would extend prefix to {length} bits, which is too long for an {protocol} address"),
            ));
        }
        let length = length as u32;
        // go-cidr's NextSubnet: the subnet of `length` right after the end of `current`.
        let cur_size = size(current.len);
        let last = current.addr.wrapping_add(cur_size).wrapping_sub(1);
        let new_size = size(length);
        let next_mask = !new_size.wrapping_sub(1);
        let start = (last & next_mask).wrapping_add(new_size);
        let rollover = start > limit || start < (last & next_mask);
        let next = Net {
            addr: start & limit,
            bits: net.bits,
            len: length,
        };
        if rollover || !net.contains(next.addr) {
            return Err(arg_err(
                i + 1,
                "newbits",
                format!(
                    "not enough remaining address space for a subnet with a prefix of {length} bits after {}",
                    current.text()
                ),
            ));
        }
        current = next;
        out.push(Value::String(current.text()));
    }
    Ok(Value::List(out))
}
