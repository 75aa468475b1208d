//! What the figures were measured on and with: the machine, the commit, the build profile,
//! and the zipped arm64 packages.

use std::path::Path;
use std::process::Command;

fn run(program: &str, args: &[&str], dir: Option<&Path>) -> Option<String> {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: String,
    pub memory: String,
    pub kernel: String,
    pub date: String,
    pub commit: String,
    pub release_profile: String,
}

impl Machine {
    pub fn collect(root: &Path) -> Self {
        let lscpu = run("lscpu", &[], None).unwrap_or_default();
        let field = |name: &str| {
            lscpu
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| "unknown".into())
        };
        let memory = run("free", &["-m"], None)
            .and_then(|f| {
                f.lines()
                    .find(|l| l.starts_with("Mem:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .map(|mb| format!("{mb} MiB"))
            })
            .unwrap_or_else(|| "unknown".into());
        Self {
            cpu: format!("{} ({})", field("Model name:"), field("Architecture:")),
            cores: format!(
                "nproc {}, {} threads per core",
                run("nproc", &[], None).unwrap_or_else(|| "?".into()),
                field("Thread(s) per core:")
            ),
            memory,
            kernel: run("uname", &["-sr"], None).unwrap_or_else(|| "unknown".into()),
            date: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            commit: run("git", &["rev-parse", "--short", "HEAD"], Some(root))
                .unwrap_or_else(|| "unknown".into()),
            release_profile: release_profile(root),
        }
    }
}

/// The `[profile.release]` settings of the workspace, on one line.
pub fn release_profile(root: &Path) -> String {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let mut inside = false;
    let mut settings = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[profile.release]";
            continue;
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            settings.push(line.to_owned());
        }
    }
    settings.join(", ")
}

/// The load average (1, 5, 15 minutes): other builds on this machine skew the figures.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PackageSize {
    pub function: String,
    pub bootstrap: u64,
    pub zipped: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Packages {
    pub sizes: Vec<PackageSize>,
    /// When the newest bootstrap was built.
    pub built: String,
}

/// Runs scripts/package-sizes.sh (zipped arm64 bootstraps from target/lambda).
pub fn package_sizes(root: &Path) -> Result<Packages, String> {
    let output = Command::new("bash")
        .arg(root.join("scripts/package-sizes.sh"))
        .current_dir(root)
        .output()
        .map_err(|e| format!("scripts/package-sizes.sh: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let sizes: Vec<PackageSize> = stdout
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some(PackageSize {
                function: parts.next()?.to_owned(),
                bootstrap: parts.next()?.parse().ok()?,
                zipped: parts.next()?.parse().ok()?,
            })
        })
        .collect();
    if sizes.is_empty() {
        return Err(format!(
            "no arm64 packages in target/lambda ({}); run `make build`",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let built = sizes
        .iter()
        .filter_map(|s| {
            std::fs::metadata(root.join(format!("target/lambda/{}/bootstrap", s.function)))
                .and_then(|m| m.modified())
                .ok()
        })
        .max()
        .map(|t| {
            time::OffsetDateTime::from(t)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        })
        .unwrap_or_else(|| "unknown".into());
    Ok(Packages { sizes, built })
}
