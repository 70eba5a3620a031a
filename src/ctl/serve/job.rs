//! A job's own page, `jobs/NAME`: its history (as `switchmanctl history` shows it), newest
//! first, each run's output on demand. Read when asked for, with the hub's session: histories
//! hold the runs' output, too much to read in every pass.

use std::fmt::Write as _;

use super::page::{document, esc, run_cells, section};
use crate::recipes::runs::Run;
use crate::timestamp;

/// The page of job `name`: its runs, or why they cannot be shown.
pub fn page(prefix: &str, name: &str, runs: &Result<Vec<Run>, String>, now: i64) -> String {
    let mut out = format!(
        "<main>\n<p><a href=\"../\">All of {}</a>. Read at <time datetime=\"{}\">{}</time>.</p>\n",
        esc(prefix),
        timestamp::rfc3339(now),
        timestamp::since(now, now)
    );
    section(&mut out, "history", &format!("Runs of {}", esc(name)));
    match runs {
        Err(why) => {
            let _ = writeln!(out, "<p>The history cannot be read: {}.</p>", esc(why));
        }
        Ok(runs) => {
            out.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
            for h in [
                "Outcome",
                "Host",
                "PID",
                "Started",
                "Took",
                "Fencing token",
                "Output",
            ] {
                let _ = write!(out, "<th scope=\"col\">{h}</th>");
            }
            out.push_str("</tr></thead>\n<tbody>\n");
            for run in runs {
                let _ = writeln!(
                    out,
                    "<tr>{}<td>{}</td></tr>",
                    run_cells(run, now),
                    output(run)
                );
            }
            out.push_str("</tbody></table></div>\n");
        }
    }
    out.push_str("</section>\n</main>");
    document("../", prefix, false, &out)
}

/// A run's output, opened on demand (`<details>` needs no script), or why there is none.
fn output(run: &Run) -> String {
    match &run.output {
        None => "not captured".to_string(),
        Some(o) => {
            let size = match o.cut() {
                true => format!("the last {} of {} bytes", o.tail.len(), o.bytes),
                false => format!("{} bytes", o.bytes),
            };
            format!(
                "<details id=\"output-{}\"><summary>{size}</summary><pre>{}</pre></details>",
                run.token,
                esc(&String::from_utf8_lossy(&o.tail))
            )
        }
    }
}
