//! The clock, and how verbatim writes time: RFC 3339 UTC, to the second;
//! and how it reads a duration (`5m`), the same for every flag.
//!
//! The pure rooms never read the clock: they are handed `now` (seconds
//! since the epoch) by the operation that acts, which takes it from here.
//! The ground floor: it imports nothing of the crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    since_epoch().as_secs()
}

/// The time since the epoch, now (zero for a clock set before 1970).
pub fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// When something started now with `timeout_secs` must have ended: now
/// plus the timeout, rounded up to the second.
pub fn deadline(timeout_secs: u64) -> u64 {
    let t = since_epoch();
    (t.as_secs() + u64::from(t.subsec_nanos() > 0)).saturating_add(timeout_secs)
}

/// Formats seconds since the epoch as RFC 3339 UTC (`2026-11-26T13:33:54Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses RFC 3339 UTC as [`rfc3339`] writes it (`2026-11-26T13:33:54Z`)
/// into seconds since the epoch; `None` for any other spelling or an
/// impossible date.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 20 || &b[4..5] != b"-" || &b[7..8] != b"-" || &b[10..11] != b"T" {
        return None;
    }
    if &b[13..14] != b":" || &b[16..17] != b":" || &b[19..20] != b"Z" {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || d < 1 || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    // Howard Hinnant's days-from-civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()?;
    // Refuses 2026-02-30 and the like: the date must round-trip.
    (rfc3339(secs) == s).then_some(secs)
}

/// A duration as every flag takes it: a number and an optional unit, `ms`,
/// `s` (the default), `m`, `h` or `d` (`500ms`, `90`, `15s`, `5m`, `1h`,
/// `7d`); more than zero.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 30s, 10m, 1h or 500ms"))?;
    let d = match unit {
        "" | "s" => std::time::Duration::from_secs(n),
        "ms" => std::time::Duration::from_millis(n),
        "m" => std::time::Duration::from_secs(n.saturating_mul(60)),
        "h" => std::time::Duration::from_secs(n.saturating_mul(3600)),
        "d" => std::time::Duration::from_secs(n.saturating_mul(86400)),
        _ => {
            return Err(format!(
                "`{s}`: unknown unit `{unit}`; use ms, s, m, h or d"
            ))
        }
    };
    if d.is_zero() {
        return Err(format!("`{s}`: a duration must be more than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        for secs in [
            0,
            59,
            951_782_400,
            1_700_000_000,
            4_102_444_800,
            253_402_300_799,
        ] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs), "{secs}");
        }
        for bad in [
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20+00:00",
            "2023-11-14 22:13:20Z",
            "2023-13-14T22:13:20Z",
            "2023-02-29T00:00:00Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:60:00Z",
            "+023-11-14T22:13:20Z",
            "2023-11-14T22:13:2\u{e9}",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
