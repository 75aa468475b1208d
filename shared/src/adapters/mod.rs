//! Adapters of the ports: AWS, the embedded local store, Zoom over HTTP.

pub mod aws;
pub mod local;
pub mod zoom_http;
