//! Writes the man pages and shell completions of switchman and switchmanctl, generated from
//! their clap definitions and the tables of the library (exit codes, config keys), into a
//! directory: `cargo run --example gen_docs -- DIR`. `scripts/package` puts them into the
//! Debian package.
//!
//! `cargo run --example gen_docs -- --docs` instead rewrites the generated files under `docs/`
//! (`docs/config.md`, `docs/exit-codes.md`), which a test holds equal to the code.
//!
//! An example rather than a build script or a binary of the package: the generators are
//! needed only when packaging, and the command lines live in the library, which a build script
//! cannot use.
//!
//! DIR gets `man/` (switchman.1, switchmanctl.1, a page for each switchmanctl subcommand and
//! switchman.conf.5, uncompressed) and `completions/{bash,zsh,fish}/`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};
use switchman::cli::Cli;
use switchman::config;
use switchman::ctl::Ctl;
use switchman::exit::{self, Binary};
use switchman::manual;

fn main() -> std::io::Result<()> {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gen_docs DIR | gen_docs --docs");
        std::process::exit(exit::USAGE.value);
    };
    if dir == Path::new("--docs") {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (path, text) in manual::generated_docs() {
            let path = root.join(path);
            fs::create_dir_all(path.parent().expect("a file under docs/"))?;
            fs::write(&path, text)?;
            eprintln!("wrote {}", path.display());
        }
        return Ok(());
    }
    let man = dir.join("man");
    fs::create_dir_all(&man)?;
    write_switchman_page(&man.join("switchman.1"))?;
    write_config_page(&man.join("switchman.conf.5"))?;
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
    exit_status(Binary::Switchmanctl).to_writer(&mut out)?;
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

/// SEE ALSO: the other pages, switchman.conf(5), flock(1), and where the README is installed.
fn see_also(pages: &[&str]) -> Roff {
    let mut roff = Roff::default();
    roff.control("SH", ["SEE ALSO"]);
    let mut refs = Vec::new();
    let pages = pages.iter().map(|p| (*p, "(1), "));
    for (page, section) in pages.chain([("switchman.conf", "(5), "), ("flock", "(1), ")]) {
        refs.push(bold(page));
        refs.push(roman(section));
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
    roff.to_writer(&mut out)?;
    exit_status(Binary::Switchman).to_writer(&mut out)?;
    let mut roff = Roff::default();
    roff.control("SH", ["FILES"]);
    roff.control("TP", []);
    roff.text([italic(config::DEFAULT_PATH)]);
    roff.text([
        roman(
            "The config file (JSON): ZooKeeper hosts, prefix, logfile, loglevel, journald, \
             timeouts. Its keys are described in ",
        ),
        bold("switchman.conf"),
        roman("(5) and /usr/share/doc/switchman/docs/config.md."),
    ]);
    roff.to_writer(&mut out)?;
    see_also(&["switchmanctl"]).to_writer(&mut out)?;
    page.render_version_section(&mut out)?;

    fs::File::create(path)?.write_all(&out)
}

/// EXIT STATUS, from the table of exit codes.
fn exit_status(binary: Binary) -> Roff {
    let mut roff = Roff::default();
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in exit::rows(binary) {
        roff.control("TP", []);
        roff.text([bold(code)]);
        roff.text([roman(manual::plain(meaning))]);
    }
    roff.control("PP", []);
    roff.text([roman(manual::plain(exit::footnote(binary)))]);
    roff
}

/// switchman.conf(5): the config keys, from the table the parser reads them by.
fn write_config_page(path: &Path) -> std::io::Result<()> {
    let version = format!("switchman {}", env!("CARGO_PKG_VERSION"));
    let mut roff = Roff::default();
    roff.control(
        "TH",
        ["switchman.conf", "5", "", &version, "File Formats Manual"],
    );
    roff.control("SH", ["NAME"]);
    roff.text([roman(
        "switchman.conf - the config file of switchman and switchmanctl",
    )]);
    roff.control("SH", ["DESCRIPTION"]);
    for para in manual::CONFIG_INTRO {
        roff.text([roman(manual::plain(para).replace('*', ""))]);
        roff.control("PP", []);
    }
    roff.control("SH", ["KEYS"]);
    for key in config::KEYS {
        roff.control("TP", []);
        roff.text([
            bold(key.name),
            roman(" ("),
            italic(key.kind.doc()),
            roman(format!("; default: {})", manual::plain(key.default))),
        ]);
        let new = if key.new { "New: " } else { "" };
        roff.text([roman(format!("{new}{}", manual::plain(key.meaning)))]);
    }
    for para in manual::CONFIG_OUTRO {
        roff.control("PP", []);
        roff.text([roman(manual::plain(para))]);
    }
    roff.control("SH", ["FILES"]);
    roff.control("TP", []);
    roff.text([italic(config::DEFAULT_PATH)]);
    roff.text([roman("The default config file.")]);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([
        bold("switchman"),
        roman("(1), "),
        bold("switchmanctl"),
        roman("(1), "),
        bold("switchmanctl-check-config"),
        roman("(1), and the README in /usr/share/doc/switchman."),
    ]);
    let mut out = Vec::new();
    roff.to_writer(&mut out)?;
    fs::File::create(path)?.write_all(&out)
}

fn table(roff: &mut Roff, rows: &[(&str, &str)]) {
    for (key, meaning) in rows {
        roff.control("TP", []);
        roff.text([bold(*key)]);
        roff.text([roman(*meaning)]);
    }
}
