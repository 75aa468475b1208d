//! Processes under test: the release `zoom-connector-local` binary (every router, here on
//! the AWS adapters against moto) and Debian's nginx as the reference proxy; plus reading a
//! process's memory from /proc.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use zoom_sim::ZoomSim;

use crate::BenchError;
use crate::moto::{ACCESS_KEY, REGION, Resources, SECRET_KEY};

/// A child process that is killed when dropped.
pub struct Guarded {
    pub child: Child,
}

impl Guarded {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmHWM` and `VmRSS` of a process, in KiB.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Memory {
    pub hwm_kib: u64,
    pub rss_kib: u64,
}

impl Memory {
    pub fn of(pid: u32) -> Result<Self, BenchError> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Ok(Self {
            hwm_kib: field("VmHWM:"),
            rss_kib: field("VmRSS:"),
        })
    }

    pub fn hwm_mib(&self) -> f64 {
        self.hwm_kib as f64 / 1024.0
    }
}

/// The local stack as a separate release process, on the AWS adapters through `aws_endpoint`,
/// with the bench's simulator as Zoom.
pub struct LocalStack {
    pub base_url: String,
    pub process: Guarded,
    _data_dir: tempfile::TempDir,
}

/// `label` names its log file in `log_dir` (`<label>.log`).
pub fn spawn_local_stack(
    binary: &Path,
    label: &str,
    sim_url: &str,
    aws_endpoint: &str,
    resources: &Resources,
    log_dir: &Path,
) -> Result<LocalStack, BenchError> {
    let data_dir = tempfile::tempdir()?;
    let log_path = log_dir.join(format!("{label}.log"));
    let log = std::fs::File::create(&log_path)?;
    let mut command = Command::new(binary);
    command
        .args(["--port", "0", "--store", "aws", "--sweep-interval", "86400"])
        .arg("--data-dir")
        .arg(data_dir.path())
        .env("ZOOM_CLIENT_ID", zoom_sim::DEFAULT_CLIENT_ID)
        .env("ZOOM_CLIENT_SECRET", zoom_sim::DEFAULT_CLIENT_SECRET)
        .env("ZOOM_OAUTH_URL", sim_url)
        .env("ZOOM_API_URL", format!("{sim_url}/v2"))
        .env("CONNECTOR_API_KEY", &resources.api_key)
        .env("ZOOM_WEBHOOK_SECRET_TOKEN", &resources.webhook_secret)
        .env("AWS_ENDPOINT_URL", aws_endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env_remove("CONNECTOR_PUBLIC_URL")
        .envs(resources.env())
        .stdout(Stdio::piped())
        .stderr(log);
    let mut child = command.spawn().map_err(|e| {
        BenchError::new(format!(
            "{} could not start ({e}); build it with `cargo build --release -p zoom-connector-local`",
            binary.display()
        ))
    })?;
    let stdout = child.stdout.take().ok_or("stack stdout")?;
    let process = Guarded { child };
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads the "ready: URL" line, then keeps draining so the child never blocks on stdout.
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent && let Some(url) = line.strip_prefix("ready: ") {
                let _ = tx.send(url.trim().to_owned());
                sent = true;
            }
        }
    });
    let base_url = rx.recv_timeout(Duration::from_secs(30)).map_err(|_| {
        BenchError::new(format!(
            "{} did not report ready; see {}",
            binary.display(),
            log_path.display()
        ))
    })?;
    Ok(LocalStack {
        base_url,
        process,
        _data_dir: data_dir,
    })
}

/// Connects `user_id` (signed in at the simulator) through the stack's real routes: session,
/// connect page, Zoom's authorize (auto-approve), callback. Returns the connection id.
pub async fn connect_through(
    stack_url: &str,
    api_key: &str,
    sim: &ZoomSim,
    user_id: &str,
) -> Result<String, BenchError> {
    sim.set_auto_approve(true);
    sim.set_current_user(user_id);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let session: serde_json::Value = http
        .post(format!("{stack_url}/connect/sessions"))
        .bearer_auth(api_key)
        .json(&serde_json::json!({ "auth_type": "platform_app" }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let connect_url = session["connect_url"]
        .as_str()
        .ok_or("no connect_url in the session")?;
    let connect = http.get(connect_url).send().await?;
    let location = |r: &reqwest::Response| {
        r.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let cookie = connect
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("zc_bind_"))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned);
    let authorize = location(&connect).ok_or("the connect page did not redirect to Zoom")?;
    let zoom = http.get(&authorize).send().await?;
    let callback = location(&zoom).ok_or("the simulator did not redirect back")?;
    let mut request = http.get(&callback);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let page = request.send().await?.text().await?;
    let needle = "data-connection-id=\"";
    let start = page
        .find(needle)
        .map(|i| i + needle.len())
        .ok_or_else(|| BenchError::new("the callback page shows no connection id"))?;
    let end = page[start..]
        .find('"')
        .map(|i| i + start)
        .ok_or("unterminated connection id")?;
    Ok(page[start..end].to_owned())
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

/// nginx on loopback, proxying every request to the simulator's `GET /v2/users/me` with a
/// fixed bearer header over kept-alive upstream connections: the reference for the overhead.
pub struct Nginx {
    pub url: String,
    _process: Guarded,
    _dir: tempfile::TempDir,
}

pub fn find_nginx() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

pub async fn start_nginx(
    nginx: &Path,
    sim_addr: std::net::SocketAddr,
    access_token: &str,
) -> Result<Nginx, BenchError> {
    let dir = tempfile::tempdir()?;
    let port = crate::moto::free_port()?;
    let d = dir.path().display();
    let user = if running_as_root() { "user root;" } else { "" };
    let config = format!(
        r#"{user}
worker_processes auto;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream zoom {{
        server {sim_addr};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://zoom/v2/users/me;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer {access_token}";
        }}
    }}
}}
"#
    );
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, config)?;
    let log = std::fs::File::create(dir.path().join("stderr.log"))?;
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let process = Guarded { child };
    let url = format!("http://127.0.0.1:{port}/");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = http.get(&url).send().await
            && r.status().is_success()
        {
            return Ok(Nginx {
                url,
                _process: process,
                _dir: dir,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let errors = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
    Err(BenchError::new(format!(
        "nginx did not answer on {url}: {}",
        errors.trim()
    )))
}
