//! Configuration from the environment. Names are the contract of API.md; AWS resource names
//! come from template.yaml.

use std::time::Duration;

use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("environment variable {0} is required")]
    Missing(&'static str),
}

/// When the scheduled sweep refreshes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMode {
    /// On use, plus a keep-alive refresh every `KEEPALIVE_HOURS`.
    Lazy,
    /// The sweep also refreshes every access token before it expires.
    Eager,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// External base URL of the HTTP API, without trailing slash.
    pub public_url: Url,
    pub zoom_oauth_url: Url,
    pub zoom_api_url: Url,
    /// `ZOOM_API_URL` was set explicitly: it then wins over the token's `api_url`.
    pub zoom_api_url_explicit: bool,
    /// Origins allowed as `return_url` targets and as postMessage targets.
    pub ui_origins: Vec<String>,
    pub refresh_ahead: Duration,
    pub keepalive: Duration,
    pub refresh_mode: RefreshMode,
    pub refresh_tps: u32,
    /// The platform app's client ID (`PLATFORM_CLIENT_ID`): lets the webhooks function route
    /// `/webhooks/zoom` without reading the platform app's secret. Unset: read from that secret.
    pub platform_client_id: Option<String>,
    /// `CONNECTOR_KEYS_MAX_AGE_SECS` (default 60, 1..=300): how long a container trusts its
    /// copy of the connector secret (API keys, webhook tokens) before reading it again.
    pub keys_max_age: Duration,
    pub aws: AwsNames,
}

/// Names of the AWS resources, set by template.yaml (defaults serve the local stack and tests).
#[derive(Debug, Clone)]
pub struct AwsNames {
    pub connections_table: String,
    pub secrets_prefix: String,
    pub event_bus_name: String,
    pub platform_app_secret_id: String,
    pub connector_secret_id: String,
    /// `PENDING_TOKENS_KEY_ID`: the KMS key (id, ARN or alias) that seals rotated tokens
    /// Secrets Manager refused (the pending copy). Unset: no pending copy can be written and a
    /// refused token write keeps the new tokens in memory only (logged as an error).
    pub pending_tokens_key_id: Option<String>,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok(), None)
    }

    /// Reads the configuration through `lookup`; `default_public_url` is used when
    /// `CONNECTOR_PUBLIC_URL` is unset (the local stack passes `http://127.0.0.1:{port}`).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        default_public_url: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let public_url = match get("CONNECTOR_PUBLIC_URL") {
            Some(v) => parse_url("CONNECTOR_PUBLIC_URL", &v)?,
            None => match default_public_url {
                Some(v) => parse_url("CONNECTOR_PUBLIC_URL", v)?,
                None => return Err(ConfigError::Missing("CONNECTOR_PUBLIC_URL")),
            },
        };
        let zoom_oauth_url = parse_url(
            "ZOOM_OAUTH_URL",
            &get("ZOOM_OAUTH_URL").unwrap_or_else(|| "https://zoom.us".into()),
        )?;
        let explicit_api = get("ZOOM_API_URL");
        let zoom_api_url = parse_url(
            "ZOOM_API_URL",
            explicit_api.as_deref().unwrap_or("https://api.zoom.us/v2"),
        )?;
        let ui_origins = match get("CONNECTOR_UI_ORIGINS") {
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let url = parse_url("CONNECTOR_UI_ORIGINS", s)?;
                    Ok(origin_of(&url))
                })
                .collect::<Result<Vec<_>, ConfigError>>()?,
            None => vec![origin_of(&public_url)],
        };
        let refresh_mode = match get("REFRESH_MODE").as_deref() {
            None | Some("lazy") => RefreshMode::Lazy,
            Some("eager") => RefreshMode::Eager,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "REFRESH_MODE",
                    reason: format!("{other:?} is neither \"lazy\" nor \"eager\""),
                });
            }
        };
        let refresh_tps = parse_num("REFRESH_TPS", get("REFRESH_TPS"), 40)?;
        if refresh_tps == 0 {
            return Err(ConfigError::Invalid {
                name: "REFRESH_TPS",
                reason: "must be at least 1".into(),
            });
        }
        let keys_max_age = parse_num::<u64>(
            "CONNECTOR_KEYS_MAX_AGE_SECS",
            get("CONNECTOR_KEYS_MAX_AGE_SECS"),
            60,
        )?;
        if !(1..=300).contains(&keys_max_age) {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_KEYS_MAX_AGE_SECS",
                reason: "must be 1 to 300 seconds".into(),
            });
        }
        let prefix = get("SECRETS_PREFIX").unwrap_or_else(|| "zoom-connector".into());
        Ok(Self {
            public_url: trim_trailing_slash(public_url),
            zoom_oauth_url: trim_trailing_slash(zoom_oauth_url),
            zoom_api_url: trim_trailing_slash(zoom_api_url),
            zoom_api_url_explicit: explicit_api.is_some(),
            ui_origins,
            refresh_ahead: Duration::from_secs(parse_num(
                "REFRESH_AHEAD_SECS",
                get("REFRESH_AHEAD_SECS"),
                300,
            )?),
            keepalive: Duration::from_secs(
                3600 * parse_num::<u64>("KEEPALIVE_HOURS", get("KEEPALIVE_HOURS"), 24)?,
            ),
            refresh_mode,
            refresh_tps,
            platform_client_id: get("PLATFORM_CLIENT_ID")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
            keys_max_age: Duration::from_secs(keys_max_age),
            aws: AwsNames {
                connections_table: get("CONNECTIONS_TABLE")
                    .unwrap_or_else(|| "zoom-connector-connections".into()),
                event_bus_name: get("EVENT_BUS_NAME").unwrap_or_else(|| "zoom-connector".into()),
                platform_app_secret_id: get("PLATFORM_APP_SECRET_ID")
                    .unwrap_or_else(|| format!("{prefix}/platform-app")),
                connector_secret_id: get("CONNECTOR_SECRET_ID")
                    .unwrap_or_else(|| format!("{prefix}/connector")),
                secrets_prefix: prefix,
                pending_tokens_key_id: get("PENDING_TOKENS_KEY_ID")
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty()),
            },
        })
    }

    /// The one redirect URI registered with Zoom.
    pub fn redirect_uri(&self) -> String {
        format!(
            "{}/oauth/callback",
            self.public_url.as_str().trim_end_matches('/')
        )
    }

    /// Absolute URL of a route of this API.
    pub fn public(&self, path: &str) -> String {
        format!("{}{}", self.public_url.as_str().trim_end_matches('/'), path)
    }

    pub fn is_allowed_origin(&self, url: &Url) -> bool {
        let origin = origin_of(url);
        self.ui_origins.contains(&origin)
    }

    /// Cookies get `Secure` when the public URL is https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

/// `scheme://host[:port]` of a URL, the form browsers use for postMessage target origins.
pub fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn trim_trailing_slash(mut url: Url) -> Url {
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    url
}

fn parse_url(name: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value.trim()).map_err(|e| ConfigError::Invalid {
        name,
        reason: format!("{value:?} is not a URL: {e}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::Invalid {
            name,
            reason: format!("{value:?} must be an http(s) URL with a host"),
        });
    }
    Ok(url)
}

fn parse_num<T: std::str::FromStr>(
    name: &'static str,
    value: Option<String>,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: format!("{v:?} is not a non-negative integer"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned(), Some("http://127.0.0.1:3000"))
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.redirect_uri(), "http://127.0.0.1:3000/oauth/callback");
        assert_eq!(c.zoom_oauth_url.as_str(), "https://zoom.us/");
        assert_eq!(c.zoom_api_url.as_str(), "https://api.zoom.us/v2");
        assert!(!c.zoom_api_url_explicit);
        assert_eq!(c.ui_origins, vec!["http://127.0.0.1:3000".to_string()]);
        assert_eq!(c.refresh_ahead, Duration::from_secs(300));
        assert_eq!(c.keepalive, Duration::from_secs(24 * 3600));
        assert_eq!(c.refresh_mode, RefreshMode::Lazy);
        assert_eq!(c.refresh_tps, 40);
        assert_eq!(c.aws.platform_app_secret_id, "zoom-connector/platform-app");
    }

    #[test]
    fn explicit_values_and_origins() {
        let c = cfg(&[
            ("CONNECTOR_PUBLIC_URL", "https://api.example.com/prod/"),
            ("ZOOM_API_URL", "http://127.0.0.1:9/v2/"),
            (
                "CONNECTOR_UI_ORIGINS",
                "https://app.example.com/path, http://localhost:5173",
            ),
            ("REFRESH_MODE", "eager"),
        ])
        .unwrap();
        assert_eq!(
            c.redirect_uri(),
            "https://api.example.com/prod/oauth/callback"
        );
        assert!(c.zoom_api_url_explicit);
        assert_eq!(c.zoom_api_url.as_str(), "http://127.0.0.1:9/v2");
        assert_eq!(
            c.ui_origins,
            vec!["https://app.example.com", "http://localhost:5173"]
        );
        assert!(c.is_allowed_origin(&Url::parse("https://app.example.com/done?x=1").unwrap()));
        assert!(!c.is_allowed_origin(&Url::parse("https://app.example.com.evil.io/").unwrap()));
        assert!(c.secure_cookies());
    }

    /// An unset template parameter arrives as an empty variable: that is no client ID (the
    /// platform app's secret names it where it can be read), never "" to route with.
    #[test]
    fn an_empty_platform_client_id_is_none() {
        assert_eq!(
            cfg(&[("PLATFORM_CLIENT_ID", " ")])
                .unwrap()
                .platform_client_id,
            None
        );
        assert_eq!(
            cfg(&[("PLATFORM_CLIENT_ID", "abc")])
                .unwrap()
                .platform_client_id
                .as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn bad_values_are_named() {
        let err = cfg(&[("REFRESH_TPS", "fast")]).unwrap_err().to_string();
        assert!(err.contains("REFRESH_TPS"), "{err}");
        let err = cfg(&[("REFRESH_MODE", "sometimes")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("REFRESH_MODE"), "{err}");
        let err = cfg(&[("ZOOM_OAUTH_URL", "ftp://zoom.us")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("ZOOM_OAUTH_URL"), "{err}");
    }
}
