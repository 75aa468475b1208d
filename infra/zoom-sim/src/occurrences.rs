//! Occurrences of recurring meetings (type 8) and webinars (type 9) with a fixed time: computed
//! from `recurrence` and `start_time`, changed one by one through `occurrence_id`.
//!
//! An `occurrence_id` is the occurrence's original start in epoch milliseconds, as at Zoom; it
//! stays the same when that occurrence is moved.

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::recordings::add_one_month;
use crate::state::Meeting;
use crate::util::zoom_time;

/// Zoom's cap on `recurrence.end_times`.
pub(crate) const MAX_OCCURRENCES: usize = 60;

/// Types with a fixed time that recur.
fn recurs_with_fixed_time(meeting_type: i64) -> bool {
    matches!(meeting_type, 8 | 9)
}

fn int(value: Option<&Value>) -> Option<i64> {
    value.and_then(Value::as_i64)
}

/// The original start times of every occurrence.
fn starts(first: OffsetDateTime, recurrence: &Value) -> Vec<OffsetDateTime> {
    let interval = int(recurrence.get("repeat_interval")).unwrap_or(1).max(1);
    let end_date = recurrence
        .get("end_date_time")
        .and_then(Value::as_str)
        .and_then(|s| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        });
    let count = match end_date {
        Some(_) => MAX_OCCURRENCES,
        None => usize::try_from(int(recurrence.get("end_times")).unwrap_or(1))
            .unwrap_or(1)
            .clamp(1, MAX_OCCURRENCES),
    };
    let within = |at: OffsetDateTime| end_date.is_none_or(|end| at <= end);
    let mut out = Vec::new();
    match int(recurrence.get("type")) {
        // Weekly: on `weekly_days` (1 = Sunday .. 7 = Saturday), every `interval` weeks.
        Some(2) => {
            let mut days: Vec<u8> = recurrence
                .get("weekly_days")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .split(',')
                .filter_map(|d| d.trim().parse::<u8>().ok())
                .filter(|d| (1..=7).contains(d))
                .collect();
            if days.is_empty() {
                days.push(first.weekday().number_from_sunday());
            }
            let mut day = first;
            let mut week_start = first;
            while out.len() < count && within(day) {
                if days.contains(&day.weekday().number_from_sunday()) {
                    out.push(day);
                }
                day += Duration::days(1);
                if day - week_start >= Duration::weeks(1) {
                    week_start += Duration::weeks(interval);
                    day = week_start;
                }
                if out.is_empty() && day - first > Duration::weeks(2 * interval) {
                    break;
                }
            }
        }
        // Monthly: the same day of the month, every `interval` months.
        Some(3) => {
            let mut at = first;
            while out.len() < count && within(at) {
                out.push(at);
                for _ in 0..interval {
                    let date = add_one_month(at.date());
                    at = at.replace_date(date);
                }
            }
        }
        // Daily (and anything else): every `interval` days.
        _ => {
            let mut at = first;
            while out.len() < count && within(at) {
                out.push(at);
                at += Duration::days(interval);
            }
        }
    }
    out
}

fn first_start(meeting: &Meeting) -> Option<OffsetDateTime> {
    meeting
        .fields
        .get("start_time")
        .and_then(Value::as_str)
        .and_then(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok())
}

/// Recomputes `fields.occurrences` from `recurrence`, `start_time` and the overrides; removes it
/// for meetings that do not recur with a fixed time.
pub(crate) fn refresh(meeting: &mut Meeting) {
    let meeting_type = int(meeting.fields.get("type")).unwrap_or(2);
    let recurrence = meeting.fields.get("recurrence").cloned();
    let (Some(first), Some(recurrence), true) = (
        first_start(meeting),
        recurrence,
        recurs_with_fixed_time(meeting_type),
    ) else {
        meeting.fields.remove("occurrences");
        return;
    };
    let duration = int(meeting.fields.get("duration")).unwrap_or(60);
    let list: Vec<Value> = starts(first, &recurrence)
        .into_iter()
        .map(|start| {
            let id = (start.unix_timestamp() * 1000).to_string();
            let changed = meeting.occurrence_overrides.get(&id);
            json!({
                "occurrence_id": id,
                "start_time": zoom_time(changed.and_then(|c| c.start_time).unwrap_or(start)),
                "duration": changed.and_then(|c| c.duration).unwrap_or(duration),
                "status": if changed.is_some_and(|c| c.deleted) { "deleted" } else { "available" },
            })
        })
        .collect();
    meeting
        .fields
        .insert("occurrences".into(), Value::Array(list));
}

/// The occurrence with this id, as listed in `fields.occurrences`.
pub(crate) fn find<'a>(meeting: &'a Meeting, occurrence_id: &str) -> Option<&'a Value> {
    meeting
        .fields
        .get("occurrences")
        .and_then(Value::as_array)?
        .iter()
        .find(|o| o["occurrence_id"] == occurrence_id)
}

/// Every occurrence id of a comma-separated list exists (Zoom's `occurrence_ids`).
pub(crate) fn all_exist(meeting: &Meeting, ids: &[String]) -> bool {
    ids.iter().all(|id| find(meeting, id).is_some())
}

/// The meeting as `GET ?occurrence_id=` answers it: start and duration of that occurrence.
pub(crate) fn view(meeting: &Meeting, occurrence_id: &str) -> Option<Value> {
    let occurrence = find(meeting, occurrence_id)?;
    let mut fields = meeting.fields.clone();
    fields.insert("start_time".into(), occurrence["start_time"].clone());
    fields.insert("duration".into(), occurrence["duration"].clone());
    Some(Value::Object(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn daily_weekly_monthly() {
        let first = datetime!(2026-03-02 10:00 UTC); // a Monday
        let daily = starts(
            first,
            &json!({"type": 1, "repeat_interval": 2, "end_times": 3}),
        );
        assert_eq!(daily.len(), 3);
        assert_eq!(daily[2], datetime!(2026-03-06 10:00 UTC));
        let weekly = starts(
            first,
            &json!({"type": 2, "weekly_days": "2,4", "end_times": 4}),
        );
        assert_eq!(
            weekly,
            vec![
                datetime!(2026-03-02 10:00 UTC),
                datetime!(2026-03-04 10:00 UTC),
                datetime!(2026-03-09 10:00 UTC),
                datetime!(2026-03-11 10:00 UTC),
            ]
        );
        let monthly = starts(
            first,
            &json!({"type": 3, "end_date_time": "2026-05-10T00:00:00Z"}),
        );
        assert_eq!(monthly.len(), 3);
        assert_eq!(
            starts(first, &json!({"type": 1, "end_times": 500})).len(),
            60
        );
    }
}
