use super::*;

fn kerberos(keytab: Option<&str>) -> Kerberos {
    Kerberos {
        principal: "switchman/h.example@EX.COM".into(),
        realm: "EX.COM".into(),
        keytab: keytab.map(Into::into),
        service: "zookeeper".into(),
        service_host: None,
    }
}

fn message(k: &Kerberos, step: Step, minor: i32) -> String {
    let e = GssError {
        major: MajorFlags::GSS_S_FAILURE,
        minor: minor as u32,
    };
    match failure(k, step, e) {
        Error::NoPerm(m) => m,
        other => panic!("not 77: {other:?}"),
    }
}

#[test]
fn each_refusal_names_the_principal_the_realm_or_the_server() {
    let keytab = kerberos(Some("/etc/sm.keytab"));
    let m = message(&keytab, Step::Ticket, -1765328378);
    assert!(
        m.contains("realm EX.COM does not know switchman/h.example@EX.COM"),
        "{m}"
    );
    let m = message(&keytab, Step::Ticket, -1765328360);
    assert!(
        m.contains("the keytab /etc/sm.keytab holds keys") && m.contains("EX.COM"),
        "{m}"
    );
    let m = message(&keytab, Step::Ticket, -1765328189);
    assert!(
        m.contains("holds no key for switchman/h.example@EX.COM"),
        "{m}"
    );
    let m = message(&keytab, Step::Service("zookeeper/zk1"), -1765328377);
    assert!(m.contains("servers' principal zookeeper/zk1"), "{m}");
    let m = message(&keytab, Step::Ticket, -1765328228);
    assert!(m.contains("no KDC of realm EX.COM answers"), "{m}");
    let m = message(&kerberos(None), Step::Ticket, -1765328189);
    assert!(
        m.contains("no ticket for switchman/h.example@EX.COM in the credential cache"),
        "{m}"
    );
    // MIT's own words come after ours, on one line.
    assert!(!m.contains('\n'), "{m}");
}
