//! The untyped shape of the configuration, before validation.
//!
//! Every scalar is read as text (a TOML number, boolean or string, or an environment
//! variable's value) so that one parser per setting decides what is valid and can name
//! the setting in its error. Lists accept a TOML array or one comma-separated string.

use serde::Deserialize;

/// A scalar setting as text, whatever TOML type it was written with.
#[derive(Debug, Clone)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl serde::de::Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// A list setting: a TOML array of scalars, or a comma-separated string.
#[derive(Debug, Clone, Default)]
pub struct List(pub Vec<String>);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Items(Vec<Scalar>),
            Text(Scalar),
        }
        Ok(match Either::deserialize(deserializer)? {
            Either::Items(items) => List(items.into_iter().map(|s| s.0).collect()),
            Either::Text(text) => List(
                text.0
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    pub listen: Option<Scalar>,
    pub data_dir: Option<Scalar>,
    pub database_url: Option<Scalar>,
    pub plugins: Option<List>,
    pub log_format: Option<Scalar>,
    pub log_level: Option<Scalar>,
    pub master_key_file: Option<Scalar>,
    pub trusted_proxies: Option<List>,
    pub workers: Option<Scalar>,
    #[serde(default)]
    pub tls: RawTls,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub database: RawDatabase,
    #[serde(default)]
    pub projections: RawProjections,
    #[serde(default)]
    pub outbound: RawOutbound,
    #[serde(default)]
    pub pairing: RawPairing,
    #[serde(default)]
    pub metrics: RawMetrics,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub listen: Option<Scalar>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPairing {
    pub allowed_users: Option<List>,
    pub authorized_keys_path: Option<Scalar>,
    pub key_options: Option<Scalar>,
    pub ssh_port: Option<Scalar>,
    pub host_key_files: Option<List>,
    pub sudoers_dir: Option<Scalar>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutbound {
    pub allow: Option<List>,
    pub deny: Option<List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert_file: Option<Scalar>,
    pub key_file: Option<Scalar>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub body_bytes: Option<Scalar>,
    pub request_timeout_secs: Option<Scalar>,
    pub auth_failures_per_minute: Option<Scalar>,
    pub secret_reads_per_minute: Option<Scalar>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    pub max_connections: Option<Scalar>,
    pub acquire_timeout_ms: Option<Scalar>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProjections {
    pub poll_interval_ms: Option<Scalar>,
}
