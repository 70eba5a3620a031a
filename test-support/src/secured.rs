//! Secured ZooKeeper servers for tests/secure.rs and benches/secure.rs: a test PKI made with
//! `openssl`, servers with SASL and TLS, and the test's own clients with credentials.
//!
//! Every server keeps its plain `clientPort` for the harness's four-letter words and for the
//! test's own look at the tree; switchman is pointed at whichever port a test is about.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use zookeeper_client::{Acls, Client, CreateMode, SaslOptions, TlsOptions};

use super::ensemble::{Ensemble, Extras, NETTY_TLS_JARS};
use super::kdc::{Kdc, ZK_PRINCIPAL, use_ccache_on_this_thread};

/// The SASL user the servers know, and its password.
pub const SASL_USER: &str = "alice";
pub const SASL_PASSWORD: &str = "sasl-s3cret";

/// A CA, a server certificate for 127.0.0.1 and a client certificate signed by it, and a second,
/// unrelated CA with a client certificate of its own: made with `openssl` in `dir`.
#[derive(Debug, Clone)]
pub struct Pki {
    pub dir: PathBuf,
}

/// Runs `openssl ARGS` (split at spaces) in `dir`.
fn openssl(dir: &Path, args: &str) {
    let args: Vec<&str> = args.split_whitespace().collect();
    let out = Command::new("openssl")
        .args(&args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl (install it: scripts/install-deps): {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    pub fn create(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        for ca in ["ca", "other-ca"] {
            openssl(
                dir,
                &format!(
                    "req -x509 {ec} -keyout {ca}.key -out {ca}.pem -days 2 -subj /CN=switchman-test-{ca}"
                ),
            );
        }
        let leaves = [
            (
                "server",
                "ca",
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            ),
            ("client", "ca", "extendedKeyUsage=clientAuth\n"),
            ("rogue", "other-ca", "extendedKeyUsage=clientAuth\n"),
        ];
        for (name, ca, ext) in leaves {
            std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
            openssl(
                dir,
                &format!("req {ec} -keyout {name}.key -out {name}.csr -subj /CN=switchman-{name}"),
            );
            openssl(
                dir,
                &format!(
                    "x509 -req -in {name}.csr -CA {ca}.pem -CAkey {ca}.key -CAcreateserial \
                     -out {name}.pem -days 2 -extfile {name}.ext"
                ),
            );
        }
        // ZooKeeper reads its key and certificate from one PEM "key store".
        let keystore = [
            std::fs::read_to_string(dir.join("server.key")).unwrap(),
            std::fs::read_to_string(dir.join("server.pem")).unwrap(),
        ]
        .concat();
        std::fs::write(dir.join("server-keystore.pem"), keystore).unwrap();
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The config key `tls`, trusting `ca` (a file name in the PKI, "ca.pem" or
    /// "other-ca.pem"), with the client certificate `client` ("client", "rogue") if any.
    pub fn tls_config(&self, ca: &str, client: Option<&str>) -> serde_json::Value {
        let mut tls = serde_json::json!({ "ca_file": self.file(ca) });
        if let Some(c) = client {
            tls["cert_file"] = self.file(&format!("{c}.pem")).display().to_string().into();
            tls["key_file"] = self.file(&format!("{c}.key")).display().to_string().into();
        }
        tls
    }
}

/// The lines and JVM options that make a server know SASL DIGEST-MD5 user [`SASL_USER`] from
/// a JAAS file written in `dir`.
fn sasl_extras(dir: &Path) -> Extras {
    let jaas = dir.join("jaas.conf");
    std::fs::write(
        &jaas,
        format!(
            "Server {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
             user_{SASL_USER}=\"{SASL_PASSWORD}\";\n}};\n"
        ),
    )
    .unwrap();
    Extras {
        cfg: vec![
            "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider".into(),
        ],
        jvm: vec![format!(
            "-Djava.security.auth.login.config={}",
            jaas.display()
        )],
        classpath: Vec::new(),
    }
}

/// A plain server whose digest auth needs nothing (the scheme is built in), and which also
/// knows SASL DIGEST-MD5 user [`SASL_USER`].
pub fn start_auth_server() -> Ensemble {
    open_t(Ensemble::start_standalone_with(|dir, _| sasl_extras(dir)))
}

/// A plain server that turns away every client that has not authenticated with `digest`
/// (ZooKeeper's `enforce.auth`).
pub fn start_enforcing_server() -> Ensemble {
    open_t(Ensemble::start_standalone_with(|_, _| Extras {
        cfg: vec![
            "enforce.auth.enabled=true".into(),
            "enforce.auth.schemes=digest".into(),
        ],
        ..Extras::default()
    }))
}

/// A server with TLS on its `secureClientPort` (the ensemble's spare port), Netty's
/// connection factory, and PEM key and trust stores from a PKI made in its directory.
/// `client_auth`: `none` or `need` (mutual TLS; identities from certificates, scheme x509).
/// With `sasl`, it knows [`SASL_USER`] too.
pub fn start_tls_server(client_auth: &str, sasl: bool) -> (Ensemble, Pki) {
    for jar in NETTY_TLS_JARS {
        assert!(
            Path::new(jar).exists(),
            "{jar} is missing: run scripts/install-deps (apt-get install libnetty-java)"
        );
    }
    let mut pki = None;
    let ensemble = Ensemble::start_standalone_with(|dir, port| {
        let made = Pki::create(&dir.join("pki"));
        let mut extras = if sasl {
            sasl_extras(dir)
        } else {
            Extras::default()
        };
        extras.cfg.extend([
            "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory".into(),
            format!("secureClientPort={port}"),
            "secureClientPortAddress=127.0.0.1".into(),
            format!(
                "ssl.keyStore.location={}",
                made.file("server-keystore.pem").display()
            ),
            "ssl.keyStore.type=PEM".into(),
            format!("ssl.trustStore.location={}", made.file("ca.pem").display()),
            "ssl.trustStore.type=PEM".into(),
            format!("ssl.clientAuth={client_auth}"),
            "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider".into(),
        ]);
        extras.classpath = NETTY_TLS_JARS.iter().map(|j| j.to_string()).collect();
        pki = Some(made);
        extras
    });
    (open_t(ensemble), pki.expect("the server was configured"))
}

/// A plain server that authenticates SASL GSSAPI clients with Kerberos: its JAAS `Server`
/// section on `Krb5LoginModule` with the keytab of [`ZK_PRINCIPAL`], and `props` as JVM system properties (`zookeeper.kerberos.removeHostFromPrincipal=true`,
/// say).
pub fn start_kerberos_server(kdc: &Kdc, props: &[&str]) -> Ensemble {
    open_t(Ensemble::start_standalone_with(|dir, _| {
        let keytab = kdc.keytab(ZK_PRINCIPAL, &dir.join("zookeeper.keytab"), 0o600);
        let jaas = dir.join("jaas.conf");
        std::fs::write(
            &jaas,
            format!(
                "Server {{\n  com.sun.security.auth.module.Krb5LoginModule required\n  \
                 useKeyTab=true\n  keyTab=\"{}\"\n  storeKey=true\n  useTicketCache=false\n  \
                 principal=\"{}\";\n}};\n",
                keytab.display(),
                kdc.principal(ZK_PRINCIPAL)
            ),
        )
        .unwrap();
        let mut jvm = vec![
            format!("-Djava.security.auth.login.config={}", jaas.display()),
            format!("-Djava.security.krb5.conf={}", kdc.krb5_conf().display()),
        ];
        jvm.extend(props.iter().map(|p| format!("-D{p}")));
        Extras {
            cfg: vec![
                "authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
                    .into(),
            ],
            jvm,
            classpath: Vec::new(),
        }
    }))
}

/// Makes `/t`, where every job's prefix lives, open to all: a job that created it with its own
/// identity's creator ACL would keep every other identity's jobs out.
fn open_t(ensemble: Ensemble) -> Ensemble {
    let connect = ensemble.connect_string();
    // Its own thread and runtime: this may be called from inside a test's runtime.
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            // Authenticated, for a server that enforces it; harmless elsewhere.
            let client = zk_as(&connect, Some(("digest", "harness:harness"))).await;
            let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
            client.mkdir("/t", &open).await.unwrap();
        })
    })
    .join()
    .unwrap();
    ensemble
}

/// `127.0.0.1:{secure port}` of a server from [`start_tls_server`].
pub fn tls_connect_string(ensemble: &Ensemble) -> String {
    format!("127.0.0.1:{}", ensemble.spare_port())
}

/// The test's own client, authenticated with `auth` (`scheme`, `credentials`) if given.
pub async fn zk_as(connect: &str, auth: Option<(&str, &str)>) -> Client {
    let mut connector = Client::connector().with_session_timeout(Duration::from_secs(2));
    if let Some((scheme, credentials)) = auth {
        connector = connector.with_auth(scheme, credentials.as_bytes());
    }
    connector
        .connect(connect)
        .await
        .expect("test client connects")
}

/// The test's own client, authenticated with SASL GSSAPI by the ticket in `ccache` (see
/// [`Kdc::kinit`]). Its session runs on the calling thread's runtime, which must be a
/// current-thread one (`#[tokio::test]`'s).
pub async fn zk_gssapi(connect: &str, ccache: &Path) -> Client {
    use_ccache_on_this_thread(ccache);
    Client::connector()
        .with_session_timeout(Duration::from_secs(2))
        .with_sasl(SaslOptions::gssapi())
        .connect(connect)
        .await
        .expect("test GSSAPI client connects")
}

/// The test's own TLS client to the secure port.
pub async fn zk_tls(ensemble: &Ensemble, pki: &Pki, client: Option<&str>) -> Client {
    // rustls is built with two providers (see src/zk/secure.rs), so one must be chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = std::fs::read_to_string(pki.file("ca.pem")).unwrap();
    let mut options = TlsOptions::new().with_pem_ca(&ca).unwrap();
    if let Some(c) = client {
        let cert = std::fs::read_to_string(pki.file(&format!("{c}.pem"))).unwrap();
        let key = std::fs::read_to_string(pki.file(&format!("{c}.key"))).unwrap();
        options = options.with_pem_identity(&cert, &key).unwrap();
    }
    Client::connector()
        .with_session_timeout(Duration::from_secs(2))
        .with_tls(options)
        .secure_connect(&tls_connect_string(ensemble))
        .await
        .expect("test TLS client connects")
}

/// A credentials file `user:password` with mode 0600 (or `mode`) in `dir`.
pub fn credentials_file(dir: &Path, name: &str, user_password: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("{user_password}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}
