//! The region and credentials of the SDK configuration, taken from the environment when it
//! holds them, as it always does on Lambda (`AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
//!
//! `aws_config`'s default chains would find them there too (the environment comes first in
//! both), but build the rest of each chain at init first: the credentials chain constructs a
//! whole STS client (for web identity), the IMDS and ECS providers and the profile provider;
//! the region chain an IMDS client. That was about a fifth of the instructions of a
//! function's init (docs/benchmarks.md). Where the environment does not hold them (the local
//! stack with a profile, a machine with an instance role), the default chains stay.

use aws_config::ConfigLoader;
use aws_config::environment::EnvironmentVariableCredentialsProvider;

fn set(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `loader` with the region and the credentials provider of the environment, each only when
/// the environment holds it (the same values the default chains would resolve to).
pub fn from_environment(mut loader: ConfigLoader) -> ConfigLoader {
    if let Some(region) = set("AWS_REGION") {
        loader = loader.region(aws_config::Region::new(region));
    }
    if set("AWS_ACCESS_KEY_ID").is_some() && set("AWS_SECRET_ACCESS_KEY").is_some() {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    loader
}
