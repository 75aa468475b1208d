//! Zoom as the connector sees it, without I/O: its quirks as data ([`profile`]) and the pure
//! rules built on them. Nothing here calls Zoom; `app` does, through the `ZoomApi` port.

pub mod catalogue;
pub mod errors;

pub mod exchange;

pub mod paths;

pub mod profile;

pub mod recordings;
pub mod requests;
pub mod retry;

pub mod schema;

pub mod stored;

#[cfg(test)]
mod tests;
