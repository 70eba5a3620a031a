//! What `check-config` asks the servers of `zkhosts`: the settings the config's numbers rest
//! on (their real `tickTime`, the bounds they negotiate session timeouts into, and
//! `maxClientCnxns`), from the `conf` four-letter word or, where the servers do not allow it
//! (`4lw.commands.whitelist`), their AdminServer's `configuration` command.
//!
//! The no-overlap proof needs `server_tick_time` ≥ the real `tickTime` (docs/safety.md): the
//! default of 2 s on an ensemble with `tickTime=3000` would weaken it without a word.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::Config;

/// How long one server gets to answer each of the two ways of asking.
const PATIENCE: Duration = Duration::from_secs(2);

/// A server's settings, as it runs with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub tick_time: Duration,
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
    /// Connections from one address; 0 is no limit.
    pub max_client_cnxns: u64,
}

/// The settings of the server at `host:port`, or why they could not be had (both ways).
pub async fn ask(host: &str, port: u16, admin_port: u16) -> Result<Settings, String> {
    let conf = match tokio::time::timeout(PATIENCE, four_letter_word(host, port, "conf")).await {
        Ok(Ok(text)) => match parse_conf(&text) {
            Some(settings) => return Ok(settings),
            None => format!("`conf` answered {:?}", first_line(&text)),
        },
        Ok(Err(e)) => format!("`conf`: {e}"),
        Err(_) => format!("`conf`: no answer within {}s", PATIENCE.as_secs()),
    };
    let admin = match tokio::time::timeout(PATIENCE, admin_command(host, admin_port)).await {
        Ok(Ok(text)) => match serde_json::from_str(&text)
            .ok()
            .and_then(|v| parse_admin(&v))
        {
            Some(settings) => return Ok(settings),
            None => format!("answered {:?}", first_line(&text)),
        },
        Ok(Err(e)) => e,
        Err(_) => format!("no answer within {}s", PATIENCE.as_secs()),
    };
    Err(format!(
        "{conf}; AdminServer at {host}:{admin_port}: {admin}"
    ))
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    line.chars().take(80).collect()
}

async fn four_letter_word(host: &str, port: u16, word: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect((host, port)).await?;
    stream.write_all(word.as_bytes()).await?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await?;
    Ok(reply)
}

/// `GET /commands/configuration` of the AdminServer at `host:port`.
async fn admin_command(host: &str, port: u16) -> Result<String, String> {
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = hyper::Request::get("/commands/configuration")
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The `key=value` lines of `conf`.
fn parse_conf(text: &str) -> Option<Settings> {
    let value = |key: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.trim().parse().ok())
    };
    Some(Settings {
        tick_time: Duration::from_millis(value("tickTime")?),
        min_session_timeout: Duration::from_millis(value("minSessionTimeout")?),
        max_session_timeout: Duration::from_millis(value("maxSessionTimeout")?),
        max_client_cnxns: value("maxClientCnxns")?,
    })
}

/// The AdminServer's JSON for `configuration`.
fn parse_admin(json: &Value) -> Option<Settings> {
    let value = |key: &str| json.get(key)?.as_u64();
    Some(Settings {
        tick_time: Duration::from_millis(value("tick_time")?),
        min_session_timeout: Duration::from_millis(value("min_session_timeout")?),
        max_session_timeout: Duration::from_millis(value("max_session_timeout")?),
        max_client_cnxns: value("max_client_cnxns")?,
    })
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// What is wrong with `config` against the settings of `server` (`host:port`), one message
/// each; `concurrent_runs` is how many runs the operator expects at once on one host.
pub fn problems(
    config: &Config,
    server: &str,
    s: &Settings,
    concurrent_runs: Option<u64>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if config.server_tick_time < s.tick_time {
        problems.push(format!(
            "key \"server_tick_time\" is {} but ZooKeeper at {server} runs with tickTime={} \
             ({}): the no-overlap guarantee needs server_tick_time ≥ tickTime \
             (docs/safety.md); set it to {}",
            secs(config.server_tick_time),
            s.tick_time.as_millis(),
            secs(s.tick_time),
            s.tick_time.as_secs_f64()
        ));
    }
    let asked = config.session_timeout;
    if asked < s.min_session_timeout || asked > s.max_session_timeout {
        let granted = asked.clamp(s.min_session_timeout, s.max_session_timeout);
        problems.push(format!(
            "key \"session_timeout\" is {} but ZooKeeper at {server} negotiates sessions into \
             {} to {} (minSessionTimeout, maxSessionTimeout): runs would get {}",
            secs(asked),
            secs(s.min_session_timeout),
            secs(s.max_session_timeout),
            secs(granted)
        ));
    }
    if let Some(runs) = concurrent_runs
        && s.max_client_cnxns != 0
        && runs > s.max_client_cnxns
    {
        problems.push(format!(
            "{runs} runs at once on one host need {runs} connections, but ZooKeeper at {server} \
             takes at most maxClientCnxns={} from one address: the runs past that would fail \
             to connect (exit 69)",
            s.max_client_cnxns
        ));
    }
    problems
}

#[cfg(test)]
mod tests;
