//! Test harness shared by the end-to-end tests: moto (started from the project's .venv, one
//! process per test binary, never skipped), the Zoom simulator, and a running connector on a
//! loopback port with either store backend.

pub mod answer;
pub mod catalogue;
pub mod contract;
pub mod deployed;
pub mod fakes;
pub mod faultproxy;
pub mod front;
pub mod moto;
pub mod stack;

/// Runs each scenario `async fn name(backend: Backend)` once per backend, as tests named
/// `<local_module>::<name>` and `<aws_module>::<name>`.
#[macro_export]
macro_rules! on_both_backends {
    ($local:ident, $aws:ident; $($name:ident),* $(,)?) => {
        mod $local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::stack::Backend::Local).await;
                }
            )*
        }
        mod $aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::stack::Backend::Aws).await;
                }
            )*
        }
    };
}
