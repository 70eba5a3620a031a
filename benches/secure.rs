//! What authentication, ACLs and TLS cost a plain run, paired against an open plain-TCP run in
//! the same round, on the same server.
//!
//!     cargo bench --bench secure
//!
//! One private standalone server (tickTime 100 ms) with the Netty connection factory, a plain
//! `clientPort` and a TLS `secureClientPort` (`ssl.clientAuth=none`), and SASL DIGEST-MD5
//! configured. Each round runs every variant once, in turn, as `switchman --lockname L -- true`
//! (session_timeout 10 s), each on a prefix of its own whose folders a warm-up run made; so a
//! variant's cost is the median, over the rounds, of its wall time less the open plain run's of
//! the same round. Requests are `zk_packets_received` of the server's `mntr`, before and after,
//! less the bench's own `mntr`. Failed connects are the connection attempts the client library
//! gave up on and retried (its warnings in the job's log), warm-up included. `SECURE_RUNS`
//! rounds (default 30).
//!
//! Kerberos (SASL GSSAPI with a keytab) needs a server of its own (JAAS `Server` on
//! `Krb5LoginModule`) and a KDC (an MIT KDC with a throwaway realm on loopback, as in
//! tests/kerberos.rs): it is paired against an open plain run on that server, in the same
//! round. Its run gets its ticket and a service ticket from the KDC, then authenticates.

use switchman_test_support as support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};
use support::{
    Ensemble, Job, SASL_PASSWORD, SASL_USER, credentials_file, kdc, start_kerberos_server,
    start_tls_server, switchman_bin, tls_connect_string,
};

fn packets(ensemble: &Ensemble) -> u64 {
    ensemble.mntr(0)["zk_packets_received"].parse().unwrap()
}

/// A plain run: the requests it cost and its wall time in ms.
fn plain_run(ensemble: &Ensemble, job: &Job, lock: &str) -> (f64, f64) {
    let before = packets(ensemble);
    let started = Instant::now();
    let status = Command::new(switchman_bin())
        .arg("-c")
        .arg(&job.config)
        .args(["--lockname", lock, "--", "true"])
        .env_remove("DEBUG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("run switchman");
    let ms = started.elapsed().as_secs_f64() * 1e3;
    assert!(status.success(), "{} exited {status}", job.config.display());
    ((packets(ensemble) - before - 1) as f64, ms)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let runs = support::env_or("SECURE_RUNS", 30usize).max(3);
    // First, while this is the only thread: it sets KRB5_CONFIG.
    let kdc = kdc();
    kdc.add_principal("bench/host.example.com", "");
    let (ensemble, pki) = start_tls_server("none", true);
    let kerberized = start_kerberos_server(kdc, &[]);
    let secrets = tempfile::tempdir().unwrap();
    let digest = credentials_file(secrets.path(), "digest", "bench:bench-pw", 0o600);
    let sasl = credentials_file(
        secrets.path(),
        "sasl",
        &format!("{SASL_USER}:{SASL_PASSWORD}"),
        0o600,
    );
    let auth = |scheme: &str, file: &Path| json!({"scheme": scheme, "credentials_file": file});
    let keytab = kdc.keytab(
        "bench/host.example.com",
        &secrets.path().join("bench.keytab"),
        0o600,
    );
    let kerberos = json!({"scheme": "sasl-gssapi", "keytab": keytab,
                          "principal": kdc.principal("bench/host.example.com")});
    let tls = pki.tls_config("ca.pem", None);
    let (plain, secure) = (ensemble.connect_string(), tls_connect_string(&ensemble));
    let krb_plain = kerberized.connect_string();
    // Each variant's server, and the variant it is paired against (an open plain run there).
    let variants: Vec<(&str, &str, Value)> = vec![
        ("open, plain TCP", &plain, json!({})),
        (
            "digest auth",
            &plain,
            json!({"auth": auth("digest", &digest), "acl": "open"}),
        ),
        (
            "digest + creator ACL",
            &plain,
            json!({"auth": auth("digest", &digest)}),
        ),
        (
            "SASL auth",
            &plain,
            json!({"auth": auth("sasl-digest", &sasl), "acl": "open"}),
        ),
        ("TLS", &secure, json!({"tls": tls})),
        (
            "digest + ACL + TLS",
            &secure,
            json!({"auth": auth("digest", &digest), "tls": tls}),
        ),
        ("open, Kerberized srv", &krb_plain, json!({})),
        (
            "Kerberos keytab",
            &krb_plain,
            json!({"auth": kerberos, "acl": "open"}),
        ),
        (
            "Kerberos + creator ACL",
            &krb_plain,
            json!({"auth": kerberos}),
        ),
    ];
    let on_kerberized = |v: usize| variants[v].1 == krb_plain;
    let server_of = |v: usize| {
        if on_kerberized(v) {
            &kerberized
        } else {
            &ensemble
        }
    };
    let baseline = |v: usize| {
        if on_kerberized(v) {
            variants.iter().position(|x| x.1 == krb_plain).unwrap()
        } else {
            0
        }
    };
    let jobs: Vec<Job> = variants
        .iter()
        .map(|(_, hosts, extra)| {
            let mut extra = extra.clone();
            extra["session_timeout"] = 10.into();
            extra["loglevel"] = "warning".into();
            Job::new("secure-bench", hosts, extra)
        })
        .collect();
    // Warm up the server and make each prefix's folders.
    for _ in 0..3 {
        for (v, job) in jobs.iter().enumerate() {
            plain_run(server_of(v), job, "warm");
        }
    }
    let mut requests = vec![Vec::new(); jobs.len()];
    let mut ms = vec![Vec::new(); jobs.len()];
    for i in 0..runs {
        for (v, job) in jobs.iter().enumerate() {
            let (p, t) = plain_run(server_of(v), job, &format!("run-{i}"));
            requests[v].push(p);
            ms[v].push(t);
        }
    }
    println!(
        "{runs} rounds; cost = median over rounds of (variant - open plain TCP on the same \
         server, same round)\n"
    );
    println!(
        "{:<22} {:>13} {:>10} {:>12} {:>16}",
        "variant", "requests/run", "median ms", "cost ms", "failed connects"
    );
    for (v, (name, _, _)) in variants.iter().enumerate() {
        let paired: Vec<f64> = ms[v]
            .iter()
            .zip(&ms[baseline(v)])
            .map(|(a, b)| a - b)
            .collect();
        // The client library logs each connection attempt that failed (a warning).
        let failed = jobs[v]
            .read("switchman.log")
            .lines()
            .filter(|l| l.contains("fails to establish session"))
            .count();
        println!(
            "{:<22} {:>13.0} {:>10.1} {:>+12.1} {:>16}",
            name,
            median(&requests[v]),
            median(&ms[v]),
            median(&paired),
            failed
        );
    }
}
