//! Authentication, ACLs and TLS (docs/security.md): how the session connects, what ACL
//! every node we create gets, and why a TLS connect failed.
//!
//! **Why a handshake of our own.** The client library does not surface TLS failures: a server
//! whose certificate does not verify (or that refuses ours) makes `connect` fail with
//! `NoHosts` or `Timeout`, exactly like a server that is down, and the reason goes to a debug
//! log line. Only an operator who is told "the certificate does not verify" can fix it, and
//! exit 69 ("unavailable", try again later) would be wrong for it. So when a TLS connect fails,
//! [`diagnose`] makes one handshake of its own with each server, with rustls (the library's
//! own TLS stack, the same version) set up from the same files, and reports what it says. This
//! costs nothing while all is well: it runs only after a failure.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore};
use zookeeper_client::{Acl, Acls, AuthId, Client, Connector, Permission, SaslOptions, TlsOptions};

use super::kerberos;
use super::session::Options;
use crate::error::{Error, Result};
use crate::security::{AclPolicy, Auth, Scheme, Tls};

/// A connector with the config's session timeout, credentials and TLS settings.
pub fn connector(options: &Options) -> Result<Connector> {
    let mut connector = Client::connector()
        .with_session_timeout(options.session_timeout)
        // A reply overdue this long gives its connection up for another (the library's default
        // is 2/5 of the timeout), and a reconnect waits a quarter of it per attempt: a warm
        // run's beat goes unanswered T/10 after an outage begins at the latest, so the
        // connection is given up well within a 0.3 T outage, and the reconnect that proves
        // the session again comes within about T/20 of its end (docs/safety.md).
        .with_connection_timeout(options.session_timeout / 6);
    let security = &options.security;
    connector = match &security.auth {
        None => connector,
        Some(Auth::Password(p)) => match p.scheme {
            Scheme::Digest => {
                let token = format!("{}:{}", p.user, p.password.expose());
                connector.with_auth("digest", token.as_bytes())
            }
            Scheme::SaslDigest => connector.with_sasl(SaslOptions::digest_md5(
                p.user.clone(),
                p.password.expose().to_string(),
            )),
        },
        Some(Auth::Kerberos(k)) => {
            let mut gssapi = SaslOptions::gssapi().with_username(k.service.clone());
            if let Some(host) = &k.service_host {
                gssapi = gssapi.with_hostname(host.clone());
            }
            connector.with_sasl(gssapi)
        }
    };
    if let Some(tls) = &security.tls {
        use_ring();
        let bad = |what: &str, e: zookeeper_client::Error| {
            Error::Config(format!(
                "{}: key \"tls\": {what}: {e}",
                options.path.display()
            ))
        };
        let mut options = TlsOptions::new()
            .with_pem_ca(&tls.ca_pem)
            .map_err(|e| bad(&tls.ca_file.display().to_string(), e))?;
        if let Some(c) = &tls.client {
            options = options
                .with_pem_identity(&c.cert_pem, c.key_pem.expose())
                .map_err(|e| bad(&c.cert_file.display().to_string(), e))?;
        }
        // Fail eagerly: one round of the servers, then `diagnose` says why, rather than a
        // whole session timeout of retries that cannot succeed.
        connector = connector.with_tls(options).with_fail_eagerly();
    }
    Ok(connector)
}

/// Makes rustls use *ring* for this process (the library's connections and our own check). The
/// build has no other provider (aws-lc-rs, rustls's default, is left out: it seeds its random
/// generator from CPU jitter, over 20 ms of CPU in every run before its first handshake,
/// measured with perf, and its C build doubled the compile time), but rustls wants one chosen.
fn use_ring() {
    // Already installed (a second connect in one process) is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Before the first connect: with Kerberos, our tickets, or why there are none (see
/// `kerberos`). To be called on the thread the session will run on.
pub async fn login(options: &Options) -> Result<()> {
    match &options.security.auth {
        Some(Auth::Kerberos(k)) => {
            let hosts = servers(&options.zkhosts).into_iter().map(|(h, _)| h);
            kerberos::login(k, hosts.collect(), options.connect_timeout).await
        }
        _ => Ok(()),
    }
}

/// After a connect with Kerberos: that the servers did authenticate us. A server that does not
/// take SASL (no `authProvider.sasl`, no JAAS `Server` section) answers the GSSAPI token with
/// nothing and carries on with an anonymous session, which must not stand in for ours.
pub async fn check_authenticated(client: &Client, options: &Options) -> Result<()> {
    let Some(Auth::Kerberos(k)) = &options.security.auth else {
        return Ok(());
    };
    let users = client.list_auth_users().await.map_err(|e| {
        Error::Unavailable(format!(
            "ZooKeeper at {} did not say who it knows us as ({e})",
            options.zkhosts
        ))
    })?;
    match users.iter().find(|u| u.scheme() == "sasl") {
        Some(u) => {
            // The id every creator ACL gets: the principal as the servers spell it (their
            // kerberos.removeHostFromPrincipal and removeRealmFromPrincipal settings).
            tracing::debug!(id = %format!("sasl:{}", u.user()), "authenticated with Kerberos");
            Ok(())
        }
        None => Err(Error::NoPerm(format!(
            "ZooKeeper at {} did not authenticate {} with SASL GSSAPI: does it take SASL \
             (authProvider.sasl, a JAAS Server section on Krb5LoginModule)?",
            options.zkhosts, k.principal
        ))),
    }
}

/// Connects: over TLS to every server in `zkhosts` if `tls` is set (a server without TLS is
/// then refused, never used in plain text), in plain TCP otherwise.
pub async fn connect(
    connector: Connector,
    options: &Options,
) -> std::result::Result<Client, zookeeper_client::Error> {
    if options.security.tls.is_some() {
        connector.secure_connect(&options.zkhosts).await
    } else {
        connector.connect(&options.zkhosts).await
    }
}

/// The ACL of every node we create.
pub fn acls(policy: &AclPolicy) -> Vec<Acl> {
    if !policy.creator {
        return Acls::anyone_all().to_vec();
    }
    // `auth` stands for every identity the session has authenticated as; everyone else may
    // read, so anyone can still see who holds what (`switchmanctl status`).
    let mut acls = vec![
        Acl::new(Permission::ALL, AuthId::authed()),
        Acl::new(Permission::READ, AuthId::anyone()),
    ];
    acls.extend(
        policy
            .extra
            .iter()
            .map(|(scheme, id)| Acl::new(Permission::ALL, AuthId::new(scheme, id))),
    );
    acls
}

/// What our own handshake with one server found.
#[derive(Debug, PartialEq, Eq)]
enum Handshake {
    /// TLS works with this server; whatever failed was something else.
    Completed,
    /// The handshake failed, for the reason given: not something a retry fixes.
    Refused(String),
    /// No TCP connection, or no answer: like any server that is down.
    Unreachable,
}

/// After a TLS connect failed: `Some(message)` if servers refused the TLS handshake (a
/// certificate that does not verify, ours refused, no TLS on the port), and whether every
/// server did (`true`: nothing to wait for). `None` if none did, so the failure is the usual
/// kind (servers down or starting).
pub async fn diagnose(options: &Options, patience: Duration) -> Option<(String, bool)> {
    let tls = options.security.tls.as_ref()?;
    let client_config = match client_config(tls) {
        Ok(c) => Arc::new(c),
        Err(e) => return Some((e, true)),
    };
    let servers = servers(&options.zkhosts);
    let probes = servers.iter().map(|(host, port)| {
        let (host, port, client_config) = (host.clone(), *port, client_config.clone());
        tokio::task::spawn_blocking(move || handshake(&host, port, client_config, patience))
    });
    let results = futures::future::join_all(probes).await;
    let mut refusals = Vec::new();
    let mut completed = false;
    for ((host, port), result) in servers.iter().zip(results) {
        match result.unwrap_or(Handshake::Unreachable) {
            Handshake::Refused(why) => refusals.push(format!("{host}:{port} {why}")),
            Handshake::Completed => completed = true,
            Handshake::Unreachable => {}
        }
    }
    if refusals.is_empty() {
        return None;
    }
    let all = !completed && refusals.len() == servers.len();
    Some((
        format!(
            "TLS handshake failed: {} (tls in {})",
            refusals.join("; "),
            options.path.display()
        ),
        all,
    ))
}

/// The rustls config the library builds from the same files: the CA file's certificates
/// (and revocation lists) as roots, host names verified, our certificate if we have one.
fn client_config(tls: &Tls) -> std::result::Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(tls.ca_pem.as_bytes()).flatten() {
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", tls.ca_file.display()))?;
    }
    let crls: Vec<_> = CertificateRevocationListDer::pem_slice_iter(tls.ca_pem.as_bytes())
        .flatten()
        .collect();
    let verifier = rustls::client::WebPkiServerVerifier::builder(Arc::new(roots))
        .with_crls(crls)
        .build()
        .map_err(|e| format!("{}: {e}", tls.ca_file.display()))?;
    let builder = ClientConfig::builder().with_webpki_verifier(verifier);
    match &tls.client {
        None => Ok(builder.with_no_client_auth()),
        Some(c) => {
            let certs = CertificateDer::pem_slice_iter(c.cert_pem.as_bytes())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", c.cert_file.display()))?;
            let key = PrivateKeyDer::from_pem_slice(c.key_pem.expose().as_bytes())
                .map_err(|e| format!("{}: {e}", c.key_file.display()))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("{}: {e}", c.cert_file.display()))
        }
    }
}

/// The (host, port)s of a connect string, as the library reads it.
pub fn servers(zkhosts: &str) -> Vec<(String, u16)> {
    let hosts = zkhosts.split('/').next().unwrap_or("");
    hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| match h.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), port.parse().unwrap_or(2181)),
            None => (h.to_string(), 2181),
        })
        .map(|(h, p)| {
            (
                h.trim_start_matches('[').trim_end_matches(']').to_string(),
                p,
            )
        })
        .collect()
}

/// One TLS handshake with `host:port`, blocking, each step bounded by `patience`.
fn handshake(host: &str, port: u16, config: Arc<ClientConfig>, patience: Duration) -> Handshake {
    let Some(tcp) = (host, port)
        .to_socket_addrs()
        .into_iter()
        .flatten()
        .find_map(|addr| TcpStream::connect_timeout(&addr, patience).ok())
    else {
        return Handshake::Unreachable;
    };
    let _ = tcp.set_read_timeout(Some(patience));
    let _ = tcp.set_write_timeout(Some(patience));
    let name = match ServerName::try_from(host.to_string()) {
        Ok(name) => name,
        Err(e) => return Handshake::Refused(format!("cannot be checked by name: {e}")),
    };
    let conn = match rustls::ClientConnection::new(config, name) {
        Ok(conn) => conn,
        Err(e) => return Handshake::Refused(describe(&e)),
    };
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        if let Err(e) = stream.conn.complete_io(&mut stream.sock) {
            return judge(e, true);
        }
    }
    // In TLS 1.3 the server judges our certificate after our side of the handshake is over,
    // and says so with an alert: ask for something (a four-letter word), and see.
    let mut reply = [0u8; 64];
    match stream
        .write_all(b"srvr")
        .and_then(|()| stream.flush())
        .and_then(|()| stream.read(&mut reply))
    {
        Err(e) => match judge(e, false) {
            Handshake::Refused(why) => Handshake::Refused(why),
            _ => Handshake::Completed,
        },
        Ok(_) => Handshake::Completed,
    }
}

/// What an I/O error during the handshake says about the server.
fn judge(e: std::io::Error, handshaking: bool) -> Handshake {
    if let Some(tls) = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        return Handshake::Refused(describe(tls));
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset if handshaking => {
            Handshake::Refused(
                "closed the connection during the TLS handshake (is it a secureClientPort?)".into(),
            )
        }
        _ => Handshake::Unreachable,
    }
}

fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "has a certificate that ca_file does not vouch for (unknown issuer)".into()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "has a certificate that is not valid for the name in zkhosts".into(),
        rustls::Error::InvalidCertificate(c) => {
            format!("has a certificate that does not verify ({c:?})")
        }
        rustls::Error::AlertReceived(
            alert @ (AlertDescription::BadCertificate
            | AlertDescription::CertificateRequired
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::HandshakeFailure
            | AlertDescription::AccessDenied),
        ) => format!(
            "refused the handshake ({alert:?}): it wants a client certificate it trusts (cert_file, key_file)"
        ),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "does not speak TLS (is it a secureClientPort?)".into()
        }
        other => format!("failed the TLS handshake: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_read_as_the_library_reads_them() {
        assert_eq!(
            servers("a:1, b ,[::1]:3/chroot"),
            vec![("a".into(), 1), ("b".into(), 2181), ("::1".into(), 3)]
        );
    }

    #[test]
    fn creator_acls_give_the_creator_and_extras_all_and_the_world_read() {
        let open = acls(&AclPolicy {
            creator: false,
            extra: vec![("x509".into(), "CN=a".into())],
        });
        assert_eq!(open, Acls::anyone_all().to_vec());
        let creator = acls(&AclPolicy {
            creator: true,
            extra: vec![("x509".into(), "CN=a".into())],
        });
        assert_eq!(
            creator,
            vec![
                Acl::new(Permission::ALL, AuthId::authed()),
                Acl::new(Permission::READ, AuthId::anyone()),
                Acl::new(Permission::ALL, AuthId::new("x509", "CN=a")),
            ]
        );
    }
}
