use super::*;

/// The `--group` values found, `None` for a `--group` without one; the rest left out.
fn groups_of(text: &str) -> Vec<(usize, Option<String>)> {
    crontab_findings(text)
        .into_iter()
        .filter_map(|f| match f.found {
            Found::Group(g) => Some((f.line, Some(g))),
            Found::GroupWithoutName => Some((f.line, None)),
            _ => None,
        })
        .collect()
}

fn none() -> Vec<Option<String>> {
    Vec::new()
}

fn one(line: &str) -> Vec<Option<String>> {
    groups_of(line).into_iter().map(|(_, g)| g).collect()
}

fn some(g: &str) -> Vec<Option<String>> {
    vec![Some(g.to_string())]
}

#[test]
fn every_spelling_of_the_option() {
    assert_eq!(one("0 * * * * switchman --group web job"), some("web"));
    assert_eq!(one("0 * * * * switchman --group=web job"), some("web"));
    assert_eq!(one("0 * * * * switchman -g web job"), some("web"));
    assert_eq!(one("0 * * * * switchman -gweb job"), some("web"));
    assert_eq!(one("0 * * * * switchman -vg web job"), some("web"));
    assert_eq!(one("0 * * * * switchman -vgweb job"), some("web"));
    assert_eq!(one("0 * * * * switchman --group= job"), some(""));
    assert_eq!(one("0 * * * * switchman job -g web"), none());
}

#[test]
fn options_with_values_are_skipped_over() {
    assert_eq!(
        one("0 * * * * switchman -c /etc/s.conf --lockname x --lease r=1:2 -g web job"),
        some("web")
    );
    assert_eq!(one("0 * * * * switchman -c-g -g web job"), some("web"));
    assert_eq!(one("0 * * * * switchman --lockname -g job"), none());
    assert_eq!(
        one("0 * * * * switchman --busy-exit-code=3 --no-lock -g w job"),
        some("w")
    );
}

#[test]
fn cmd_and_its_arguments_are_not_switchmans() {
    assert_eq!(one("0 * * * * switchman -- -g web"), none());
    assert_eq!(one("0 * * * * switchman -g a -- job -g b"), some("a"));
    assert_eq!(one("0 * * * * switchman job --group b"), none());
    assert_eq!(one("0 * * * * other -g web"), none());
    assert_eq!(one("0 * * * * switchmanctl groups -g web"), none());
}

#[test]
fn schedules_users_and_paths() {
    assert_eq!(one("@reboot switchman -g a job"), some("a"));
    assert_eq!(one("@daily\t/usr/local/bin/switchman -g a job"), some("a"));
    assert_eq!(
        one("*/5 1-3 * jan mon-fri root switchman -g a job"),
        some("a")
    );
    assert_eq!(one("0 * * * * switchman switchman -g a job"), some("a"));
    assert_eq!(one("0 * * * * $HOME/bin/switchman -g a job"), some("a"));
    assert_eq!(one("0 * * * *"), none());
    assert_eq!(one("@reboot"), none());
}

#[test]
fn comments_and_variables_are_skipped() {
    let text = "# 0 * * * * switchman -g a job\n\
                \x20  # indented comment switchman -g b\n\
                GROUP=switchman -g c\n\
                MAILTO = ops@example.com\n\
                \n\
                0 * * * * switchman -g d job # switchman -g e\n\
                0 * * * * FOO=1 switchman -g f job\n";
    assert_eq!(
        groups_of(text),
        vec![(6, Some("d".to_string())), (7, Some("f".to_string()))]
    );
}

#[test]
fn shell_syntax() {
    assert_eq!(one("0 * * * * cd /x && switchman -g a job"), some("a"));
    assert_eq!(one("0 * * * * cd /x&&switchman -g a job"), some("a"));
    assert_eq!(
        one("0 * * * * switchman -g 'two words' job"),
        some("two words")
    );
    assert_eq!(one(r#"0 * * * * switchman -g "a\"b" job"#), some("a\"b"));
    assert_eq!(one(r"0 * * * * switchman -g a\ b job"), some("a b"));
    assert_eq!(
        one("0 * * * * switchman >/dev/null 2>&1 -g a job"),
        some("a")
    );
    assert_eq!(
        one("0 * * * * switchman -g a job; switchman -g b job2 | x"),
        {
            let mut v = some("a");
            v.extend(some("b"));
            v
        }
    );
    assert_eq!(
        one("0 * * * * switchman -g a sh -c 'switchman -g b'"),
        some("a")
    );
    assert_eq!(one("0 * * * * switchman -g"), vec![None]);
    assert_eq!(one("0 * * * * switchman -g ; x"), vec![None]);
}

#[test]
fn percent_ends_the_command() {
    assert_eq!(one("0 * * * * switchman job % -g a"), none());
    assert_eq!(one("0 * * * * switchman -g a%b job"), some("a"));
    assert_eq!(one(r"0 * * * * switchman -g a\%b job"), some("a%b"));
}

/// Everything found in a one-line crontab.
fn found(line: &str) -> Vec<Found> {
    crontab_findings(line)
        .into_iter()
        .map(|f| f.found)
        .collect()
}

fn refused(line: &str) -> String {
    match found(line).as_slice() {
        [Found::Refused(reason)] => reason.clone(),
        other => panic!("{line:?}: expected one refusal, found {other:?}"),
    }
}

#[test]
fn lines_switchman_would_refuse_are_found_with_claps_reason() {
    assert_eq!(
        refused("0 * * * * switchman --grup web job"),
        "unexpected argument '--grup' found; tip: a similar argument exists: '--group'; \
         tip: to pass '--grup' as a value, use '-- --grup'"
    );
    assert_eq!(
        refused("0 * * * * switchman --lockname"),
        "a value is required for '--lockname <NAME>' but none was supplied"
    );
    assert_eq!(
        refused("0 * * * * switchman --lo x job"),
        "'--lo' is ambiguous: it could be --lock, --lockname or --lockname-from-args"
    );
    assert!(refused("0 * * * * switchman -g a -g b job").contains("multiple times"));
    assert!(refused("0 * * * * switchman --no-lock --lockname x job").contains("--no-lock"));
    assert!(refused("0 * * * * switchman --busy-exit-code 300 job").contains("'300'"));
    // No CMD: refused, and the group is checked as well, since every option was read.
    let no_cmd = "the following required arguments were not provided: <CMD>...";
    assert_eq!(refused("0 * * * * switchman"), no_cmd);
    assert_eq!(refused("0 * * * * cd /x && switchman >/dev/null"), no_cmd);
    assert_eq!(refused("0 * * * * FOO=1 switchman -v"), no_cmd);
    for line in [
        "0 * * * * switchman -g a%b job",
        "0 * * * * switchman --GR=a",
    ] {
        assert_eq!(
            found(line),
            [
                Found::Refused(no_cmd.to_string()),
                Found::Group("a".to_string())
            ],
            "{line}"
        );
    }
}

#[test]
fn lock_names_and_leases_are_read_as_a_run_reads_them() {
    assert_eq!(
        found("0 * * * * switchman --lockname a/b job"),
        [Found::Refused(
            "--lockname \"a/b\" may not contain / (it must be a single ZooKeeper path \
             component)"
                .to_string()
        )]
    );
    assert_eq!(
        found("0 * * * * switchman -- sh -c 'backup --all'"),
        [Found::GenericLockName("sh".to_string())]
    );
    assert_eq!(found("0 * * * * switchman --lockname b -- sh -c x"), []);
    assert_eq!(
        found("0 * * * * switchman --lockname-from-args -- sh -c x"),
        []
    );
    assert_eq!(found("0 * * * * switchman --no-lock /usr/bin/sudo x"), []);
    assert_eq!(
        found("0 * * * * switchman -g a --lease r=1:2 --lease s=1:CPU job"),
        [
            Found::Group("a".to_string()),
            Found::Leases(vec!["r=1:2".to_string(), "s=1:CPU".to_string()])
        ]
    );
}

#[test]
fn lines_naming_switchman_without_running_it_are_not_refused() {
    assert_eq!(found("0 * * * * pkill switchman"), []);
    assert_eq!(found("0 * * * * ls /usr/bin/switchman >/dev/null"), []);
    assert_eq!(
        found("0 * * * * test -x /usr/bin/switchman && switchman -g a job"),
        [Found::Group("a".to_string())]
    );
    // Help and version: switchman prints and exits 0 without running anything.
    assert_eq!(found("0 * * * * switchman --help -g a job"), []);
    assert_eq!(found("0 * * * * switchman -V"), []);
}

/// A new option of switchman's is understood here without a change, since the words are
/// read by switchman's own `Cli`; this pins it, for every spelling of every option.
#[test]
fn every_option_of_switchmans_is_understood() {
    let mut cli = Cli::command();
    // Built, so that clap's own --help and --version are among the arguments too.
    cli.build();
    let mut group_seen = false;
    for arg in cli.get_arguments().filter(|a| !a.is_positional()) {
        let takes_value = arg.get_action().takes_values();
        let is_group = arg.get_id() == "group";
        group_seen |= is_group;
        // "1" suits every value parser of switchman's so far; a list of values is heeded.
        let value = match arg.get_possible_values().first() {
            Some(v) => v.get_name().to_string(),
            None if is_group => "web".to_string(),
            None => "1".to_string(),
        };
        let rest = if is_group { "job" } else { "-g web job" };
        // switchman's arguments, each using this option once, in one of its spellings.
        let mut uses = Vec::new();
        let longs = arg.get_all_aliases().unwrap_or_default();
        for long in longs.into_iter().chain(arg.get_long()) {
            if takes_value {
                uses.push(format!("--{long} {value} {rest}"));
                uses.push(format!("--{long}={value} {rest}"));
            } else {
                uses.push(format!("--{long} {rest}"));
            }
        }
        let shorts = arg.get_all_short_aliases().unwrap_or_default();
        for short in shorts.into_iter().chain(arg.get_short()) {
            if takes_value {
                uses.push(format!("-{short} {value} {rest}"));
                uses.push(format!("-{short}{value} {rest}"));
            } else {
                uses.push(format!("-{short} {rest}"));
                uses.push(format!("-{short}g web job"));
                uses.push(format!("-{short}gweb job"));
            }
        }
        assert!(
            !uses.is_empty(),
            "{:?}: no long or short form",
            arg.get_id()
        );
        let expected = match arg.get_action() {
            // switchman prints and exits 0 without running anything, so no group is used.
            clap::ArgAction::Help
            | clap::ArgAction::HelpShort
            | clap::ArgAction::HelpLong
            | clap::ArgAction::Version => Vec::new(),
            _ => vec![Found::Group("web".to_string())],
        };
        for args in uses {
            let line = format!("0 * * * * switchman {args}");
            // What an option's own value leads to (`--lease 1`) is another test's business.
            let read: Vec<Found> = found(&line)
                .into_iter()
                .filter(|f| !matches!(f, Found::Leases(_)))
                .collect();
            assert_eq!(read, expected, "{line}");
        }
    }
    assert!(group_seen, "switchman has no --group any more?");
}

#[test]
fn options_after_cmd_are_read_as_the_original_reads_them() {
    let after = |line: &str| -> Vec<String> {
        found(line)
            .into_iter()
            .filter_map(|f| match f {
                Found::OptionsAfterCmd(reading) => Some(reading),
                _ => None,
            })
            .collect()
    };
    let [reading] = &after("0 * * * * switchman backup.sh --lockname nightly")[..] else {
        panic!("one finding expected");
    };
    assert_eq!(
        reading,
        "the original takes options after CMD too, up to a '--': it would read '--lockname \
         nightly' (its --lockname), where switchman passes them to CMD; write -- before CMD \
         for both to pass them to CMD"
    );
    assert!(after("0 * * * * switchman --lockname b sh -c x")[0].contains("'-c x' (its --config)"));
    assert!(
        after("0 * * * * switchman grep -v x f")[0]
            .contains("'-v' (its --version: it prints its version and exits 1, running nothing)")
    );
    // Everything after a `--` is CMD's for both; a `--` after CMD is the original's end of
    // options, which it drops.
    assert_eq!(
        after("0 * * * * switchman -- backup.sh --lockname nightly"),
        none_s()
    );
    // A `--` right after an option that takes a value is that value, for both.
    assert!(after("0 * * * * switchman --lockname -- backup.sh -v")[0].contains("'-v'"));
    assert!(
        after("0 * * * * switchman backup.sh -- -v")[0]
            .contains("read '--' (the end of its options, which it drops), where")
    );
    // Words that are not options, for Getopt::Long as for switchman.
    assert_eq!(after("0 * * * * switchman cp a - b"), none_s());
    assert_eq!(after("0 * * * * switchman job % --lockname x"), none_s());
    // Lines switchman refuses or does not run are another finding's business.
    assert_eq!(after("0 * * * * switchman --bogus job -v"), none_s());
    assert_eq!(after("0 * * * * switchman --help job -v"), none_s());
}

fn none_s() -> Vec<String> {
    Vec::new()
}
