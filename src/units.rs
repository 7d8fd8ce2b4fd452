//! Durations and sizes as plughost's settings spell them: one parser each.
//!
//! Durations are Go's (`300ms`, `1.5s`, `1m30s`, `2h`), because Dapr's
//! YAML and its components' metadata use Go's `time.ParseDuration`: used by
//! `initTimeout`, the `plughost.io/*` annotations, `wasm.callTimeout`,
//! `wasm.pollInterval`, `grpc.callTimeout`, resiliency policies, Redis
//! metadata and the cron binding's `@every`. Like Go, the largest duration is
//! `i64::MAX` nanoseconds (about 292 years); anything longer is an error, not
//! a wrap or a panic. Where Dapr also reads a bare integer as milliseconds
//! (resiliency policies, Redis metadata), [`parse_duration_or_millis`].
//!
//! Sizes are bytes, or binary units (`512Ki`, `4Mi`, `1Gi`, optionally with
//! `B`): `--max-body-size` and `wasm.maxMemory`.

use std::time::Duration;

/// The longest duration: Go's, `i64::MAX` nanoseconds (2562047h47m16.854775807s).
pub const MAX_DURATION: Duration = Duration::from_nanos(i64::MAX as u64);

/// Why a duration or size was refused; each names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Not a duration at all.
    #[error("`{0}` is not a duration such as 500ms, 5s or 1m30s")]
    NotADuration(String),
    /// Longer than [`MAX_DURATION`].
    #[error("`{0}` is too long a duration (the most is 2562047h, about 292 years)")]
    DurationTooLong(String),
    /// No number, or a number and something else.
    #[error("`{0}` is not a size such as 4194304, 512Ki or 4Mi")]
    NotASize(String),
    /// A number with a unit plughost does not know.
    #[error("`{text}` is not a size: unknown unit `{unit}` (use bytes, Ki, Mi or Gi)")]
    UnknownSizeUnit {
        /// The whole text.
        text: String,
        /// The unit in it.
        unit: String,
    },
    /// More bytes than this machine can count.
    #[error("`{0}` is too large a size")]
    SizeTooLarge(String),
}

/// Parses a Go duration: one or more `<number><unit>` (`1h30m`, `1.5s`,
/// `.5ms`), units `ns`, `us` (`µs`), `ms`, `s`, `m`, `h`; no sign, and a
/// unit is always required. Fractions below a nanosecond are dropped.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let trimmed = text.trim();
    let bad = || UnitError::NotADuration(trimmed.to_owned());
    let too_long = || UnitError::DurationTooLong(trimmed.to_owned());
    if trimmed.is_empty() {
        return Err(bad());
    }
    let mut rest = trimmed;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        let unit_end = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3600 * 1_000_000_000,
            _ => return Err(bad()),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(bad());
        }
        let whole = if whole.is_empty() { 0 } else { digits(whole).ok_or_else(too_long)? };
        let mut nanos = whole.checked_mul(per_unit).ok_or_else(too_long)?;
        // 19 digits of fraction are far below a nanosecond of any unit, and
        // keep `fraction * per_unit` well inside u128.
        let fraction = &fraction[..fraction.len().min(19)];
        if let Some(numerator) = digits(fraction) {
            nanos += numerator * per_unit / 10u128.pow(fraction.len() as u32);
        }
        total = total.checked_add(nanos).ok_or_else(too_long)?;
        rest = after;
    }
    let nanos = u64::try_from(total).ok().filter(|n| *n <= i64::MAX as u64).ok_or_else(too_long)?;
    Ok(Duration::from_nanos(nanos))
}

/// [`parse_duration`], or a bare integer of milliseconds (`1500`), as Dapr
/// reads resiliency policies and Redis metadata.
pub fn parse_duration_or_millis(text: &str) -> Result<Duration, UnitError> {
    let trimmed = text.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return parse_duration(trimmed);
    }
    let too_long = || UnitError::DurationTooLong(trimmed.to_owned());
    let nanos = digits(trimmed).and_then(|ms| ms.checked_mul(1_000_000)).ok_or_else(too_long)?;
    let nanos = u64::try_from(nanos).ok().filter(|n| *n <= i64::MAX as u64).ok_or_else(too_long)?;
    Ok(Duration::from_nanos(nanos))
}

/// Parses a size in bytes: `4194304`, `512Ki`, `4Mi`, `1Gi` (also `4MiB`,
/// `100B`). Zero is a size; callers that need more say so.
pub fn parse_size(text: &str) -> Result<usize, UnitError> {
    let trimmed = text.trim();
    let (number, unit) = trimmed.split_at(trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len()));
    if number.is_empty() {
        return Err(UnitError::NotASize(trimmed.to_owned()));
    }
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "Ki" | "KiB" => 1 << 10,
        "Mi" | "MiB" => 1 << 20,
        "Gi" | "GiB" => 1 << 30,
        other => return Err(UnitError::UnknownSizeUnit { text: trimmed.to_owned(), unit: other.to_owned() }),
    };
    let too_large = || UnitError::SizeTooLarge(trimmed.to_owned());
    number.parse::<usize>().ok().and_then(|n| n.checked_mul(scale)).ok_or_else(too_large)
}

/// The value of a run of ASCII digits; `None` if empty or past `u128`.
fn digits(text: &str) -> Option<u128> {
    if text.is_empty() {
        return None;
    }
    text.bytes().try_fold(0u128, |n, d| n.checked_mul(10)?.checked_add(u128::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ok = |text: &str| parse_duration(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(ok("300ms"), Duration::from_millis(300));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("2h"), Duration::from_secs(7200));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok(" 1h2m3s4ms5us6ns "), Duration::new(3723, 4_005_006));
        assert_eq!(ok(".5ms"), Duration::from_micros(500));
        assert_eq!(ok("1.1s"), Duration::from_millis(1100), "exact, not through f64");
        assert_eq!(ok("10µs"), Duration::from_micros(10));
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("2562047h47m16.854775807s"), MAX_DURATION);
    }

    #[test]
    fn refuses_what_is_not_a_go_duration() {
        for text in ["", "5", "5x", "5 seconds", "soon", "1..5s", ".s", "-1s", "1h 30m", "s"] {
            let err = parse_duration(text).unwrap_err();
            assert_eq!(err, UnitError::NotADuration(text.trim().to_owned()), "{text:?}");
        }
        assert_eq!(
            parse_duration("soon").unwrap_err().to_string(),
            "`soon` is not a duration such as 500ms, 5s or 1m30s"
        );
    }

    #[test]
    fn too_long_is_an_error_not_a_wrap_or_a_panic() {
        for text in [
            "99999999999999999h",
            "99999999999999999999999h",
            "2562048h",
            "2562047h47m16.854775808s",
            "18446744073709551616ns",
            "999999999999999999999999999999999999999999999ns",
            "9223372036854775807ns1ns",
        ] {
            let err = parse_duration(text).unwrap_err();
            assert_eq!(err, UnitError::DurationTooLong(text.to_owned()), "{text}");
            assert!(err.to_string().contains(text), "{err}");
        }
        assert!(parse_duration_or_millis("9223372036855").is_err(), "over the limit in milliseconds");
        assert!(parse_duration_or_millis("99999999999999999999999999999999999999999").is_err());
    }

    #[test]
    fn bare_integers_are_milliseconds_where_dapr_says_so() {
        assert_eq!(parse_duration_or_millis("1500"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration_or_millis(" 1m30s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration_or_millis("9223372036854"), Ok(Duration::from_millis(9_223_372_036_854)));
        assert!(parse_duration_or_millis("").is_err());
        assert!(parse_duration("1500").is_err(), "plain durations need a unit");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4194304"), Ok(4 << 20));
        assert_eq!(parse_size("4Mi"), Ok(4 << 20));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("512Ki"), Ok(512 << 10));
        assert_eq!(parse_size("1Gi"), Ok(1 << 30));
        assert_eq!(parse_size(" 64 Mi "), Ok(64 << 20));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn refuses_bad_sizes() {
        assert_eq!(parse_size("lots"), Err(UnitError::NotASize("lots".into())));
        assert_eq!(parse_size(""), Err(UnitError::NotASize(String::new())));
        let err = parse_size("4MB").unwrap_err();
        assert!(err.to_string().contains("unknown unit `MB`"), "{err}");
        assert!(matches!(parse_size("1.5Mi"), Err(UnitError::UnknownSizeUnit { .. })));
        assert_eq!(parse_size("99999999999999999999"), Err(UnitError::SizeTooLarge("99999999999999999999".into())));
        assert_eq!(parse_size("17179869184Gi"), Err(UnitError::SizeTooLarge("17179869184Gi".into())));
    }
}
