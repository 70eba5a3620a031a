use super::*;
use std::os::unix::fs::PermissionsExt;

fn parse_json(text: &str) -> std::result::Result<(Security, Vec<String>), String> {
    let Value::Object(map) = serde_json::from_str(text).unwrap() else {
        panic!("not an object")
    };
    let mut warnings = Vec::new();
    match parse("/etc/sm.conf", &map, &mut warnings) {
        Ok(s) => Ok((s, warnings)),
        Err(Error::Config(m)) => Err(m),
        Err(e) => panic!("not a config error: {e}"),
    }
}

fn file_with(dir: &Path, name: &str, text: &str, mode: u32) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.display().to_string()
}

#[test]
fn without_security_keys_nodes_stay_open() {
    let (s, w) = parse_json("{}").unwrap();
    assert!(s.auth.is_none() && s.tls.is_none() && w.is_empty());
    assert_eq!(
        s.acl,
        AclPolicy {
            creator: false,
            extra: vec![]
        }
    );
}

#[test]
fn auth_makes_creator_the_default_and_keeps_the_password_out_of_debug() {
    let dir = tempfile::tempdir().unwrap();
    let f = file_with(dir.path(), "auth", "alice:pa:ss\n", 0o600);
    let (s, _) = parse_json(&format!(
        r#"{{"auth": {{"scheme": "digest", "credentials_file": "{f}"}}}}"#
    ))
    .unwrap();
    let Some(Auth::Password(auth)) = s.auth.as_ref() else {
        panic!("{s:?}")
    };
    assert_eq!(
        (auth.user.as_str(), auth.password.expose()),
        ("alice", "pa:ss")
    );
    assert!(s.acl.creator);
    assert!(!format!("{s:?}").contains("pa:ss"));
    assert!(s.identity().starts_with("digest:alice"), "{}", s.identity());
    let (s, _) = parse_json(&format!(
        r#"{{"auth": {{"scheme": "sasl-digest", "credentials_file": "{f}"}}, "acl": "open"}}"#
    ))
    .unwrap();
    assert!(!s.acl.creator);
    assert!(matches!(
        s.auth,
        Some(Auth::Password(Password {
            scheme: Scheme::SaslDigest,
            ..
        }))
    ));
}

#[test]
fn a_loose_credentials_file_is_refused_naming_file_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o644, 0o640, 0o604, 0o620] {
        let f = file_with(dir.path(), "auth", "alice:secret\n", mode);
        let e = parse_json(&format!(
            r#"{{"auth": {{"scheme": "digest", "credentials_file": "{f}"}}}}"#
        ))
        .unwrap_err();
        assert!(e.contains(&f) && e.contains(&format!("{mode:04o}")), "{e}");
        assert!(e.contains("/etc/sm.conf") && e.contains("\"auth\""), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }
}

#[test]
fn bad_auth_and_acl_are_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = file_with(dir.path(), "auth", "no colon here\n", 0o600);
    let cases = [
        (r#"{"auth": "alice:pw"}"#.to_string(), "\"auth\""),
        (
            r#"{"auth": {"scheme": "kerberos", "credentials_file": "/x"}}"#.into(),
            "kerberos",
        ),
        (
            r#"{"auth": {"scheme": "digest"}}"#.into(),
            "credentials_file",
        ),
        (
            r#"{"auth": {"scheme": "digest", "credentials_file": "/nonexistent/a"}}"#.into(),
            "/nonexistent/a",
        ),
        (
            format!(r#"{{"auth": {{"scheme": "digest", "credentials_file": "{f}"}}}}"#),
            "user:password",
        ),
        (
            format!(
                r#"{{"auth": {{"scheme": "digest", "credentials_file": "{f}", "pasword": "x"}}}}"#
            ),
            "pasword",
        ),
        (r#"{"acl": "creator"}"#.into(), "needs an identity"),
        (r#"{"acl": "closed"}"#.into(), "\"acl\""),
        (r#"{"acl_extra": "digest:ops:x"}"#.into(), "\"acl_extra\""),
        (r#"{"acl_extra": ["nocolon"]}"#.into(), "entry 0"),
    ];
    for (text, needle) in cases {
        let e = parse_json(&text).unwrap_err();
        assert!(
            e.contains(needle) && e.starts_with("/etc/sm.conf"),
            "{text}: {e}"
        );
    }
}

#[test]
fn acl_extra_takes_identities_and_never_echoes_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let f = file_with(dir.path(), "auth", "alice:pw\n", 0o600);
    let auth = format!(r#""auth": {{"scheme": "digest", "credentials_file": "{f}"}}"#);
    let (s, _) = parse_json(&format!(
        r#"{{{auth}, "acl_extra": ["digest:ops:Q4kTnIDTbmPGBEpHL6NvPvM3kMk=", "x509:CN=ops"]}}"#
    ))
    .unwrap();
    assert_eq!(
        s.acl.extra[0],
        ("digest".into(), "ops:Q4kTnIDTbmPGBEpHL6NvPvM3kMk=".into())
    );
    assert_eq!(s.acl.extra[1], ("x509".into(), "CN=ops".into()));
    let e = parse_json(&format!(
        r#"{{{auth}, "acl_extra": ["digest:ops:hunter2"]}}"#
    ))
    .unwrap_err();
    assert!(e.contains("HASH") && !e.contains("hunter2"), "{e}");
    let (_, w) = parse_json(&format!(
        r#"{{{auth}, "acl": "open", "acl_extra": ["x509:CN=ops"]}}"#
    ))
    .unwrap();
    assert!(w[0].contains("acl_extra"), "{w:?}");
}

#[test]
fn tls_files_are_read_and_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let e = parse_json(r#"{"tls": {"ca_file": "/nonexistent/ca.pem"}}"#).unwrap_err();
    assert!(
        e.contains("\"tls\"") && e.contains("/nonexistent/ca.pem"),
        "{e}"
    );
    let not_pem = file_with(dir.path(), "ca.pem", "hello\n", 0o644);
    let e = parse_json(&format!(r#"{{"tls": {{"ca_file": "{not_pem}"}}}}"#)).unwrap_err();
    assert!(e.contains("no PEM certificate"), "{e}");
    let e = parse_json(&format!(
        r#"{{"tls": {{"ca_file": "{not_pem}", "cert_file": "{d}/c.pem"}}}}"#
    ))
    .unwrap_err();
    assert!(e.contains("go together"), "{e}");
    let e = parse_json(&format!(
        r#"{{"tls": {{"ca_file": "{not_pem}", "ca": 1}}}}"#
    ))
    .unwrap_err();
    assert!(e.contains("unknown key \"ca\""), "{e}");
}

#[test]
fn sasl_gssapi_takes_a_principal_and_a_private_keytab() {
    let dir = tempfile::tempdir().unwrap();
    let keytab = file_with(dir.path(), "sm.keytab", "\x05\x02", 0o600);
    let (s, _) = parse_json(&format!(
        r#"{{"auth": {{"scheme": "sasl-gssapi", "principal": "switchman/h.example@EX.COM",
             "keytab": "{keytab}", "service_host": "zk.example"}}}}"#
    ))
    .unwrap();
    let Some(Auth::Kerberos(k)) = &s.auth else {
        panic!("{s:?}")
    };
    assert_eq!(
        (k.principal.as_str(), k.realm.as_str(), k.service.as_str()),
        ("switchman/h.example@EX.COM", "EX.COM", "zookeeper")
    );
    assert_eq!(k.service_principal("10.0.0.1"), "zookeeper/zk.example");
    assert!(s.acl.creator, "creator is the default with auth");
    assert!(
        s.identity().starts_with("sasl:switchman/h.example@EX.COM"),
        "{}",
        s.identity()
    );
    // Without a keytab: the caller's credential cache; the servers' host from zkhosts.
    let (s, _) = parse_json(
        r#"{"auth": {"scheme": "sasl-gssapi", "principal": "ops@EX.COM", "service": "zk"}}"#,
    )
    .unwrap();
    let Some(Auth::Kerberos(k)) = &s.auth else {
        panic!("{s:?}")
    };
    assert_eq!(k.keytab, None);
    assert_eq!(k.service_principal("zk1.example"), "zk/zk1.example");
}

#[test]
fn a_loose_keytab_is_refused_naming_file_and_mode_and_bad_kerberos_keys_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o644, 0o640, 0o604] {
        let keytab = file_with(dir.path(), "loose.keytab", "\x05\x02", mode);
        let e = parse_json(&format!(
            r#"{{"auth": {{"scheme": "sasl-gssapi", "principal": "a@EX.COM", "keytab": "{keytab}"}}}}"#
        ))
        .unwrap_err();
        assert!(
            e.contains(&keytab) && e.contains(&format!("{mode:04o}")),
            "{e}"
        );
        assert!(e.starts_with("/etc/sm.conf: key \"auth\""), "{e}");
    }
    let cases = [
        (r#"{"scheme": "sasl-gssapi"}"#, "\"principal\" is required"),
        (
            r#"{"scheme": "sasl-gssapi", "principal": "norealm"}"#,
            "name@REALM",
        ),
        (
            r#"{"scheme": "sasl-gssapi", "principal": "a@"}"#,
            "name@REALM",
        ),
        (
            r#"{"scheme": "sasl-gssapi", "principal": "a@EX.COM", "keytab": "/nonexistent/k"}"#,
            "/nonexistent/k",
        ),
        (
            r#"{"scheme": "sasl-gssapi", "principal": "a@EX.COM", "service_host": "h/x"}"#,
            "\"service_host\"",
        ),
        (
            r#"{"scheme": "sasl-gssapi", "principal": "a@EX.COM", "credentials_file": "/x"}"#,
            "unknown key \"credentials_file\"",
        ),
    ];
    for (auth, needle) in cases {
        let e = parse_json(&format!(r#"{{"auth": {auth}}}"#)).unwrap_err();
        assert!(
            e.contains(needle) && e.starts_with("/etc/sm.conf"),
            "{auth}: {e}"
        );
    }
}
