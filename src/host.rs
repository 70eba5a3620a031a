//! This host's identity: its fully qualified name, written into every node we create and
//! compared against group members.

use std::ffi::{CStr, CString};

/// Environment variable that overrides the FQDN (containers, tests). It wins over the config
/// key `fqdn`, which wins over the resolver.
pub const FQDN_ENV: &str = "SWITCHMAN_FQDN";

/// This host's FQDN, found the way `hostname --fqdn` finds it: the kernel's host name, then the
/// canonical name the resolver gives for it. Falls back to the plain host name when the resolver
/// knows nothing better, because a run must not fail only for want of DNS.
pub fn fqdn(config_override: Option<&str>) -> String {
    let env = std::env::var(FQDN_ENV).ok();
    choose_fqdn(env.as_deref(), config_override, resolved_fqdn)
}

/// The FQDN from the first of: the environment's override (unless empty), the config key, and
/// `resolve`, which is asked only when neither names the host.
fn choose_fqdn(
    env_override: Option<&str>,
    config_override: Option<&str>,
    resolve: impl FnOnce() -> String,
) -> String {
    if let Some(name) = env_override
        && !name.is_empty()
    {
        return name.to_string();
    }
    if let Some(name) = config_override {
        return name.to_string();
    }
    resolve()
}

/// The kernel's host name, canonicalised by the resolver when it can.
fn resolved_fqdn() -> String {
    let short = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    canonical_name(&short).unwrap_or(short)
}

/// The resolver's canonical name for `host` (getaddrinfo with AI_CANONNAME).
pub fn canonical_name(host: &str) -> Option<String> {
    let c_host = CString::new(host).ok()?;
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated host, zeroed hints, and the result is freed below.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: getaddrinfo succeeded, so res points at a valid list until freeaddrinfo.
    let name = unsafe {
        let canon = (*res).ai_canonname;
        let name = (!canon.is_null()).then(|| CStr::from_ptr(canon).to_string_lossy().into_owned());
        libc::freeaddrinfo(res);
        name
    };
    name.filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_override_is_used() {
        // Pure, so that a SWITCHMAN_FQDN in the test's own environment cannot skip the checks.
        let resolver =
            || -> String { panic!("the resolver is asked only when nothing names the host") };
        assert_eq!(
            choose_fqdn(None, Some("h1.example.com"), resolver),
            "h1.example.com"
        );
        // An empty environment override does not count; a set one wins over the config key.
        assert_eq!(
            choose_fqdn(Some(""), Some("h1.example.com"), resolver),
            "h1.example.com"
        );
        assert_eq!(
            choose_fqdn(Some("env.example.com"), Some("h1.example.com"), resolver),
            "env.example.com"
        );
        assert_eq!(
            choose_fqdn(None, None, || "resolved.example.com".to_string()),
            "resolved.example.com"
        );
    }

    #[test]
    fn localhost_resolves() {
        assert!(canonical_name("localhost").is_some());
        assert!(!fqdn(None).is_empty());
    }
}
