//! `check-config`: the config file as switchman reads it, with what a run keeps out of cron's
//! mail (unknown keys: docs/config.md) said loudly, the sinks a run would fail to open,
//! a `metrics_dir` its runs could not write in, and the numbers that must match the servers'
//! own settings (see `server_settings`).

use super::server_settings;
use super::{Ctl, Outcome, PROBLEMS, display_name, print, read_input};
use crate::config::Config;
use crate::error::Error;
use crate::logging;
use crate::metrics;

/// What to check against the servers: the AdminServer's port (for servers that do not answer
/// `conf`) and how many runs the operator expects at once on one host, if any.
pub(super) struct Against {
    pub admin_port: u16,
    pub concurrent_runs: Option<u64>,
}

pub(super) async fn check_config(ctl: &Ctl, against: &Against) -> Outcome {
    let path = &ctl.config;
    let bytes = read_input(path)?;
    let file = display_name(path);
    let mut problems = config_problems(&file, &bytes);
    if let Ok(config) = Config::parse(std::path::Path::new(&file), &bytes) {
        problems.extend(server_problems(&file, &config, against).await);
    }
    let report: String = problems.iter().map(|p| format!("{file}: {p}\n")).collect();
    print(&report)?;
    Ok(if report.is_empty() { 0 } else { PROBLEMS })
}

/// What is wrong with the config's numbers against each server's settings. A server that
/// cannot be asked is said on stderr, not counted: the check could not be made (a build
/// machine without access to the ensemble, say), which is not the same as a mismatch.
async fn server_problems(file: &str, config: &Config, against: &Against) -> Vec<String> {
    let servers = crate::zk::secure::servers(&config.zkhosts);
    let asked = servers
        .iter()
        .map(|(host, port)| server_settings::ask(host, *port, against.admin_port));
    let answers = futures::future::join_all(asked).await;
    let mut problems = Vec::new();
    for ((host, port), answer) in servers.iter().zip(answers) {
        let server = format!("{host}:{port}");
        match answer {
            Ok(settings) => problems.extend(server_settings::problems(
                config,
                &server,
                &settings,
                against.concurrent_runs,
            )),
            Err(why) => eprintln!(
                "switchmanctl: {file}: could not check server_tick_time, session_timeout and \
                 maxClientCnxns against ZooKeeper at {server} ({why})"
            ),
        }
    }
    problems
}

/// What is wrong with the config text of `file`, one message each, without the file's name.
fn config_problems(file: &str, bytes: &[u8]) -> Vec<String> {
    let config = match Config::parse(std::path::Path::new(file), bytes) {
        Ok(config) => config,
        Err(Error::Config(message)) => {
            let message = message
                .strip_prefix(&format!("{file}: "))
                .unwrap_or(&message);
            return vec![format!(
                "switchman would refuse this config (exit 78): {message}"
            )];
        }
        Err(e) => return vec![format!("switchman would refuse this config: {e}")],
    };
    let mut problems: Vec<String> = config
        .unknown_keys
        .iter()
        .map(|k| format!("unknown key {k:?} is ignored: a typo, or a key of a newer switchman"))
        .collect();
    let prefix = format!("{file}: ");
    problems.extend(logging::check_sinks(&config).into_iter().map(|p| {
        let p = p.strip_prefix("config error: ").unwrap_or(&p);
        format!(
            "switchman would refuse this config (exit 78): {}",
            p.strip_prefix(&prefix).unwrap_or(p)
        )
    }));
    if let Some(dir) = &config.metrics_dir
        && let Err(why) = metrics::check_dir(dir)
    {
        problems.push(format!(
            "key \"metrics_dir\": {why}; runs would go on without their textfiles"
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        config_problems("/etc/s.conf", text.as_bytes())
    }

    #[test]
    fn a_clean_config_has_no_problems() {
        let example = include_str!("../../conf/switchman.conf").replace(
            "/var/log/switchman.log",
            &std::env::temp_dir()
                .join("switchman.log")
                .display()
                .to_string(),
        );
        assert_eq!(problems(&example), Vec::<String>::new());
    }

    #[test]
    fn unknown_keys_and_refusals_are_named() {
        assert_eq!(
            problems(r#"{"prefix": "/p", "zkhosts": "z:1", "b": 1, "a": 2}"#),
            [
                "unknown key \"a\" is ignored: a typo, or a key of a newer switchman",
                "unknown key \"b\" is ignored: a typo, or a key of a newer switchman",
            ]
        );
        assert_eq!(
            problems(r#"{"zkhosts": "z:1"}"#),
            ["switchman would refuse this config (exit 78): key \"prefix\" is required"]
        );
        let p = problems(r#"{"prefix": "/p", "zkhosts": "z:1", "logfile": "/nonexistent/l"}"#);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(
                "switchman would refuse this config (exit 78): key \"logfile\": \
                              cannot open /nonexistent/l for appending: "
            ),
            "{p:?}"
        );
        let p = problems(r#"{"prefix": "/p", "zkhosts": "z:1", "metrics_dir": "/nonexistent/m"}"#);
        assert_eq!(
            p,
            [
                "key \"metrics_dir\": cannot write in /nonexistent/m: No such file or directory \
              (os error 2); runs would go on without their textfiles"
            ]
        );
        let dir = std::env::temp_dir().display().to_string();
        let ok = format!(r#"{{"prefix": "/p", "zkhosts": "z:1", "metrics_dir": "{dir}"}}"#);
        assert_eq!(problems(&ok), Vec::<String>::new());
    }
}
