//! This host's identity: its fully qualified name, written into every node we create and
//! compared against group members.

use std::ffi::{CStr, CString};
use std::fmt;
use std::ops::Deref;
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;

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

/// This host's FQDN as [`fqdn`] finds it, looked up on a thread of its own when the resolver
/// must be asked, so that a run connects meanwhile: the first `getaddrinfo` of a process reads
/// the resolver's files and may ask DNS (0.1 ms to well over a millisecond, measured), which
/// would otherwise sit on the critical path of every run. Whoever needs the name first waits
/// for it there, through `Deref`.
pub struct Fqdn {
    name: OnceLock<String>,
    lookup: Mutex<Option<JoinHandle<String>>>,
}

impl Fqdn {
    /// Starts the lookup (no thread when the environment or the config names the host).
    pub fn look_up(config_override: Option<&str>) -> Fqdn {
        let env = std::env::var(FQDN_ENV).ok();
        let name = OnceLock::new();
        let mut lookup = None;
        match given_fqdn(env.as_deref(), config_override) {
            Some(given) => drop(name.set(given)),
            None => match std::thread::Builder::new()
                .name("fqdn".into())
                .spawn(resolved_fqdn)
            {
                Ok(thread) => lookup = Some(thread),
                Err(_) => drop(name.set(resolved_fqdn())),
            },
        }
        Fqdn {
            name,
            lookup: Mutex::new(lookup),
        }
    }
}

impl Deref for Fqdn {
    type Target = str;

    fn deref(&self) -> &str {
        self.name.get_or_init(|| {
            let thread = self.lookup.lock().ok().and_then(|mut l| l.take());
            // A lookup thread that panicked leaves the name to be found here.
            thread
                .and_then(|t| t.join().ok())
                .unwrap_or_else(resolved_fqdn)
        })
    }
}

impl fmt::Display for Fqdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl fmt::Debug for Fqdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The FQDN the environment's override (unless empty) or else the config key gives, if any.
fn given_fqdn(env_override: Option<&str>, config_override: Option<&str>) -> Option<String> {
    env_override
        .filter(|name| !name.is_empty())
        .or(config_override)
        .map(str::to_string)
}

/// The FQDN from the first of: the environment's override (unless empty), the config key, and
/// `resolve`, which is asked only when neither names the host.
fn choose_fqdn(
    env_override: Option<&str>,
    config_override: Option<&str>,
    resolve: impl FnOnce() -> String,
) -> String {
    given_fqdn(env_override, config_override).unwrap_or_else(resolve)
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

    #[test]
    fn the_name_looked_up_aside_is_the_one_found_in_line() {
        assert_eq!(&*Fqdn::look_up(Some("h1.example.com")), "h1.example.com");
        // No override (unless the test's own environment sets one): the resolver's answer.
        let aside = Fqdn::look_up(None);
        assert_eq!(&*aside, fqdn(None));
        assert_eq!(aside.to_string(), fqdn(None));
    }
}
