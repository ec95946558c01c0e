//! Time as the core sees it: milliseconds since the Unix epoch, always passed in by the
//! caller (the shell reads the clock; the core never does). Formatting and parsing of ISO
//! 8601 timestamps are hand-written to keep `core::fmt` out of the Wasm.

use crate::error::Error;

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = u64;

/// One minute, hour and day in [`Millis`].
pub const MINUTE: Millis = 60_000;
/// One hour in [`Millis`].
pub const HOUR: Millis = 60 * MINUTE;
/// One day in [`Millis`].
pub const DAY: Millis = 24 * HOUR;

/// True when `list` holds `x`: a plain loop, where `<[u64]>::contains` brings an unrolled
/// search of its own into the Wasm.
#[allow(clippy::manual_contains)]
pub fn has(list: &[u64], x: u64) -> bool {
    list.iter().any(|y| *y == x)
}

/// Formats `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
///
/// ```
/// assert_eq!(nudge::time::to_iso(0), "1970-01-01T00:00:00.000Z");
/// ```
pub fn to_iso(ms: Millis) -> String {
    let days = (ms / DAY) as i64;
    let rem = ms % DAY;
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(24);
    push_num(&mut out, y as u64, 4);
    out.push('-');
    push_num(&mut out, m as u64, 2);
    out.push('-');
    push_num(&mut out, d as u64, 2);
    out.push('T');
    push_num(&mut out, rem / HOUR, 2);
    out.push(':');
    push_num(&mut out, rem % HOUR / MINUTE, 2);
    out.push(':');
    push_num(&mut out, rem % MINUTE / 1000, 2);
    out.push('.');
    push_num(&mut out, rem % 1000, 3);
    out.push('Z');
    out
}

/// Parses an ISO 8601 date-time with a `Z` or `±HH:MM` offset and optional fraction.
///
/// ```
/// assert_eq!(nudge::time::parse_iso("2026-11-23T19:33:11.5+01:00"), Ok(1795458791500));
/// assert!(nudge::time::parse_iso("yesterday").is_err());
/// ```
pub fn parse_iso(s: &str) -> Result<Millis, Error> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') {
        return Err(Error::BadTimestamp);
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(Error::BadTimestamp);
    }
    let y = digits(&b[0..4])?;
    let mo = digits(&b[5..7])?;
    let d = digits(&b[8..10])?;
    let h = digits(&b[11..13])?;
    let mi = digits(&b[14..16])?;
    let sec = digits(&b[17..19])?;
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return Err(Error::BadTimestamp);
    }
    if h > 23 || mi > 59 || sec > 60 {
        return Err(Error::BadTimestamp);
    }
    let mut i = 19;
    let mut frac_ms = 0u64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                frac_ms = frac_ms * 10 + u64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err(Error::BadTimestamp);
        }
        for _ in (i - start)..3 {
            frac_ms *= 10;
        }
    }
    let offset_min: i64 = match &b[i..] {
        [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = digits(&[*h1, *h2])? as i64;
            let om = digits(&[*m1, *m2])? as i64;
            if oh > 23 || om > 59 {
                return Err(Error::BadTimestamp);
            }
            let v = oh * 60 + om;
            if *sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return Err(Error::BadTimestamp),
    };
    let days = days_from_civil(y as i64, mo, d);
    let secs = days * 86_400 + (h * 3600 + mi * 60 + sec.min(59)) as i64 - offset_min * 60;
    if secs < 0 {
        return Err(Error::BadTimestamp);
    }
    Ok(secs as u64 * 1000 + frac_ms)
}

fn digits(b: &[u8]) -> Result<u32, Error> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return Err(Error::BadTimestamp);
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Ok(v)
}

fn push_num(out: &mut String, mut v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    while v > 0 && i > 0 {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let start = i.min(buf.len() - width);
    for &c in &buf[start..] {
        out.push(c as char);
    }
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days-from-civil algorithm (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        for ms in [0, 951_782_400_000, 1_795_458_791_123, 4_102_444_799_999] {
            assert_eq!(parse_iso(&to_iso(ms)), Ok(ms));
        }
        assert_eq!(to_iso(1_795_458_791_123), "2026-11-23T18:33:11.123Z");
    }

    #[test]
    fn rejects_what_is_not_a_date_time() {
        for s in [
            "",
            "2026-11-23",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-23T25:00:00Z",
            "2026-11-23T10:00:00",
            "2026-11-23T10:00:00.Z",
            "2026-11-23T10:00:00+1:00",
        ] {
            assert_eq!(parse_iso(s), Err(Error::BadTimestamp), "{s}");
        }
    }
}
