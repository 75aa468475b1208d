//! AWS adapters: Secrets Manager for credentials, DynamoDB for connection records and the
//! small conditional records, EventBridge for events. They honour the standard SDK
//! environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials), which is how tests point them
//! at moto.
//!
//! One module per service: [`secrets`], [`dynamo`] (with [`dynamo_items`], the item layout, and [`dynamo_listing`]), [`eventbridge`]; [`kms`] (the master key of the pending-token copy); [`sdk`], the configuration they share.

pub mod dynamo;
pub mod dynamo_items;
pub mod dynamo_listing;
pub mod env;
pub mod eventbridge;
pub mod https;
pub mod kms;
pub mod sdk;
pub mod secrets;

pub use dynamo::DynamoConnectionStore;
pub use eventbridge::EventBridgeBus;
pub use kms::KmsDataKeys;
pub use sdk::load_sdk_config;
pub use secrets::AwsSecretStore;
