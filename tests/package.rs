//! The Debian package as an operator meets it: built by scripts/package, installed on this
//! machine with `dpkg -i`, used (`--version`, the man pages, the completions, the conffile),
//! and removed and purged again. Needs root, and a machine where switchman is not installed
//! from elsewhere: the test would replace it and remove it.

use std::path::Path;
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What the package must install, as `dpkg-deb -c` lists it (without the leading `.`).
const FILES: &[&str] = &[
    "/usr/bin/switchman",
    "/usr/bin/switchmanctl",
    "/etc/switchman.conf",
    "/usr/share/man/man1/switchman.1.gz",
    "/usr/share/man/man1/switchmanctl.1.gz",
    "/usr/share/man/man1/switchmanctl-check-crontab.1.gz",
    "/usr/share/man/man1/switchmanctl-check-config.1.gz",
    "/usr/share/man/man5/switchman.conf.5.gz",
    "/usr/share/bash-completion/completions/switchman",
    "/usr/share/bash-completion/completions/switchmanctl",
    "/usr/share/zsh/vendor-completions/_switchman",
    "/usr/share/zsh/vendor-completions/_switchmanctl",
    "/usr/share/fish/vendor_completions.d/switchman.fish",
    "/usr/share/fish/vendor_completions.d/switchmanctl.fish",
    "/usr/share/doc/switchman/copyright",
    "/usr/share/doc/switchman/README.md",
    "/usr/share/doc/switchman/CHANGELOG.md",
    "/usr/share/doc/switchman/docs/guide.md",
    "/usr/share/doc/switchman/docs/config.md",
    "/usr/share/doc/switchman/docs/exit-codes.md",
    "/usr/share/doc/switchman/examples/switchman-example.service",
    "/usr/share/doc/switchman/examples/switchman-example.timer",
];

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// Runs the command, which must succeed, and returns its stdout.
fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The package's state in dpkg's database: `ii` installed, `rc` removed with its conffiles
/// left, `None` unknown or purged.
fn dpkg_state() -> Option<String> {
    let out = run("dpkg-query", &["-W", "-f=${db:Status-Abbrev}", "switchman"]);
    let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !state.is_empty() && state != "un").then_some(state)
}

/// Purges the package when the test ends, passed or not, so that the machine is left as found.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "switchman"]);
    }
}

#[test]
fn the_debian_package_installs_runs_and_uninstalls() {
    assert_eq!(
        dpkg_state(),
        None,
        "a switchman package is installed on this machine; this test would replace and remove it"
    );
    let built = ok(&format!("{ROOT}/scripts/package"), &[]);
    let deb = built
        .lines()
        .last()
        .expect("scripts/package names the .deb");
    assert!(deb.ends_with(".deb") && Path::new(deb).exists(), "{built}");

    let listing = ok("dpkg-deb", &["-c", deb]);
    for file in FILES {
        assert!(
            listing.contains(&format!(" .{file}\n")),
            "{file} in:\n{listing}"
        );
    }
    let fields = ok("dpkg-deb", &["-f", deb, "Package", "Version", "Depends"]);
    assert!(
        fields.contains("Package: switchman\n")
            && fields.contains(&format!("Version: {}-1\n", env!("CARGO_PKG_VERSION"))),
        "{fields}"
    );
    assert_eq!(
        ok("dpkg-deb", &["-I", deb, "conffiles"]),
        "/etc/switchman.conf\n"
    );

    let _purge = Purge;
    ok("dpkg", &["-i", deb]);
    assert_eq!(dpkg_state().as_deref(), Some("ii"));
    for file in FILES {
        assert!(Path::new(file).exists(), "{file} is installed");
    }
    assert_eq!(
        ok("/usr/bin/switchman", &["--version"]),
        format!("switchman {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert!(ok("/usr/bin/switchmanctl", &["--version"]).starts_with("switchmanctl "));
    // The installed config is the example, and valid: check-config finds nothing in it.
    assert_eq!(ok("/usr/bin/switchmanctl", &["check-config"]), "");

    let page = ok("man", &["-l", "/usr/share/man/man1/switchman.1.gz"]);
    for needle in [
        "SYNOPSIS",
        "switchman [OPTIONS] [--] CMD [ARGS]...",
        "EXAMPLES",
        "switchman --lockname nightly-backup -- /usr/local/bin/backup --all",
        "ENVIRONMENT",
        "SWITCHMAN_FENCING_TOKEN",
        "EXIT STATUS",
        "SEE ALSO",
    ] {
        assert!(page.contains(needle), "{needle} in:\n{page}");
    }
    // By name, as an operator would look: man finds the installed pages.
    assert_eq!(
        ok("man", &["-w", "switchmanctl-check-crontab"]).trim(),
        "/usr/share/man/man1/switchmanctl-check-crontab.1.gz"
    );
    assert!(ok("man", &["switchmanctl"]).contains("check-config"));
    // The config's page, by section and name, lists every key of the code's table.
    assert_eq!(
        ok("man", &["-w", "5", "switchman.conf"]).trim(),
        "/usr/share/man/man5/switchman.conf.5.gz"
    );
    let conf = ok("man", &["5", "switchman.conf"]);
    for key in switchman::config::KEYS {
        assert!(conf.contains(key.name), "{} in:\n{conf}", key.name);
    }
    // bash loads the completion and binds it to the command.
    let bound = ok(
        "bash",
        &[
            "-c",
            "source /usr/share/bash-completion/completions/switchman && complete -p switchman",
        ],
    );
    assert!(bound.contains("switchman"), "{bound}");

    // The example units are valid as systemd reads them (their Documentation= pages included).
    let units = tempfile::tempdir().unwrap();
    for unit in ["service", "timer"] {
        std::fs::copy(
            format!("/usr/share/doc/switchman/examples/switchman-example.{unit}"),
            units.path().join(format!("switchman-example.{unit}")),
        )
        .unwrap();
    }
    let timer = units.path().join("switchman-example.timer");
    let verify = run("systemd-analyze", &["verify", timer.to_str().unwrap()]);
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    ok("dpkg", &["-r", "switchman"]);
    assert_eq!(
        dpkg_state().as_deref(),
        Some("rc"),
        "removed, conffile kept"
    );
    for file in FILES.iter().filter(|f| **f != "/etc/switchman.conf") {
        assert!(!Path::new(file).exists(), "{file} is removed");
    }
    assert!(
        Path::new("/etc/switchman.conf").exists(),
        "a removed package keeps its conffile"
    );
    ok("dpkg", &["--purge", "switchman"]);
    assert_eq!(dpkg_state(), None);
    assert!(
        !Path::new("/etc/switchman.conf").exists(),
        "purge removes it"
    );
}
