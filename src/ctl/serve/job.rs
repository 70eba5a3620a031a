//! Jobs' runs in HTML: the page's section of each job's last runs, and a job's own page,
//! `jobs/NAME`, with its history (as `switchmanctl history` shows it), newest first, each run's
//! output on demand. The history is read when asked for, with the hub's session: histories hold
//! the runs' output, too much to read in every pass.

use std::fmt::Write as _;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::page::{document, esc, open_table, section, time};
use super::runs::{self, JobRuns};
use crate::recipes::runs::Run;
use crate::timestamp;

/// Each job's last runs as its record keeps them, newest first, one group of rows a job; the
/// job's name leads to its own page, with its history and the runs' output.
pub fn last_runs(out: &mut String, jobs: &[JobRuns], now: i64) {
    section(out, "runs", "Last runs");
    if jobs.is_empty() {
        out.push_str(
            "<p>No job keeps a run record (<code>record_runs</code>, <code>--min-interval</code> \
             or <code>capture_output</code>).</p>\n</section>\n",
        );
        return;
    }
    open_table(
        out,
        &[
            "Job",
            "Outcome",
            "Host",
            "PID",
            "Started",
            "Took",
            "Fencing token",
        ],
    );
    for job in jobs {
        let _ = write!(out, "<tbody data-job=\"{}\">", esc(job.name));
        for (i, run) in job.runs.iter().enumerate() {
            out.push_str("<tr>");
            if i == 0 {
                let _ = write!(
                    out,
                    "<th scope=\"rowgroup\" rowspan=\"{}\"><a href=\"jobs/{}\">{}</a></th>",
                    job.runs.len(),
                    utf8_percent_encode(job.name, NON_ALPHANUMERIC),
                    esc(job.name)
                );
            }
            out.push_str(&run_cells(run, now));
            out.push_str("</tr>");
        }
        out.push_str("</tbody>\n");
    }
    out.push_str("</table></div>\n</section>\n");
}

/// A run's outcome (and why, for a run that switchman stopped or that failed it), host, pid,
/// start, duration and fencing token.
pub fn run_cells(run: &Run, now: i64) -> String {
    let took = run.end.map_or_else(
        || "-".to_string(),
        |end| {
            let ms = (end - run.start).max(0);
            format!(
                "<time datetime=\"PT{}.{:03}S\">{}</time>",
                ms / 1000,
                ms % 1000,
                timestamp::took(std::time::Duration::from_millis(ms as u64))
            )
        },
    );
    let why = run
        .error
        .as_deref()
        .map_or_else(String::new, |e| format!("<br><small>{}</small>", esc(e)));
    format!(
        "<td class=\"{}\">{}{why}</td><td>{}</td><td class=\"n\">{}</td><td>{} ({} ago)</td>\
         <td>{took}</td><td class=\"n\">{}</td>",
        runs::class(run.outcome),
        esc(&runs::label(run)),
        esc(&run.host),
        run.pid,
        esc(&timestamp::since(run.start, now)),
        time(run.start, now),
        run.token,
    )
}

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
            open_table(
                &mut out,
                &[
                    "Outcome",
                    "Host",
                    "PID",
                    "Started",
                    "Took",
                    "Fencing token",
                    "Output",
                ],
            );
            out.push_str("<tbody>\n");
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
