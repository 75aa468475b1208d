//! Just enough time-zone knowledge to turn a local `start_time` (no `Z`) into UTC the way Zoom
//! does, for the zones people commonly use. Unknown zones are treated as UTC (documented
//! simulator limitation: there is no tz database here).

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset, Weekday};

#[derive(Clone, Copy)]
enum Rule {
    Fixed,
    /// EU: summer time from the last Sunday of March to the last Sunday of October, 01:00 UTC.
    Eu,
    /// US/Canada: from the second Sunday of March to the first Sunday of November, 02:00 local.
    Us,
}

/// Standard offset in minutes and daylight rule of the zones the simulator knows.
fn zone(name: &str) -> Option<(i32, Rule)> {
    let zone = match name {
        "UTC" | "GMT" | "Etc/UTC" | "Etc/GMT" | "Africa/Abidjan" => (0, Rule::Fixed),
        "Europe/London" | "Europe/Dublin" | "Europe/Lisbon" => (0, Rule::Eu),
        "Europe/Berlin" | "Europe/Paris" | "Europe/Amsterdam" | "Europe/Madrid" | "Europe/Rome"
        | "Europe/Stockholm" | "Europe/Zurich" | "Europe/Vienna" | "Europe/Brussels"
        | "Europe/Oslo" | "Europe/Copenhagen" | "Europe/Warsaw" | "Europe/Prague" => (60, Rule::Eu),
        "Europe/Athens" | "Europe/Helsinki" | "Europe/Kiev" | "Europe/Kyiv" => (120, Rule::Eu),
        "America/New_York" | "America/Toronto" | "America/Detroit" => (-300, Rule::Us),
        "America/Chicago" | "America/Winnipeg" => (-360, Rule::Us),
        "America/Denver" | "America/Edmonton" => (-420, Rule::Us),
        "America/Los_Angeles" | "America/Vancouver" => (-480, Rule::Us),
        "America/Anchorage" => (-540, Rule::Us),
        "America/Phoenix" => (-420, Rule::Fixed),
        "America/Sao_Paulo" => (-180, Rule::Fixed),
        "Africa/Johannesburg" | "Africa/Cairo" => (120, Rule::Fixed),
        "Europe/Moscow" | "Europe/Istanbul" => (180, Rule::Fixed),
        "Asia/Dubai" => (240, Rule::Fixed),
        "Asia/Kolkata" | "Asia/Calcutta" => (330, Rule::Fixed),
        "Asia/Shanghai" | "Asia/Singapore" | "Asia/Hong_Kong" | "Asia/Taipei"
        | "Australia/Perth" => (480, Rule::Fixed),
        "Asia/Tokyo" | "Asia/Seoul" => (540, Rule::Fixed),
        _ => return None,
    };
    Some(zone)
}

/// The n-th (1-based) `weekday` of a month, or the last one when `n` is 0.
fn nth_weekday(year: i32, month: Month, weekday: Weekday, n: u8) -> Option<Date> {
    if n == 0 {
        let next_month_first = match month {
            Month::December => Date::from_calendar_date(year + 1, Month::January, 1).ok()?,
            _ => Date::from_calendar_date(year, month.next(), 1).ok()?,
        };
        let mut day = next_month_first.previous_day()?;
        while day.weekday() != weekday {
            day = day.previous_day()?;
        }
        return Some(day);
    }
    let mut day = Date::from_calendar_date(year, month, 1).ok()?;
    while day.weekday() != weekday {
        day = day.next_day()?;
    }
    Some(day + time::Duration::weeks(i64::from(n) - 1))
}

/// Converts a wall-clock time in `tz` to UTC; `None` when the zone is unknown.
pub(crate) fn local_to_utc(local: PrimitiveDateTime, tz: &str) -> Option<OffsetDateTime> {
    let (standard_minutes, rule) = zone(tz)?;
    let standard = UtcOffset::from_whole_seconds(standard_minutes * 60).ok()?;
    let as_standard = local.assume_offset(standard);
    let year = local.year();
    let summer = match rule {
        Rule::Fixed => false,
        Rule::Eu => {
            let start = nth_weekday(year, Month::March, Weekday::Sunday, 0)?
                .with_hms(1, 0, 0)
                .ok()?
                .assume_utc();
            let end = nth_weekday(year, Month::October, Weekday::Sunday, 0)?
                .with_hms(1, 0, 0)
                .ok()?
                .assume_utc();
            as_standard >= start && as_standard < end
        }
        Rule::Us => {
            let start = nth_weekday(year, Month::March, Weekday::Sunday, 2)?
                .with_hms(2, 0, 0)
                .ok()?;
            let end = nth_weekday(year, Month::November, Weekday::Sunday, 1)?
                .with_hms(2, 0, 0)
                .ok()?;
            local >= start && local < end
        }
    };
    let offset = if summer {
        UtcOffset::from_whole_seconds((standard_minutes + 60) * 60).ok()?
    } else {
        standard
    };
    Some(local.assume_offset(offset).to_offset(UtcOffset::UTC))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn converts_common_zones() {
        let utc = |local, tz| local_to_utc(local, tz).map(|t| (t.hour(), t.day()));
        assert_eq!(
            utc(datetime!(2026-07-01 10:00), "Europe/Berlin"),
            Some((8, 1))
        );
        assert_eq!(
            utc(datetime!(2026-01-15 10:00), "Europe/Berlin"),
            Some((9, 15))
        );
        assert_eq!(
            utc(datetime!(2026-07-01 10:00), "America/New_York"),
            Some((14, 1))
        );
        assert_eq!(
            utc(datetime!(2026-12-01 10:00), "America/Los_Angeles"),
            Some((18, 1))
        );
        assert_eq!(
            utc(datetime!(2026-12-01 10:00), "Asia/Kolkata").map(|t| t.0),
            Some(4)
        );
        assert_eq!(utc(datetime!(2026-12-01 10:00), "Mars/Olympus"), None);
    }
}
