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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn macros() -> Macros {
        Macros {
            fqdn: "host.example.com".to_string(),
            cpu: 8,
            memmb: 16000,
        }
    }

    fn lease(spec: &str) -> LeaseSpec {
        LeaseSpec::parse(spec, &macros()).unwrap_or_else(|e| panic!("{spec:?}: {e}"))
    }

    /// The message of the usage error `spec` must give; every one is a single line.
    fn refusal(spec: &str) -> String {
        match LeaseSpec::parse(spec, &macros()) {
            Err(Error::Usage(msg)) => {
                assert!(!msg.contains('\n'), "{msg:?}");
                assert!(msg.starts_with(&format!("--lease {spec:?}: ")), "{msg}");
                msg
            }
            other => panic!("{spec:?} gave {other:?}, not a usage error"),
        }
    }

    fn assert_refused(spec: &str, fragment: &str) {
        let msg = refusal(spec);
        assert!(
            msg.contains(fragment),
            "{spec:?}: {msg:?} lacks {fragment:?}"
        );
    }

    fn want(resource: &str, count: u64, total: u64) -> LeaseSpec {
        LeaseSpec {
            resource: resource.to_string(),
            count,
            total,
        }
    }

    #[test]
    fn macros_are_replaced_inside_words() {
        let m = macros();
        assert_eq!(m.expand("FQDN_cpu"), "host.example.com_cpu");
        assert_eq!(m.expand("CPUMEMMB-FQDN"), "816000-host.example.com");
        assert_eq!(m.expand("CPU*2 + CPU"), "8*2 + 8");
        assert_eq!(m.expand("fqdn Cpu MEMM"), "fqdn Cpu MEMM");
        assert_eq!(m.expand("ünïcødé FQDN"), "ünïcødé host.example.com");
        assert_eq!(m.expand(""), "");
    }

    #[test]
    fn macro_values_are_not_expanded_again() {
        let m = Macros {
            fqdn: "CPU1.MEMMB.example.com".to_string(),
            ..macros()
        };
        assert_eq!(m.expand("FQDN/CPU"), "CPU1.MEMMB.example.com/8");
    }

    #[test]
    fn specs_with_macros() {
        assert_eq!(lease("FQDN_cpu=1:CPU"), want("host.example.com_cpu", 1, 8));
        assert_eq!(lease("mem=4:int(MEMMB/1024)"), want("mem", 4, 15));
        assert_eq!(lease("cpu=CPU/4:CPU*2"), want("cpu", 2, 16));
        assert_eq!(lease("r=((1+2)*(3)):((CPU)+(int((2))))"), want("r", 9, 10));
        assert_eq!(lease("r= 1 :\t( 2 + 3 ) * 4\n"), want("r", 1, 20));
        assert_eq!(lease("r=3:3"), want("r", 3, 3));
    }

    #[test]
    fn spec_splits_at_the_first_equals_and_colon() {
        // The name keeps its spaces and anything else a znode name may hold, as the original's did.
        assert_eq!(lease(" db:main =1:2"), want(" db:main ", 1, 2));
        assert_refused(
            "a=b=1:2",
            "(only numbers, + - * / %, parentheses and int(...) are allowed) in COUNT \"b=1\"",
        );
        assert_refused(
            "r=1:2:3",
            "unexpected \":\" at position 2 where an operator",
        );
    }

    #[test]
    fn the_example_message() {
        assert_eq!(
            LeaseSpec::parse("r=1:2+", &macros()),
            Err(Error::Usage(
                "--lease \"r=1:2+\": unexpected end of expression in TOTAL \"2+\"".to_string()
            ))
        );
    }

    #[test]
    fn malformed_specs_are_refused() {
        assert_refused("r", "expected RES=COUNT:TOTAL, found no \"=\"");
        assert_refused("r=1", "found no \":\" in \"1\"");
        assert_refused("r=:2", "empty expression in COUNT \"\"");
        assert_refused("r=1: ", "empty expression in TOTAL \" \"");
        assert_refused(
            "r=1:(2",
            "unexpected end of expression where \")\" was expected",
        );
        assert_refused("r=1:2)", "unexpected \")\" at position 2 where an operator");
        assert_refused("r=1:2 3", "unexpected \"3\" at position 3");
        assert_refused("r=1:1.5", "unexpected \".\" at position 2");
        assert_refused("r=1:2*/3", "unexpected \"/\" at position 3 where a number");
        assert_refused(
            "r=1:int 2",
            "unexpected \"2\" at position 5 where \"(\" after int",
        );
        assert_refused("r=1:int()", "unexpected \")\" at position 5 where a number");
        assert_refused("r=1:integer(2)", "unknown name \"integer\" at position 1");
        assert_refused(
            "r=1:system(\"rm -rf /\")",
            "unknown name \"system\" at position 1",
        );
        assert_refused("r=1:$x", "unexpected \"$\" at position 1");
        assert_refused("r=1:0x10", "number \"0x10\" at position 1 is malformed");
        assert_refused("r=1:1e3", "number \"1e3\" at position 1 is malformed");
        assert_refused("r=1:010", "number \"010\" at position 1 has a leading zero");
    }

    #[test]
    fn control_characters_are_escaped_in_messages() {
        assert_refused("r=1:2\u{7}", "unexpected \"\\u{7}\" at position 2");
        assert_refused("r=1:2\u{1b}[31m", "unexpected \"\\u{1b}\"");
    }

    #[test]
    fn bad_resource_names_are_refused() {
        assert_refused("=1:2", "resource name \"\" is empty");
        assert_refused(".=1:2", "may not be . or ..");
        assert_refused("..=1:2", "may not be . or ..");
        assert_refused("a/b=1:2", "may not contain /");
        assert_refused(
            "FQDN/x=1:2",
            "resource name \"host.example.com/x\" may not contain /",
        );
        assert_refused("a\nb=1:2", "control characters");
        assert_refused("a\0b=1:2", "control characters");
        let long = "x".repeat(513);
        assert_refused(&format!("{long}=1:2"), "longer than 512 bytes");
        assert_eq!(
            lease(&format!("{}=1:2", "x".repeat(512))).resource.len(),
            512
        );
        // Three bytes of "CPU" become one: the limit applies after expansion.
        assert_eq!(
            lease(&format!("{}CPU=1:2", "x".repeat(511))).resource.len(),
            512
        );
    }

    #[test]
    fn bad_amounts_are_refused() {
        assert_refused("r=-1:2", "COUNT \"-1\" is negative (-1)");
        assert_refused(
            "r=CPU-9:10",
            "COUNT \"CPU-9\" (after macros \"8-9\") is negative (-1)",
        );
        assert_refused(
            "r=0:2",
            "COUNT \"0\" is 0, but a lease must take at least one unit",
        );
        assert_refused("r=int(CPU/16):2", "(after macros \"int(8/16)\") is 0");
        assert_refused("r=1:-2", "TOTAL \"-2\" is negative (-2)");
        assert_refused("r=3:2", "COUNT 3 is more than TOTAL 2");
        assert_refused("r=1:0", "COUNT 1 is more than TOTAL 0");
        assert_refused(
            "r=1:CPU/0",
            "division by zero in TOTAL \"CPU/0\" (after macros \"8/0\")",
        );
        assert_refused("r=1:5%(CPU-8)", "modulus by zero in TOTAL");
        assert_refused(
            "r=1:9223372036854775807+1",
            "arithmetic overflow (values must fit in a signed 64-bit integer) in TOTAL",
        );
        assert_refused(
            "r=MEMMB*MEMMB*MEMMB*MEMMB*MEMMB:1",
            "arithmetic overflow (values must fit in a signed 64-bit integer) in COUNT",
        );
        assert_refused(
            "r=1:99999999999999999999",
            "number \"99999999999999999999\" at position 1 does not fit in 64 bits",
        );
    }

    #[test]
    fn arithmetic() {
        let cases = [
            ("42", 42),
            ("0", 0),
            ("2+3*4", 14),
            ("(2+3)*4", 20),
            ("10-2-3", 5),
            ("100/10/5", 2),
            ("2*3%4", 2),
            ("7/2", 3),
            ("-7/2", -3),
            ("7/-2", -3),
            ("-7%3", 2),
            ("7%-3", -2),
            ("-7%-3", -1),
            ("6%3", 0),
            ("-6%3", 0),
            ("-2*3", -6),
            ("2*-3", -6),
            ("--1", 1),
            ("+-+5", -5),
            ("-(-(3))", 3),
            ("int(int(7))", 7),
            ("int (7) * 2", 14),
            (" \t\n1\r\n+\x0c2 ", 3),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775807-1", i64::MIN),
            ("--(-9223372036854775807-1)", i64::MIN),
            ("(-9223372036854775807-1)%-1", 0),
        ];
        for (expr, want) in cases {
            assert_eq!(eval(expr), Ok(want), "{expr:?}");
        }
        assert_eq!(eval("(-9223372036854775807-1)/-1"), Err(overflow()));
        assert_eq!(eval("-(-9223372036854775807-1)"), Err(overflow()));
        assert_eq!(eval("CPU"), Err(
            "unknown name \"CPU\" at position 1 (only numbers, + - * / %, parentheses and int(...) \
             are allowed)"
                .to_string()
        ));
    }

    #[test]
    fn nesting_is_capped() {
        let nested = |n: usize| format!("{}1{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(eval(&nested(MAX_DEPTH)), Ok(1));
        assert_eq!(
            eval(&nested(MAX_DEPTH + 1)),
            Err("parentheses nested deeper than 64 levels at position 65".to_string())
        );
        assert_eq!(
            eval(&"int(".repeat(MAX_DEPTH + 1)),
            Err("parentheses nested deeper than 64 levels at position 260".to_string())
        );
        assert!(eval(&"(".repeat(10_000)).is_err());
        assert!(eval(&nested(10_000)).is_err());
        assert_refused(&format!("r=1:{}", nested(10_000)), "nested deeper than 64");
        // Signs and operator chains are loops, not recursion.
        assert_eq!(eval(&format!("{}1", "-".repeat(100_000))), Ok(1));
        assert_eq!(
            eval(&"1+".repeat(100_000)),
            Err("unexpected end of expression".to_string())
        );
        assert_eq!(eval(&format!("{}0", "1+".repeat(100_000))), Ok(100_000));
    }

    #[test]
    fn kernel_cpu_lists() {
        assert_eq!(count_cpu_list("0-1\n"), Some(2));
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-3,8,10-11\n"), Some(7));
        assert_eq!(count_cpu_list(""), None);
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("0-x"), None);
    }

    #[test]
    fn meminfo_total() {
        let meminfo = "MemFree:         1000 kB\nMemTotal:       24684084 kB\nSwapTotal: 0 kB\n";
        assert_eq!(mem_total_kb(meminfo), Some(24684084));
        assert_eq!(mem_total_kb("MemFree: 1000 kB\n"), None);
        assert_eq!(mem_total_kb("MemTotal: lots\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_host() {
        let m = Macros::for_host("me.example.com").unwrap();
        assert_eq!(m.fqdn, "me.example.com");
        assert!(m.cpu >= 1, "{m:?}");
        assert!(m.memmb >= 1, "{m:?}");
        assert_eq!(m.expand("CPU"), m.cpu.to_string());
    }

    /// Text made of what expressions and specs are made of, so the parser gets past its first
    /// token far more often than with arbitrary strings.
    const ALPHABET: &str = "[0-9()+\\-*/% \tintFQDNCPUMEMB=:_x./\u{0}é]{0,300}";

    proptest! {
        #[test]
        fn eval_never_panics(s in any::<String>()) {
            let _ = eval(&s);
        }

        #[test]
        fn eval_never_panics_on_expression_text(s in ALPHABET) {
            let _ = eval(&s);
        }

        #[test]
        fn eval_never_panics_on_deep_or_long_input(
            picks in prop::collection::vec(any::<prop::sample::Index>(), 0..5000),
        ) {
            // Mostly openers, so nesting often runs far past the cap.
            const PARTS: [&str; 8] = ["(", "(", "int(", ")", "-", "1", "*", " "];
            let text: String = picks.iter().map(|i| *i.get(&PARTS)).collect();
            let _ = eval(&text);
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = LeaseSpec::parse(&s, &macros());
        }

        #[test]
        fn parse_accepts_only_sound_specs(s in ALPHABET) {
            match LeaseSpec::parse(&s, &macros()) {
                Ok(l) => {
                    prop_assert!(check_component("resource", &l.resource).is_ok());
                    prop_assert!(1 <= l.count && l.count <= l.total, "{l:?}");
                }
                Err(Error::Usage(msg)) => prop_assert!(!msg.contains('\n'), "{msg:?}"),
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }

        #[test]
        fn plain_specs_round_trip(
            resource in "[a-z0-9_.-]{1,40}",
            count in 1u64..1000,
            extra in 0u64..1000,
        ) {
            prop_assume!(resource != "." && resource != "..");
            let total = count + extra;
            let parsed = LeaseSpec::parse(&format!("{resource}={count}:{total}"), &macros());
            prop_assert_eq!(parsed, Ok(want(&resource, count, total)));
        }

        #[test]
        fn binary_operators_match_checked_arithmetic(
            a in -i64::MAX..=i64::MAX,
            b in -i64::MAX..=i64::MAX,
        ) {
            prop_assert_eq!(eval(&format!("{a} + {b}")), a.checked_add(b).ok_or_else(overflow));
            prop_assert_eq!(eval(&format!("{a}-{b}")), a.checked_sub(b).ok_or_else(overflow));
            prop_assert_eq!(eval(&format!("{a}*({b})")), a.checked_mul(b).ok_or_else(overflow));
            if b != 0 {
                prop_assert_eq!(eval(&format!("{a}/{b}")), Ok(a / b));
                // Perl's modulus: |r| < |b|, r is 0 or has b's sign, and b divides a - r.
                let r = eval(&format!("{a} % {b}")).unwrap();
                prop_assert!(r.unsigned_abs() < b.unsigned_abs());
                prop_assert!(r == 0 || (r < 0) == (b < 0));
                prop_assert_eq!((i128::from(a) - i128::from(r)) % i128::from(b), 0);
            }
        }

        #[test]
        fn precedence_and_grouping(a in -1000i64..1000, b in -1000i64..1000, c in 1i64..1000) {
            prop_assert_eq!(eval(&format!("{a}+{b}*{c}")), Ok(a + b * c));
            prop_assert_eq!(eval(&format!("({a}+{b})*{c}")), Ok((a + b) * c));
            prop_assert_eq!(eval(&format!("{a}-{b}-{c}")), Ok(a - b - c));
            prop_assert_eq!(eval(&format!("{a}*{b}/{c}")), Ok(a * b / c));
            prop_assert_eq!(eval(&format!("int({a}/{c})")), Ok(a / c));
        }
    }
}
