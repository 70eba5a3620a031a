//! The checks check-crontab makes of a switchman invocation that parses, beyond the groups:
//! its leases as a run on this host would take them before connecting (the arithmetic with
//! this host's macros, COUNT ≤ TOTAL, resources listed in the prefix data), and lock names that
//! two unrelated jobs would share.

use crate::error::Error;
use crate::lease_spec::{LeaseSpec, Macros, in_resource_order};
use crate::prefix_data::PrefixData;

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
            Err(e) => problems.push(refusal(&e, &host_values(spec, macros))),
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
    if problems.is_empty()
        && let Err(e) = in_resource_order(&parsed, &data.resources, macros, listed_in)
    {
        problems.push(refusal(&e, &host_values(&specs.join(" "), macros)));
    }
    problems
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
        assert_eq!(
            problems(&["slot=5:2"]),
            [
                "switchman would refuse this (exit 64): --lease \"slot=5:2\": COUNT 5 is more than \
              TOTAL 2, so the lease could never be granted"
            ]
        );
        assert_eq!(
            problems(&["slot=4:CPU"]),
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
}
