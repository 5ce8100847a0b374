//! HTTPS with rustls, when `tls.cert_file` and `tls.key_file` are set.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ConfigError, TlsSettings};

/// Two rustls crypto providers are compiled in (aws-lc-rs and ring, through different
/// dependencies), so rustls cannot pick one by itself: choose aws-lc-rs for the process.
pub fn install_crypto_provider() {
    // Fails only if a provider is already installed, which is what we want anyway.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub fn server_config(tls: &TlsSettings) -> Result<ServerConfig, ConfigError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|iter| iter.collect())
        .map_err(|e| {
            ConfigError::new(
                "tls.cert_file",
                &format!("{}: {e}", tls.cert_file.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(ConfigError::new(
            "tls.cert_file",
            &format!("{} holds no PEM certificate", tls.cert_file.display()),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|e| {
        ConfigError::new("tls.key_file", &format!("{}: {e}", tls.key_file.display()))
    })?;
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::new("tls", &e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            ConfigError::new(
                "tls.key_file",
                &format!("does not match the certificate: {e}"),
            )
        })
}

/// The `Strict-Transport-Security` value: browsers use HTTPS only, for a year.
pub const HSTS: &str = "max-age=31536000";

tokio::task_local! {
    /// Set while a request that came over TLS is handled, so an error built anywhere
    /// inside it carries HSTS (see `ApiError`).
    static OVER_TLS: bool;
}

/// Whether the request being handled came over TLS (false outside a request).
pub fn served_over_tls() -> bool {
    OVER_TLS.try_with(|tls| *tls).unwrap_or(false)
}

/// Adds `Strict-Transport-Security` to every answer served over TLS. An error that a
/// middleware returns as `Err` (the request time limit) is turned into a response after
/// every middleware; it carries the header itself, captured when it was made.
pub async fn strict_transport_security(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let mut response = OVER_TLS.scope(true, next.call(req)).await?;
    response.headers_mut().insert(
        actix_web::http::header::STRICT_TRANSPORT_SECURITY,
        actix_web::http::header::HeaderValue::from_static(HSTS),
    );
    Ok(response)
}
