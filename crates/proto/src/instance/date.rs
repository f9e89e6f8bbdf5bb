//! The `date` header: RFC 1123 in GMT, as every SDK writes it
//! (`Sat, 28 Nov 2026 10:18:56 GMT`, `spec/instance-api.md` §3).

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, Weekday};

/// Parses `Www, DD Mon YYYY HH:MM:SS GMT` exactly: English names, a two-digit day, a
/// four-digit year, `GMT`, and a weekday that matches the date. Anything else is `None`.
pub(super) fn parse_rfc1123(text: &str) -> Option<OffsetDateTime> {
    let parts: Vec<&str> = text.split(' ').collect();
    let [weekday, day, month, year, clock, "GMT"] = parts.as_slice() else {
        return None;
    };
    let weekday = weekday.strip_suffix(',')?;
    let day = digits(day, 2)?;
    let month = month_from_name(month)?;
    let year = digits(year, 4)?;
    let clock: Vec<&str> = clock.split(':').collect();
    let [hour, minute, second] = clock.as_slice() else {
        return None;
    };
    let date =
        Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    if weekday_name(date.weekday()) != weekday {
        return None;
    }
    let time = Time::from_hms(
        u8::try_from(digits(hour, 2)?).ok()?,
        u8::try_from(digits(minute, 2)?).ok()?,
        u8::try_from(digits(second, 2)?).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// A number written with exactly `len` ASCII digits.
fn digits(text: &str, len: usize) -> Option<u32> {
    if text.len() != len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn month_from_name(name: &str) -> Option<Month> {
    Some(match name {
        "Jan" => Month::January,
        "Feb" => Month::February,
        "Mar" => Month::March,
        "Apr" => Month::April,
        "May" => Month::May,
        "Jun" => Month::June,
        "Jul" => Month::July,
        "Aug" => Month::August,
        "Sep" => Month::September,
        "Oct" => Month::October,
        "Nov" => Month::November,
        "Dec" => Month::December,
        _ => return None,
    })
}

fn weekday_name(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Monday => "Mon",
        Weekday::Tuesday => "Tue",
        Weekday::Wednesday => "Wed",
        Weekday::Thursday => "Thu",
        Weekday::Friday => "Fri",
        Weekday::Saturday => "Sat",
        Weekday::Sunday => "Sun",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_dates_parse() {
        let date = parse_rfc1123("Sat, 28 Nov 2026 10:18:56 GMT").unwrap();
        assert_eq!(date.unix_timestamp(), 1_795_861_136);
        assert!(parse_rfc1123("Thu, 01 Jan 1970 00:00:00 GMT").is_some());
        assert!(parse_rfc1123("Sun, 29 Feb 2032 23:59:59 GMT").is_some());
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "Sat, 28 Nov 2026 10:18:56",
            "Sat, 28 Nov 2026 10:18:56 UTC",
            "Sat, 28 Nov 2026 10:18:56 +0000",
            "Fri, 28 Nov 2026 10:18:56 GMT",
            "Sat 28 Nov 2026 10:18:56 GMT",
            "Sat, 8 Nov 2026 10:18:56 GMT",
            "Sat, 28 nov 2026 10:18:56 GMT",
            "Sat, 28 Nov 26 10:18:56 GMT",
            "Sat, 28 Nov 2026 10:18:60 GMT",
            "Sat, 28 Nov 2026 24:00:00 GMT",
            "Sat, 28 Nov 2026 1:18:56 GMT",
            "Sat, 28 Nov 2026 10:18:+5 GMT",
            "Sat,  28 Nov 2026 10:18:56 GMT",
            "Sat, 31 Feb 2026 10:18:56 GMT",
            "2026-11-28T10:18:56Z",
            "Sat, 28 Nov 2026 10:18:56 GMT ",
        ] {
            assert_eq!(parse_rfc1123(bad), None, "{bad:?}");
        }
    }
}
