//! End-to-end tests of `switchmanctl serve` (docs/operators.md: "serve") in a real browser:
//! Debian's Chromium, headless, driven over WebDriver (test-support's `browser.rs`), against a
//! real ZooKeeper and real switchman runs. The page follows a lock taken and given back without
//! a reload, shows an outage of ZooKeeper as a banner and recovers by itself, and is whole
//! without JavaScript; fifty event streams share one watch and one pass; the listener is on
//! 127.0.0.1 unless told, and no answer holds a secret of the config.

use switchman_test_support as support;

use serde_json::json;
use support::{
    Browser, Ensemble, EventStream, Job, Locator, SASL_PASSWORD, SASL_USER, await_children,
    cmd_waiting, credentials_file, finish_ok, has_item, lock_argv, run_command, set_prefix_data,
    shared_ensemble, spawn_command, start_tls_server, tls_connect_string, zk,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Child;
use zookeeper_client::{Acls, Client, CreateMode};

/// switchman as host `fqdn`, running ARGS.
fn spawn_as(job: &Job, fqdn: &str, args: &[&str]) -> Child {
    let mut cmd = job.command(args);
    cmd.env("SWITCHMAN_FQDN", fqdn);
    spawn_command(cmd)
}

/// A GET over HTTP/1.0: (status, head, body).
async fn get(addr: &str, target: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {target} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string())
}

/// A lock node as another host's switchman leaves it.
async fn lock_node(client: &Client, job: &Job, name: &str, holder: &str) {
    let folder = CreateMode::Persistent.with_acls(Acls::anyone_all());
    client.mkdir(&job.locks_path(), &folder).await.unwrap();
    let mode = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    client
        .create(&job.lock_path(name), holder.as_bytes(), &mode)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_page_follows_a_lock_live_and_shows_an_outage_until_it_ends() {
    let mut ensemble = Ensemble::start(1);
    let job = Job::new("serve-live", &ensemble.connect_string(), json!({}));
    let (mut server, addr) = job.serve(&[]).await;
    let browser = Browser::open(true).await;
    browser.goto(&format!("http://{addr}/")).await.unwrap();
    assert_eq!(browser.text_of("#locks + p").await, "No lock is held.");
    browser.text_of("#live.live").await;
    // Gone if the page is loaded again: what follows must come without a reload.
    browser
        .execute("window.notReloaded = true", vec![])
        .await
        .unwrap();

    let a_cmd = cmd_waiting("a", 0);
    let a = spawn_as(&job, "web1.example", &lock_argv("backup", &a_cmd));
    let token = job.fencing_token("a").await;
    let row = browser.text_of(r#"tr[data-lock="backup"]"#).await;
    assert!(row.starts_with("backup web1.example"), "{row}");
    assert!(
        row.ends_with(&format!(" {token}")),
        "the fencing token: {row}"
    );
    job.go("a");
    finish_ok(a).await;
    browser.until_gone(r#"tr[data-lock="backup"]"#).await;

    ensemble.stop(0);
    let banner = browser.text_of("main .banner").await;
    assert!(banner.contains("ZooKeeper cannot be read"), "{banner}");
    browser.find(Locator::Css("main.stale")).await.unwrap();
    ensemble.start_member(0);
    browser.until_gone("main .banner").await;
    assert_eq!(browser.text_of("#locks + p").await, "No lock is held.");
    let kept = browser.execute("return window.notReloaded", vec![]);
    assert_eq!(
        kept.await.unwrap(),
        json!(true),
        "the page was loaded again"
    );

    browser.close().await;
    server.kill().await.unwrap();
}

#[tokio::test]
async fn fifty_event_streams_share_one_watch_and_one_pass() {
    let ensemble = shared_ensemble();
    let job = Job::new("serve-fifty", &ensemble.connect_string(), json!({}));
    let client = zk(&ensemble.connect_string()).await;
    set_prefix_data(&client, &job.prefix, "{}").await;
    let (mut server, addr) = job.serve(&[]).await;
    let mut streams = Vec::new();
    for _ in 0..50 {
        let mut events = EventStream::open(&addr).await;
        events.next().await;
        streams.push(events);
    }
    // One that stops reading, and one that goes away: neither holds up the others.
    let _stalled = EventStream::open(&addr).await;
    drop(EventStream::open(&addr).await);

    lock_node(&client, &job, "shared", "web7.example 77").await;
    let mut ids = Vec::new();
    for events in &mut streams {
        ids.push(events.until(r#"data-lock="shared""#).await);
    }
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one view, from one pass, for all: {ids:?}"
    );
    let watchers: Vec<String> = ensemble
        .four_letter_word(0, "wchp")
        .unwrap_or_default()
        .split('\n')
        .skip_while(|l| *l != job.prefix)
        .skip(1)
        .take_while(|l| l.starts_with('\t'))
        .map(str::to_string)
        .collect();
    assert_eq!(
        watchers.len(),
        1,
        "one session watches the prefix: {watchers:?}"
    );

    drop(streams);
    server.kill().await.unwrap();
}

/// A fleet at work: a lock held with a run waiting in line for it, a resource leased with a
/// run queued for it, groups, and a job's runs; the page without JavaScript shows it all, as
/// the JSON does; with JavaScript it fits a phone and follows the reader's colour scheme.
/// `SWITCHMAN_SCREENSHOT=docs/serve.png` keeps a picture of it (docs/operators.md).
#[tokio::test]
async fn the_page_shows_a_busy_fleet_without_javascript_too() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("serve-busy", &zk_hosts, json!({"record_runs": true}));
    let client = zk(&zk_hosts).await;
    set_prefix_data(
        &client,
        &job.prefix,
        r#"{"groups": {"backup-hosts": ["web1.example", "web2.example"], "all": ["backup-hosts", "web3.example"]},
            "resources": ["db"]}"#,
    )
    .await;
    let run_as = |fqdn, args: &[&str]| {
        let mut cmd = job.command(args);
        cmd.env("SWITCHMAN_FQDN", fqdn);
        run_command(cmd)
    };
    assert_eq!(
        run_as("web3.example", &["--lockname", "report", "true"])
            .await
            .0,
        0
    );
    let failing = [
        "--capture-output",
        "--lockname",
        "report",
        "--",
        "sh",
        "-c",
        "echo 'disk <full>'; exit 3",
    ];
    assert_eq!(run_as("web1.example", &failing).await.0, 3);
    assert_eq!(
        run_as("web2.example", &["--lockname", "rotate-logs", "true"])
            .await
            .0,
        0
    );
    let backup_cmd = cmd_waiting("backup", 0);
    let backup = spawn_as(
        &job,
        "web1.example",
        &lock_argv("nightly-backup", &backup_cmd),
    );
    job.fencing_token("backup").await;
    let second_cmd = cmd_waiting("second", 0);
    let second_args = [
        &["--wait", "5m"][..],
        &lock_argv("nightly-backup", &second_cmd),
    ]
    .concat();
    let second = spawn_as(&job, "web2.example", &second_args);
    let line = job.line_path("nightly-backup");
    await_children(&client, &line, "the second run waits in line", |c| {
        !c.is_empty()
    })
    .await;
    let (reindex_cmd, vacuum_cmd) = (cmd_waiting("reindex", 0), cmd_waiting("vacuum", 0));
    let leased = |lock, cmd| [&["--lease", "db=1:1"][..], &lock_argv(lock, cmd)].concat();
    let reindex = spawn_as(&job, "web2.example", &leased("reindex", &reindex_cmd));
    job.fencing_token("reindex").await;
    let vacuum = spawn_as(&job, "web3.example", &leased("vacuum", &vacuum_cmd));
    let queue = job.queue_path("db");
    await_children(&client, &queue, "vacuum queues", |c| has_item(c, "vacuum")).await;
    let (mut server, addr) = job.serve(&[]).await;

    let (status, _, body) = get(&addr, "/api/status").await;
    assert_eq!(status, 200);
    let out = job
        .ctl_command(&["status", "--json"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        body,
        String::from_utf8_lossy(&out.stdout),
        "/api/status is status --json"
    );

    let browser = Browser::open(false).await;
    browser.goto(&format!("http://{addr}/")).await.unwrap();
    // A browser that runs no script lays out what <noscript> holds (WebDriver's text leaves it out).
    let noscript = browser.find(Locator::Css("#live noscript")).await.unwrap();
    let (_, _, width, _) = noscript.rectangle().await.unwrap();
    assert!(width > 0.0, "scripts run");
    let row = browser.text_of(r#"tr[data-lock="nightly-backup"]"#).await;
    assert!(row.starts_with("nightly-backup web1.example "), "{row}");
    let held = browser
        .find(Locator::Css(r#"tr[data-lock="nightly-backup"] time"#))
        .await
        .unwrap();
    let since = held.attr("datetime").await.unwrap().unwrap();
    assert!(since.ends_with('Z') && since.len() == 24, "{since}");
    let waiting = browser.text_of("#lines + div tbody tr").await;
    assert!(
        waiting.starts_with("nightly-backup 1 web2.example "),
        "{waiting}"
    );
    let db = browser.text_of("#resources + div tbody tr").await;
    assert!(
        db.starts_with("db 1 of 1 1 "),
        "used, capacity, queued: {db}"
    );
    let meter = browser
        .find(Locator::Css("#resources + div meter"))
        .await
        .unwrap();
    assert_eq!(meter.attr("max").await.unwrap().as_deref(), Some("1"));
    let queued = browser.text_of("#queues + div tbody tr").await;
    assert!(queued.starts_with("db 1 vacuum web3.example "), "{queued}");
    let leases = browser.text_of("#leases + div tbody tr").await;
    assert!(leases.starts_with("db 1 web2.example "), "{leases}");
    let runs = browser
        .find_all(Locator::Css(r#"tbody[data-job="report"] tr"#))
        .await
        .unwrap();
    assert_eq!(
        runs.len(),
        2,
        "the failed run, and the last success behind it"
    );
    assert!(runs[0].text().await.unwrap().contains("failed (exit 3)"));
    assert!(runs[1].text().await.unwrap().contains("succeeded"));
    let groups = browser.text_of("#groups + div tbody").await;
    assert!(
        groups.contains("all web1.example, web2.example, web3.example"),
        "{groups}"
    );
    let headers = browser
        .find_all(Locator::Css("table th[scope=col]"))
        .await
        .unwrap();
    assert!(headers.len() > 20, "tables with headers");
    // The job's own page: its history, and a run's output on demand.
    let link = browser
        .find(Locator::Css(r#"tbody[data-job="report"] a"#))
        .await
        .unwrap();
    link.click().await.unwrap();
    let failed = browser.text_of("#history + div tbody tr").await;
    assert!(
        failed.starts_with("failed (exit 3) web1.example "),
        "{failed}"
    );
    let summary = browser
        .find(Locator::Css("#history + div summary"))
        .await
        .unwrap();
    summary.click().await.unwrap();
    assert_eq!(
        browser.text_of("#history + div details pre").await,
        "disk <full>"
    );
    browser.close().await;

    let browser = Browser::open(true).await;
    browser.goto(&format!("http://{addr}/")).await.unwrap();
    browser.text_of("#live.live").await;
    if let Ok(path) = std::env::var("SWITCHMAN_SCREENSHOT") {
        let height = browser
            .execute("return document.documentElement.scrollHeight", vec![])
            .await
            .unwrap();
        let height = height.as_u64().unwrap() as u32;
        browser.set_window_size(1100, height + 160).await.unwrap();
        let png = browser.screenshot().await.unwrap();
        std::fs::write(&path, png).unwrap();
        eprintln!("wrote {path}");
    }
    // A phone: the page is no wider than the screen; a wide table scrolls within itself.
    browser.set_window_size(390, 844).await.unwrap();
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth + 1";
    browser.until("the page fits a phone's width", fits).await;
    let dark = r#"return [...document.styleSheets].some(s => [...s.cssRules].some(r =>
                   r.media && r.media.mediaText.includes("prefers-color-scheme: dark")))"#;
    assert_eq!(browser.execute(dark, vec![]).await.unwrap(), json!(true));
    browser.close().await;

    for name in ["backup", "second", "reindex", "vacuum"] {
        job.go(name);
    }
    for run in [backup, second, reindex, vacuum] {
        finish_ok(run).await;
    }
    server.kill().await.unwrap();
}

/// Every answer, on a secured ensemble (mutual TLS, SASL credentials), read as the config says;
/// none holds the password, a key or anything else of the config but the prefix.
#[tokio::test]
async fn serve_is_on_loopback_unless_told_and_never_shows_a_secret() {
    let (ensemble, pki) = start_tls_server("need", true);
    let secrets = tempfile::tempdir().unwrap();
    let password = format!("{SASL_USER}:{SASL_PASSWORD}");
    let creds = credentials_file(secrets.path(), "creds", &password, 0o600);
    let job = Job::new(
        "serve-secret",
        &tls_connect_string(&ensemble),
        json!({
            "auth": {"scheme": "sasl-digest", "credentials_file": creds},
            "acl": "creator",
            "tls": pki.tls_config("ca.pem", Some("client")),
        }),
    );
    assert_eq!(job.run(&["--lockname", "secured", "true"]).await.0, 0);
    let (mut server, addr) = job.serve(&["--listen", "0"]).await;
    assert!(
        addr.starts_with("127.0.0.1:"),
        "a port alone is on 127.0.0.1: {addr}"
    );

    let key = std::fs::read_to_string(pki.file("client.key")).unwrap();
    let key_line = key.lines().nth(1).unwrap().to_string();
    let mut answers = Vec::new();
    for target in [
        "/",
        "/api/status",
        "/metrics",
        "/jobs/secured",
        "/assets/page.js",
        "/nowhere",
    ] {
        let (status, head, body) = get(&addr, target).await;
        assert_ne!(status, 503, "{target}: {body}");
        answers.push(format!("{head}\n{body}"));
    }
    let mut events = EventStream::open(&addr).await;
    let (_, first) = events.next().await;
    answers.push(first);
    for answer in &answers {
        for secret in [SASL_PASSWORD, &key_line] {
            assert!(!answer.contains(secret), "a secret in:\n{answer}");
        }
    }
    assert!(answers[1].contains("\"prefix\""), "{}", answers[1]);
    drop(events);
    server.kill().await.unwrap();

    // Without --listen: 127.0.0.1:9829 (or, if another listens there, the error naming it).
    let mut default = job.ctl_command(&["serve"]).spawn().unwrap();
    let mut said = BufReader::new(default.stderr.take().unwrap()).lines();
    let line = said.next_line().await.unwrap().unwrap_or_default();
    assert!(
        line == "switchmanctl: serving the status page on http://127.0.0.1:9829/"
            || line.starts_with("switchmanctl: cannot listen on 127.0.0.1:9829: "),
        "{line}"
    );
    default.kill().await.unwrap();
}

#[tokio::test]
async fn a_bad_listen_address_is_a_usage_error_and_a_taken_one_74() {
    let job = Job::new("serve-bad", "127.0.0.1:1", json!({}));
    let out = job
        .ctl_command(&["serve", "--listen", "web1:80"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("--listen") && stderr.contains("web1:80"),
        "{stderr}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = job
        .ctl_command(&["serve", "--listen", &addr])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(74), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}
