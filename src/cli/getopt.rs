//! The original switchman read its options with Perl's Getopt::Long in its default
//! configuration, so crontab lines written for it spell them in ways clap does not accept: any
//! unique prefix (`--lockn`), one dash or `+` in front of a long name (`-lockname`), any case
//! (`--LockName`), `=` after any of these, and `--nolock`. [`normalise`] rewrites such words
//! into clap's spellings before clap reads them, driven by the options of clap's own `Command`;
//! check-crontab reads the original's options with the same rules ([`Options::from_specs`]).
//!
//! Where Getopt::Long and switchman differ on purpose: switchman stops at the first word that
//! is not an option (CMD), where Getopt::Long takes options after it too; an option's short
//! letter is matched with its case first, so that `-v` (`--verbose`) and `-V` (`--version`)
//! stay apart; and a single-dash word that names no option is left to clap as short options
//! run together (`-vg web`, `-gweb`), which Getopt::Long refused.

use std::ffi::OsString;

use clap::Command;
use clap::error::ErrorKind;

/// The original's options, as its BUILDARGS gave them to Getopt::Long.
pub const ORIGINAL_OPTIONS: &[&str] = &[
    "c|config=s",
    "g|group=s",
    "h|help",
    "lease=s",
    "lockname=s",
    "v|version",
    "lock!",
];

/// One option as Getopt::Long looks it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    /// Its spelling in clap's terms and in messages: `--long`.
    pub canonical: String,
    /// The names it answers to, without dashes: long names, aliases and the short letter.
    names: Vec<String>,
    /// Its short letter, which a word `-X` keeps as it is (`-h` is clap's short help).
    short: Option<char>,
    pub takes_value: bool,
}

/// A word of a command line as Getopt::Long tells options from other words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word<'a> {
    /// `--`: the end of the options.
    End,
    /// Not an option: `-`, or a word that starts with neither `-` nor `+`.
    Plain,
    /// `--NAME`, `-NAME` or `+NAME`, with what follows the first `=` after NAME's first
    /// character.
    Option {
        prefix: &'a str,
        name: &'a str,
        value: Option<&'a str>,
    },
}

pub fn word(text: &str) -> Word<'_> {
    if text == "--" {
        return Word::End;
    }
    let Some((prefix, body)) = ["--", "-", "+"]
        .into_iter()
        .find_map(|p| text.strip_prefix(p).map(|body| (p, body)))
    else {
        return Word::Plain;
    };
    if text == "-" {
        return Word::Plain;
    }
    // Getopt::Long looks for `=` from the name's second character on: `--=x` is named `=x`.
    match body.bytes().skip(1).position(|b| b == b'=') {
        Some(i) => Word::Option {
            prefix,
            name: &body[..=i],
            value: Some(&body[i + 2..]),
        },
        None => Word::Option {
            prefix,
            name: body,
            value: None,
        },
    }
}

/// What a name stands for.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    Found(&'a Opt),
    /// A prefix of the names of several options.
    Ambiguous(Vec<&'a Opt>),
    Unknown,
}

/// The options of a command line.
#[derive(Debug, Clone)]
pub struct Options(Vec<Opt>);

impl Options {
    /// The options of clap's `cmd`, its own `--help` and `--version` included once built.
    pub fn of(cmd: &Command) -> Options {
        let mut options = Vec::new();
        for arg in cmd.get_arguments().filter(|a| !a.is_positional()) {
            let short = arg.get_short();
            let mut names: Vec<String> = arg.get_long().into_iter().map(String::from).collect();
            names.extend(
                arg.get_all_aliases()
                    .unwrap_or_default()
                    .into_iter()
                    .map(String::from),
            );
            names.extend(short.map(String::from));
            let canonical = match (arg.get_long(), short) {
                (Some(long), _) => format!("--{long}"),
                (None, Some(short)) => format!("-{short}"),
                (None, None) => continue,
            };
            options.push(Opt {
                canonical,
                names,
                short,
                takes_value: arg.get_action().takes_values(),
            });
        }
        Options(options)
    }

    /// Options from Getopt::Long specs such as `c|config=s`, `h|help` and `lock!` (which is
    /// two options, `--lock` and `--nolock` alias `--no-lock`).
    pub fn from_specs(specs: &[&str]) -> Options {
        let mut options = Vec::new();
        for spec in specs {
            let (names, kind) = spec
                .find(['=', ':', '!'])
                .map_or((*spec, ""), |i| spec.split_at(i));
            let names: Vec<String> = names.split('|').map(String::from).collect();
            // Named in messages by its longest name: `--config` rather than `--c`.
            let longest = names
                .iter()
                .fold("", |a, n| if n.len() > a.len() { n } else { a });
            let option = |canonical: &str, names: Vec<String>, takes_value| Opt {
                canonical: format!("--{canonical}"),
                names,
                short: None,
                takes_value,
            };
            options.push(option(
                longest,
                names.clone(),
                !kind.is_empty() && kind != "!",
            ));
            if kind == "!" {
                let negated = names
                    .iter()
                    .flat_map(|n| [format!("no{n}"), format!("no-{n}")]);
                options.push(option(&format!("no{longest}"), negated.collect(), false));
            }
        }
        Options(options)
    }

    /// The option `name` stands for: a name of one exactly, else in any case, else a prefix of
    /// the names of one option only, in any case.
    pub fn find(&self, name: &str) -> Lookup<'_> {
        let has = |test: &dyn Fn(&str) -> bool| -> Vec<&Opt> {
            self.0
                .iter()
                .filter(|o| o.names.iter().any(|n| test(n)))
                .collect()
        };
        let lower = name.to_lowercase();
        let candidates = [
            has(&|n| n == name),
            has(&|n| n.to_lowercase() == lower),
            has(&|n| !name.is_empty() && n.to_lowercase().starts_with(&lower)),
        ];
        match candidates.into_iter().find(|c| !c.is_empty()) {
            None => Lookup::Unknown,
            Some(mut c) if c.len() == 1 => Lookup::Found(c.remove(0)),
            Some(mut c) => {
                c.sort_by(|a, b| a.canonical.cmp(&b.canonical));
                Lookup::Ambiguous(c)
            }
        }
    }

    /// [`Options::find`], except that an abbreviation the original read as one of its options
    /// keeps that meaning when options of ours start the same way (`--lockn` is `--lockname`,
    /// not also `--lockname-from-args`), so that its crontab lines run unchanged.
    pub fn find_as_original_did(&self, name: &str, original: &Options) -> Lookup<'_> {
        match (self.find(name), original.find(name)) {
            (Lookup::Ambiguous(ours), Lookup::Found(theirs)) => {
                let long = theirs.canonical.trim_start_matches('-');
                match ours.iter().find(|o| o.names.iter().any(|n| n == long)) {
                    Some(o) => Lookup::Found(o),
                    None => Lookup::Ambiguous(ours),
                }
            }
            (found, _) => found,
        }
    }

    /// The option of a short letter, exactly.
    fn short(&self, letter: char) -> Option<&Opt> {
        self.0.iter().find(|o| o.short == Some(letter))
    }

    /// Whether the short options run together in `letters` (`-vg` without what follows the
    /// dash) end with one that takes its value from the next word.
    fn cluster_takes_next(&self, letters: &str) -> bool {
        for (i, letter) in letters.char_indices() {
            match self.short(letter) {
                Some(o) if o.takes_value => return i + letter.len_utf8() == letters.len(),
                Some(_) => {}
                None => return false,
            }
        }
        false
    }
}

/// `--a, --b or --c`.
pub fn either(options: &[&Opt]) -> String {
    let names: Vec<&str> = options.iter().map(|o| o.canonical.as_str()).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// `args` (the program's name first) with every option before CMD spelled as clap spells it:
/// `--long` for a flag, `--long=VALUE` for an option that takes a value, so that a value that
/// starts with `-` stays a value, as Getopt::Long took it. Nothing from `--` or CMD on is
/// touched, nor any value. An ambiguous prefix is an error naming the options it could be;
/// what names no option is left for clap to refuse.
pub fn normalise(cmd: &mut Command, args: Vec<OsString>) -> Result<Vec<OsString>, clap::Error> {
    let options = Options::of(cmd);
    let original = Options::from_specs(ORIGINAL_OPTIONS);
    let mut out = Vec::with_capacity(args.len());
    let mut args = args.into_iter();
    out.extend(args.next());
    while let Some(arg) = args.next() {
        // Not UTF-8: no option of ours; clap says what it makes of it.
        let Some(text) = arg.to_str() else {
            out.push(arg);
            break;
        };
        let Word::Option {
            prefix,
            name,
            value,
        } = word(text)
        else {
            out.push(arg);
            break;
        };
        match options.find_as_original_did(name, &original) {
            Lookup::Found(opt) if opt.takes_value => {
                let value = value.map(OsString::from).or_else(|| args.next());
                let mut canonical = OsString::from(&opt.canonical);
                if let Some(value) = value {
                    canonical.push("=");
                    canonical.push(value);
                }
                out.push(canonical);
            }
            Lookup::Found(opt) => {
                let exact = opt.short.is_some_and(|s| text == format!("-{s}"));
                out.push(match (exact, value) {
                    (true, _) => arg,
                    (false, None) => opt.canonical.clone().into(),
                    // A flag with a value: clap refuses it, naming the option.
                    (false, Some(value)) => format!("{}={value}", opt.canonical).into(),
                });
            }
            Lookup::Ambiguous(opts) => {
                return Err(cmd.error(
                    ErrorKind::UnknownArgument,
                    format!("'{text}' is ambiguous: it could be {}", either(&opts)),
                ));
            }
            Lookup::Unknown if prefix == "-" => {
                let takes_next = options.cluster_takes_next(&text[1..]);
                out.push(arg);
                if takes_next {
                    out.extend(args.next());
                }
            }
            // `+` started an option only for Getopt::Long: otherwise the word is CMD, as it
            // always was for switchman.
            Lookup::Unknown if prefix == "+" => {
                out.push(arg);
                break;
            }
            Lookup::Unknown => out.push(arg),
        }
    }
    out.extend(args);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::CommandFactory;

    fn normalised(args: &[&str]) -> Result<Vec<String>, String> {
        let mut cmd = Cli::command();
        cmd.build();
        let args = std::iter::once("switchman")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        match normalise(&mut cmd, args) {
            Ok(out) => Ok(out[1..]
                .iter()
                .map(|a| a.to_str().unwrap().to_string())
                .collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn assert_rewrites(pairs: &[(&str, &str)]) {
        for (given, expected) in pairs {
            let given: Vec<&str> = given.split(' ').collect();
            let expected: Vec<&str> = expected.split(' ').collect();
            assert_eq!(normalised(&given).unwrap(), expected, "{given:?}");
        }
    }

    #[test]
    fn words_are_told_apart_as_getopt_long_does() {
        assert_eq!(word("--"), Word::End);
        assert_eq!(word("-"), Word::Plain);
        assert_eq!(word("job"), Word::Plain);
        let option = |prefix, name, value| Word::Option {
            prefix,
            name,
            value,
        };
        assert_eq!(word("--a=b=c"), option("--", "a", Some("b=c")));
        assert_eq!(word("-a="), option("-", "a", Some("")));
        assert_eq!(word("+a"), option("+", "a", None));
        assert_eq!(word("--=x"), option("--", "=x", None));
        assert_eq!(word("---x"), option("--", "-x", None));
        assert_eq!(word("+"), option("+", "", None));
    }

    #[test]
    fn the_originals_spellings_become_claps() {
        assert_rewrites(&[
            // Prefixes.
            ("--lockn x job", "--lockname=x job"),
            ("--lea r=1:2 job", "--lease=r=1:2 job"),
            ("--gr web job", "--group=web job"),
            ("--conf /c job", "--config=/c job"),
            ("--n job", "--no-lock job"),
            ("--m 1h job", "--min-interval=1h job"),
            ("--b 3 job", "--busy-exit-code=3 job"),
            ("--wa 5m job", "--wait=5m job"),
            ("--verb job", "--verbose job"),
            // The original's abbreviations, whatever options of ours begin the same way.
            ("--lockn x job", "--lockname=x job"),
            ("--lockname x job", "--lockname=x job"),
            ("--lockname-f job", "--lockname-from-args job"),
            ("--ver", "--version"),
            ("--ca job", "--capture-output job"),
            ("--q job", "--quiet-unless-failed job"),
            ("--he", "--help"),
            // One dash, and Getopt::Long's `+`.
            ("-lockname x job", "--lockname=x job"),
            ("-lease r=1:2 job", "--lease=r=1:2 job"),
            ("+lockname x job", "--lockname=x job"),
            ("-min-interval 1h job", "--min-interval=1h job"),
            // Any case.
            ("--LockName x job", "--lockname=x job"),
            ("--NOLOCK job", "--no-lock job"),
            ("-C /c job", "--config=/c job"),
            ("-G web job", "--group=web job"),
            ("-W 5m job", "--wait=5m job"),
            // `=`.
            ("--lockname=x job", "--lockname=x job"),
            ("-lockname=x job", "--lockname=x job"),
            ("-c=/c job", "--config=/c job"),
            ("--lease=r=1:2 job", "--lease=r=1:2 job"),
            // The negation, and its undoing.
            ("--nolock job", "--no-lock job"),
            ("--no-lock job", "--no-lock job"),
            ("-no-lock job", "--no-lock job"),
            ("--lock job", "--lock job"),
            ("--no job", "--no-lock job"),
            // Short letters, with their case.
            ("-v job", "-v job"),
            ("-V", "-V"),
            ("-h", "-h"),
            ("-H", "--help"),
            ("--v job", "--verbose job"),
            ("--V", "--version"),
            ("-c /c job", "--config=/c job"),
        ]);
    }

    #[test]
    fn values_are_taken_as_they_are() {
        assert_rewrites(&[
            ("--lockname -weird job", "--lockname=-weird job"),
            ("--lockname -- job", "--lockname=-- job"),
            ("-g --no-lock job", "--group=--no-lock job"),
            ("--lockname= job", "--lockname= job"),
            ("--lockname", "--lockname"),
            ("--nolock=1 job", "--no-lock=1 job"),
        ]);
    }

    #[test]
    fn short_options_run_together_are_left_to_clap() {
        assert_rewrites(&[
            ("-vg web --lockn x job", "-vg web --lockname=x job"),
            ("-gweb --lockn x job", "-gweb --lockname=x job"),
            ("-c-g -g web job", "-c-g --group=web job"),
            ("-vc /c job", "-vc /c job"),
            ("-xyz job", "-xyz job"),
            ("--bogus job", "--bogus job"),
        ]);
    }

    #[test]
    fn cmd_and_everything_after_it_are_untouched() {
        assert_rewrites(&[
            ("job --lockn x -lockname y", "job --lockn x -lockname y"),
            ("--lockn x -- --lockn y", "--lockname=x -- --lockn y"),
            ("-- -lockname", "-- -lockname"),
            ("- --lockn x", "- --lockn x"),
            ("+job --lockn x", "+job --lockn x"),
            ("--lockn x job --", "--lockname=x job --"),
        ]);
    }

    #[test]
    fn an_ambiguous_prefix_names_the_options_it_could_be() {
        for (given, candidates) in [
            ("--lo", "--lock, --lockname or --lockname-from-args"),
            ("-l", "--lease, --lock, --lockname or --lockname-from-args"),
            ("+LO", "--lock, --lockname or --lockname-from-args"),
        ] {
            let e = normalised(&[given, "x", "job"]).unwrap_err();
            assert!(
                e.contains(&format!("'{given}' is ambiguous: it could be {candidates}")),
                "{e}"
            );
        }
    }

    #[test]
    fn the_originals_specs_read_as_getopt_long_reads_them() {
        let original = Options::from_specs(&["c|config=s", "h|help", "lock!", "lockname=s"]);
        let found = |name| match original.find(name) {
            Lookup::Found(o) => (o.canonical.clone(), o.takes_value),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(found("C"), ("--config".to_string(), true));
        assert_eq!(found("conf"), ("--config".to_string(), true));
        assert_eq!(found("h"), ("--help".to_string(), false));
        assert_eq!(found("lock"), ("--lock".to_string(), false));
        assert_eq!(found("no"), ("--nolock".to_string(), false));
        assert_eq!(found("No-L"), ("--nolock".to_string(), false));
        assert_eq!(found("lockn"), ("--lockname".to_string(), true));
        assert!(matches!(original.find("lo"), Lookup::Ambiguous(o) if o.len() == 2));
        assert_eq!(original.find("x"), Lookup::Unknown);
        assert_eq!(original.find(""), Lookup::Unknown);
    }
}
