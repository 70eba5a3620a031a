//! `--lease RES=COUNT:TOTAL` (docs/guide.md: "Leases"): the `FQDN`, `CPU` and `MEMMB` macros, and
//! the integer arithmetic allowed in COUNT and TOTAL.
//!
//! The original switchman ran COUNT and TOTAL through Perl's `eval`, so `r=1:system(...)` ran a
//! command. Here a small recursive-descent parser accepts integers, `+ - * / %`, unary signs,
//! parentheses and `int(...)`, and nothing else.
//!
//! Old and new copies share one prefix, and a semaphore refuses a lease whose TOTAL differs from
//! the others', so where the original got a whole number we aim for the same one:
//!
//! - The spec is split at its first `=` (Getopt::Long's `--lease KEY=VALUE` hash) and then at the
//!   first `:` (`split /:/, $v, 2`).
//! - Macros are replaced in one left-to-right pass, as `s/(CPU|FQDN|MEMMB)/$expand{$1}/g` did, so
//!   a macro's value is never scanned again for macros.
//! - `/` truncates toward zero, which is what the original's `int(a/b)` gave. The original divided
//!   in floating point, so dividing before multiplying can differ: `7/2*2` was 7 there and is 6
//!   here. Write `a*b/c`, or put the `int(...)` where the rounding should happen.
//! - `%` takes the sign of its right operand, as Perl's does: `-7 % 3` is 2.
//! - A number with a leading zero is refused: Perl read `010` as octal 8.
//! - Arithmetic is checked `i64`: overflow and division by zero are errors, not wrap-arounds
//!   (Perl silently went to floating point).
//!
//! Beyond the original, a spec is refused (a usage error that quotes it) when COUNT is 0, since a
//! lease of nothing guards nothing and usually means an `int(...)` rounded down on a small host,
//! and when COUNT exceeds TOTAL, since such a lease could never be granted and the run would wait
//! forever.

use std::fs;

use crate::error::{Error, Result};
use crate::zk::paths::check_component;

/// Deeper than any real spec, and shallow enough that hostile input like 10000 `(` cannot
/// overflow the stack of the recursive parser.
const MAX_DEPTH: usize = 64;

/// Values the macros expand to; tests pass their own.
#[derive(Debug, Clone)]
pub struct Macros {
    pub fqdn: String,
    pub cpu: u64,
    pub memmb: u64,
}

impl Macros {
    /// This host's values. `fqdn` is resolved by the caller, since the lock data needs it too.
    ///
    /// `CPU` is the number of online cores of the host (`getconf _NPROCESSORS_ONLN`), not the
    /// cores this process may use (`available_parallelism` follows the affinity mask and the cgroup
    /// quota). Every run on a host must compute the same TOTAL for `cores_FQDN=1:CPU`, or their
    /// leases conflict: a job started under `taskset` must not shrink the host's TOTAL. `MEMMB` is
    /// `MemTotal` of `/proc/meminfo` in whole MiB.
    ///
    /// This reads `/proc` and `/sys`, so call it once, and only when a `--lease` is given.
    pub fn for_host(fqdn: &str) -> Result<Macros> {
        let meminfo = fs::read_to_string("/proc/meminfo").map_err(|e| {
            Error::Internal(format!(
                "cannot read /proc/meminfo for the MEMMB macro: {e}"
            ))
        })?;
        let mem_kb = mem_total_kb(&meminfo).ok_or_else(|| {
            Error::Internal("no MemTotal in /proc/meminfo for the MEMMB macro".to_string())
        })?;
        Ok(Macros {
            fqdn: fqdn.to_string(),
            cpu: online_cpus()?,
            memmb: mem_kb / 1024,
        })
    }

    /// Replaces every `FQDN`, `CPU` and `MEMMB`, even inside longer words (`FQDN_cpu`), as the
    /// original's `s///g` did. One pass, left to right: a host named `CPU1.example.com` stays so.
    pub fn expand(&self, text: &str) -> String {
        let cpu = self.cpu.to_string();
        let memmb = self.memmb.to_string();
        let macros = [
            ("FQDN", self.fqdn.as_str()),
            ("CPU", &cpu),
            ("MEMMB", &memmb),
        ];
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        'scan: while let Some(c) = rest.chars().next() {
            for (word, value) in macros {
                if let Some(tail) = rest.strip_prefix(word) {
                    out.push_str(value);
                    rest = tail;
                    continue 'scan;
                }
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

/// Reads the kernel's list of online CPUs rather than calling `sysconf(_SC_NPROCESSORS_ONLN)`:
/// glibc reads this same file, but musl counts the affinity mask. The fallback only serves hosts
/// without sysfs, where it is at least the same for every run.
fn online_cpus() -> Result<u64> {
    let listed = fs::read_to_string("/sys/devices/system/cpu/online").ok();
    if let Some(n) = listed.as_deref().and_then(count_cpu_list) {
        return Ok(n);
    }
    std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .map_err(|e| Error::Internal(format!("cannot count CPU cores for the CPU macro: {e}")))
}

/// Counts a kernel CPU list such as `0-3,8,10-11`.
fn count_cpu_list(list: &str) -> Option<u64> {
    let mut count = 0u64;
    for range in list.trim().split(',') {
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        let (first, last): (u64, u64) = (first.parse().ok()?, last.parse().ok()?);
        count = count.checked_add(last.checked_sub(first)?.checked_add(1)?)?;
    }
    Some(count)
}

fn mem_total_kb(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    line.trim().strip_suffix("kB")?.trim().parse().ok()
}

/// One `--lease`, with macros expanded and the amounts checked: `1 <= count <= total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSpec {
    pub resource: String,
    pub count: u64,
    pub total: u64,
}

impl LeaseSpec {
    /// Every failure is a usage error that quotes `spec` and the part of it at fault.
    pub fn parse(spec: &str, macros: &Macros) -> Result<LeaseSpec> {
        let usage = |msg: String| Error::Usage(format!("--lease {spec:?}: {msg}"));
        let (res, amounts) = spec
            .split_once('=')
            .ok_or_else(|| usage("expected RES=COUNT:TOTAL, found no \"=\"".to_string()))?;
        let (count, total) = amounts.split_once(':').ok_or_else(|| {
            usage(format!(
                "expected COUNT:TOTAL after \"=\", found no \":\" in {amounts:?}"
            ))
        })?;
        let resource = macros.expand(res);
        check_component("resource name", &resource).map_err(usage)?;

        let (count, count_shown) = amount("COUNT", count, macros).map_err(usage)?;
        let (total, total_shown) = amount("TOTAL", total, macros).map_err(usage)?;
        let count = u64::try_from(count)
            .map_err(|_| usage(format!("{count_shown} is negative ({count})")))?;
        if count == 0 {
            return Err(usage(format!(
                "{count_shown} is 0, but a lease must take at least one unit"
            )));
        }
        let total = u64::try_from(total)
            .map_err(|_| usage(format!("{total_shown} is negative ({total})")))?;
        if count > total {
            return Err(usage(format!(
                "COUNT {count} is more than TOTAL {total}, so the lease could never be granted"
            )));
        }
        Ok(LeaseSpec {
            resource,
            count,
            total,
        })
    }
}

/// `leases` in the order of the prefix data's `resources` (macros expanded), a global order that
/// keeps two runs from each holding what the other waits for. A resource not listed is a config
/// error naming `listed_in` (the prefix znode, or a file of prefix data); one leased twice is a
/// usage error.
pub fn in_resource_order(
    leases: &[LeaseSpec],
    resources: &[String],
    macros: &Macros,
    listed_in: &str,
) -> Result<Vec<LeaseSpec>> {
    let known: Vec<String> = resources.iter().map(|r| macros.expand(r)).collect();
    let unknown: Vec<&str> = leases
        .iter()
        .filter(|l| !known.contains(&l.resource))
        .map(|l| l.resource.as_str())
        .collect();
    if !unknown.is_empty() {
        return Err(Error::Config(format!(
            "resource {} not listed in \"resources\" of {listed_in} (listed, after macros: {known:?})",
            unknown.join(", "),
        )));
    }
    let mut leases = leases.to_vec();
    leases.sort_by_key(|l| known.iter().position(|k| *k == l.resource));
    if let Some(w) = leases.windows(2).find(|w| w[0].resource == w[1].resource) {
        return Err(Error::Usage(format!(
            "--lease names resource {:?} twice",
            w[0].resource
        )));
    }
    Ok(leases)
}

/// Evaluates COUNT or TOTAL, and names it for messages: as given, and after the macros when
/// they changed it, since `int(MEMMB/0)` alone would hide which number the host supplied (and
/// positions in the message count in the expanded text).
fn amount(name: &str, raw: &str, macros: &Macros) -> Result<(i64, String), String> {
    let expanded = macros.expand(raw);
    let shown = if expanded == raw {
        format!("{name} {raw:?}")
    } else {
        format!("{name} {raw:?} (after macros {expanded:?})")
    };
    match eval(&expanded) {
        Ok(value) => Ok((value, shown)),
        Err(e) => Err(format!("{e} in {shown}")),
    }
}

/// The integer expression evaluator (public for tests/property tests).
///
/// Grammar, loosest first; whitespace may stand between tokens:
/// `sum = product (("+" | "-") product)*`, `product = signed (("*" | "/" | "%") signed)*`,
/// `signed = ("+" | "-")* atom`, `atom = number | "(" sum ")" | "int" "(" sum ")"`.
/// The error says what went wrong and where (1-based character position), without repeating
/// `expr`: the caller quotes it.
pub fn eval(expr: &str) -> Result<i64, String> {
    let mut parser = Parser {
        text: expr,
        pos: 0,
        depth: 0,
    };
    if parser.peek().is_none() {
        return Err("empty expression".to_string());
    }
    let value = parser.sum()?;
    match parser.peek() {
        None => Ok(value),
        Some(_) => Err(parser.unexpected("an operator or the end")),
    }
}

struct Parser<'a> {
    text: &'a str,
    /// A byte offset; every token starts with an ASCII byte, so it stays on a char boundary.
    pos: usize,
    /// How many parentheses are open: the only recursion there is.
    depth: usize,
}

impl<'a> Parser<'a> {
    /// The first byte of the next token, left unconsumed.
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while bytes.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
        bytes.get(self.pos).copied()
    }

    fn sum(&mut self) -> Result<i64, String> {
        let mut acc = self.product()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let rhs = self.product()?;
            let result = if op == b'+' {
                acc.checked_add(rhs)
            } else {
                acc.checked_sub(rhs)
            };
            acc = result.ok_or_else(overflow)?;
        }
        Ok(acc)
    }

    fn product(&mut self) -> Result<i64, String> {
        let mut acc = self.signed()?;
        while let Some(op @ (b'*' | b'/' | b'%')) = self.peek() {
            self.pos += 1;
            let rhs = self.signed()?;
            acc = match op {
                b'*' => acc.checked_mul(rhs).ok_or_else(overflow)?,
                b'/' => divide(acc, rhs)?,
                _ => modulo(acc, rhs)?,
            };
        }
        Ok(acc)
    }

    /// Signs are counted in a loop rather than by recursion, so a long run of them costs no
    /// stack, and `--x` is x even for i64::MIN.
    fn signed(&mut self) -> Result<i64, String> {
        let mut negative = false;
        while let Some(sign @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            negative ^= sign == b'-';
        }
        let value = self.atom()?;
        if negative {
            value.checked_neg().ok_or_else(overflow)
        } else {
            Ok(value)
        }
    }

    fn atom(&mut self) -> Result<i64, String> {
        match self.peek() {
            None => Err("unexpected end of expression".to_string()),
            Some(b'0'..=b'9') => self.number(),
            Some(b'(') => {
                self.pos += 1;
                self.parenthesized()
            }
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => self.int(),
            Some(_) => Err(self.unexpected("a number, \"(\" or int(...)")),
        }
    }

    /// Takes the whole word, so `1e3`, `0x10` and `8abc` are refused as one bad number rather
    /// than read as a number followed by junk.
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        let rest = &self.text.as_bytes()[start..];
        self.pos += rest
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count();
        &self.text[start..self.pos]
    }

    fn number(&mut self) -> Result<i64, String> {
        let start = self.pos;
        let token = self.word();
        let problem = if !token.bytes().all(|b| b.is_ascii_digit()) {
            "is malformed"
        } else if token.len() > 1 && token.starts_with('0') {
            "has a leading zero (the original read it as octal)"
        } else if let Ok(value) = token.parse() {
            return Ok(value);
        } else {
            "does not fit in 64 bits"
        };
        Err(format!(
            "number {token:?} at position {} {problem}",
            self.position(start)
        ))
    }

    /// `int(...)` truncates toward zero; every value here is already whole, so it only groups.
    fn int(&mut self) -> Result<i64, String> {
        let start = self.pos;
        let name = self.word();
        if name != "int" {
            return Err(format!(
                "unknown name {name:?} at position {} (only numbers, + - * / %, parentheses \
                 and int(...) are allowed)",
                self.position(start)
            ));
        }
        if self.peek() != Some(b'(') {
            return Err(self.unexpected("\"(\" after int"));
        }
        self.pos += 1;
        self.parenthesized()
    }

    /// Called just after an opening parenthesis.
    fn parenthesized(&mut self) -> Result<i64, String> {
        if self.depth == MAX_DEPTH {
            return Err(format!(
                "parentheses nested deeper than {MAX_DEPTH} levels at position {}",
                self.position(self.pos - 1)
            ));
        }
        self.depth += 1;
        let value = self.sum()?;
        if self.peek() != Some(b')') {
            return Err(self.unexpected("\")\""));
        }
        self.pos += 1;
        self.depth -= 1;
        Ok(value)
    }

    fn unexpected(&self, expected: &str) -> String {
        match self.text[self.pos..].chars().next() {
            Some(c) => format!(
                "unexpected \"{}\" at position {} where {expected} was expected",
                c.escape_debug(),
                self.position(self.pos)
            ),
            None => format!("unexpected end of expression where {expected} was expected"),
        }
    }

    /// 1-based, in characters, as a person counts them in the quoted text. Only errors need it,
    /// so counting from the start each time costs nothing on the way to a value.
    fn position(&self, byte: usize) -> usize {
        self.text[..byte].chars().count() + 1
    }
}

fn overflow() -> String {
    "arithmetic overflow (values must fit in a signed 64-bit integer)".to_string()
}

fn divide(a: i64, b: i64) -> Result<i64, String> {
    if b == 0 {
        return Err("division by zero".to_string());
    }
    a.checked_div(b).ok_or_else(overflow)
}

/// Perl's `%`: the result takes the sign of the right operand.
fn modulo(a: i64, b: i64) -> Result<i64, String> {
    if b == 0 {
        return Err("modulus by zero".to_string());
    }
    // Only i64::MIN % -1 fails, and its remainder is 0.
    let r = a.checked_rem(b).unwrap_or(0);
    Ok(if r != 0 && (r < 0) != (b < 0) {
        r + b
    } else {
        r
    })
}

#[cfg(test)]
mod tests;
