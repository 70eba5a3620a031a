//! The checks check-crontab makes of a switchman invocation that parses, beyond the groups:
//! its leases as a run on this host would take them before connecting (the arithmetic with
//! this host's macros, COUNT ≤ TOTAL, resources listed in the prefix data), lock names that
//! two unrelated jobs would share, and what the original switchman would read differently.

use crate::cli::getopt::{Lookup, ORIGINAL_OPTIONS, Options, Word, either, word};
use crate::error::Error;
use crate::lease_spec::{LeaseSpec, Macros, eval, in_resource_order};
use crate::prefix_data::PrefixData;

/// What the original makes of `words`, the words after CMD of an invocation without `--`
/// before CMD, which switchman all passes to CMD: Getopt::Long takes options anywhere up to a
/// `--`, and drops that `--`. `None` when it reads them as switchman does.
pub fn read_after_cmd(words: &[String]) -> Option<String> {
    let options = Options::from_specs(ORIGINAL_OPTIONS);
    let refuses = "it refuses the line";
    let mut readings = Vec::new();
    let mut words = words.iter();
    while let Some(w) = words.next() {
        let (name, value) = match word(w) {
            Word::Plain => continue,
            Word::End => {
                readings.push("'--' (the end of its options, which it drops)".to_string());
                break;
            }
            Word::Option { name, value, .. } => (name, value),
        };
        readings.push(match options.find(name) {
            Lookup::Found(o) if o.takes_value => match value.is_some() {
                true => format!("'{w}' (its {})", o.canonical),
                false => match words.next() {
                    Some(v) => format!("'{w} {v}' (its {})", o.canonical),
                    None => format!("'{w}' (its {}, with no value: {refuses})", o.canonical),
                },
            },
            Lookup::Found(o) if value.is_some() => {
                format!(
                    "'{w}' (its {}, which takes no value: {refuses})",
                    o.canonical
                )
            }
            Lookup::Found(o) => match o.canonical.as_str() {
                what @ ("--help" | "--version") => format!(
                    "'{w}' (its {what}: it prints its {} and exits 1, running nothing)",
                    &what[2..]
                ),
                other => format!("'{w}' (its {other})"),
            },
            Lookup::Ambiguous(os) => format!("'{w}' (ambiguous: {}; {refuses})", either(&os)),
            Lookup::Unknown => format!("'{w}' (no option of its: {refuses})"),
        });
    }
    if readings.is_empty() {
        return None;
    }
    Some(format!(
        "the original takes options after CMD too, up to a '--': it would read {}, where \
         switchman passes them to CMD; write -- before CMD for both to pass them to CMD",
        readings.join(", ")
    ))
}

/// Commands that run another command: as CMD, their basename (switchman's default lock name)
/// says nothing about the job, so two jobs run through `sh -c` share the lock `sh` and one of
/// them is skipped whenever the other runs.
const GENERIC: &[&str] = &[
    // Shells.
    "sh",
    "bash",
    "dash",
    "zsh",
    "ksh",
    "mksh",
    "csh",
    "tcsh",
    "fish",
    "busybox",
    // Commands that run a command.
    "env",
    "timeout",
    "nice",
    "ionice",
    "sudo",
    "su",
    "runuser",
    "doas",
    "setsid",
    "nohup",
    "stdbuf",
    "taskset",
    "chrt",
    "flock",
    "chronic",
    "xargs",
    "time",
    "exec",
    "command",
    "run-parts",
    "systemd-run",
    "cgexec",
    "setpriv",
    "unshare",
    "nsenter",
    "chroot",
    "ssh",
    "docker",
    "podman",
    "kubectl",
];

/// Interpreters, also with a version (`python3.11`, `perl5.36`): the job is the script.
const INTERPRETERS: &[&str] = &[
    "python", "perl", "ruby", "node", "nodejs", "php", "java", "lua", "tclsh", "Rscript", "bun",
    "deno", "pwsh",
];

/// Whether `name`, a default lock name, is shared by unrelated jobs.
pub fn is_generic(name: &str) -> bool {
    GENERIC.contains(&name)
        || INTERPRETERS.iter().any(|i| {
            name.strip_prefix(i)
                .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
        })
}

/// The problems of one invocation's `--lease` specs, as a run on this host would find them
/// before connecting; `listed_in` names where `data` came from.
pub fn lease_problems(
    specs: &[String],
    macros: &Macros,
    data: &PrefixData,
    listed_in: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut parsed = Vec::new();
    for spec in specs {
        match LeaseSpec::parse(spec, macros) {
            Ok(lease) => parsed.push(lease),
            Err(e) => {
                let refusal = refusal(&e, &host_values(spec, macros));
                problems.push(match originals_lease(spec, macros) {
                    Some(reading) => format!("the original would {reading}; {refusal}"),
                    None => refusal,
                });
            }
        }
        if let Some((_, total)) = spec.split_once('=').and_then(|(_, a)| a.split_once(':'))
            && divides_outside_int(total)
        {
            problems.push(format!(
                "--lease {spec:?}: TOTAL {total:?} divides outside int(...): switchman \
                 truncates, but the original switchman refuses a TOTAL that is not whole; in \
                 lines that both may run, write int({total})"
            ));
        }
    }
    if problems.is_empty() {
        // The original kept one lease per resource: checked with one each first, a line that
        // names a resource twice is refused for that alone, and the finding says so.
        let mut once: Vec<LeaseSpec> = Vec::new();
        for lease in parsed.iter().rev() {
            if !once.iter().any(|l| l.resource == lease.resource) {
                once.push(lease.clone());
            }
        }
        let values = host_values(&specs.join(" "), macros);
        match in_resource_order(&once, &data.resources, macros, listed_in) {
            Err(e) => problems.push(refusal(&e, &values)),
            Ok(_) if once.len() < parsed.len() => {
                let e = in_resource_order(&parsed, &data.resources, macros, listed_in)
                    .expect_err("a resource leased twice is refused");
                problems.push(format!(
                    "the original would lease each resource once, as one of its --lease \
                     options says (the last one, if they spell the resource alike); {}",
                    refusal(&e, &values)
                ));
            }
            Ok(_) => {}
        }
    }
    problems
}

/// What the original would do with a spec that switchman refuses only because COUNT is not
/// between 1 and TOTAL, which the original did not check; `None` for a spec switchman refuses
/// for another reason.
fn originals_lease(spec: &str, macros: &Macros) -> Option<String> {
    let (resource, amounts) = spec.split_once('=')?;
    let (count, total) = amounts.split_once(':')?;
    let resource = macros.expand(resource);
    crate::zk::paths::check_component("", &resource).ok()?;
    let count = eval(&macros.expand(count)).ok()?;
    let total = eval(&macros.expand(total)).ok()?;
    if total < 0 {
        return None;
    }
    let reading = match count {
        ..0 => format!(
            "take a lease of {count} units of {resource}, which lets other runs lease {} more \
             than TOTAL",
            -count
        ),
        0 => format!("take a lease of no units of {resource}, which guards nothing"),
        count if count > total => format!(
            "wait for {resource} for ever (or until resources_wait_timeout) at the head of its \
             queue, for a lease that cannot be granted, holding up every run queued behind it"
        ),
        _ => return None,
    };
    Some(reading)
}

/// `switchman would refuse this (exit N): MESSAGE`, with the host's values the message rests
/// on, if any.
fn refusal(e: &Error, host_values: &str) -> String {
    let message = match e {
        Error::Usage(m) | Error::Config(m) => m.clone(),
        other => other.to_string(),
    };
    format!(
        "switchman would refuse this (exit {}): {message}{host_values}",
        e.exit_code()
    )
}

/// ` (on this host: CPU=2; other hosts may differ)` for the macros in `text`, or nothing.
fn host_values(text: &str, macros: &Macros) -> String {
    let mut values = Vec::new();
    for (name, value) in [
        ("FQDN", macros.fqdn.clone()),
        ("CPU", macros.cpu.to_string()),
        ("MEMMB", macros.memmb.to_string()),
    ] {
        if text.contains(name) {
            values.push(format!("{name}={value}"));
        }
    }
    if values.is_empty() {
        return String::new();
    }
    format!(
        " (on this host: {}; other hosts may differ)",
        values.join(", ")
    )
}

/// Whether the expression divides anywhere but inside `int(...)`: there the original tool
/// could get a fraction, which it refuses as a TOTAL, where switchman truncates.
fn divides_outside_int(expr: &str) -> bool {
    // For each open parenthesis, whether it is `int(`'s.
    let mut open: Vec<bool> = Vec::new();
    for (i, c) in expr.char_indices() {
        match c {
            '(' => open.push(expr[..i].trim_end().ends_with("int")),
            ')' => {
                open.pop();
            }
            '/' if !open.contains(&true) => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn macros() -> Macros {
        Macros {
            fqdn: "h1.example.com".into(),
            cpu: 2,
            memmb: 4000,
        }
    }

    fn data() -> PrefixData {
        PrefixData::parse(
            "/p",
            br#"{"resources": ["FQDN_cpu", "slot", "rolling-restart"]}"#,
        )
        .unwrap()
    }

    fn problems(specs: &[&str]) -> Vec<String> {
        let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        lease_problems(&specs, &macros(), &data(), "prefix znode /p")
    }

    #[test]
    fn generic_commands_are_recognised() {
        for name in [
            "sh",
            "bash",
            "env",
            "timeout",
            "sudo",
            "python3",
            "python3.11",
            "perl",
        ] {
            assert!(is_generic(name), "{name}");
        }
        for name in ["backup", "make", "pythonic", "perlite", "shred", "rsync"] {
            assert!(!is_generic(name), "{name}");
        }
    }

    #[test]
    fn good_leases_have_no_problems() {
        assert_eq!(
            problems(&["FQDN_cpu=1:CPU", "slot=1:int(CPU/2)"]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn lease_problems_name_the_exit_code_and_the_hosts_values() {
        let refusal = |specs| problems(specs)[0].split_once("; ").unwrap().1.to_string();
        assert_eq!(
            refusal(&["slot=5:2"]),
            "switchman would refuse this (exit 64): --lease \"slot=5:2\": COUNT 5 is more than \
             TOTAL 2, so the lease could never be granted"
        );
        assert_eq!(
            [refusal(&["slot=4:CPU"])],
            [
                "switchman would refuse this (exit 64): --lease \"slot=4:CPU\": COUNT 4 is more \
              than TOTAL 2, so the lease could never be granted (on this host: CPU=2; other \
              hosts may differ)"
            ]
        );
        assert_eq!(
            problems(&["nosuch=1:2"]),
            [
                "switchman would refuse this (exit 78): resource nosuch not listed in \
              \"resources\" of prefix znode /p (listed, after macros: [\"h1.example.com_cpu\", \
              \"slot\", \"rolling-restart\"])"
            ]
        );
        let p = problems(&["FQDN_mem=1:MEMMB"]);
        assert!(
            p[0].ends_with(
                "(on this host: FQDN=h1.example.com, MEMMB=4000; other hosts may differ)"
            ),
            "{p:?}"
        );
        assert!(problems(&["slot=1:2", "slot=1:3"])[0].contains("(exit 64)"));
        assert!(problems(&["slot=x:2"])[0].contains("(exit 64): --lease \"slot=x:2\""));
    }

    #[test]
    fn a_total_that_divides_outside_int_is_pointed_out() {
        let p = problems(&["slot=1:CPU/2"]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("write int(CPU/2)"), "{p:?}");
        assert!(divides_outside_int("5/2"));
        assert!(divides_outside_int("int(CPU)/2"));
        assert!(divides_outside_int("(CPU/2)"));
        assert!(!divides_outside_int("int(CPU/2)"));
        assert!(!divides_outside_int("int ( (CPU+1) / 2 ) * 2"));
        assert!(!divides_outside_int("CPU*2"));
    }

    #[test]
    fn what_the_original_reads_after_cmd() {
        let read = |words: &str| {
            let words: Vec<String> = words.split_whitespace().map(String::from).collect();
            read_after_cmd(&words)
        };
        let reading = |words: &str| {
            let text = read(words).unwrap_or_else(|| panic!("{words}: nothing read"));
            let (_, rest) = text.split_once("it would read ").unwrap();
            rest.split_once(", where switchman").unwrap().0.to_string()
        };
        assert_eq!(read("a b - c"), None);
        assert_eq!(read(""), None);
        assert_eq!(reading("--lockn x"), "'--lockn x' (its --lockname)");
        assert_eq!(reading("-LEASE=r=1:2"), "'-LEASE=r=1:2' (its --lease)");
        assert_eq!(reading("+g web"), "'+g web' (its --group)");
        assert_eq!(reading("a --nolock b"), "'--nolock' (its --nolock)");
        assert_eq!(reading("--lock"), "'--lock' (its --lock)");
        assert_eq!(
            reading("-h"),
            "'-h' (its --help: it prints its help and exits 1, running nothing)"
        );
        assert_eq!(
            reading("-l"),
            "'-l' (ambiguous: --lease, --lock or --lockname; it refuses the line)"
        );
        assert_eq!(
            reading("-x"),
            "'-x' (no option of its: it refuses the line)"
        );
        assert_eq!(reading("+"), "'+' (no option of its: it refuses the line)");
        assert_eq!(
            reading("--lockname"),
            "'--lockname' (its --lockname, with no value: it refuses the line)"
        );
        assert_eq!(
            reading("--no=1"),
            "'--no=1' (its --nolock, which takes no value: it refuses the line)"
        );
        // A value is the next word whatever it looks like, and `--` ends the options.
        assert_eq!(
            reading("--lockname -v -- -h"),
            "'--lockname -v' (its --lockname), '--' (the end of its options, which it drops)"
        );
    }

    #[test]
    fn leases_the_original_took_and_switchman_refuses() {
        let p = problems(&["slot=5:2"]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(
                "the original would wait for slot for ever (or until resources_wait_timeout) \
                 at the head of its queue, for a lease that cannot be granted, holding up every \
                 run queued behind it; switchman would refuse this (exit 64): --lease \"slot=5:2\""
            ),
            "{p:?}"
        );
        assert!(problems(&["slot=int(CPU/4):CPU"])[0].starts_with(
            "the original would take a lease of no units of slot, which guards nothing; \
                 switchman would refuse this (exit 64): --lease \"slot=int(CPU/4):CPU\": COUNT"
        ));
        assert!(problems(&["slot=-2:2"])[0].starts_with(
            "the original would take a lease of -2 units of slot, which lets other runs lease 2 \
             more than TOTAL; switchman would refuse this (exit 64)"
        ));
        // Refused for other reasons, by the original too or in ways of its own.
        for spec in ["slot=1:-2", "slot=x:2", "a/b=1:2", "slot=1"] {
            assert!(
                problems(&[spec])[0].starts_with("switchman would refuse"),
                "{spec}"
            );
        }
        for specs in [
            &["slot=1:2", "slot=2:2"][..],
            &["FQDN_cpu=1:2", "h1.example.com_cpu=1:2"],
        ] {
            let p = problems(specs);
            assert_eq!(p.len(), 1, "{p:?}");
            assert!(
                p[0].starts_with(
                    "the original would lease each resource once, as one of its --lease options \
                     says (the last one, if they spell the resource alike); switchman would \
                     refuse this (exit 64): --lease names resource"
                ),
                "{p:?}"
            );
        }
        // Leased twice and not listed: switchman refuses it as unlisted first.
        let p = problems(&["nosuch=1:2", "nosuch=1:2"]);
        assert!(
            p[0].starts_with("switchman would refuse this (exit 78)"),
            "{p:?}"
        );
    }
}
