use super::*;

fn stat(mtime: i64) -> Stat {
    Stat {
        czxid: 1,
        mzxid: 2,
        pzxid: 1,
        ctime: 0,
        mtime,
        version: 3,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 0,
        num_children: 0,
    }
}

fn run(host: &str, start: i64, exit_code: i32, token: i64) -> Run {
    Run {
        host: host.into(),
        pid: 7,
        start,
        end: None,
        exit_code,
        token,
        outcome: match exit_code {
            0 => Outcome::Succeeded,
            79 => Outcome::Stopped,
            _ => Outcome::Failed,
        },
        signal: None,
        command: None,
        error: None,
        output: None,
    }
}

/// Writes `ours` after `previous`, then reads it back as if the write happened at `at`.
fn round_trip(previous: Option<&Record>, ours: &Run, at: i64) -> Record {
    Record::parse(&Record::after(previous, ours), &stat(at)).unwrap()
}

#[test]
fn a_failure_carries_the_last_success_along() {
    let first = round_trip(None, &run("web1", 1000, 0, 10), 2000);
    assert_eq!(first.last.end, Some(2000), "the end is the write's mtime");
    assert_eq!(first.last_success, Some(first.last.clone()));

    let failed = round_trip(Some(&first), &run("web2", 5000, 3, 20), 6000);
    assert_eq!(failed.last.exit_code, 3);
    let success = failed.last_success.clone().unwrap();
    assert_eq!((success.host.as_str(), success.end), ("web1", Some(2000)));

    let again = round_trip(Some(&failed), &run("web3", 7000, 1, 30), 8000);
    assert_eq!(again.last_success, failed.last_success, "still the first");
    let stopped = round_trip(Some(&again), &run("web3", 7500, 79, 35), 8100);
    assert_eq!(stopped.last.outcome, Outcome::Stopped);
    assert_eq!(
        stopped.last_success, failed.last_success,
        "a stop is no success"
    );
    let ok = round_trip(Some(&stopped), &run("web2", 9000, 0, 40), 9500);
    assert_eq!(ok.last_success.unwrap().start, 9000);

    let never = round_trip(None, &run("web1", 1000, 1, 10), 2000);
    assert_eq!(never.last_success, None);
    assert_eq!(never.since_success(5000), None);
}

#[test]
fn a_record_keeps_no_output_and_old_records_still_read() {
    let mut ours = run("web1", 1000, 1, 10);
    ours.output = Some(Output {
        tail: b"boom\n".to_vec(),
        bytes: 5,
    });
    let data = Record::after(None, &ours);
    let text = String::from_utf8(data).unwrap();
    assert!(!text.contains("boom"), "{text}");
    assert!(text.contains(r#""outcome":"failed""#), "{text}");
    // As switchman wrote records before outcomes had names.
    let old = br#"{"exit_code":0,"host":"web1","pid":5,"start":1,"token":2}"#;
    let r = Record::parse(old, &stat(9)).unwrap();
    assert_eq!(r.last.outcome, Outcome::Succeeded);
    let old = br#"{"exit_code":2,"host":"web1","pid":5,"start":1,"token":2}"#;
    assert_eq!(
        Record::parse(old, &stat(9)).unwrap().last.outcome,
        Outcome::Failed
    );
}

#[test]
fn the_interval_is_measured_between_two_server_times() {
    let r = round_trip(None, &run("web1", 1_000_000, 0, 10), 1_500_000);
    assert_eq!(r.since_success(1_002_000).unwrap().0, 2000);
    assert_eq!(r.since_success(999_000).unwrap().0, -1000);
}

#[test]
fn junk_is_reported_not_trusted() {
    for junk in [&b""[..], b"web1 42", b"{}", br#"{"host": "w", "pid": -1}"#] {
        assert!(Record::parse(junk, &stat(0)).is_err(), "{junk:?}");
    }
    let outcome = br#"{"exit_code":0,"host":"w","pid":5,"start":1,"token":2,"outcome":"ran"}"#;
    assert!(Record::parse(outcome, &stat(0)).is_err());
    for junk in [&b"[]"[..], b"{}", br#"{"runs": 3}"#] {
        assert!(History::parse(junk, &stat(0)).is_err(), "{junk:?}");
    }
}

/// Adds `ours` to `history` as a write at `at` would leave it, read back.
fn add(history: Option<&History>, ours: &Run, keep: usize, at: i64) -> Option<History> {
    History::after(history, ours, keep).map(|data| History::parse(&data, &stat(at)).unwrap())
}

#[test]
fn a_history_keeps_the_last_runs_in_token_order_with_their_ends() {
    let h = add(None, &run("web1", 100, 0, 10), 3, 150).unwrap();
    let h = add(Some(&h), &run("web2", 200, 1, 20), 3, 250).unwrap();
    let h = add(Some(&h), &run("web1", 300, 0, 30), 3, 350).unwrap();
    let ends: Vec<Option<i64>> = h.runs.iter().map(|r| r.end).collect();
    assert_eq!(ends, [Some(150), Some(250), Some(350)]);
    // A late writer with an older token takes its place among them; the oldest drops.
    let h = add(Some(&h), &run("web3", 250, 79, 25), 3, 400).unwrap();
    let tokens: Vec<i64> = h.runs.iter().map(|r| r.token).collect();
    assert_eq!(tokens, [20, 25, 30]);
    assert_eq!(h.runs[1].end, Some(400));
    assert_eq!(h.runs[2].end, Some(350), "an end once written stays");
    // Older than every run of a full history: nothing to write.
    assert_eq!(History::after(Some(&h), &run("web4", 1, 0, 5), 3), None);
    // A smaller `keep` on another host trims the history to it.
    let h = add(Some(&h), &run("web1", 500, 0, 40), 2, 550).unwrap();
    let tokens: Vec<i64> = h.runs.iter().map(|r| r.token).collect();
    assert_eq!(tokens, [30, 40]);
}

#[test]
fn output_is_carried_as_text_or_base64_and_says_when_it_was_cut() {
    let cases: [(&[u8], u64, &str); 4] = [
        (b"all fine\n", 9, "output"),
        ("\u{e9}t\u{e9}\n".as_bytes(), 100, "output"),
        (b"\xff\xfe\x00binary", 9, "output_base64"),
        (b"\x01\x02\x03\x04\x05\x06", 6, "output_base64"),
    ];
    for (tail, bytes, key) in cases {
        let mut ours = run("web1", 100, 1, 10);
        ours.output = Some(Output {
            tail: tail.to_vec(),
            bytes,
        });
        let data = History::after(None, &ours, 5).unwrap();
        let value: Value = serde_json::from_slice(&data).unwrap();
        let run = &value["runs"][0];
        assert!(run.get(key).is_some(), "{key} in {run}");
        assert_eq!(
            run.get("output_cut").is_some(),
            bytes > tail.len() as u64,
            "{run}"
        );
        let back = History::parse(&data, &stat(1)).unwrap();
        assert_eq!(back.runs[0].output, ours.output, "{run}");
    }
}

#[test]
fn a_history_stays_within_its_bytes_by_dropping_old_output_first() {
    let mut history = History::default();
    for token in 1..=10 {
        let mut r = run("web1", token * 100, 1, token);
        r.output = Some(Output {
            tail: vec![b'x'; 1000],
            bytes: 1000,
        });
        history.runs.push(r);
    }
    let data = history.clone().render(6000);
    assert!(data.len() <= 6000, "{}", data.len());
    let back = History::parse(&data, &stat(1)).unwrap();
    assert_eq!(back.runs.len(), 10, "every run is kept");
    assert!(back.runs[9].output.is_some(), "the newest keeps its output");
    assert!(
        back.runs[0].output.is_none(),
        "the oldest lost its output first"
    );
    let data = history.render(500);
    let back = History::parse(&data, &stat(1)).unwrap();
    assert_eq!(back.runs.last().unwrap().token, 10, "the newest run stays");
    assert!(back.runs.len() < 10);
}
