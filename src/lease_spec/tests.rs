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
