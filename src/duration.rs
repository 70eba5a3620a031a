//! `DURATION` on the command line (`--wait`, `--min-interval`): seconds (`90`, `0.5`), or
//! numbers with units run together (`90s`, `5m`, `1h30m`, `2d`, `250ms`), and for `--wait`
//! also `forever`.
//!
//! Hand-written rather than a crate: the grammar is a dozen lines, and an error must name the
//! text as given, which clap then prefixes with the option (exit 64).

use std::fmt;
use std::time::Duration;

/// How long `--wait` waits for the lock and the leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    For(Duration),
    Forever,
}

impl Wait {
    /// The wait's length; `None` for ever.
    pub fn limit(self) -> Option<Duration> {
        match self {
            Wait::For(d) => Some(d),
            Wait::Forever => None,
        }
    }
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wait::For(d) => f.write_str(&human(*d)),
            Wait::Forever => f.write_str("forever"),
        }
    }
}

/// `--wait`'s value: a duration or `forever`. Zero is refused: it could mean "do not wait"
/// (which is leaving `--wait` out) as well as "for ever", and guessing wrong either way hurts.
pub fn parse_wait(text: &str) -> Result<Wait, String> {
    if text.trim() == "forever" {
        return Ok(Wait::Forever);
    }
    let d = parse(text)?;
    if d.is_zero() {
        return Err(format!(
            "{text:?}: a wait must be longer than 0 (leave --wait out not to wait, or say forever)"
        ));
    }
    Ok(Wait::For(d))
}

/// `--min-interval`'s value: a duration longer than 0 (an interval of 0 would skip nothing).
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = parse(text)?;
    if d.is_zero() {
        return Err(format!("{text:?}: an interval must be longer than 0"));
    }
    Ok(d)
}

/// A duration: plain seconds, or one or more `NUMBER UNIT` with units `d`, `h`, `m`, `s`, `ms`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        Err(format!(
            "{text:?} is not a duration ({why}; say e.g. 90, 90s, 5m, 1h30m)"
        ))
    };
    let s = text.trim();
    if s.is_empty() {
        return bad("it is empty");
    }
    if let Ok(secs) = s.parse::<f64>() {
        return seconds(secs).map_or_else(|| bad("out of range"), Ok);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let Ok(number) = rest[..digits].parse::<f64>() else {
            return bad("a number must come before each unit");
        };
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "d" => 86_400.0,
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "" => return bad("a unit must follow each number"),
            _ => return bad("units are d, h, m, s and ms"),
        };
        rest = &rest[unit..];
        total += number * scale;
    }
    seconds(total).map_or_else(|| bad("out of range"), Ok)
}

fn seconds(secs: f64) -> Option<Duration> {
    // A billion seconds is three decades: anything longer is a typo, not a plan.
    (secs.is_finite() && (0.0..=1e9).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// `1h30m`, `5m`, `90s` → `1m30s`, `0.5s`: as an operator would have written it.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) || ms == 0 {
        return format!("{}s", d.as_secs_f64());
    }
    let mut s = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= size {
            out.push_str(&format!("{}{unit}", s / size));
            s %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let secs = |s: f64| Duration::from_secs_f64(s);
        for (text, want) in [
            ("90", 90.0),
            ("0.5", 0.5),
            ("90s", 90.0),
            ("5m", 300.0),
            ("1h30m", 5400.0),
            ("2d", 172_800.0),
            ("250ms", 0.25),
            ("1m30s", 90.0),
            ("1.5h", 5400.0),
            (" 7 ", 7.0),
        ] {
            assert_eq!(parse(text), Ok(secs(want)), "{text}");
        }
        for bad in ["", "x", "5x", "h", "5m3", "-1", "1e12", "1..2s", "5 m"] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn waits_and_intervals() {
        assert_eq!(parse_wait("forever"), Ok(Wait::Forever));
        assert_eq!(parse_wait("5m"), Ok(Wait::For(Duration::from_secs(300))));
        assert!(parse_wait("0").is_err());
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("forever").is_err());
        assert_eq!(parse_interval("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn human_reads_back() {
        for text in ["1h30m", "5m", "1m30s", "2d", "0.5s", "1d1s"] {
            let d = parse(text).unwrap();
            assert_eq!(human(d), text);
            assert_eq!(parse(&human(d)), Ok(d));
        }
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
    }
}
