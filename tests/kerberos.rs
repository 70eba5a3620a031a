//! End-to-end tests of SASL GSSAPI (docs/security.md, "Kerberos") against a real MIT KDC with a
//! throwaway realm and Kerberized ZooKeeper servers (JAAS `Server` on `Krb5LoginModule`), all
//! started here on loopback: the KDC once for the binary, each server once for the tests that
//! share it.
//!
//! Every test calls [`kdc`] first: it sets `KRB5_CONFIG` for the process, so that the
//! switchman and switchmanctl started here, and the test's own GSSAPI clients, find the realm.

use switchman_test_support as support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Value, json};
use support::{
    Ensemble, Job, Kdc, Proxy, argv, finish, kdc, lock_argv, run_command, sh, shared_ensemble,
    start_kerberos_server, tree, until_go, write_pid, zk, zk_gssapi,
};
use zookeeper_client::{Acl, Acls, AuthId, Client, CreateMode, Permission};

/// switchman's principal, and another one.
const SWITCHMAN: &str = "switchman/host.example.com";
const OTHER: &str = "other/host.example.com";

/// The realm with the principals every test may use (made once).
fn realm() -> &'static Kdc {
    static PRINCIPALS: OnceLock<()> = OnceLock::new();
    let kdc = kdc();
    PRINCIPALS.get_or_init(|| {
        kdc.add_principal(SWITCHMAN, "-requires_preauth");
        kdc.add_principal(OTHER, "-requires_preauth");
    });
    kdc
}

/// A Kerberized server as ZooKeeper comes: the ACL id is the whole principal.
fn server() -> &'static Ensemble {
    static SERVER: OnceLock<Ensemble> = OnceLock::new();
    let kdc = realm();
    SERVER.get_or_init(|| start_kerberos_server(kdc, &[]))
}

/// The config key `auth` for `principal` (no realm) with `keytab`, if any.
fn auth(kdc: &Kdc, principal: &str, keytab: Option<&Path>) -> Value {
    let mut auth = json!({"scheme": "sasl-gssapi", "principal": kdc.principal(principal)});
    if let Some(k) = keytab {
        auth["keytab"] = k.display().to_string().into();
    }
    auth
}

/// A copy of `principal`'s keytab in `dir`, mode 0600.
fn keytab(kdc: &Kdc, principal: &str, dir: &Path) -> PathBuf {
    kdc.keytab(
        principal,
        &dir.join(format!("{}.keytab", principal.replace('/', "_"))),
        0o600,
    )
}

/// `(scheme, id, permission)` of each entry of the ACL of `path`.
async fn acl_of(client: &Client, path: &str) -> Vec<(String, String, Permission)> {
    let (acl, _) = client.get_acl(path).await.unwrap();
    acl.iter()
        .map(|a| (a.scheme().to_string(), a.id().to_string(), a.permission()))
        .collect()
}

/// A CMD that writes its pid to `NAME.pid` and waits for `NAME.go`.
fn waiting(name: &str) -> Vec<String> {
    sh(format!("{}\n{}", write_pid(name), until_go(name)))
}

/// Runs `job` under lock `lock` with a CMD that would leave a file behind, and checks that it
/// did not run and that the job's prefix holds nothing. Returns the exit code and stderr.
async fn refused(job: &Job, lock: &str) -> (i32, String) {
    let ran = job.file("ran");
    let (code, stderr) = job
        .run(&["--lockname", lock, "touch", ran.to_str().unwrap()])
        .await;
    assert!(!ran.exists(), "CMD ran: {stderr}");
    let anyone = zk(&job.zkhosts).await;
    assert_eq!(
        tree(&anyone, &job.prefix).await,
        Vec::<String>::new(),
        "nothing left behind: {stderr}"
    );
    (code, stderr)
}

#[tokio::test]
async fn a_keytab_runs_and_the_lock_is_the_principal_s_alone() {
    let kdc = realm();
    let zkhosts = server().connect_string();
    let secrets = tempfile::tempdir().unwrap();
    let kt = keytab(kdc, SWITCHMAN, secrets.path());
    let job = Job::new(
        "krb",
        &zkhosts,
        json!({"auth": auth(kdc, SWITCHMAN, Some(&kt)), "fqdn": "a.example"}),
    );
    let cmd = waiting("a");
    let a = job.spawn(&argv(&["--lockname", "nightly"], &cmd));
    let cmd_pid = job.wait_for_pid("a.pid").await;

    // Every node switchman made names the principal, as the server spells it.
    let anyone = zk(&zkhosts).await;
    let lock = job.lock_path("nightly");
    let id = kdc.principal(SWITCHMAN);
    for node in tree(&anyone, &job.prefix).await {
        assert_eq!(
            acl_of(&anyone, &node).await,
            vec![
                ("sasl".to_string(), id.clone(), Permission::ALL),
                ("world".to_string(), "anyone".to_string(), Permission::READ),
            ],
            "{node}"
        );
    }

    // Nobody else may touch the lock: neither an anonymous client nor another principal.
    let ccache = secrets.path().join("other.ccache");
    kdc.kinit(OTHER, &ccache, None);
    let other = zk_gssapi(&zkhosts, &ccache).await;
    let someone = [Acl::new(Permission::ALL, AuthId::anyone())];
    for (who, client) in [("nobody", &anyone), ("another principal", &other)] {
        let refused = [
            client.delete(&lock, None).await.err(),
            client.set_data(&lock, b"mine", None).await.err(),
            client.set_acl(&lock, &someone, None).await.err(),
        ];
        for e in refused {
            assert_eq!(e, Some(zookeeper_client::Error::NoAuth), "{who}");
        }
        let squat = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        let e = client.create(&job.lock_path("x"), b"", &squat).await.err();
        assert_eq!(e, Some(zookeeper_client::Error::NoAuth), "{who} creates");
    }

    // switchmanctl authenticates the same way.
    let (code, stderr) = run_command(job.ctl_command(&["status", "--lock", "nightly"])).await;
    assert_eq!(code, 0, "{stderr}");

    assert!(!support::is_dead(cmd_pid), "CMD runs on");
    job.go("a");
    let (code, stderr) = finish(a).await;
    assert_eq!((code, stderr.as_str()), (0, ""));
}

/// Principals made once for the failure tests: `gone` no longer exists in the realm (its keytab
/// does), `rekeyed` has had its keys changed since its keytab was exported.
fn stale_principals(kdc: &Kdc) {
    static MADE: OnceLock<()> = OnceLock::new();
    MADE.get_or_init(|| {
        kdc.add_principal("gone/host.example.com", "");
        kdc.delete_principal("gone/host.example.com");
        kdc.add_principal("rekeyed/host.example.com", "-requires_preauth");
        kdc.kadmin("cpw -randkey rekeyed/host.example.com");
    });
}

/// Checks a refusal: 77, one line, naming `names`.
fn assert_refused(code: i32, stderr: &str, names: &[&str]) {
    assert_eq!(code, 77, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    for name in names {
        assert!(stderr.contains(name), "names {name}: {stderr}");
    }
}

#[tokio::test]
async fn an_unknown_principal_is_77_naming_it() {
    let kdc = realm();
    stale_principals(kdc);
    let secrets = tempfile::tempdir().unwrap();
    let kt = keytab(kdc, "gone/host.example.com", secrets.path());
    let job = Job::new(
        "krb-unknown",
        &server().connect_string(),
        json!({"auth": auth(kdc, "gone/host.example.com", Some(&kt))}),
    );
    let (code, stderr) = refused(&job, "j").await;
    assert_refused(
        code,
        &stderr,
        &[&kdc.principal("gone/host.example.com"), "does not know"],
    );
    // switchmanctl is refused the same way.
    let (code, stderr) = run_command(job.ctl_command(&["get-data"])).await;
    assert_refused(code, &stderr, &[&kdc.principal("gone/host.example.com")]);
}

#[tokio::test]
async fn a_wrong_keytab_is_77_naming_the_principal_and_the_keytab() {
    let kdc = realm();
    stale_principals(kdc);
    let secrets = tempfile::tempdir().unwrap();
    let zkhosts = server().connect_string();
    // Keys the KDC no longer has for the principal.
    let stale = keytab(kdc, "rekeyed/host.example.com", secrets.path());
    let job = Job::new(
        "krb-stale",
        &zkhosts,
        json!({"auth": auth(kdc, "rekeyed/host.example.com", Some(&stale))}),
    );
    let (code, stderr) = refused(&job, "j").await;
    let principal = kdc.principal("rekeyed/host.example.com");
    assert_refused(code, &stderr, &[&principal, stale.to_str().unwrap()]);
    // Another principal's keytab.
    let others = keytab(kdc, OTHER, secrets.path());
    let job = Job::new(
        "krb-other-keytab",
        &zkhosts,
        json!({"auth": auth(kdc, SWITCHMAN, Some(&others))}),
    );
    let (code, stderr) = refused(&job, "j").await;
    assert_refused(
        code,
        &stderr,
        &[
            &kdc.principal(SWITCHMAN),
            others.to_str().unwrap(),
            "no key",
        ],
    );
}

#[tokio::test]
async fn a_keytab_others_can_read_is_78_naming_file_and_mode() {
    let kdc = realm();
    let secrets = tempfile::tempdir().unwrap();
    let loose = kdc.keytab(SWITCHMAN, &secrets.path().join("loose.keytab"), 0o640);
    let job = Job::new(
        "krb-loose",
        &server().connect_string(),
        json!({"auth": auth(kdc, SWITCHMAN, Some(&loose))}),
    );
    let (code, stderr) = refused(&job, "j").await;
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains(loose.to_str().unwrap()) && stderr.contains("0640"),
        "{stderr}"
    );
    let (code, stderr) = run_command(job.ctl_command(&["get-data"])).await;
    assert_eq!(code, 78, "{stderr}");
}

#[tokio::test]
async fn a_kdc_that_does_not_answer_is_77_naming_the_realm() {
    let kdc = realm();
    let secrets = tempfile::tempdir().unwrap();
    let kt = keytab(kdc, SWITCHMAN, secrets.path());
    // The realm's KDC at a port nobody listens on.
    let dead = kdc.variant_conf("dead-kdc", Some(support::pick_ports(1)[0]), "");
    let job = Job::new(
        "krb-no-kdc",
        &server().connect_string(),
        json!({"auth": auth(kdc, SWITCHMAN, Some(&kt))}),
    );
    let mut cmd = job.command(&[
        "--lockname",
        "j",
        "touch",
        job.file("ran").to_str().unwrap(),
    ]);
    cmd.env("KRB5_CONFIG", &dead);
    let (code, stderr) = run_command(cmd).await;
    assert!(!job.file("ran").exists());
    assert_refused(code, &stderr, &[support::REALM, "KDC"]);
    let anyone = zk(&job.zkhosts).await;
    assert_eq!(tree(&anyone, &job.prefix).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_server_principal_the_kdc_does_not_know_is_77_naming_it() {
    let kdc = realm();
    let secrets = tempfile::tempdir().unwrap();
    let kt = keytab(kdc, SWITCHMAN, secrets.path());
    let mut a = auth(kdc, SWITCHMAN, Some(&kt));
    a["service_host"] = "zk.nowhere.example".into();
    let job = Job::new(
        "krb-no-service",
        &server().connect_string(),
        json!({"auth": a}),
    );
    let (code, stderr) = refused(&job, "j").await;
    assert_refused(code, &stderr, &["zookeeper/zk.nowhere.example"]);
}

#[tokio::test]
async fn a_server_that_does_not_accept_gssapi_is_77_naming_it() {
    let kdc = realm();
    let secrets = tempfile::tempdir().unwrap();
    let kt = keytab(kdc, SWITCHMAN, secrets.path());
    // A plain server: no JAAS section, no SASL provider; the KDC knows its principal, though.
    let zkhosts = shared_ensemble().connect_string();
    let job = Job::new(
        "krb-plain-server",
        &zkhosts,
        json!({"auth": auth(kdc, SWITCHMAN, Some(&kt))}),
    );
    let (code, stderr) = refused(&job, "j").await;
    assert_refused(code, &stderr, &[&zkhosts, &kdc.principal(SWITCHMAN)]);
}

#[tokio::test]
async fn an_expired_ticket_in_the_credential_cache_is_77_naming_it() {
    let kdc = realm();
    let secrets = tempfile::tempdir().unwrap();
    let ccache = secrets.path().join("cc");
    kdc.kinit(SWITCHMAN, &ccache, Some("1s"));
    let job = Job::new(
        "krb-expired",
        &server().connect_string(),
        json!({"auth": auth(kdc, SWITCHMAN, None)}),
    );
    // klist -s fails once the cache holds no valid ticket.
    support::wait_until("the ticket expires", || {
        !std::process::Command::new("klist")
            .args(["-s", "-c"])
            .arg(&ccache)
            .status()
            .unwrap()
            .success()
    })
    .await;
    let mut cmd = job.command(&[
        "--lockname",
        "j",
        "touch",
        job.file("ran").to_str().unwrap(),
    ]);
    cmd.env("KRB5CCNAME", format!("FILE:{}", ccache.display()));
    let (code, stderr) = run_command(cmd).await;
    assert!(!job.file("ran").exists());
    assert_refused(code, &stderr, &[&kdc.principal(SWITCHMAN), "expired"]);
}

#[tokio::test]
async fn a_ticket_in_the_credential_cache_runs() {
    let kdc = realm();
    let secrets = tempfile::tempdir().unwrap();
    let ccache = secrets.path().join("cc");
    kdc.kinit(SWITCHMAN, &ccache, None);
    let job = Job::new(
        "krb-ccache",
        &server().connect_string(),
        json!({"auth": auth(kdc, SWITCHMAN, None)}),
    );
    let mut cmd = job.command(&["--lockname", "j", "true"]);
    cmd.env("KRB5CCNAME", format!("FILE:{}", ccache.display()));
    let (code, stderr) = run_command(cmd).await;
    assert_eq!((code, stderr.as_str()), (0, ""));
    let anyone = zk(&job.zkhosts).await;
    let acl = acl_of(&anyone, &job.locks_path()).await;
    assert_eq!(
        acl[0],
        ("sasl".into(), kdc.principal(SWITCHMAN), Permission::ALL)
    );
    // A cache whose ticket is another principal's is refused, naming both.
    let other = secrets.path().join("other-cc");
    kdc.kinit(OTHER, &other, None);
    let mut cmd = job.command(&["--lockname", "j", "true"]);
    cmd.env("KRB5CCNAME", format!("FILE:{}", other.display()));
    let (code, stderr) = run_command(cmd).await;
    assert_refused(code, &stderr, &[&kdc.principal(SWITCHMAN)]);
}

#[tokio::test]
async fn a_clock_skew_is_77_naming_the_realm() {
    let kdc = realm();
    let secrets = tempfile::tempdir().unwrap();
    let kt = keytab(kdc, SWITCHMAN, secrets.path());
    let job = Job::new(
        "krb-skew",
        &server().connect_string(),
        json!({"auth": auth(kdc, SWITCHMAN, Some(&kt))}),
    );
    // MIT's client makes up for a clock some minutes off the KDC's (it retries with the KDC's
    // time), and ZooKeeper takes the result; clocks two hours apart, with tickets of one, make
    // every ticket expired by our clock as soon as it is issued.
    let mut cmd = tokio::process::Command::new("faketime");
    cmd.args(["-f", "+2h", support::switchman_bin(), "-c"])
        .arg(&job.config)
        .args(["--lockname", "j", "touch"])
        .arg(job.file("ran"))
        .env_remove("DEBUG");
    let (code, stderr) = run_command(cmd).await;
    assert!(!job.file("ran").exists());
    assert_refused(code, &stderr, &[support::REALM, "clock"]);
    let anyone = zk(&job.zkhosts).await;
    assert_eq!(tree(&anyone, &job.prefix).await, Vec::<String>::new());
}

#[tokio::test]
async fn the_acl_id_follows_the_servers_principal_rewriting() {
    let kdc = realm();
    // A server that strips host and realm from SASL ids, as some Hadoop ensembles do.
    static STRIPPING: OnceLock<Ensemble> = OnceLock::new();
    let server = STRIPPING.get_or_init(|| {
        start_kerberos_server(
            kdc,
            &[
                "zookeeper.kerberos.removeHostFromPrincipal=true",
                "zookeeper.kerberos.removeRealmFromPrincipal=true",
            ],
        )
    });
    let secrets = tempfile::tempdir().unwrap();
    let kt = keytab(kdc, SWITCHMAN, secrets.path());
    let job = Job::new(
        "krb-stripped",
        &server.connect_string(),
        json!({"auth": auth(kdc, SWITCHMAN, Some(&kt))}),
    );
    let (code, stderr) = job.run(&["--lockname", "j", "true"]).await;
    assert_eq!((code, stderr.as_str()), (0, ""));
    let anyone = zk(&job.zkhosts).await;
    let acl = acl_of(&anyone, &job.locks_path()).await;
    assert_eq!(
        acl[0],
        ("sasl".to_string(), "switchman".to_string(), Permission::ALL)
    );
    // The log says which id the servers made.
    assert!(job.read("switchman.log").contains("sasl:switchman"));
}

/// ZooKeeper authenticates at connect and at reconnect only: a reconnect after the first
/// ticket's lifetime needs the newer one that switchman got from the keytab meanwhile.
#[tokio::test]
async fn a_reconnect_after_the_ticket_s_lifetime_authenticates_from_the_keytab() {
    const SHORT: &str = "shortlived/host.example.com";
    let kdc = realm();
    static MADE: OnceLock<()> = OnceLock::new();
    MADE.get_or_init(|| kdc.add_principal(SHORT, "-requires_preauth -maxlife \"3 seconds\""));
    let proxy = Proxy::start_framed(&[server().client_port(0)]);
    let secrets = tempfile::tempdir().unwrap();
    let kt = keytab(kdc, SHORT, secrets.path());
    let job = Job::new(
        "krb-reconnect",
        &proxy.connect_string(),
        json!({"auth": auth(kdc, SHORT, Some(&kt))}),
    );
    let before = kdc.tickets_issued(&kdc.principal(SHORT));
    let cmd = waiting("a");
    let a = job.spawn(&lock_argv("j", &cmd));
    job.wait_for_pid("a.pid").await;
    let started = std::time::Instant::now();
    // The first ticket has expired, the harness's one second of clock skew included, and
    // newer ones came from the keytab.
    support::wait_until("the first ticket's end, and newer ones", || {
        kdc.tickets_issued(&kdc.principal(SHORT)) >= before + 3
            && started.elapsed() > std::time::Duration::from_secs(5)
    })
    .await;
    // The server's own word that it authenticated the principal, at connect and reconnect.
    let authenticated = || {
        let needle = format!("authenticationID={}", kdc.principal(SHORT));
        server()
            .log(0)
            .lines()
            .filter(|l| l.contains("Successfully authenticated client") && l.contains(&needle))
            .count()
    };
    let before = authenticated();
    proxy.reset_all();
    support::wait_until("a reconnect", || proxy.connects_answered() >= 2).await;
    support::wait_until("an authenticated reconnect", || authenticated() > before).await;
    job.go("a");
    let (code, stderr) = finish(a).await;
    assert_eq!((code, stderr.as_str()), (0, ""), "the session was kept");
    let log = job.read("switchman.log");
    assert!(log.contains("disconnected from ZooKeeper"), "{log}");
}
