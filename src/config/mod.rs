//! Configuration: built-in defaults, then an optional TOML file, then `CREDGATE_*`
//! environment variables. Everything is parsed and checked once, here, so the rest of
//! the program only sees typed values; a bad value stops start-up with one line that
//! names the setting.

mod env;
pub use env::secret as secret_from_env;
mod raw;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;

use raw::{List, RawSettings, Scalar};

/// A setting that could not be used, with the setting's name.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{setting}`: {message}")]
pub struct ConfigError {
    pub setting: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(setting: &str, message: &str) -> Self {
        Self {
            setting: setting.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// Where events and views are kept, chosen by the URL's scheme.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(url.to_owned()))
        } else {
            Err("expected a `postgres://…` or `sqlite://…` URL".to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Postgres(url) | Self::Sqlite(url) => url,
        }
    }
}

/// Debug never shows a password that may be inside a PostgreSQL URL.
impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url_password(self.as_str()))
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted; larger ones get 413.
    pub body_bytes: usize,
    /// How long one request may take before it is answered with 503.
    pub request_timeout: Duration,
    /// Failed authentications one source address may make per minute before its
    /// requests get 429 until the minute is over.
    pub auth_failures_per_minute: u32,
    /// Secret-bearing calls (private-key exports, credentials bundles) one API key may
    /// make per minute before it gets 429 until the minute is over.
    pub secret_reads_per_minute: u32,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub max_connections: u32,
    /// How long a request waits for a database connection before it is told the store
    /// is unavailable (503). Short, so an outage gives quick answers, not hangs.
    pub acquire_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    /// `None` means every plugin.
    pub plugins: Option<Vec<String>>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub master_key_file: PathBuf,
    pub tls: Option<TlsSettings>,
    pub trusted_proxies: Vec<IpNet>,
    /// HTTP worker threads; `None` lets actix-web pick one per core.
    pub workers: Option<usize>,
    pub limits: Limits,
    pub database: DatabaseSettings,
    /// How often a process looks for events written by other processes.
    pub projection_poll_interval: Duration,
    /// Where credgate may connect to (SSH host-key scans, connection tests, pairing).
    pub outbound: OutboundSettings,
    /// The remote side of semi-automatic setup (the `pairing` plugin).
    pub pairing: PairingSettings,
    /// Where `GET /metrics` is served (`metrics.listen`).
    pub metrics: MetricsExposure,
}

/// Where the Prometheus metrics are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsExposure {
    /// At `/metrics` beside the API, on `listen` (the default: `metrics.listen = "api"`).
    WithApi,
    /// On an address of its own, and not beside the API.
    Separate(SocketAddr),
    /// Nowhere (`metrics.listen = "off"`).
    Off,
}

/// What the `pairing` plugin may do on this host.
#[derive(Debug, Clone)]
pub struct PairingSettings {
    /// Local users a caller may pair a key for (login names, checked like usernames).
    pub allowed_users: Vec<String>,
    /// Where a user's authorized_keys file is: `{user}` and `{home}` are replaced.
    pub authorized_keys_path: String,
    /// authorized_keys options put in front of every paired key (e.g. `restrict`).
    pub key_options: Option<String>,
    /// The SSH port callers are told to use.
    pub ssh_port: u16,
    /// The host's public host-key files (`*` in the file name matches any text).
    pub host_key_files: Vec<String>,
    /// Where a passwordless `zfs` sudo drop-in is written when a caller asks for sudo;
    /// `None`: sudo is never granted.
    pub sudoers_dir: Option<PathBuf>,
}

pub const DEFAULT_AUTHORIZED_KEYS_PATH: &str = "{home}/.ssh/authorized_keys";
pub const DEFAULT_HOST_KEY_FILES: &str = "/etc/ssh/ssh_host_*_key.pub";

/// Outbound address policy. An empty `allow` allows every address not denied.
#[derive(Debug, Clone, Default)]
pub struct OutboundSettings {
    pub allow: Vec<IpNet>,
    pub deny: Vec<IpNet>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./credgate-data";

impl Settings {
    /// Defaults, then `file` (if given), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment (tests must not touch the
    /// process environment).
    pub fn load_from(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => read_file(path)?,
            None => toml::Table::new(),
        };
        env::overlay(&mut table, vars)?;
        let raw: RawSettings = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::new("config", e.message().trim_end()))?;
        Self::from_raw(raw)
    }

    /// The settings a test or an embedding program starts from: all defaults, with the
    /// data directory (and so the SQLite file and key files) under `data_dir`.
    pub fn defaults_in(data_dir: &Path) -> Self {
        let raw = RawSettings {
            data_dir: Some(Scalar(data_dir.display().to_string())),
            ..RawSettings::default()
        };
        // The defaults are constants checked by the tests below; there is nothing to fail.
        match Self::from_raw(raw) {
            Ok(settings) => settings,
            Err(e) => unreachable!("built-in defaults are valid: {e}"),
        }
    }

    fn from_raw(raw: RawSettings) -> Result<Self, ConfigError> {
        let listen = parse_with("listen", raw.listen.as_ref(), DEFAULT_LISTEN, |s| {
            SocketAddr::from_str(s).map_err(|_| "expected an address like 127.0.0.1:8080")
        })?;
        let data_dir = PathBuf::from(text(raw.data_dir.as_ref(), DEFAULT_DATA_DIR));
        if data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("data_dir", "must not be empty"));
        }
        let default_db = format!("sqlite://{}/credgate.db", data_dir.display());
        let database_url = parse_with(
            "database_url",
            raw.database_url.as_ref(),
            &default_db,
            DatabaseUrl::parse,
        )?;
        let plugins = raw.plugins.map(|List(items)| items);
        let log_format = parse_with("log_format", raw.log_format.as_ref(), "text", |s| match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected `text` or `json`"),
        })?;
        let log_level = text(raw.log_level.as_ref(), "info").to_owned();
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            return Err(ConfigError::new(
                "log_level",
                "expected a level such as `info` or a filter such as `info,credgate=debug`",
            ));
        }
        let master_key_file = raw
            .master_key_file
            .map(|s| PathBuf::from(s.0))
            .unwrap_or_else(|| data_dir.join("master.key"));
        let tls = match (raw.tls.cert_file, raw.tls.key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsSettings {
                cert_file: PathBuf::from(cert.0),
                key_file: PathBuf::from(key.0),
            }),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "tls.key_file",
                    "is required when tls.cert_file is set",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "tls.cert_file",
                    "is required when tls.key_file is set",
                ));
            }
        };
        let trusted_proxies = cidr_list("trusted_proxies", raw.trusted_proxies)?;
        let outbound = OutboundSettings {
            allow: cidr_list("outbound.allow", raw.outbound.allow)?,
            deny: cidr_list("outbound.deny", raw.outbound.deny)?,
        };
        let pairing = pairing_settings(raw.pairing)?;
        let workers = match raw.workers {
            None => None,
            Some(s) => Some(parse_number::<usize>("workers", &s.0, 1, 256)?),
        };
        let limits = Limits {
            body_bytes: number_or(
                "limits.body_bytes",
                raw.limits.body_bytes,
                1 << 20,
                1024,
                64 << 20,
            )?,
            request_timeout: Duration::from_secs(number_or(
                "limits.request_timeout_secs",
                raw.limits.request_timeout_secs,
                30,
                1,
                3600,
            )?),
            auth_failures_per_minute: number_or(
                "limits.auth_failures_per_minute",
                raw.limits.auth_failures_per_minute,
                60,
                1,
                1_000_000,
            )?,
            secret_reads_per_minute: number_or(
                "limits.secret_reads_per_minute",
                raw.limits.secret_reads_per_minute,
                60,
                1,
                1_000_000,
            )?,
        };
        let database = DatabaseSettings {
            max_connections: number_or(
                "database.max_connections",
                raw.database.max_connections,
                10,
                1,
                1000,
            )?,
            acquire_timeout: Duration::from_millis(number_or(
                "database.acquire_timeout_ms",
                raw.database.acquire_timeout_ms,
                3000,
                100,
                60_000,
            )?),
        };
        let metrics = parse_with(
            "metrics.listen",
            raw.metrics.listen.as_ref(),
            "api",
            |s| match s {
                "api" => Ok(MetricsExposure::WithApi),
                "off" => Ok(MetricsExposure::Off),
                address => SocketAddr::from_str(address)
                    .map(MetricsExposure::Separate)
                    .map_err(|_| "expected `api`, `off` or an address like 127.0.0.1:9464"),
            },
        )?;
        let projection_poll_interval = Duration::from_millis(number_or(
            "projections.poll_interval_ms",
            raw.projections.poll_interval_ms,
            250,
            10,
            3_600_000,
        )?);
        Ok(Self {
            listen,
            data_dir,
            database_url,
            plugins,
            log_format,
            log_level,
            master_key_file,
            tls,
            trusted_proxies,
            workers,
            limits,
            database,
            projection_poll_interval,
            outbound,
            pairing,
            metrics,
        })
    }
}

fn pairing_settings(raw: raw::RawPairing) -> Result<PairingSettings, ConfigError> {
    let allowed_users = match raw.allowed_users {
        None => vec!["root".to_owned()],
        Some(List(users)) => users,
    };
    if let Some(bad) = allowed_users
        .iter()
        .find(|u| crate::ssh::Username::parse(u).is_err())
    {
        return Err(ConfigError::new(
            "pairing.allowed_users",
            &format!("`{bad}` is not a login name (^[a-z_][a-z0-9_.-]{{0,31}}$)"),
        ));
    }
    let authorized_keys_path = text(
        raw.authorized_keys_path.as_ref(),
        DEFAULT_AUTHORIZED_KEYS_PATH,
    )
    .to_owned();
    if !authorized_keys_path.starts_with('/') && !authorized_keys_path.starts_with("{home}") {
        return Err(ConfigError::new(
            "pairing.authorized_keys_path",
            "must be an absolute path or start with `{home}`",
        ));
    }
    let key_options = raw
        .key_options
        .map(|s| s.0.trim().to_owned())
        .filter(|s| !s.is_empty());
    if let Some(options) = &key_options
        && (options.chars().any(char::is_control)
            || options.contains(char::is_whitespace) && !options.contains('"'))
    {
        return Err(ConfigError::new(
            "pairing.key_options",
            "must be one authorized_keys options field (comma-separated, no control characters; quote values that contain spaces)",
        ));
    }
    let ssh_port = number_or("pairing.ssh_port", raw.ssh_port, 22u16, 1, 65535)?;
    let host_key_files = match raw.host_key_files {
        None => vec![DEFAULT_HOST_KEY_FILES.to_owned()],
        Some(List(files)) => files,
    };
    let sudoers_dir = raw
        .sudoers_dir
        .map(|s| PathBuf::from(s.0.trim()))
        .filter(|p| !p.as_os_str().is_empty());
    Ok(PairingSettings {
        allowed_users,
        authorized_keys_path,
        key_options,
        ssh_port,
        host_key_files,
        sudoers_dir,
    })
}

fn cidr_list(name: &str, list: Option<List>) -> Result<Vec<IpNet>, ConfigError> {
    list.unwrap_or_default()
        .0
        .iter()
        .map(|s| parse_cidr(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|bad| {
            ConfigError::new(name, &format!("`{bad}` is not an IP address or CIDR block"))
        })
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new("--config", &format!("cannot read {}: {e}", path.display()))
    })?;
    text.parse::<toml::Table>().map_err(|e| {
        ConfigError::new(
            "--config",
            &format!(
                "{} is not valid TOML: {}",
                path.display(),
                e.message().trim_end()
            ),
        )
    })
}

fn text<'a>(value: Option<&'a Scalar>, default: &'a str) -> &'a str {
    value.map(|s| s.0.as_str()).unwrap_or(default)
}

fn parse_with<T, E: std::fmt::Display>(
    name: &str,
    value: Option<&Scalar>,
    default: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<T, ConfigError> {
    let raw = text(value, default);
    parse(raw.trim()).map_err(|e| ConfigError::new(name, &format!("`{raw}`: {e}")))
}

fn parse_number<T>(name: &str, raw: &str, min: T, max: T) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let value: T = raw
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(name, &format!("`{raw}` is not a whole number")))?;
    if value < min || value > max {
        return Err(ConfigError::new(
            name,
            &format!("{value} is outside {min}..={max}"),
        ));
    }
    Ok(value)
}

fn number_or<T>(
    name: &str,
    value: Option<Scalar>,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match value {
        None => Ok(default),
        Some(s) => parse_number(name, &s.0, min, max),
    }
}

fn parse_cidr(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net);
    }
    text.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn pairing_defaults_and_overrides() {
        let s = Settings::load_from(None, vars(&[])).unwrap();
        assert_eq!(s.pairing.allowed_users, vec!["root".to_owned()]);
        assert_eq!(
            s.pairing.authorized_keys_path,
            "{home}/.ssh/authorized_keys"
        );
        assert_eq!(s.pairing.ssh_port, 22);
        assert_eq!(
            s.pairing.host_key_files,
            vec!["/etc/ssh/ssh_host_*_key.pub"]
        );
        assert!(s.pairing.sudoers_dir.is_none() && s.pairing.key_options.is_none());
        let s = Settings::load_from(
            None,
            vars(&[
                ("CREDGATE_PAIRING__ALLOWED_USERS", "root, backup"),
                (
                    "CREDGATE_PAIRING__KEY_OPTIONS",
                    "restrict,from=\"10.0.0.0/8\"",
                ),
                ("CREDGATE_PAIRING__SSH_PORT", "2222"),
                ("CREDGATE_PAIRING__SUDOERS_DIR", "/etc/sudoers.d"),
            ]),
        )
        .unwrap();
        assert_eq!(s.pairing.allowed_users, vec!["root", "backup"]);
        assert_eq!(
            s.pairing.key_options.as_deref(),
            Some("restrict,from=\"10.0.0.0/8\"")
        );
        assert_eq!(s.pairing.ssh_port, 2222);
        assert_eq!(s.pairing.sudoers_dir, Some(PathBuf::from("/etc/sudoers.d")));
    }

    #[test]
    fn defaults_are_safe() {
        let s = Settings::load_from(None, vars(&[])).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from("./credgate-data"));
        assert_eq!(
            s.database_url,
            DatabaseUrl::Sqlite("sqlite://./credgate-data/credgate.db".into())
        );
        assert!(s.plugins.is_none());
        assert_eq!(s.limits.body_bytes, 1 << 20);
        assert!(s.tls.is_none());
        assert_eq!(
            s.master_key_file,
            PathBuf::from("./credgate-data/master.key")
        );
    }

    #[test]
    fn environment_overrides_file_and_lists_split_on_commas() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nplugins = [\"api-keys\"]\n[limits]\nbody_bytes = 2048\n",
        )
        .unwrap();
        let s = Settings::load_from(
            Some(&file),
            vars(&[
                ("CREDGATE_LISTEN", "127.0.0.1:9001"),
                ("CREDGATE_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1"),
                ("CREDGATE_PROJECTIONS__POLL_INTERVAL_MS", "100"),
                ("CREDGATE_OUTBOUND__DENY", "127.0.0.0/8,::1"),
            ]),
        )
        .unwrap();
        assert_eq!(s.listen.port(), 9001);
        assert_eq!(s.plugins.as_deref(), Some(&["api-keys".to_owned()][..]));
        assert_eq!(s.limits.body_bytes, 2048);
        assert_eq!(s.trusted_proxies.len(), 2);
        assert_eq!(s.projection_poll_interval, Duration::from_millis(100));
        assert_eq!(s.outbound.deny.len(), 2);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases = [
            ("CREDGATE_LISTEN", "nonsense", "`listen`"),
            ("CREDGATE_DATABASE_URL", "mysql://x", "`database_url`"),
            ("CREDGATE_LOG_FORMAT", "xml", "`log_format`"),
            ("CREDGATE_LIMITS__BODY_BYTES", "lots", "`limits.body_bytes`"),
            ("CREDGATE_LIMITS__BODY_BYTES", "1", "`limits.body_bytes`"),
            (
                "CREDGATE_TRUSTED_PROXIES",
                "10.0.0.0/99",
                "`trusted_proxies`",
            ),
            ("CREDGATE_TLS__CERT_FILE", "/c.pem", "`tls.key_file`"),
            ("CREDGATE_OUTBOUND__DENY", "127.0.0.1/33", "`outbound.deny`"),
            ("CREDGATE_OUTBOUND__ALLOW", "somewhere", "`outbound.allow`"),
            (
                "CREDGATE_PAIRING__ALLOWED_USERS",
                "root,Bad User",
                "`pairing.allowed_users`",
            ),
            (
                "CREDGATE_PAIRING__AUTHORIZED_KEYS_PATH",
                "relative/keys",
                "`pairing.authorized_keys_path`",
            ),
            ("CREDGATE_PAIRING__SSH_PORT", "0", "`pairing.ssh_port`"),
            (
                "CREDGATE_PAIRING__KEY_OPTIONS",
                "restrict\nfrom=x",
                "`pairing.key_options`",
            ),
            ("CREDGATE_METRICS__LISTEN", "everywhere", "`metrics.listen`"),
            ("CREDGATE_LISTN", "x", "listn"),
        ];
        for (var, value, expected) in cases {
            let err = Settings::load_from(None, vars(&[(var, value)])).unwrap_err();
            let line = err.to_string();
            assert!(line.contains(expected), "{var}={value}: {line}");
            assert!(!line.contains('\n'), "one line: {line}");
        }
    }

    #[test]
    fn metrics_are_beside_the_api_unless_told_otherwise() {
        let exposure = |value: Option<&str>| {
            let pairs: Vec<(&str, &str)> = value
                .map(|v| vec![("CREDGATE_METRICS__LISTEN", v)])
                .unwrap_or_default();
            Settings::load_from(None, vars(&pairs)).unwrap().metrics
        };
        assert_eq!(exposure(None), MetricsExposure::WithApi);
        assert_eq!(exposure(Some("api")), MetricsExposure::WithApi);
        assert_eq!(exposure(Some("off")), MetricsExposure::Off);
        assert_eq!(
            exposure(Some("127.0.0.1:9464")),
            MetricsExposure::Separate("127.0.0.1:9464".parse().unwrap())
        );
    }

    #[test]
    fn database_url_debug_hides_password() {
        let url = DatabaseUrl::parse("postgres://app:hunter2@db:5432/credgate").unwrap();
        let shown = format!("{url:?}");
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("app:***@db"));
    }
}
