//! Writes the man pages and shell completions of switchman and switchmanctl, generated from
//! their clap definitions, into a directory: `cargo run --example gen_docs -- DIR`.
//! `scripts/package` puts them into the Debian package.
//!
//! An example rather than a build script or a binary of the package: the generators are
//! needed only when packaging, and the command lines live in the library, which a build script
//! cannot use.
//!
//! DIR gets `man/` (switchman.1, switchmanctl.1 and a page for each switchmanctl subcommand,
//! uncompressed) and `completions/{bash,zsh,fish}/`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};
use switchman::cli::Cli;
use switchman::ctl::Ctl;
use switchman::manual;

fn main() -> std::io::Result<()> {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gen_docs DIR");
        std::process::exit(64);
    };
    let man = dir.join("man");
    fs::create_dir_all(&man)?;
    write_switchman_page(&man.join("switchman.1"))?;
    // switchmanctl-SUBCOMMAND(1) as clap_mangen lays them out, then switchmanctl(1) with a
    // SEE ALSO.
    clap_mangen::generate_to(Ctl::command(), &man)?;
    write_switchmanctl_page(&man.join("switchmanctl.1"))?;

    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let out = dir.join("completions").join(shell.to_string());
        fs::create_dir_all(&out)?;
        for (mut cmd, name) in [
            (Cli::command(), "switchman"),
            (Ctl::command(), "switchmanctl"),
        ] {
            clap_complete::generate_to(shell, &mut cmd, name, &out)?;
        }
    }
    Ok(())
}

fn write_switchmanctl_page(path: &Path) -> std::io::Result<()> {
    let page = Man::new(Ctl::command().disable_help_subcommand(true));
    let mut out = Vec::new();
    render_head(&page, &mut out)?;
    page.render_subcommands_section(&mut out)?;
    see_also(&["switchman"]).to_writer(&mut out)?;
    page.render_version_section(&mut out)?;
    fs::File::create(path)?.write_all(&out)
}

/// The sections every page opens with, as clap_mangen makes them: title, NAME, SYNOPSIS,
/// DESCRIPTION and OPTIONS.
fn render_head(page: &Man, out: &mut Vec<u8>) -> std::io::Result<()> {
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    page.render_description_section(out)?;
    page.render_options_section(out)
}

/// SEE ALSO: the other pages, flock(1), and where the README and the manual are installed.
fn see_also(pages: &[&str]) -> Roff {
    let mut roff = Roff::default();
    roff.control("SH", ["SEE ALSO"]);
    let mut refs = Vec::new();
    for page in pages.iter().chain(&["flock"]) {
        refs.push(bold(*page));
        refs.push(roman("(1), "));
    }
    refs.push(roman(
        "and the README and the manual (docs/) in /usr/share/doc/switchman.",
    ));
    roff.text(refs);
    roff
}

/// switchman(1): clap_mangen's sections, then EXAMPLES, ENVIRONMENT and EXIT STATUS from the
/// tables `--help` shows too.
fn write_switchman_page(path: &Path) -> std::io::Result<()> {
    let page = Man::new(Cli::command());
    let mut out = Vec::new();
    render_head(&page, &mut out)?;

    let mut roff = Roff::default();
    roff.control("SH", ["EXAMPLES"]);
    for (what, command) in manual::EXAMPLES {
        roff.control("TP", []);
        roff.text([bold(*command)]);
        roff.text([roman(*what)]);
    }
    roff.control("SH", ["ENVIRONMENT"]);
    roff.text([roman(
        "CMD runs with switchman's environment plus the following:",
    )]);
    table(&mut roff, manual::CMD_ENVIRONMENT);
    roff.control("PP", []);
    roff.text([roman(
        "switchman itself reads the following; an empty value counts as unset:",
    )]);
    table(&mut roff, manual::ENVIRONMENT);
    roff.control("SH", ["EXIT STATUS"]);
    table(&mut roff, manual::EXIT_CODES);
    roff.control("PP", []);
    roff.text([roman(
        "Every non-zero exit of switchman's own prints one line on stderr; skipped runs print \
         nothing, so cron mails nothing for them.",
    )]);
    roff.control("SH", ["FILES"]);
    roff.control("TP", []);
    roff.text([italic("/etc/switchman.conf")]);
    roff.text([roman(
        "The config file (JSON): ZooKeeper hosts, prefix, logfile, loglevel, journald, \
         timeouts. Its keys are described in \
         /usr/share/doc/switchman/docs/config.md.",
    )]);
    roff.to_writer(&mut out)?;
    see_also(&["switchmanctl"]).to_writer(&mut out)?;
    page.render_version_section(&mut out)?;

    fs::File::create(path)?.write_all(&out)
}

fn table(roff: &mut Roff, rows: &[(&str, &str)]) {
    for (key, meaning) in rows {
        roff.control("TP", []);
        roff.text([bold(*key)]);
        roff.text([roman(*meaning)]);
    }
}
