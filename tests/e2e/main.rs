//! End-to-end tests: one test binary (linking the AWS SDK once), one moto per run.

mod actions;
mod browser;
mod catalogue_capabilities;
mod catalogue_meetings;
mod catalogue_past_meetings;
mod catalogue_recordings;
mod catalogue_registrants;
mod catalogue_webinars;
mod connect;
mod connect_integrity;
mod deployed;
mod durable;
mod end_users;
mod events;
mod faults;
mod hostile;
mod metrics;
mod refresh;
mod rotation;
mod secrets;
mod stores;
mod triggers;
mod webhooks;
