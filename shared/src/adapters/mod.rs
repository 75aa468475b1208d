//! Adapters of the ports: AWS, the embedded local store, Zoom over HTTP.

pub mod aws;
pub mod aws_env;
pub mod aws_http;
pub mod local;
pub mod zoom_http;
