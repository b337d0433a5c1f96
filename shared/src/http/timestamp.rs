//! Instants a client sends (RFC 3339), parsed once into UTC.
//!
//! An RFC 3339 text may carry any offset, and `9999-12-31T23:30:00-01:00` is a valid
//! text whose UTC instant lies in year 10000, past what `time` represents: converting
//! it (as sqlx does when it binds the value) panics. So every client instant is
//! converted to UTC while parsing, where an out-of-range one is a plain parse error (a
//! 422 for a field, a 400 for a cursor), and handlers only ever see UTC values.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};
use time::{OffsetDateTime, UtcOffset, format_description::well_known::Rfc3339};

/// Why a text is not an accepted instant.
pub const INVALID: &str = "must be an RFC 3339 date-time between years 0001 and 9999 in UTC";

/// Parses an RFC 3339 text into a UTC instant; `Err` for anything else, including a
/// valid text whose UTC instant is out of range.
pub fn parse(raw: &str) -> Result<OffsetDateTime, &'static str> {
    OffsetDateTime::parse(raw.trim(), &Rfc3339)
        .ok()
        .and_then(|t| t.checked_to_offset(UtcOffset::UTC))
        .filter(|t| t.year() >= 1)
        .ok_or(INVALID)
}

/// A UTC instant from a request: deserializes only what [`parse`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// The instant, in UTC.
    pub fn get(self) -> OffsetDateTime {
        self.0
    }
}

impl Timestamp {
    /// An instant already stored (so once parsed, and in range), e.g. to merge a patch
    /// with the current value; `None` if it is somehow out of range in UTC.
    pub fn stored(t: OffsetDateTime) -> Option<Self> {
        t.checked_to_offset(UtcOffset::UTC).map(Self)
    }
}

impl From<Timestamp> for OffsetDateTime {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        parse(&raw).map(Self).map_err(D::Error::custom)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        rfc3339::serialize(&self.0, serializer)
    }
}

/// `#[serde(with = "shared::http::timestamp::rfc3339")]` for an `OffsetDateTime` field
/// that a client may send back (a cursor's key): written as RFC 3339, read through
/// [`parse`].
pub mod rfc3339 {
    use super::*;

    /// Writes the instant as RFC 3339.
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
        time::serde::rfc3339::serialize(t, serializer)
    }

    /// Reads an instant through [`parse`].
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<OffsetDateTime, D::Error> {
        Timestamp::deserialize(deserializer).map(Timestamp::get)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn converts_to_utc_and_refuses_what_leaves_the_range() {
        let t = parse("2026-12-02T10:00:00+02:00").unwrap();
        assert_eq!(t.offset(), UtcOffset::UTC);
        assert_eq!(t.hour(), 8);
        assert_eq!(parse(" 9999-12-31T23:30:00Z ").unwrap().year(), 9999);
        for bad in [
            "9999-12-31T23:30:00-01:00",
            "0000-01-01T00:00:00Z",
            "0001-01-01T00:30:00+01:00",
            "2026-13-01T00:00:00Z",
            "2026-12-02",
            "",
            "now",
            "+10000-01-01T00:00:00Z",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        let json: Result<Timestamp, _> = serde_json::from_str("\"9999-12-31T23:30:00-01:00\"");
        assert!(json.is_err());
    }

    proptest! {
        // Whatever the text, parsing never panics, and what it accepts is UTC, in range,
        // and survives a round trip through its own serialisation.
        #[test]
        fn any_text_parses_to_utc_or_an_error(raw in "\\PC{0,40}") {
            if let Ok(t) = parse(&raw) {
                prop_assert_eq!(t.offset(), UtcOffset::UTC);
                prop_assert!((1..=9999).contains(&t.year()));
            }
        }

        #[test]
        fn every_offset_of_every_day_is_handled(
            year in 0i32..=9999, day in 1u8..=28, month in 1u8..=12,
            hour in 0u8..24, minute in 0u8..60, sign in prop::bool::ANY,
            off_h in 0u8..24, off_m in 0u8..60,
        ) {
            let sign = if sign { '+' } else { '-' };
            let raw = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:00{sign}{off_h:02}:{off_m:02}");
            match parse(&raw) {
                Ok(t) => {
                    prop_assert_eq!(t.offset(), UtcOffset::UTC);
                    let text = serde_json::to_string(&Timestamp(t)).unwrap();
                    let back: Timestamp = serde_json::from_str(&text).unwrap();
                    prop_assert_eq!(back.get(), t);
                }
                Err(_) => prop_assert!(year == 0 || year == 9999 || year == 1),
            }
        }
    }
}
