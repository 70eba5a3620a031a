//! Times as operators read them: a node's creation time (the servers' clock, milliseconds since
//! the epoch, as ZooKeeper's `ctime`) in RFC 3339 UTC, or as an age like `3m12s`.
//!
//! Hand-written rather than a time crate: UTC only, whole seconds, and a dozen lines of calendar
//! arithmetic do not justify a dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch on this host's wall clock (the clock ages are measured against).
pub fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The civil date (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm,
/// valid over the whole proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `ms` since the epoch as split into (days since the epoch, seconds into that day).
fn split(ms: i64) -> (i64, i64) {
    let secs = ms.div_euclid(1000);
    (secs.div_euclid(86_400), secs.rem_euclid(86_400))
}

fn time_of_day(secs: i64) -> String {
    format!("{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `2026-11-26T03:00:00Z`: RFC 3339 in UTC, to the second.
pub fn rfc3339(ms: i64) -> String {
    let (days, secs) = split(ms);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{}", time_of_day(secs))
}

/// `03:00:00Z` if `ms` falls on the same UTC day as `now_ms`, the full RFC 3339 time otherwise:
/// short where that cannot be misread.
pub fn since(ms: i64, now_ms: i64) -> String {
    let (days, secs) = split(ms);
    if days == split(now_ms).0 {
        time_of_day(secs)
    } else {
        rfc3339(ms)
    }
}

/// The age of something created at `ms`, as `45s`, `3m12s`, `2h05m` or `3d04h`. A creation time
/// ahead of this host's clock (the servers' clocks differ from ours) counts as `0s`.
pub fn age(ms: i64, now_ms: i64) -> String {
    let s = (now_ms - ms).max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d{:02}h", s / 86_400, s / 3600 % 24),
    }
}

/// How long something took, for a log line: `0.004s`, `12.5s`, or as [`age`] from a minute on.
pub fn took(d: std::time::Duration) -> String {
    match d.as_secs() {
        0..10 => format!("{:.3}s", d.as_secs_f64()),
        10..60 => format!("{:.1}s", d.as_secs_f64()),
        _ => age(0, d.as_millis() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_662_000_999), "2026-11-26T03:00:00Z");
        assert_eq!(rfc3339(-1000), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(4_107_542_400_000), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn since_is_short_on_the_same_day() {
        let t = 1_795_662_000_000;
        assert_eq!(since(t, t + 3_600_000), "03:00:00Z");
        assert_eq!(since(t, t + 86_400_000), "2026-11-26T03:00:00Z");
    }

    #[test]
    fn durations_keep_what_matters() {
        use std::time::Duration;
        assert_eq!(took(Duration::from_micros(4200)), "0.004s");
        assert_eq!(took(Duration::from_millis(12_540)), "12.5s");
        assert_eq!(took(Duration::from_secs(192)), "3m12s");
    }

    #[test]
    fn ages_read_like_durations() {
        let cases = [
            (0, "0s"),
            (59_999, "59s"),
            (192_000, "3m12s"),
            (7_500_000, "2h05m"),
            (273_600_000, "3d04h"),
            (-5000, "0s"),
        ];
        for (elapsed, text) in cases {
            assert_eq!(age(1_000_000, 1_000_000 + elapsed), text);
        }
    }
}
