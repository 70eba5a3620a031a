//! The page: plain semantic HTML rendered here, whole for `GET /` and as its `<main>` for each
//! event of the stream, which the page's script puts in place of the old one. Everything a
//! node holds is escaped; nothing from the config but the prefix is shown.

use std::fmt::Write as _;

use hyper::body::Bytes;

use super::hub::{Outage, View};
use super::{job, runs};
use crate::ctl::status::pass::{Snapshot, Waiter};
use crate::recipes::holder::Holder;
use crate::timestamp;

/// Queue items shown per resource: the head of a long queue is what matters, and the page (sent
/// again on each change) stays small. `/api/status` has them all.
const QUEUE_SHOWN: usize = 20;

/// Raw node data longer than this is cut short (`/api/status` has all of it).
const RAW_SHOWN: usize = 40;

/// Without JavaScript the page asks to be loaded again this often (seconds).
const RELOAD: u32 = 10;

/// The whole page for `view`, with ages measured at `now` (ms, this host's clock).
pub fn page(prefix: &str, view: &View, now: i64) -> String {
    let main = main(
        prefix,
        view.seq,
        view.snapshot.as_deref(),
        view.outage.as_ref(),
        now,
    );
    document("", prefix, true, &main)
}

/// A page of the server's around `main`: `root` leads from the page's path back to `/`, so
/// that every link is relative and the pages work under a reverse proxy's path. A `live` page
/// has the script that applies the event stream, or without JavaScript loads itself again.
pub fn document(root: &str, prefix: &str, live: bool, main: &str) -> String {
    let prefix = esc(prefix);
    let (script, status) = match live {
        true => (
            format!(
                "<script src=\"{root}assets/page.js\" defer></script>\n\
                 <noscript><meta http-equiv=\"refresh\" content=\"{RELOAD}\"></noscript>\n"
            ),
            format!(
                "<p id=\"live\" role=\"status\"><noscript>Without JavaScript this page is \
                 loaded again every {RELOAD} s.</noscript></p>\n"
            ),
        ),
        false => (String::new(), String::new()),
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>switchman: {prefix}</title>
<link rel="stylesheet" href="{root}assets/page.css">
<link rel="icon" href="{root}assets/favicon.svg" type="image/svg+xml">
{script}</head>
<body>
<header>
<h1>switchman <code>{prefix}</code></h1>
{status}</header>
{main}
<footer><p>Read-only. The same as JSON: <a href="{root}api/status">api/status</a>; for Prometheus: <a href="{root}metrics">metrics</a>.</p></footer>
</body>
</html>
"#
    )
}

/// The view as an event of the stream: its sequence number as the id, its `<main>` as the data.
pub fn event(
    prefix: &str,
    seq: u64,
    snapshot: Option<&Snapshot>,
    outage: Option<&Outage>,
) -> Bytes {
    let main = main(prefix, seq, snapshot, outage, timestamp::now_ms());
    let mut frame = format!("id: {seq}\n");
    for line in main.lines() {
        frame.push_str("data: ");
        frame.push_str(line);
        frame.push('\n');
    }
    frame.push('\n');
    Bytes::from(frame)
}

/// The page's `<main>`: the banner of an outage, then every section. `data-now` is this
/// host's clock, against which the script keeps the ages ticking; `data-seq` orders the views.
fn main(
    prefix: &str,
    seq: u64,
    snapshot: Option<&Snapshot>,
    outage: Option<&Outage>,
    now: i64,
) -> String {
    let class = if outage.is_some() {
        " class=\"stale\""
    } else {
        ""
    };
    let mut out = format!("<main data-seq=\"{seq}\" data-now=\"{now}\"{class}>\n");
    if let Some(o) = outage {
        let read = match snapshot {
            Some(s) => format!(
                "What follows was read {} ago and may no longer be so.",
                time(s.read_at, now)
            ),
            None => "Nothing has been read yet.".to_string(),
        };
        let _ = writeln!(
            out,
            "<div class=\"banner\" role=\"alert\"><p><strong>ZooKeeper cannot be read</strong> \
             (for {}): {}.</p><p>{read}</p></div>",
            time(o.since, now),
            esc(&o.why)
        );
    }
    match snapshot {
        Some(s) => sections(&mut out, s, now),
        None if outage.is_none() => {
            let _ = writeln!(out, "<p>Reading {}...</p>", esc(prefix));
        }
        None => {}
    }
    out.push_str("</main>");
    out
}

fn sections(out: &mut String, s: &Snapshot, now: i64) {
    let _ = writeln!(
        out,
        "<p class=\"read\">Read {} ago, in {} ms.</p>",
        time(s.read_at, now),
        s.took.as_millis()
    );
    locks(out, s, now);
    lines(out, s, now);
    resources(out, s, now);
    job::last_runs(out, &runs::from_records(s), now);
    groups(out, s);
    if !s.warnings.is_empty() {
        section(out, "warnings", "Warnings");
        out.push_str("<ul>\n");
        for w in &s.warnings {
            let _ = writeln!(out, "<li>{}</li>", esc(w));
        }
        out.push_str("</ul>\n</section>\n");
    }
}

fn locks(out: &mut String, s: &Snapshot, now: i64) {
    section(out, "locks", "Locks");
    let rows = s.locks.iter().map(|l| {
        format!(
            "<tr data-lock=\"{name}\"><th scope=\"row\">{name}</th>{}<td class=\"n\">{}</td></tr>",
            holder_cells(&l.holder, now),
            l.holder.czxid,
            name = esc(&l.name),
        )
    });
    table(
        out,
        "No lock is held.",
        &["Lock", "Host", "PID", "Held for", "Fencing token"],
        rows,
    );
    out.push_str("</section>\n");
}

/// The runs waiting in line for a lock (`--wait`).
fn lines(out: &mut String, s: &Snapshot, now: i64) {
    section(out, "lines", "Waiting for a lock");
    let rows = s.lines.iter().flat_map(|line| {
        line.waiters.iter().map(move |w| {
            format!(
                "<tr><th scope=\"row\">{}</th><td class=\"n\">{}</td>{}<td class=\"n\">{}</td></tr>",
                esc(&line.lock),
                w.position,
                holder_cells(&w.holder, now),
                or_dash(w.seq)
            )
        })
    });
    table(
        out,
        "No run waits in line for a lock.",
        &["Lock", "#", "Host", "PID", "Waiting for", "Seq"],
        rows,
    );
    out.push_str("</section>\n");
}

/// Each resource's semaphore against its capacity and its queue's length, then the head of
/// each queue and the leases held.
fn resources(out: &mut String, s: &Snapshot, now: i64) {
    section(out, "resources", "Resources");
    let mut names: Vec<&str> = s.semaphores.iter().map(|x| x.resource.as_str()).collect();
    names.extend(s.queues.iter().map(|q| q.resource.as_str()));
    names.sort();
    names.dedup();
    let rows = names.iter().map(|name| {
        let sem = s.semaphores.iter().find(|x| x.resource == *name);
        let queue = s.queues.iter().find(|q| q.resource == *name);
        let used = sem.map_or(0, |x| x.used);
        let in_use = match sem.and_then(|x| x.total) {
            Some(total) => format!(
                "<meter min=\"0\" max=\"{total}\" value=\"{used}\"></meter> {used} of {total}"
            ),
            // The total is in the runs' --lease specs, known here only through a lease held.
            None => format!("{used} (capacity unknown)"),
        };
        let waiting = queue.map_or(&[][..], |q| &q.waiters);
        let oldest = waiting
            .first()
            .map_or_else(|| "-".to_string(), |w| time(w.holder.ctime, now));
        format!(
            "<tr><th scope=\"row\">{}</th><td>{in_use}</td><td class=\"n\">{}</td><td>{oldest}</td></tr>",
            esc(name),
            waiting.len()
        )
    });
    table(
        out,
        "No resource has a queue or a semaphore yet.",
        &["Resource", "In use", "Queued", "Oldest wait"],
        rows,
    );
    let queued = s.queues.iter().filter(|q| !q.waiters.is_empty());
    let mut rows = Vec::new();
    for q in queued {
        rows.extend(
            q.waiters
                .iter()
                .take(QUEUE_SHOWN)
                .map(|w| queue_row(&q.resource, w, now)),
        );
        if q.waiters.len() > QUEUE_SHOWN {
            rows.push(format!(
                "<tr><td colspan=\"7\">... and {} more in the queue of {} (all of them: \
                 <a href=\"api/status\">api/status</a>)</td></tr>",
                q.waiters.len() - QUEUE_SHOWN,
                esc(&q.resource)
            ));
        }
    }
    out.push_str("<h3 id=\"queues\">Queues</h3>\n");
    table(
        out,
        "No one is queued.",
        &["Resource", "#", "Task", "Host", "PID", "Waiting for", "Seq"],
        rows.into_iter(),
    );
    let rows = s.semaphores.iter().flat_map(|sem| {
        sem.leases.iter().map(move |l| {
            format!(
                "<tr><th scope=\"row\">{}</th><td class=\"n\">{}</td>{}<td class=\"n\">{}</td></tr>",
                esc(&sem.resource),
                l.count
                    .map_or_else(|| raw(&l.node), |c| c.to_string()),
                holder_cells(&l.holder, now),
                or_dash(l.seq)
            )
        })
    });
    out.push_str("<h3 id=\"leases\">Leases</h3>\n");
    table(
        out,
        "No lease is held.",
        &["Resource", "Units", "Host", "PID", "Held for", "Seq"],
        rows,
    );
    out.push_str("</section>\n");
}

fn queue_row(resource: &str, w: &Waiter, now: i64) -> String {
    format!(
        "<tr><th scope=\"row\">{}</th><td class=\"n\">{}</td><td>{}</td>{}<td class=\"n\">{}</td></tr>",
        esc(resource),
        w.position,
        w.task.as_deref().map_or_else(|| raw(&w.node), esc),
        holder_cells(&w.holder, now),
        or_dash(w.seq)
    )
}

fn groups(out: &mut String, s: &Snapshot) {
    section(out, "groups", "Groups");
    let rows = s.groups.iter().flatten().map(|(group, hosts)| {
        let hosts: Vec<String> = hosts.iter().map(|h| esc(h)).collect();
        format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            esc(group),
            hosts.join(", ")
        )
    });
    table(out, "No group is defined.", &["Group", "Hosts"], rows);
    out.push_str("</section>\n");
}

/// Opens a section with its heading; the caller closes it.
pub fn section(out: &mut String, id: &str, heading: &str) {
    let _ = writeln!(
        out,
        "<section aria-labelledby=\"{id}\"><h2 id=\"{id}\">{heading}</h2>"
    );
}

/// A table's start, to its header row: on a narrow screen it scrolls sideways on its own
/// rather than widening the page.
pub(super) fn open_table(out: &mut String, header: &[&str]) {
    out.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
    for h in header {
        let _ = write!(out, "<th scope=\"col\">{h}</th>");
    }
    out.push_str("</tr></thead>\n");
}

/// A table with a header row, or `empty` when there are no rows.
fn table(out: &mut String, empty: &str, header: &[&str], rows: impl Iterator<Item = String>) {
    let mut rows = rows.peekable();
    if rows.peek().is_none() {
        let _ = writeln!(out, "<p>{empty}</p>");
    } else {
        open_table(out, header);
        out.push_str("<tbody>\n");
        for row in rows {
            out.push_str(&row);
            out.push('\n');
        }
        out.push_str("</tbody></table></div>\n");
    }
}

/// HOST, PID and the age; node data that is not `"{fqdn} {pid}"` goes, quoted, under HOST.
fn holder_cells(h: &Holder, now: i64) -> String {
    let host = match h.owner.host() {
        Some(host) => esc(host),
        None => raw(h.owner.raw().unwrap_or_default()),
    };
    format!(
        "<td>{host}</td><td class=\"n\">{}</td><td>{}</td>",
        or_dash(h.owner.pid()),
        time(h.ctime, now)
    )
}

/// Data that is not switchman's, quoted and cut short.
fn raw(text: &str) -> String {
    let mut shown: String = text.chars().take(RAW_SHOWN).collect();
    if shown.len() < text.len() {
        shown.push_str("...");
    }
    format!("<code>{}</code>", esc(&format!("{shown:?}")))
}

/// The age of something that began at `ms`, marked up with the moment itself, which the
/// script counts from.
pub fn time(ms: i64, now: i64) -> String {
    let at = timestamp::rfc3339(ms);
    format!(
        "<time datetime=\"{}.{:03}Z\" data-since>{}</time>",
        at.trim_end_matches('Z'),
        ms.rem_euclid(1000),
        timestamp::age(ms, now)
    )
}

fn or_dash(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// Text as HTML, safe in an element or a quoted attribute, and a carriage return kept off the
/// event stream's lines.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_data_cannot_become_markup() {
        assert_eq!(
            esc("<script>\"a\" & 'b'\r</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&#13;&lt;/script&gt;"
        );
        assert_eq!(raw("<b>\n"), "<code>&quot;&lt;b&gt;\\n&quot;</code>");
    }

    #[test]
    fn an_event_is_one_frame_of_data_lines() {
        let e = event("/p", 7, None, None);
        let text = std::str::from_utf8(&e).unwrap();
        assert!(
            text.starts_with("id: 7\ndata: <main data-seq=\"7\" "),
            "{text}"
        );
        assert!(text.ends_with("</main>\n\n"), "{text}");
        assert_eq!(text.matches("\n\n").count(), 1, "{text}");
        assert!(
            text.lines()
                .skip(1)
                .all(|l| l.is_empty() || l.starts_with("data: "))
        );
    }

    #[test]
    fn times_carry_the_moment_they_count_from() {
        assert_eq!(
            time(1_795_662_000_250, 1_795_662_012_000),
            "<time datetime=\"2026-11-26T03:00:00.250Z\" data-since>11s</time>"
        );
    }
}
