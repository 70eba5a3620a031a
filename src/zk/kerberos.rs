//! Kerberos for the session's SASL GSSAPI (docs/security.md, "Kerberos").
//!
//! **Why we get the tickets ourselves.** The client library hands GSSAPI whatever the default
//! credential cache holds, at every connect and reconnect, and when that fails it reports only a
//! connect timeout, several seconds later. So before connecting, [`login`] gets the
//! credentials itself (from the keytab through the KDC, or from the caller's credential cache)
//! and a service ticket for each server's principal, and turns a failure into one line (exit
//! 77) naming the principal, the realm or the server, before anything is asked of ZooKeeper.
//!
//! **With a keytab** the tickets go into a credential cache in our own memory ([`CCACHE`]),
//! never the caller's, made the default of the thread the library runs on: MIT's default cache
//! can be set per thread (`gss_krb5_ccache_name`) and both binaries run their sessions on one
//! thread. [`login`] leaves a task that gets a new ticket from the keytab once half of the
//! last one's life is over, as MIT's own client keytab does, so that a reconnect hours into a
//! run still authenticates. **With a credential cache** the ticket is used as it is: whatever
//! renews it (kinit, k5start, sssd) must do so before a reconnect needs it.

use std::ffi::{CString, c_char, c_void};
use std::path::Path;
use std::ptr;
use std::time::Duration;

use libgssapi::context::{ClientCtx, CtxFlags};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::error::{Error as GssError, MajorFlags};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_NT_HOSTBASED_SERVICE, GSS_NT_KRB5_PRINCIPAL, OidSet};
use libgssapi_sys as sys;

use crate::error::{Error, Result};
use crate::security::Kerberos;

/// The credential cache of a run with a keytab: in this process's memory only.
const CCACHE: &str = "MEMORY:switchman";

/// The shortest wait between two tickets from the keytab (a KDC that hands out tickets of a
/// few seconds, say, in a test).
const MIN_REFRESH: Duration = Duration::from_secs(1);

/// Twice the wait before asking the KDC again after it failed to renew.
const RETRY: Duration = Duration::from_secs(60);

/// Gets our credentials and a ticket for each server in `servers` (hosts of `zkhosts`), or says
/// why not (exit 77), within `patience`. With a keytab, also keeps them fresh from then on.
/// To be called on the thread the session will run on.
pub async fn login(k: &Kerberos, servers: Vec<String>, patience: Duration) -> Result<()> {
    if k.keytab.is_some() {
        use_own_ccache().map_err(|e| failure(k, Step::Cache, e))?;
    }
    let kerberos = k.clone();
    let task = tokio::task::spawn_blocking(move || credentials(&kerberos, &servers));
    let lifetime = match tokio::time::timeout(patience, task).await {
        Ok(Ok(result)) => result?,
        Ok(Err(e)) => return Err(Error::Internal(format!("Kerberos login: {e}"))),
        Err(_) => {
            return Err(Error::NoPerm(format!(
                "Kerberos: no KDC of realm {} answered within {:.1}s for {}; check the KDCs of \
                 that realm in krb5.conf",
                k.realm,
                patience.as_secs_f64(),
                k.principal
            )));
        }
    };
    tracing::debug!(
        principal = %k.principal,
        seconds = lifetime.as_secs(),
        "Kerberos: ticket ready"
    );
    // One renewal per process, however often it connects (`status --watch`, say).
    static RENEWING: std::sync::Once = std::sync::Once::new();
    if k.keytab.is_some() {
        RENEWING.call_once(|| drop(tokio::spawn(refresh(k.clone(), lifetime))));
    }
    Ok(())
}

/// Gets a new ticket from the keytab each time half of the last one's life is over. A failure
/// only costs a warning: the ticket in hand may yet last until the KDC answers again.
async fn refresh(k: Kerberos, mut lifetime: Duration) {
    loop {
        tokio::time::sleep((lifetime / 2).max(MIN_REFRESH)).await;
        let kerberos = k.clone();
        let renewed = tokio::task::spawn_blocking(move || from_keytab(&kerberos)).await;
        lifetime = match renewed {
            Ok(Ok(lifetime)) => {
                tracing::debug!(principal = %k.principal, seconds = lifetime.as_secs(), "Kerberos: ticket renewed from the keytab");
                lifetime
            }
            Ok(Err(e)) => {
                tracing::warn!("{e}; trying again");
                // What is left of the ticket in hand is about half of what it was; try again
                // within it, but not more than twice a minute against a KDC that fails.
                (lifetime / 2).max(RETRY)
            }
            Err(_) => return,
        };
    }
}

/// What we were doing when Kerberos said no, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step<'a> {
    Cache,
    Ticket,
    /// A ticket for this service principal (no realm).
    Service(&'a str),
}

/// On a blocking thread: our ticket (from the keytab, into [`CCACHE`]; or from the caller's
/// credential cache) and a service ticket for every server. Returns how long ours lasts.
fn credentials(k: &Kerberos, servers: &[String]) -> Result<Duration> {
    let lifetime = match &k.keytab {
        Some(_) => {
            // This thread reads the same cache from here on, for the service tickets.
            use_own_ccache().map_err(|e| failure(k, Step::Cache, e))?;
            from_keytab(k)?
        }
        None => from_ccache(k)?,
    };
    let mut krb5 = OidSet::new().map_err(|e| failure(k, Step::Ticket, e))?;
    krb5.add(&GSS_MECH_KRB5)
        .map_err(|e| failure(k, Step::Ticket, e))?;
    let name = principal_name(k).map_err(|e| failure(k, Step::Ticket, e))?;
    let mut hosts: Vec<&str> = servers.iter().map(String::as_str).collect();
    hosts.sort_unstable();
    hosts.dedup();
    for host in hosts {
        let service = k.service_principal(host);
        // As the library names the server (rsasl's GSSAPI): a host-based service name.
        let target = format!(
            "{}@{}",
            k.service,
            k.service_host.as_deref().unwrap_or(host)
        );
        let step = Name::new(target.as_bytes(), Some(&GSS_NT_HOSTBASED_SERVICE)).and_then(|t| {
            let cred = Cred::acquire(Some(&name), None, CredUsage::Initiate, Some(&krb5))?;
            ClientCtx::new(
                Some(cred),
                t,
                CtxFlags::GSS_C_MUTUAL_FLAG,
                Some(&GSS_MECH_KRB5),
            )
            .step(None, None)
        });
        step.map_err(|e| failure(k, Step::Service(&service), e))?;
    }
    Ok(lifetime)
}

/// Our ticket in the caller's credential cache, which must be the one the library will use
/// (the default principal's).
fn from_ccache(k: &Kerberos) -> Result<Duration> {
    let name = principal_name(k).map_err(|e| failure(k, Step::Ticket, e))?;
    let cred = Cred::acquire(Some(&name), None, CredUsage::Initiate, None)
        .map_err(|e| failure(k, Step::Ticket, e))?;
    let lifetime = cred.lifetime().map_err(|e| failure(k, Step::Ticket, e))?;
    if lifetime.is_zero() {
        return Err(expired(k));
    }
    let default = Cred::acquire(None, None, CredUsage::Initiate, None)
        .and_then(|c| c.name())
        .map(|n| n.to_string())
        .map_err(|e| failure(k, Step::Ticket, e))?;
    if default != k.principal {
        return Err(Error::NoPerm(format!(
            "Kerberos: the credential cache's default principal is {default}, not {}; \
             `kswitch -p {}`, or give a keytab in \"auth\"",
            k.principal, k.principal
        )));
    }
    Ok(lifetime)
}

fn expired(k: &Kerberos) -> Error {
    Error::NoPerm(format!(
        "Kerberos: the ticket of {} in the credential cache ({}) has expired; kinit again, or \
         give a keytab in \"auth\"",
        k.principal,
        std::env::var("KRB5CCNAME").unwrap_or_else(|_| "the default".into())
    ))
}

/// A ticket from the keytab into [`CCACHE`] (MIT gets a new one once half of the cached one's
/// life is over, and keeps the cached one until then). Returns how long it lasts.
fn from_keytab(k: &Kerberos) -> Result<Duration> {
    let keytab = k.keytab.as_deref().expect("a keytab");
    acquire_from_keytab(&k.principal, keytab).map_err(|e| failure(k, Step::Ticket, e))?;
    let name = principal_name(k).map_err(|e| failure(k, Step::Ticket, e))?;
    // Read back through the thread's default cache, which is ours.
    use_own_ccache().map_err(|e| failure(k, Step::Cache, e))?;
    let lifetime =
        Cred::acquire(Some(&name), None, CredUsage::Initiate, None).and_then(|c| c.lifetime());
    match lifetime {
        Ok(lifetime) if !lifetime.is_zero() => Ok(lifetime),
        // MIT makes up for a clock that is off from the KDC's (kdc_timesync), but a ticket
        // just issued that has expired by our clock says it is off by more than its lifetime.
        Ok(_) => Err(skewed(k)),
        Err(e) if e.major.contains(MajorFlags::GSS_S_CREDENTIALS_EXPIRED) => Err(skewed(k)),
        Err(e) => Err(failure(k, Step::Ticket, e)),
    }
}

fn skewed(k: &Kerberos) -> Error {
    Error::NoPerm(format!(
        "Kerberos: the ticket the KDC of realm {} just issued to {} has already expired by this \
         host's clock: the clocks differ by more than its lifetime; check NTP",
        k.realm, k.principal
    ))
}

fn principal_name(k: &Kerberos) -> std::result::Result<Name, GssError> {
    Name::new(k.principal.as_bytes(), Some(&GSS_NT_KRB5_PRINCIPAL))
}

/// The one line for a refusal by Kerberos, naming the principal, the realm or the server.
fn failure(k: &Kerberos, step: Step, e: GssError) -> Error {
    let detail = minor_message(e.minor);
    let keytab = k
        .keytab
        .as_deref()
        .map(|p| format!("the keytab {}", p.display()))
        .unwrap_or_else(|| "the credential cache".to_string());
    // MIT's com_err codes (krb5_err.h, gssapi_err_krb5.h), signed as krb5 has them.
    let hint = match e.minor as i32 {
        -1765328378 => format!("the KDC of realm {} does not know {}", k.realm, k.principal),
        -1765328377 => format!(
            "the KDC of realm {} does not know the servers' principal {} (\"service\", \
             \"service_host\")",
            k.realm,
            match step {
                Step::Service(s) => s,
                _ => "",
            }
        ),
        -1765328360 | -1765328353 => format!(
            "{keytab} holds keys the KDC of realm {} no longer accepts for {} (was it exported \
             again, or the password changed, since?)",
            k.realm, k.principal
        ),
        -1765328203 => format!("{keytab} holds no key for {}", k.principal),
        -1765328347 => format!(
            "this host's clock and the KDC's of realm {} differ by more than the allowed skew; \
             check NTP",
            k.realm
        ),
        -1765328228 | -1765328230 => format!(
            "no KDC of realm {} answers; check its KDCs in krb5.conf",
            k.realm
        ),
        -1765328352 => format!("a ticket of {} has expired", k.principal),
        // With a keytab, MIT looks in our empty cache only when the keytab had nothing.
        -1765328243 | -1765328189 if k.keytab.is_some() => {
            format!("{keytab} holds no key for {}", k.principal)
        }
        -1765328243 | -1765328189 | 39756044 if k.keytab.is_none() => format!(
            "no ticket for {} in the credential cache ({}); kinit first, or give a keytab",
            k.principal,
            std::env::var("KRB5CCNAME").unwrap_or_else(|_| "the default".into())
        ),
        _ if e.major.contains(MajorFlags::GSS_S_CREDENTIALS_EXPIRED) && k.keytab.is_none() => {
            return expired(k);
        }
        _ => match step {
            Step::Cache => "cannot use a credential cache of our own".to_string(),
            Step::Ticket => format!("cannot get a ticket for {} from {keytab}", k.principal),
            Step::Service(s) => format!("cannot get a ticket for {s} as {}", k.principal),
        },
    };
    Error::NoPerm(format!("Kerberos: {hint}: {detail}"))
}

/// What MIT says about a minor status code: its message, often with the names involved.
/// Must be asked on the thread that saw the code, which keeps the detailed message.
fn minor_message(minor: u32) -> String {
    let mut context = 0;
    let mut parts = Vec::new();
    loop {
        let mut status = 0;
        let mut buf = sys::gss_buffer_desc {
            length: 0,
            value: ptr::null_mut(),
        };
        // SAFETY: plain out-parameters; the buffer is released below.
        let major = unsafe {
            sys::gss_display_status(
                &mut status,
                minor,
                sys::GSS_C_MECH_CODE as i32,
                ptr::null_mut(),
                &mut context,
                &mut buf,
            )
        };
        if major != sys::GSS_S_COMPLETE {
            break;
        }
        if !buf.value.is_null() {
            // SAFETY: GSSAPI filled `buf` with `length` bytes.
            let bytes = unsafe { std::slice::from_raw_parts(buf.value as *const u8, buf.length) };
            parts.push(String::from_utf8_lossy(bytes).into_owned());
            // SAFETY: `buf` came from GSSAPI.
            unsafe { sys::gss_release_buffer(&mut status, &mut buf) };
        }
        if context == 0 {
            break;
        }
    }
    if parts.is_empty() {
        format!("GSSAPI minor code {minor}")
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests;

#[link(name = "gssapi_krb5")]
unsafe extern "C" {
    /// MIT's: the calling thread's default credential cache (`gssapi/gssapi_krb5.h`; not in
    /// the headers libgssapi-sys binds).
    fn gss_krb5_ccache_name(minor: *mut u32, name: *const c_char, out: *mut *const c_char) -> u32;
}

/// Makes [`CCACHE`] the calling thread's default credential cache.
fn use_own_ccache() -> std::result::Result<(), GssError> {
    let name = CString::new(CCACHE).expect("no NUL");
    let mut minor = 0;
    // SAFETY: MIT copies the name; no old name is asked for.
    let major = unsafe { gss_krb5_ccache_name(&mut minor, name.as_ptr(), ptr::null_mut()) };
    gss_result(major, minor)
}

/// Gets `principal`'s initial ticket from `keytab` into [`CCACHE`] (MIT's credential store
/// extension: the library's `Cred` cannot be given one).
fn acquire_from_keytab(principal: &str, keytab: &Path) -> std::result::Result<(), GssError> {
    let keytab = CString::new(format!("FILE:{}", keytab.display())).expect("a path has no NUL");
    let ccache = CString::new(CCACHE).expect("no NUL");
    let keys = [c"client_keytab", c"ccache"];
    let mut elements = [
        sys::gss_key_value_element_desc {
            key: keys[0].as_ptr(),
            value: keytab.as_ptr(),
        },
        sys::gss_key_value_element_desc {
            key: keys[1].as_ptr(),
            value: ccache.as_ptr(),
        },
    ];
    let store = sys::gss_key_value_set_desc {
        count: elements.len() as u32,
        elements: elements.as_mut_ptr(),
    };
    let mut minor = 0;
    let mut name: sys::gss_name_t = ptr::null_mut();
    let mut buffer = sys::gss_buffer_desc {
        length: principal.len(),
        value: principal.as_ptr() as *mut c_void,
    };
    // SAFETY: the buffer points at `principal`, which outlives the call; MIT copies it.
    let major = unsafe {
        sys::gss_import_name(&mut minor, &mut buffer, sys::GSS_C_NT_USER_NAME, &mut name)
    };
    gss_result(major, minor)?;
    let mut cred: sys::gss_cred_id_t = ptr::null_mut();
    // SAFETY: `store` and what it points at outlive the call; `name` and `cred` are released.
    let major = unsafe {
        sys::gss_acquire_cred_from(
            &mut minor,
            name,
            0,
            ptr::null_mut(),
            sys::GSS_C_INITIATE as i32,
            &store,
            &mut cred,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    let result = gss_result(major, minor);
    let mut ignored = 0;
    // SAFETY: both were made by GSSAPI above (or are null, which it accepts).
    unsafe {
        if !cred.is_null() {
            sys::gss_release_cred(&mut ignored, &mut cred);
        }
        sys::gss_release_name(&mut ignored, &mut name);
    }
    result
}

fn gss_result(major: u32, minor: u32) -> std::result::Result<(), GssError> {
    if major == sys::GSS_S_COMPLETE {
        Ok(())
    } else {
        Err(GssError {
            major: MajorFlags::from_bits_retain(major),
            minor,
        })
    }
}
