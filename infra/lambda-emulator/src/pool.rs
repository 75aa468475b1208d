//! Real function binaries run the way Lambda runs them: each process is one "container" with
//! its own Runtime API endpoint and the environment Lambda gives a custom runtime; it handles
//! one invocation at a time. When every process is busy a new one starts (up to a cap, then
//! callers wait); a process that overruns the function's timeout is killed, as Lambda kills
//! the sandbox; a process that exits, or reports an error, is a function error.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;

use crate::runtime_api::{Answer, Invocation, RuntimeApi, RuntimeEvent};

/// Lambda's limit on a function's init phase (on-demand).
pub const INIT_LIMIT: Duration = Duration::from_secs(10);

/// How one function is run.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// The function's name (`AWS_LAMBDA_FUNCTION_NAME`), e.g. the binary's.
    pub name: String,
    pub binary: PathBuf,
    /// The function's own environment (template.yaml's `Environment`, with test values), plus
    /// what the execution role and the test setup give it (credentials, `AWS_ENDPOINT_URL`).
    pub env: Vec<(String, String)>,
    /// The function's `Timeout`: its deadline, and when the process is killed.
    pub timeout: Duration,
    pub memory_mb: u32,
    pub region: String,
    /// Most processes at once (Lambda's concurrency for this function).
    pub max_instances: usize,
    /// Each process's stdout and stderr go to `<log_dir>/<name>-<n>.log`.
    pub log_dir: PathBuf,
}

/// What became of one invocation.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The function's answer (the handler's JSON).
    Response(Bytes),
    /// The handler reported an error, the process exited or could not start.
    FunctionError(String),
    /// The function ran past its timeout and was killed.
    TimedOut,
}

enum Ended {
    Answer(Option<Answer>),
    Exited(String),
    TimedOut,
}

fn describe(status: std::io::Result<std::process::ExitStatus>) -> String {
    status.map_or_else(|e| e.to_string(), |s| s.to_string())
}

struct Instance {
    api: RuntimeApi,
    child: Child,
}

/// The processes of one function.
pub struct FunctionPool {
    config: FunctionConfig,
    idle: Mutex<Vec<Instance>>,
    slots: Semaphore,
    started: AtomicUsize,
}

impl FunctionPool {
    pub fn new(config: FunctionConfig) -> Self {
        let slots = Semaphore::new(config.max_instances.max(1));
        Self {
            config,
            idle: Mutex::new(Vec::new()),
            slots,
            started: AtomicUsize::new(0),
        }
    }

    pub fn config(&self) -> &FunctionConfig {
        &self.config
    }

    /// Processes started so far (cold starts).
    pub fn processes_started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    /// Runs one invocation on an idle process, or a new one.
    pub async fn invoke(&self, event: serde_json::Value) -> Outcome {
        let Ok(_slot) = self.slots.acquire().await else {
            return Outcome::FunctionError("the pool is closed".into());
        };
        let mut instance = match self.take_idle() {
            Some(instance) => instance,
            None => match self.spawn().await {
                Ok(instance) => instance,
                Err(message) => return Outcome::FunctionError(message),
            },
        };
        let answer = instance.api.invoke(Invocation {
            id: uuid::Uuid::new_v4().to_string(),
            event,
            timeout: self.config.timeout,
        });
        let ended = tokio::select! {
            answer = answer => Ended::Answer(answer.ok()),
            status = instance.child.wait() => Ended::Exited(describe(status)),
            () = tokio::time::sleep(self.config.timeout) => Ended::TimedOut,
        };
        let outcome = match ended {
            Ended::Answer(Some(Answer::Response(body))) => Outcome::Response(body),
            Ended::Answer(Some(Answer::Error(body))) => {
                Outcome::FunctionError(String::from_utf8_lossy(&body).into_owned())
            }
            Ended::Answer(None) => Outcome::FunctionError("the runtime API went away".into()),
            Ended::Exited(status) => {
                return Outcome::FunctionError(format!(
                    "{} exited during the invocation ({status})",
                    self.config.name
                ));
            }
            Ended::TimedOut => {
                // Lambda ends the sandbox; the next invocation gets a cold start.
                let _ = instance.child.kill().await;
                return Outcome::TimedOut;
            }
        };
        // After a reported error the runtime polls for the next invocation, as on Lambda.
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(instance);
        }
        outcome
    }

    /// An idle process that is still alive.
    fn take_idle(&self) -> Option<Instance> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(mut instance) = idle.pop() {
            if matches!(instance.child.try_wait(), Ok(None)) {
                return Some(instance);
            }
        }
        None
    }

    /// Starts a process and waits for its first `next` poll (the end of init).
    async fn spawn(&self) -> Result<Instance, String> {
        let config = &self.config;
        let number = self.started.fetch_add(1, Ordering::Relaxed) + 1;
        let mut api = RuntimeApi::start(&config.name)
            .await
            .map_err(|e| format!("runtime API for {}: {e}", config.name))?;
        let log_path = config.log_dir.join(format!("{}-{number}.log", config.name));
        let log = std::fs::create_dir_all(&config.log_dir)
            .and_then(|()| std::fs::File::create(&log_path))
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let stderr = log
            .try_clone()
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut child = Command::new(&config.binary)
            .env_clear()
            .envs(lambda_environment(config, &api.address, number))
            .envs(config.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{} could not start: {e}", config.binary.display()))?;
        let ready = async {
            loop {
                match api.next_event(INIT_LIMIT).await {
                    Some(RuntimeEvent::NextPolled { .. }) => return Ok(()),
                    Some(RuntimeEvent::InitError { body }) => {
                        return Err(format!("init error: {}", String::from_utf8_lossy(&body)));
                    }
                    Some(_) => {}
                    None => return Err(format!("no `next` poll within {INIT_LIMIT:?}")),
                }
            }
        };
        let result = tokio::select! {
            ready = ready => ready,
            status = child.wait() => Err(format!("exited during init ({})", describe(status))),
        };
        match result {
            Ok(()) => Ok(Instance { api, child }),
            Err(why) => {
                let _ = child.kill().await;
                Err(format!("{} {why}; see {}", config.name, log_path.display()))
            }
        }
    }
}

/// The variables Lambda sets for a custom runtime (`provided.al2023`), before the function's
/// own.
fn lambda_environment(
    config: &FunctionConfig,
    runtime_api: &str,
    number: usize,
) -> Vec<(String, String)> {
    let task_root = config
        .binary
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let name = &config.name;
    [
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LAMBDA_TASK_ROOT", task_root),
        ("_HANDLER", "bootstrap".to_owned()),
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            config.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("2026/01/01/[$LATEST]{number:032x}"),
        ),
        ("AWS_REGION", config.region.clone()),
        ("AWS_DEFAULT_REGION", config.region.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
