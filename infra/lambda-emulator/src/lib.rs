//! The deployed path of the functions, on one machine, for tests and the bench:
//!
//! - [`runtime_api`]: the Lambda Runtime API a custom runtime (`lambda_runtime`) talks to, one
//!   per function process, as inside a Lambda sandbox;
//! - [`pool`]: real function binaries run like Lambda containers (one invocation per process at
//!   a time, a new process when all are busy, killed past the function's timeout);
//! - [`apigw`]: an API Gateway HTTP API (payload format 2.0, `$default` stage) in front of the
//!   pools, routing by the template's `METHOD /path` routes.

pub mod apigw;
pub mod pool;
pub mod runtime_api;
