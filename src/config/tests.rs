use super::*;

fn parse(text: &str) -> Result<Config> {
    Config::parse(Path::new("/etc/sm.conf"), text.as_bytes())
}

fn config_err(text: &str) -> String {
    match parse(text) {
        Err(Error::Config(m)) => m,
        other => panic!("expected a config error for {text}, got {other:?}"),
    }
}

#[test]
fn minimal_config_gets_defaults() {
    let c = parse(r#"{"prefix": "/a/b/", "zkhosts": "z1:2181,z2:2181/chroot"}"#).unwrap();
    assert_eq!(c.prefix, "/a/b");
    assert_eq!(c.session_timeout, Duration::from_secs(10));
    assert_eq!(c.termination_timeout, Duration::from_secs(10));
    assert_eq!(c.resources_wait_timeout, None);
    assert_eq!(c.busy_exit_code, 0);
    assert_eq!(c.loglevel, LogLevel::Info);
    assert_eq!(c.server_tick_time, Duration::from_secs(2));
    assert!(!c.record_runs);
    assert_eq!(c.logfile_format, LogFormat::Text);
    assert!(!c.journald);
    assert!(c.warnings.is_empty());
}

#[test]
fn record_runs_is_a_boolean() {
    let c = parse(r#"{"prefix": "/p", "zkhosts": "z:1", "record_runs": true}"#).unwrap();
    assert!(c.record_runs);
    let e = config_err(r#"{"prefix": "/p", "zkhosts": "z:1", "record_runs": "yes"}"#);
    assert!(
        e.contains("record_runs") && e.contains("/etc/sm.conf"),
        "{e}"
    );
}

#[test]
fn log_sinks_are_chosen_in_the_config() {
    let c = parse(
        r#"{"prefix": "/p", "zkhosts": "z:1", "logfile": "/l", "logfile_format": "json",
            "journald": true}"#,
    )
    .unwrap();
    assert_eq!(c.logfile_format, LogFormat::Json);
    assert!(c.journald);
    let e = config_err(r#"{"prefix": "/p", "zkhosts": "z:1", "logfile_format": "xml"}"#);
    assert!(
        e.contains("logfile_format") && e.contains("text, json"),
        "{e}"
    );
    let e = config_err(r#"{"prefix": "/p", "zkhosts": "z:1", "journald": "yes"}"#);
    assert!(e.contains("\"journald\" must be true or false"), "{e}");
}

#[test]
fn a_tick_over_a_quarter_of_the_session_is_refused() {
    let e = parse(r#"{"prefix": "/p", "zkhosts": "z:1", "session_timeout": 4}"#).unwrap_err();
    assert_eq!(e.exit_code(), 78);
    assert!(e.to_string().contains("server_tick_time"), "{e}");
    let c =
        parse(r#"{"prefix": "/p", "zkhosts": "z:1", "session_timeout": 4, "server_tick_time": 1}"#);
    assert_eq!(c.unwrap().server_tick_time, Duration::from_secs(1));
}

#[test]
fn all_keys_of_the_original_are_honoured() {
    let c = parse(
        r#"{"prefix": "/p", "zkhosts": "z:1", "logfile": "/tmp/l", "loglevel": "debug",
            "resources_wait_timeout": 5, "termination_timeout": "3", "data_read_len": 100,
            "session_timeout": 1.5, "server_tick_time": 0.1, "busy_exit_code": 75,
            "whatever": 1}"#,
    )
    .unwrap();
    assert_eq!(c.logfile.as_deref(), Some(Path::new("/tmp/l")));
    assert_eq!(c.loglevel, LogLevel::Debug);
    assert_eq!(c.resources_wait_timeout, Some(Duration::from_secs(5)));
    assert_eq!(c.termination_timeout, Duration::from_secs(3));
    assert_eq!(c.data_read_len, 100);
    assert_eq!(c.session_timeout, Duration::from_millis(1500));
    assert_eq!(c.busy_exit_code, 75);
    assert_eq!(c.unknown_keys, ["whatever"]);
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("whatever"));
}

#[test]
fn errors_name_the_file_and_the_key() {
    assert!(config_err("{").contains("/etc/sm.conf is not valid JSON"));
    assert!(config_err("[]").contains("JSON object"));
    assert!(config_err(r#"{"zkhosts": "z:1"}"#).contains("\"prefix\" is required"));
    assert!(config_err(r#"{"prefix": "/p"}"#).contains("\"zkhosts\" is required"));
    assert!(config_err(r#"{"prefix": "p", "zkhosts": "z:1"}"#).contains("absolute"));
    assert!(config_err(r#"{"prefix": "/a//b", "zkhosts": "z:1"}"#).contains("\"prefix\""));
    assert!(config_err(r#"{"prefix": 3, "zkhosts": "z:1"}"#).contains("must be a string"));
    assert!(config_err(r#"{"prefix": "/p", "zkhosts": ""}"#).contains("\"zkhosts\""));
    assert!(config_err(r#"{"prefix": "/p", "zkhosts": "z:x"}"#).contains("\"zkhosts\""));
    let e = config_err(r#"{"prefix": "/p", "zkhosts": "z:1", "session_timeout": "soon"}"#);
    assert!(
        e.contains("/etc/sm.conf") && e.contains("session_timeout"),
        "{e}"
    );
    let e = config_err(r#"{"prefix": "/p", "zkhosts": "z:1", "loglevel": "loud"}"#);
    assert!(e.contains("loglevel"), "{e}");
    let e = config_err(r#"{"prefix": "/p", "zkhosts": "z:1", "busy_exit_code": 300}"#);
    assert!(e.contains("busy_exit_code"), "{e}");
    let e = config_err(r#"{"prefix": "/p", "zkhosts": "z:1", "metrics_dir": "prom"}"#);
    assert!(e.contains("/etc/sm.conf: key \"metrics_dir\""), "{e}");
    let e = config_err(r#"{"prefix": "/p", "zkhosts": "z:1", "metrics_dir": 1}"#);
    assert!(e.contains("\"metrics_dir\" must be a string"), "{e}");
    let c = parse(r#"{"prefix": "/p", "zkhosts": "z:1", "metrics_dir": "/var/lib/prom"}"#);
    assert_eq!(
        c.unwrap().metrics_dir.as_deref(),
        Some(Path::new("/var/lib/prom"))
    );
}

#[test]
fn every_key_of_the_table_is_known_and_no_other() {
    let mut text = String::from(r#"{"prefix": "/p", "zkhosts": "z:1""#);
    for key in KEYS.iter().filter(|k| k.default != "required") {
        text.push_str(&format!(", {:?}: null", key.name));
    }
    text.push_str(r#", "prefixx": 1}"#);
    let c = parse(&text).unwrap();
    assert_eq!(c.unknown_keys, ["prefixx"]);
    assert_eq!(
        c.warnings,
        ["/etc/sm.conf: unknown key \"prefixx\" ignored"]
    );
    let mut names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), KEYS.len(), "a key twice in KEYS");
}

#[test]
fn the_tables_defaults_are_the_parsers() {
    let c = parse(r#"{"prefix": "/p", "zkhosts": "z:1"}"#).unwrap();
    let default = |name: &str| key_named(name).unwrap().default.trim_matches('`');
    let secs = |name: &str| default(name).parse::<f64>().unwrap();
    assert_eq!(
        c.termination_timeout.as_secs_f64(),
        secs("termination_timeout")
    );
    assert_eq!(c.session_timeout.as_secs_f64(), secs("session_timeout"));
    assert_eq!(c.connect_timeout.as_secs_f64(), secs("connect_timeout"));
    assert_eq!(c.server_tick_time.as_secs_f64(), secs("server_tick_time"));
    assert_eq!(secs("resources_wait_timeout"), 0.0);
    assert_eq!(c.resources_wait_timeout, None);
    assert_eq!(c.data_read_len.to_string(), default("data_read_len"));
    assert_eq!(c.busy_exit_code.to_string(), default("busy_exit_code"));
    assert_eq!(c.journald.to_string(), default("journald"));
    assert_eq!(c.record_runs.to_string(), default("record_runs"));
    assert_eq!(default("loglevel"), "info");
    assert_eq!(c.loglevel, LogLevel::Info);
    assert_eq!(default("logfile_format"), "text");
    assert_eq!(c.logfile_format, LogFormat::Text);
    assert_eq!(c.capture_output.to_string(), default("capture_output"));
    assert_eq!(default("output"), "always");
    assert_eq!(c.output, OutputMode::Always);
    assert_eq!(c.output_tail.to_string(), default("output_tail"));
    assert_eq!(c.history.to_string(), default("history"));
}

#[test]
fn output_and_history_are_bounded() {
    let c = parse(
        r#"{"prefix": "/p", "zkhosts": "z:1", "capture_output": true, "output": "on-failure",
            "output_tail": 65536, "history": 4}"#,
    )
    .unwrap();
    assert!(c.capture_output);
    assert_eq!(c.output, OutputMode::OnFailure);
    assert_eq!((c.output_tail, c.history), (65536, 4));
    for (text, needles) in [
        (
            r#""output": "never""#,
            &["\"output\"", "always, on-failure"][..],
        ),
        (r#""output_tail": 65537"#, &["\"output_tail\"", "65536"]),
        (r#""history": 0"#, &["\"history\"", "1 to 100"]),
        (r#""history": 101"#, &["\"history\"", "1 to 100"]),
        (
            r#""history": 100, "output_tail": 4096"#,
            &["\"history\" (100)", "\"output_tail\" (4096)", "262144"],
        ),
    ] {
        let e = config_err(&format!(r#"{{"prefix": "/p", "zkhosts": "z:1", {text}}}"#));
        assert!(e.starts_with("/etc/sm.conf: "), "{e}");
        for needle in needles {
            assert!(e.contains(needle), "{needle} in {e}");
        }
    }
}

#[test]
fn a_value_of_another_type_is_refused_with_the_tables_type() {
    for key in KEYS
        .iter()
        .filter(|k| k.kind != Type::Object && k.kind != Type::Strings)
    {
        let wrong = if key.kind == Type::Boolean { "1" } else { "[]" };
        // For prefix and zkhosts, the later of two values counts, as serde_json reads them.
        let text = format!(
            r#"{{"prefix": "/p", "zkhosts": "z:1", {:?}: {wrong}}}"#,
            key.name
        );
        let e = config_err(&text);
        if key.name == "acl" {
            assert!(e.contains("must be \"creator\" or \"open\""), "{e}");
        } else {
            assert!(
                e.contains(&format!("key {:?} must be {}", key.name, key.kind.want())),
                "{e}"
            );
        }
    }
}

#[test]
fn missing_file_is_a_config_error() {
    let e = Config::load(Path::new("/nonexistent/switchman.conf")).unwrap_err();
    assert_eq!(e.exit_code(), 78);
    assert!(e.to_string().contains("/nonexistent/switchman.conf"));
}

#[test]
fn the_example_config_parses() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/switchman.conf"));
    let c = Config::load(path).unwrap();
    assert_eq!(c.prefix, "/myproject/switchman");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}
