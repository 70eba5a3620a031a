//! The config's security keys (docs/security.md): `auth`, `acl`, `acl_extra` and `tls`.
//!
//! They are read with the rest of the config, files included, so that a missing or loose
//! credentials file, or a certificate that does not parse, is a config error (78) before
//! anything touches ZooKeeper. Unlike the top-level keys, an unknown key inside `auth` or `tls`
//! is an error: a misspelt `cert_file` must not quietly turn mutual TLS off.
//!
//! The password and the private key are kept in [`Secret`]s, whose `Debug` prints nothing, so
//! no `{:?}` of the config can put them in a log line or an error.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::keys::{Type, value};

/// How switchman proves who it is to ZooKeeper with a password, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// ZooKeeper's built-in `digest` scheme (`addauth digest user:password`). The server does
    /// not check the password: it only makes the identity `digest:user:HASH` from it, so a
    /// wrong password shows up later, as a node whose ACL does not let us in.
    Digest,
    /// SASL DIGEST-MD5, checked by the server against its JAAS `Server` section at connect.
    SaslDigest,
}

/// A secret read from a file: its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// The config key `auth`.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `digest` or `sasl-digest`: a user and a password from a credentials file.
    Password(Password),
    /// `sasl-gssapi`: a Kerberos principal, with a keytab or the caller's credential cache.
    Kerberos(Kerberos),
}

#[derive(Debug, Clone)]
pub struct Password {
    pub scheme: Scheme,
    pub user: String,
    pub password: Secret,
    /// The credentials file, for messages.
    pub file: PathBuf,
}

/// SASL GSSAPI (docs/security.md, "Kerberos").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kerberos {
    /// `primary[/instance]@REALM`, as the KDC knows it.
    pub principal: String,
    /// The principal's realm, for messages.
    pub realm: String,
    /// Where the principal's keys are; without one, the ticket comes from the caller's
    /// credential cache (`KRB5CCNAME`).
    pub keytab: Option<PathBuf>,
    /// The first part of the servers' principal (ZooKeeper's `zookeeper/_HOST`).
    pub service: String,
    /// Its host part, the same for every server; without it, each server's host as `zkhosts`
    /// names it, as ZooKeeper's `_HOST` stands for.
    pub service_host: Option<String>,
}

impl Kerberos {
    /// The servers' principal at `host` (a host of `zkhosts`), without its realm: the KDC
    /// finds the realm.
    pub fn service_principal(&self, host: &str) -> String {
        format!(
            "{}/{}",
            self.service,
            self.service_host.as_deref().unwrap_or(host)
        )
    }
}

impl Auth {
    /// Who we are, for messages: the scheme and the user, never the password.
    pub fn identity(&self) -> String {
        match self {
            Auth::Password(p) => {
                let scheme = match p.scheme {
                    Scheme::Digest => "digest",
                    Scheme::SaslDigest => "sasl",
                };
                format!("{scheme}:{} (from {})", p.user, p.file.display())
            }
            Auth::Kerberos(k) => match &k.keytab {
                Some(keytab) => format!(
                    "sasl:{} (Kerberos, keytab {})",
                    k.principal,
                    keytab.display()
                ),
                None => format!("sasl:{} (Kerberos, credential cache)", k.principal),
            },
        }
    }
}

/// The ACL every node we create gets (config keys `acl` and `acl_extra`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclPolicy {
    /// `creator`: the creating identity may do anything, everyone else only read.
    /// `open` (false): anyone may do anything, as the original did.
    pub creator: bool,
    /// Further identities, as (scheme, id), given all permissions (with `creator` only).
    pub extra: Vec<(String, String)>,
}

/// The config key `tls`: PEM files, read at load.
#[derive(Debug, Clone)]
pub struct Tls {
    pub ca_file: PathBuf,
    pub ca_pem: String,
    /// For mutual TLS.
    pub client: Option<ClientCert>,
}

#[derive(Debug, Clone)]
pub struct ClientCert {
    pub cert_file: PathBuf,
    pub cert_pem: String,
    pub key_file: PathBuf,
    pub key_pem: Secret,
}

/// The security keys of one config file.
#[derive(Debug, Clone)]
pub struct Security {
    pub auth: Option<Auth>,
    pub acl: AclPolicy,
    pub tls: Option<Tls>,
}

impl Security {
    /// What `zkhosts` is told we are, for messages about refusals.
    pub fn identity(&self) -> String {
        match (
            &self.auth,
            self.tls.as_ref().and_then(|t| t.client.as_ref()),
        ) {
            (Some(auth), _) => auth.identity(),
            (None, Some(c)) => format!("the TLS client certificate {}", c.cert_file.display()),
            (None, None) => "no identity (the config has no \"auth\")".to_string(),
        }
    }
}

/// Reads the security keys of the config `file` (parsed into `map`); `warnings` gets what is
/// odd but harmless.
pub fn parse(file: &str, map: &Map<String, Value>, warnings: &mut Vec<String>) -> Result<Security> {
    let err = |key: &str, msg: String| Error::Config(format!("{file}: key {key:?}: {msg}"));
    let auth = match value(map, "auth", Type::Object) {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => Some(parse_auth(o).map_err(|m| err("auth", m))?),
        Some(v) => return Err(err("auth", format!("must be an object, not {v}"))),
    };
    let tls = match value(map, "tls", Type::Object) {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => Some(parse_tls(o).map_err(|m| err("tls", m))?),
        Some(v) => return Err(err("tls", format!("must be an object, not {v}"))),
    };
    let has_identity = auth.is_some() || tls.as_ref().is_some_and(|t: &Tls| t.client.is_some());
    let creator = match value(map, "acl", Type::String) {
        None | Some(Value::Null) => auth.is_some(),
        Some(Value::String(s)) if s == "open" => false,
        Some(Value::String(s)) if s == "creator" => {
            if !has_identity {
                return Err(err(
                    "acl",
                    "\"creator\" needs an identity to create nodes as: set \"auth\" (or a TLS \
                     client certificate in \"tls\")"
                        .into(),
                ));
            }
            true
        }
        Some(v) => {
            return Err(err(
                "acl",
                format!("must be \"creator\" or \"open\", not {v}"),
            ));
        }
    };
    let extra = match value(map, "acl_extra", Type::Strings) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                parse_identity(v).map_err(|m| err("acl_extra", format!("entry {i}: {m}")))
            })
            .collect::<Result<_>>()?,
        Some(v) => {
            return Err(err(
                "acl_extra",
                format!("must be a list of \"scheme:id\" strings, not {v}"),
            ));
        }
    };
    if !creator && !extra.is_empty() {
        warnings.push(format!(
            "{file}: key \"acl_extra\" is ignored with acl \"open\" (anyone may do anything)"
        ));
    }
    Ok(Security {
        auth,
        acl: AclPolicy { creator, extra },
        tls,
    })
}

/// Every key of `o` is one of `known`, and the string ones are strings.
fn check_keys(o: &Map<String, Value>, known: &[&str]) -> std::result::Result<(), String> {
    for (k, v) in o {
        if !known.contains(&k.as_str()) {
            return Err(format!("unknown key {k:?} (known: {})", known.join(", ")));
        }
        if !v.is_string() {
            return Err(format!("{k:?} must be a string, not {v}"));
        }
    }
    Ok(())
}

fn required_path(o: &Map<String, Value>, key: &str) -> std::result::Result<PathBuf, String> {
    o.get(key)
        .and_then(Value::as_str)
        .map(PathBuf::from)
        .ok_or_else(|| format!("{key:?} is required"))
}

fn parse_auth(o: &Map<String, Value>) -> std::result::Result<Auth, String> {
    let scheme = match o.get("scheme").and_then(Value::as_str) {
        Some("digest") => Scheme::Digest,
        Some("sasl-digest") => Scheme::SaslDigest,
        Some("sasl-gssapi") => return parse_kerberos(o).map(Auth::Kerberos),
        Some(other) => {
            return Err(format!(
                "scheme {other:?} is not \"digest\", \"sasl-digest\" or \"sasl-gssapi\""
            ));
        }
        None => {
            return Err(
                "\"scheme\" is required (\"digest\", \"sasl-digest\" or \"sasl-gssapi\")".into(),
            );
        }
    };
    check_keys(o, &["scheme", "credentials_file"])?;
    let file = required_path(o, "credentials_file")?;
    let text = read_private(&file, 0o077, "others than its owner")?;
    // One line, `user:password`; the password may itself hold colons. Nothing of the file's
    // text goes into a message.
    let line = text.lines().next().unwrap_or("");
    let (user, password) = match line.split_once(':') {
        Some((u, p)) if !u.is_empty() && !p.is_empty() => (u, p),
        _ => {
            return Err(format!(
                "credentials file {} must hold one line \"user:password\"",
                file.display()
            ));
        }
    };
    Ok(Auth::Password(Password {
        scheme,
        user: user.to_string(),
        password: Secret(password.to_string()),
        file,
    }))
}

/// `{"scheme": "sasl-gssapi", "principal": ..., "keytab": ..., "service": ...,
/// "service_host": ...}`. The keytab is checked as the credentials file is (its keys are the
/// principal's password); the KDC is not asked anything here.
fn parse_kerberos(o: &Map<String, Value>) -> std::result::Result<Kerberos, String> {
    check_keys(
        o,
        &["scheme", "principal", "keytab", "service", "service_host"],
    )?;
    let principal = o
        .get("principal")
        .and_then(Value::as_str)
        .ok_or("\"principal\" is required with \"sasl-gssapi\" (e.g. \"switchman/host.example.com@EXAMPLE.COM\")")?;
    let realm = match principal.rsplit_once('@') {
        Some((name, realm)) if !name.is_empty() && !realm.is_empty() && !name.contains('@') => {
            realm
        }
        _ => {
            return Err(format!(
                "principal {principal:?} is not \"name@REALM\" or \"name/host@REALM\""
            ));
        }
    };
    let keytab = match o.get("keytab") {
        None => None,
        Some(_) => {
            let keytab = required_path(o, "keytab")?;
            check_private(&keytab, 0o077, "others than its owner")?;
            std::fs::File::open(&keytab)
                .map_err(|e| format!("cannot read {}: {e}", keytab.display()))?;
            Some(keytab)
        }
    };
    let part = |key: &str| -> std::result::Result<Option<String>, String> {
        match o.get(key).and_then(Value::as_str) {
            None => Ok(None),
            Some(s)
                if s.is_empty() || s.contains(['/', '@']) || s.contains(char::is_whitespace) =>
            {
                Err(format!(
                    "{key:?} must be one part of a principal, not {s:?}"
                ))
            }
            Some(s) => Ok(Some(s.to_string())),
        }
    };
    Ok(Kerberos {
        principal: principal.to_string(),
        realm: realm.to_string(),
        keytab,
        service: part("service")?.unwrap_or_else(|| "zookeeper".to_string()),
        service_host: part("service_host")?,
    })
}

/// Refuses a file holding a secret if the permission bits in `forbidden` are set, as ssh
/// refuses a loose private key: the secret is then no longer ours alone.
fn check_private(path: &Path, forbidden: u32, who: &str) -> std::result::Result<(), String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & forbidden != 0 {
        return Err(format!(
            "{} is open to {who} (mode {mode:04o}); chmod {:o} it",
            path.display(),
            mode & !forbidden & 0o777
        ));
    }
    Ok(())
}

/// Reads a file holding a secret (see [`check_private`]).
fn read_private(path: &Path, forbidden: u32, who: &str) -> std::result::Result<String, String> {
    check_private(path, forbidden, who)?;
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn parse_tls(o: &Map<String, Value>) -> std::result::Result<Tls, String> {
    check_keys(o, &["ca_file", "cert_file", "key_file"])?;
    if o.contains_key("cert_file") != o.contains_key("key_file") {
        return Err("\"cert_file\" and \"key_file\" go together (mutual TLS)".into());
    }
    let ca_file = required_path(o, "ca_file")?;
    let ca_pem = read_certs(&ca_file)?;
    let client = match o.get("cert_file") {
        None => None,
        Some(_) => {
            let cert_file = required_path(o, "cert_file")?;
            let key_file = required_path(o, "key_file")?;
            let cert_pem = read_certs(&cert_file)?;
            // Group-readable keys are Debian's convention (/etc/ssl/private, group ssl-cert);
            // a key anyone can read is not a secret any more.
            let key_pem = read_private(&key_file, 0o007, "every user")?;
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|e| format!("{} holds no PEM private key: {e}", key_file.display()))?;
            Some(ClientCert {
                cert_file,
                cert_pem,
                key_file,
                key_pem: Secret(key_pem),
            })
        }
    };
    Ok(Tls {
        ca_file,
        ca_pem,
        client,
    })
}

/// A PEM file with at least one certificate, and only good ones.
fn read_certs(path: &Path) -> std::result::Result<String, String> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: bad PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(pem)
}

/// `scheme:id`, as ZooKeeper's ACLs name an identity. A digest id is `user:HASH`, never a
/// password; since a password put there by mistake must not be echoed, the value is not
/// quoted in the message.
fn parse_identity(v: &Value) -> std::result::Result<(String, String), String> {
    let Some(s) = v.as_str() else {
        return Err(format!("must be a \"scheme:id\" string, not {v}"));
    };
    let (scheme, id) = match s.split_once(':') {
        Some((scheme, id)) if !scheme.is_empty() && !id.is_empty() => (scheme, id),
        _ => {
            return Err(format!(
                "{s:?} is not \"scheme:id\" (e.g. \"digest:ops:HASH\")"
            ));
        }
    };
    if scheme == "digest" {
        let hash = id.split_once(':').map(|(_, h)| h).unwrap_or("");
        let base64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
        if hash.len() != 28 || !hash.ends_with('=') || !hash[..27].chars().all(base64) {
            return Err("a digest identity is \"digest:USER:HASH\", HASH being \
                        base64(sha1(\"USER:PASSWORD\")) (docs/security.md), not a password"
                .into());
        }
    }
    Ok((scheme.to_string(), id.to_string()))
}

#[cfg(test)]
mod tests;
