//! A real browser for the page of `switchmanctl serve`: Debian's Chromium, headless, driven over
//! WebDriver by its `chromedriver` (both from scripts/install-deps) through `fantoccini`.
//!
//! One chromedriver per test binary ([`Browser::open`] starts it on first use); each
//! [`Browser`] is a session of its own, one Chromium, with JavaScript on or off. chromedriver
//! runs under a wrapper in a process group of its own whose stdin is a pipe held by this
//! process: when the pipe closes (the test process ended, however), the wrapper kills the whole
//! group, every Chromium with it.

use std::io::{BufRead, BufReader};
use std::ops::Deref;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

pub use fantoccini::Locator;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use super::util::wait_for;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver under its wrapper (see the module's comment): prints the driver's pid, waits for
/// EOF on stdin, then kills its process group.
const WRAPPER: &str = r#""$@" </dev/null 2>&1 &
p=$!
trap '' INT TERM HUP QUIT PIPE
echo "$p"
cat >/dev/null
kill -9 0
"#;

/// The flags every Chromium gets: headless, as root (no sandbox), and quiet: this machine's
/// network is closed, and a browser that phones home at every start only waits for it.
const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-crash-reporter",
    "--disable-breakpad",
    "--password-store=basic",
    "--window-size=1280,1000",
];

/// The running chromedriver: its URL, and the pipe whose end stops it.
struct Driver {
    url: String,
    _wrapper: Mutex<(Child, ChildStdin)>,
}

fn driver() -> &'static Driver {
    static DRIVER: OnceLock<Driver> = OnceLock::new();
    DRIVER.get_or_init(|| {
        for (tool, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: run scripts/install-deps (apt-get install {package})"
            );
        }
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(WRAPPER).arg("switchman-chromedriver");
        if Path::new("/usr/bin/setpriv").exists() {
            cmd.args(["/usr/bin/setpriv", "--pdeathsig", "KILL"]);
        }
        cmd.args([CHROMEDRIVER, "--port=0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        let mut wrapper = cmd.spawn().expect("start chromedriver's wrapper");
        let stdin = wrapper.stdin.take().expect("piped stdin");
        let mut out = BufReader::new(wrapper.stdout.take().expect("piped stdout"));
        // The pid, then chromedriver's own lines, one of which names its port.
        let mut port = None;
        let mut said = String::new();
        let mut line = String::new();
        while port.is_none() {
            line.clear();
            if out.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            said.push_str(&line);
            port = line
                .trim_end()
                .strip_prefix("ChromeDriver was started successfully on port ")
                .and_then(|p| p.trim_end_matches('.').parse::<u16>().ok());
        }
        let port = port.unwrap_or_else(|| panic!("chromedriver did not start:\n{said}"));
        // Its later lines go nowhere, and it must never block writing them.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Driver {
            url: format!("http://127.0.0.1:{port}"),
            _wrapper: Mutex::new((wrapper, stdin)),
        }
    })
}

/// One Chromium, driven over WebDriver. Derefs to fantoccini's [`Client`].
pub struct Browser {
    client: Client,
}

impl Browser {
    /// A new headless Chromium, with JavaScript on or off.
    pub async fn open(javascript: bool) -> Browser {
        let url = driver().url.clone();
        let mut options = json!({ "binary": CHROMIUM, "args": FLAGS });
        if !javascript {
            options["prefs"] = json!({ "profile.default_content_setting_values.javascript": 2 });
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a Chromium session (see scripts/install-deps)");
        Browser { client }
    }

    /// Ends the session, and its Chromium.
    pub async fn close(self) {
        let _ = self.client.close().await;
    }

    /// Waits until an element matches `css`, and returns its text. A live page may replace the
    /// element between the two; then it is found again.
    pub async fn text_of(&self, css: &str) -> String {
        wait_for(&format!("an element matches {css:?}"), async || {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            element.text().await.ok()
        })
        .await
    }

    /// Waits until `script` (a function body, run in the page) returns something other than
    /// `null` or `false`, and returns that. For what WebDriver's own waits cannot say.
    pub async fn until(&self, what: &str, script: &str) -> Value {
        wait_for(what, async || {
            match self.client.execute(script, vec![]).await.ok()? {
                Value::Null | Value::Bool(false) => None,
                found => Some(found),
            }
        })
        .await
    }

    /// Waits until no element matches `css`.
    pub async fn until_gone(&self, css: &str) {
        wait_for(&format!("nothing matches {css:?}"), async || {
            let found = self.client.find_all(Locator::Css(css)).await.ok()?;
            found.is_empty().then_some(())
        })
        .await
    }
}

impl Deref for Browser {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}
