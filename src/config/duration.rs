//! Durations in config: humantime text (`"5s"`, `"250ms"`, `"1h"`) with a ceiling that no key may
//! pass, so no deadline computed from a config value can overflow, and the per-key bounds.

use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::Problems;

/// The longest duration any key accepts. Each key has a tighter bound, checked by [`check`];
/// this one is enforced while parsing, so even a key without its own bound stays far from
/// anything that could overflow an `Instant` or a millisecond counter.
pub const CEILING: Duration = Duration::from_secs(7 * 24 * 3600);

/// Serde `with` module: a humantime duration no longer than [`CEILING`].
pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// Parses one duration as config writes it.
pub fn parse(text: &str) -> Result<Duration, String> {
    let d = humantime_serde::re::humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration such as \"5s\" or \"250ms\": {e}"))?;
    if d > CEILING {
        return Err(format!(
            "{text:?} is longer than {}, the most any duration may be",
            humantime_serde::re::humantime::format_duration(CEILING)
        ));
    }
    Ok(d)
}

/// Records a problem when `d` is outside `range`.
pub(super) fn check(p: &mut Problems, key: &str, d: Duration, range: RangeInclusive<Duration>) {
    if !range.contains(&d) {
        let fmt = humantime_serde::re::humantime::format_duration;
        p.add(
            key,
            format_args!(
                "{} is out of range: use {} to {}",
                fmt(d),
                fmt(*range.start()),
                fmt(*range.end())
            ),
        );
    }
}

/// Shorthands for the bounds tables.
pub(super) const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// One millisecond: the smallest duration a key that must be positive accepts.
pub(super) const MS: Duration = Duration::from_millis(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_humantime_and_refuses_what_is_past_the_ceiling() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("7d"), Ok(CEILING));
        let e = parse("500000000000y").unwrap_err();
        assert!(e.contains("500000000000y"), "{e}");
        let e = parse("8d").unwrap_err();
        assert!(e.contains("longer than 7days"), "{e}");
        assert!(parse("soon").is_err());
    }
}
