use super::*;

/// `conf` of ZooKeeper 3.8 (abridged), with a real ensemble's numbers.
const CONF: &str = "clientPort=2181\nsecureClientPort=-1\ndataDir=/var/lib/zookeeper/version-2\n\
                    tickTime=3000\nmaxClientCnxns=60\nminSessionTimeout=6000\n\
                    maxSessionTimeout=60000\nserverId=1\n";

fn config(text: &str) -> Config {
    Config::parse(std::path::Path::new("/etc/s.conf"), text.as_bytes()).unwrap()
}

#[test]
fn conf_and_the_admin_server_say_the_same_settings() {
    let settings = Settings {
        tick_time: Duration::from_secs(3),
        min_session_timeout: Duration::from_secs(6),
        max_session_timeout: Duration::from_secs(60),
        max_client_cnxns: 60,
    };
    assert_eq!(parse_conf(CONF), Some(settings.clone()));
    let admin = serde_json::json!({"command": "configuration", "tick_time": 3000,
        "min_session_timeout": 6000, "max_session_timeout": 60000, "max_client_cnxns": 60,
        "client_port": 2181, "error": null});
    assert_eq!(parse_admin(&admin), Some(settings));
    assert_eq!(
        parse_conf("conf is not executed because it is not in the whitelist.\n"),
        None
    );
}

#[test]
fn the_default_tick_on_a_slower_ensemble_is_a_problem_naming_both() {
    let s = parse_conf(CONF).unwrap();
    let p = problems(
        &config(r#"{"prefix": "/p", "zkhosts": "zk1:2181"}"#),
        "zk1:2181",
        &s,
        None,
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(
            "key \"server_tick_time\" is 2s but ZooKeeper at zk1:2181 runs with tickTime=3000"
        ),
        "{p:?}"
    );
    let fine = config(
        r#"{"prefix": "/p", "zkhosts": "zk1:2181", "server_tick_time": 3, "session_timeout": 12}"#,
    );
    assert_eq!(
        problems(&fine, "zk1:2181", &s, Some(60)),
        Vec::<String>::new()
    );
}

#[test]
fn session_timeout_out_of_bounds_and_too_many_runs_are_problems() {
    let s = parse_conf(CONF).unwrap();
    let c = config(
        r#"{"prefix": "/p", "zkhosts": "zk1:2181", "server_tick_time": 3, "session_timeout": 120}"#,
    );
    let p = problems(&c, "zk1:2181", &s, Some(61));
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].contains("\"session_timeout\" is 120s") && p[0].contains("get 60s"),
        "{p:?}"
    );
    assert!(
        p[1].contains("61 runs") && p[1].contains("maxClientCnxns=60"),
        "{p:?}"
    );
    let unlimited = Settings {
        max_client_cnxns: 0,
        ..s
    };
    let c = config(
        r#"{"prefix": "/p", "zkhosts": "zk1:2181", "server_tick_time": 3, "session_timeout": 12}"#,
    );
    assert_eq!(
        problems(&c, "zk1:2181", &unlimited, Some(10_000)),
        Vec::<String>::new()
    );
}
