use super::*;

fn run(outcome: Outcome, code: i32, at: f64) -> RunEnd {
    RunEnd {
        outcome,
        code,
        took: Duration::from_millis(1500),
        at,
    }
}

#[test]
fn every_outcome_counts_and_skips_hide_nothing() {
    let kept = Kept::default()
        .after(&run(Outcome::Succeeded, 0, 100.5))
        .after(&run(Outcome::Failed, 3, 200.0))
        .after(&run(Outcome::Skipped, 0, 300.0))
        .after(&run(Outcome::Stopped, 79, 400.0))
        .after(&run(Outcome::Error, 69, 500.0))
        .after(&run(Outcome::Skipped, 0, 600.0));
    assert_eq!(kept.runs, [1, 1, 2, 1, 1]);
    assert_eq!(kept.last_success, Some(100.5));
    assert_eq!(kept.last_failure, Some(200.0));
    assert_eq!(kept.last_run, Some(500.0), "skips do not count as runs");
    assert_eq!(kept.last_exit_code, Some(69));
    assert_eq!(kept.last_duration, Some(1.5));
}

#[test]
fn a_textfile_is_read_back_as_written_whatever_the_name() {
    let kept = Kept::default()
        .after(&run(Outcome::Succeeded, 0, 1_764_136_471.077))
        .after(&run(Outcome::Failed, 2, 1_764_136_475.25))
        .after(&run(Outcome::Error, 78, 1_764_136_480.5))
        .after(&run(Outcome::Skipped, 0, 1_764_136_490.0));
    for name in [
        "backup",
        "we\"ird} name=\"x\",outcome=\"ran\"",
        "new\nline\\",
        "",
    ] {
        let text = kept.render(name);
        assert_eq!(Kept::parse(&text), kept, "{name:?}:\n{text}");
        let (_, labels, _) = text.lines().find_map(sample).unwrap();
        assert!(labels.contains(&("lock".into(), name.into())), "{labels:?}");
    }
}

#[test]
fn a_first_run_writes_no_times_it_does_not_know() {
    let text = Kept::default()
        .after(&run(Outcome::Skipped, 0, 1.0))
        .render("j");
    assert!(text.contains("switchman_job_runs_total{lock=\"j\",outcome=\"skipped\"} 1\n"));
    for outcome in ["succeeded", "failed", "stopped", "error"] {
        let zero = format!("switchman_job_runs_total{{lock=\"j\",outcome=\"{outcome}\"}} 0\n");
        assert!(text.contains(&zero), "{text}");
    }
    assert!(!text.contains("switchman_job_last_success_timestamp_seconds{"));
    assert!(!text.contains("switchman_job_last_exit_code{"));
}

#[test]
fn damage_costs_only_what_it_hides() {
    let text = "garbage\nswitchman_job_runs_total{lock=\"j\",outcome=\"succeeded\"} 7\n\
                switchman_job_runs_total{lock=\"j\",outcome=\"failed\" 9\n# a comment\n\
                switchman_job_last_exit_code{lock=\"j\"} x\n";
    let kept = Kept::parse(text);
    assert_eq!(kept.runs, [7, 0, 0, 0, 0]);
    assert_eq!(kept.last_exit_code, None);
}

#[test]
fn file_names_are_one_per_job() {
    let dir = Path::new("/m");
    assert_eq!(
        textfile(dir, "db-dump_1.x"),
        Path::new("/m/switchman_db-dump_1.x.prom")
    );
    assert_eq!(
        textfile(dir, "a b/é"),
        Path::new("/m/switchman_a%20b%2F%C3%A9.prom")
    );
    assert_ne!(textfile(dir, "a b"), textfile(dir, "a_b"));
}

#[test]
fn concurrent_updates_all_count() {
    let dir = tempfile::tempdir().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    record(&dir, "j", &run(Outcome::Succeeded, 0, 1.0)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let text = std::fs::read_to_string(textfile(dir.path(), "j")).unwrap();
    assert_eq!(Kept::parse(&text).runs[0], 200);
}

/// A textfile of a switchman before outcomes had their names: its switchman failures go on as
/// `error`; its runs of CMD, which it did not tell apart by their codes, start again.
#[test]
fn an_older_textfile_carries_its_errors_over() {
    let text = "switchman_job_runs_total{lock=\"j\",outcome=\"failed\"} 4\n\
                switchman_job_runs_total{lock=\"j\",outcome=\"ran\"} 9\n\
                switchman_job_runs_total{lock=\"j\",outcome=\"skipped\"} 2\n\
                switchman_job_runs_total{lock=\"j\",outcome=\"stopped\"} 1\n\
                switchman_job_last_success_timestamp_seconds{lock=\"j\"} 5\n";
    let kept = Kept::parse(text);
    assert_eq!(kept.runs, [0, 0, 2, 1, 4]);
    assert_eq!(kept.last_success, Some(5.0));
    let again = Kept::parse(
        &kept
            .clone()
            .after(&run(Outcome::Failed, 1, 6.0))
            .render("j"),
    );
    assert_eq!(again.runs, [0, 1, 2, 1, 4], "the new file is read as new");
}
