//! Pure helpers of the benchmark harness (`zoom-bench`, src/main.rs), kept in a library so
//! their tests build without the harness's heavy dependencies.

pub mod stats;
