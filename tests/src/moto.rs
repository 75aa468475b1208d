//! One moto server per test binary, started from the project's Python environment.
//!
//! A missing moto is a failure with instructions, never a skip.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The server stops when the test binary exits: it watches its stdin, which closes then.
///
/// moto's server is threaded and does not make a condition check and its write one atomic step
/// the way DynamoDB does per item (two concurrent conditional creates can both win). Requests
/// to DynamoDB are therefore served one at a time, and so are those to Secrets Manager (its
/// version stages), each service under its own lock: a condition never spans the two. The
/// race logic itself is proven on the local store and with unit fakes. SQS, EventBridge and
/// KMS stay concurrent (a long poll must not hold the others up).
const SERVER: &str = r#"
import sys, threading
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

app = DomainDispatcherApplication(create_backend_app)
locks = {"DynamoDB": threading.Lock(), "secretsmanager": threading.Lock()}

def serialized(environ, start_response):
    service = environ.get("HTTP_X_AMZ_TARGET", "").split("_", 1)[0].split(".", 1)[0]
    lock = locks.get(service)
    if lock is not None:
        with lock:
            return list(app(environ, start_response))
    return app(environ, start_response)

server = make_server("127.0.0.1", int(sys.argv[1]), serialized, True, request_handler=MotoRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
server.shutdown()
"#;

pub struct Moto {
    pub endpoint: String,
    _child: Mutex<(Child, ChildStdin)>,
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_PYTHON") {
        return PathBuf::from(p);
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

static MOTO: OnceLock<Moto> = OnceLock::new();

/// The moto server of this test binary (started on first use).
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(start)
}

fn start() -> Moto {
    let python = python();
    let port = free_port();
    let mut child = Command::new(&python)
        .args(["-c", SERVER, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "moto is required for these tests and could not be started with {} ({e}).\n\
                 Install it with `make test` (creates .venv), or: python3 -m venv .venv && \
                 .venv/bin/pip install -r requirements-dev.txt",
                python.display()
            )
        });
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).ok();
    assert_eq!(
        line.trim(),
        "ready",
        "moto did not start from {} — install it with `.venv/bin/pip install -r requirements-dev.txt`",
        python.display()
    );
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.flush().ok();
    Moto {
        endpoint: format!("http://127.0.0.1:{port}"),
        _child: Mutex::new((child, stdin)),
    }
}

impl Moto {
    /// SDK configuration pointing at this moto server.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }
}
