//! An MIT Kerberos KDC for tests/kerberos.rs and benches/secure.rs: Debian's `krb5-kdc`, with
//! a throwaway realm ([`REALM`]) on a free loopback port, its database made by `kdb5_util` in a
//! temp dir, principals and keytabs made per run by `kadmin.local`.
//!
//! `kadmin.local ktadd` gives a principal new keys, so a keytab exported earlier stops working:
//! each principal's keytab is exported once, and tests get copies ([`Kdc::keytab`]).
//!
//! The process's `KRB5_CONFIG` points at the realm's `krb5.conf` once [`kdc`] has run, so that
//! the switchman and switchmanctl the tests start, and the test's own Kerberos clients, find it.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::ensemble::{keep_temp_dirs, make_temp_root, tail};
use super::ports::pick_ports;
use super::server::ServerProc;
use super::util::{lock, poll_until_blocking};

/// The test realm.
pub const REALM: &str = "SWITCHMAN.TEST";

/// The servers' principal, made with the realm: ZooKeeper's `zookeeper/_HOST`, the host being
/// how `zkhosts` names the harness's servers.
pub const ZK_PRINCIPAL: &str = "zookeeper/127.0.0.1";

pub struct Kdc {
    dir: PathBuf,
    port: u16,
    proc: Option<ServerProc>,
    /// Each principal's one exported keytab.
    keytabs: Mutex<HashMap<String, PathBuf>>,
}

/// The KDC of this test binary, started on first use; sets `KRB5_CONFIG` (see the module's
/// docs). Call it before anything else in a test, so that no other thread reads the
/// environment while it is set.
pub fn kdc() -> &'static Kdc {
    static KDC: OnceLock<Kdc> = OnceLock::new();
    KDC.get_or_init(|| {
        let kdc = Kdc::start();
        // SAFETY: every test of a Kerberos test binary calls this first, so the others wait
        // on the OnceLock here and none reads the environment meanwhile.
        unsafe { std::env::set_var("KRB5_CONFIG", kdc.krb5_conf()) };
        kdc
    })
}

fn krb5_conf_text(kdc_port: u16, extra_libdefaults: &str) -> String {
    // TCP (udp_preference_limit 1), so that a KDC port nobody listens on is refused at once;
    // one second of clock skew allowed, not five minutes, so that an expired ticket is refused
    // (by the KDC, MIT's client and ZooKeeper's JVM alike) as soon as it has expired.
    format!(
        "[libdefaults]\n default_realm = {REALM}\n clockskew = 1\n dns_lookup_kdc = false\n \
         dns_lookup_realm = false\n dns_canonicalize_hostname = false\n rdns = false\n \
         udp_preference_limit = 1\n{extra_libdefaults}\n[realms]\n {REALM} = {{\n  \
         kdc = 127.0.0.1:{kdc_port}\n }}\n"
    )
}

impl Kdc {
    /// Makes the realm and starts the KDC; panics (with its log) if it does not answer.
    pub fn start() -> Kdc {
        for tool in [
            "/usr/sbin/krb5kdc",
            "/usr/sbin/kdb5_util",
            "/usr/sbin/kadmin.local",
        ] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: run scripts/install-deps (krb5-kdc, krb5-admin-server)"
            );
        }
        let dir = make_temp_root("kdc");
        let port = pick_ports(1)[0];
        let d = dir.display();
        std::fs::write(dir.join("krb5.conf"), krb5_conf_text(port, "")).unwrap();
        std::fs::write(
            dir.join("kdc.conf"),
            format!(
                "[kdcdefaults]\n kdc_listen = 127.0.0.1:{port}\n kdc_tcp_listen = 127.0.0.1:{port}\n\
                 [realms]\n {REALM} = {{\n  database_name = {d}/principal\n  \
                 key_stash_file = {d}/stash\n  acl_file = {d}/kadm5.acl\n  max_life = 1h\n  \
                 supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n }}\n\
                 [logging]\n kdc = FILE:{d}/kdc.log\n"
            ),
        )
        .unwrap();
        std::fs::create_dir_all(dir.join("keytabs")).unwrap();
        let mut kdc = Kdc {
            dir,
            port,
            proc: None,
            keytabs: Mutex::default(),
        };
        kdc.tool(
            "/usr/sbin/kdb5_util",
            &["create", "-s", "-r", REALM, "-P", "master-pw"],
        );
        let rm = if keep_temp_dirs() {
            PathBuf::new()
        } else {
            kdc.dir.clone()
        };
        // krb5kdc finds its profiles in its environment; in the foreground (-n), so that the
        // wrapper can kill it.
        let argv: Vec<String> = [
            "env".to_string(),
            format!("KRB5_CONFIG={}", kdc.krb5_conf().display()),
            format!("KRB5_KDC_PROFILE={}", kdc.dir.join("kdc.conf").display()),
        ]
        .into_iter()
        .chain(["/usr/sbin/krb5kdc", "-n", "-r", REALM].map(String::from))
        .collect();
        kdc.proc = Some(
            ServerProc::spawn(&kdc.dir.join("krb5kdc.out"), &rm, &argv)
                .unwrap_or_else(|e| panic!("starting krb5kdc: {e}")),
        );
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let up = poll_until_blocking(Duration::from_secs(10), || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        assert!(up, "the KDC does not answer on {addr}:\n{}", kdc.log_tail());
        kdc.add_principal(ZK_PRINCIPAL, "");
        kdc
    }

    /// The realm's `krb5.conf`, for clients (`KRB5_CONFIG`) and ZooKeeper's JVM.
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.join("krb5.conf")
    }

    /// A `krb5.conf` of the same realm named `name`, with `libdefaults` lines added, and its KDC
    /// at `kdc_port` (a port nobody listens on makes a KDC that does not answer).
    pub fn variant_conf(&self, name: &str, kdc_port: Option<u16>, libdefaults: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.conf"));
        std::fs::write(
            &path,
            krb5_conf_text(kdc_port.unwrap_or(self.port), libdefaults),
        )
        .unwrap();
        path
    }

    /// `principal@REALM`.
    pub fn principal(&self, name: &str) -> String {
        format!("{name}@{REALM}")
    }

    /// Runs `kadmin.local -q QUERY` on the realm's database; panics if it fails.
    pub fn kadmin(&self, query: &str) -> String {
        self.tool("/usr/sbin/kadmin.local", &["-r", REALM, "-q", query])
    }

    fn tool(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5_KDC_PROFILE", self.dir.join("kdc.conf"))
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        // kadmin.local exits 0 even when the query failed; it says so on stderr.
        assert!(
            out.status.success() && !stderr.contains("while ") && !stderr.contains("error"),
            "{program} {args:?}: {stderr}"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Makes principal `name` (in [`REALM`]) with random keys, `options` given to `addprinc`
    /// (`-maxlife "5 seconds"`, say), and exports its keytab once.
    pub fn add_principal(&self, name: &str, options: &str) {
        self.kadmin(&format!("addprinc -randkey {options} {name}"));
        let keytab = self
            .dir
            .join("keytabs")
            .join(format!("{}.keytab", name.replace('/', "_")));
        self.kadmin(&format!("ktadd -k {} {name}", keytab.display()));
        lock(&self.keytabs).insert(name.to_string(), keytab);
    }

    /// Removes principal `name` from the realm; its keytab stays.
    pub fn delete_principal(&self, name: &str) {
        self.kadmin(&format!("delprinc -force {name}"));
    }

    /// A copy of `name`'s keytab at `dest`, with `mode`.
    pub fn keytab(&self, name: &str, dest: &Path, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let from = lock(&self.keytabs)
            .get(name)
            .unwrap_or_else(|| panic!("no keytab for {name}: add_principal it first"))
            .clone();
        std::fs::copy(&from, dest).unwrap();
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode)).unwrap();
        dest.to_path_buf()
    }

    /// `kinit` as `name` from its keytab into the credential cache file `ccache`, for
    /// `lifetime` (kinit's `-l`, e.g. `5s`) if given.
    pub fn kinit(&self, name: &str, ccache: &Path, lifetime: Option<&str>) {
        let keytab = lock(&self.keytabs)
            .get(name)
            .unwrap_or_else(|| panic!("no keytab for {name}"))
            .clone();
        let mut args = vec![
            "-k".to_string(),
            "-t".into(),
            keytab.display().to_string(),
            "-c".into(),
            format!("FILE:{}", ccache.display()),
        ];
        if let Some(l) = lifetime {
            args.extend(["-l".to_string(), l.to_string()]);
        }
        args.push(self.principal(name));
        let out = Command::new("kinit")
            .args(&args)
            .env("KRB5_CONFIG", self.krb5_conf())
            .output()
            .unwrap_or_else(|e| panic!("kinit (install krb5-user: scripts/install-deps): {e}"));
        assert!(
            out.status.success(),
            "kinit {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// How many initial tickets (AS requests) the KDC issued to `principal` (with realm).
    pub fn tickets_issued(&self, principal: &str) -> usize {
        let log = std::fs::read_to_string(self.dir.join("kdc.log")).unwrap_or_default();
        let needle = format!("{principal} for krbtgt/");
        log.lines()
            .filter(|l| l.contains("AS_REQ") && l.contains("ISSUE") && l.contains(&needle))
            .count()
    }

    fn log_tail(&self) -> String {
        format!(
            "{}\n{}",
            tail(&self.dir.join("krb5kdc.out"), 20),
            tail(&self.dir.join("kdc.log"), 20)
        )
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("KDC log ({}):\n{}", self.dir.display(), self.log_tail());
        }
        if let Some(p) = self.proc.take() {
            p.finish(keep_temp_dirs());
        }
    }
}

#[link(name = "gssapi_krb5")]
unsafe extern "C" {
    /// MIT's: the calling thread's default credential cache.
    fn gss_krb5_ccache_name(
        minor: *mut u32,
        name: *const std::ffi::c_char,
        out: *mut *const std::ffi::c_char,
    ) -> u32;
}

/// Makes the credential cache file `ccache` the default of the calling thread: a test's own
/// GSSAPI client, whose session runs on the test's (current-thread) runtime, then
/// authenticates as the principal whose ticket is there.
pub fn use_ccache_on_this_thread(ccache: &Path) {
    let name = std::ffi::CString::new(format!("FILE:{}", ccache.display())).unwrap();
    let mut minor = 0;
    // SAFETY: MIT copies the name; no old name is asked for.
    let major = unsafe { gss_krb5_ccache_name(&mut minor, name.as_ptr(), std::ptr::null_mut()) };
    assert_eq!(major, 0, "gss_krb5_ccache_name: minor {minor}");
}
