//! The first admin key. On first start with no API keys in the store, credgate creates
//! an admin key so someone can log in: from `CREDGATE_BOOTSTRAP_ADMIN_KEY` if set,
//! otherwise a random one written to `<data_dir>/admin.key` (mode 0600). The key itself
//! is never logged; the file's path is.

use std::path::{Path, PathBuf};

use super::scope::Scope;
use super::service::ApiKeyService;
use super::token::ApiKeySecret;
use crate::files::write_private_file;
use crate::names::Name;
use crate::store::CommandMetadata;

pub const ADMIN_KEY_FILE: &str = "admin.key";
pub const BOOTSTRAP_ENV: &str = "CREDGATE_BOOTSTRAP_ADMIN_KEY";

#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// The store already had API keys; nothing was done.
    NotNeeded,
    /// An admin key was created from the environment variable.
    FromEnvironment,
    /// An admin key was created and its secret is in this file.
    WrittenTo(PathBuf),
}

pub async fn ensure_admin_key(
    service: &ApiKeyService,
    data_dir: &Path,
    from_env: Option<&str>,
) -> anyhow::Result<Bootstrap> {
    if service.any_exist().await? {
        return Ok(Bootstrap::NotNeeded);
    }
    let file = data_dir.join(ADMIN_KEY_FILE);
    let (secret, outcome) = match from_env {
        Some(text) => (
            ApiKeySecret::from_external(text)
                .map_err(|m| anyhow::anyhow!("{BOOTSTRAP_ENV} {m}"))?,
            Bootstrap::FromEnvironment,
        ),
        None => {
            // A key file left from an earlier start whose store was then replaced is
            // reused rather than silently overwritten.
            let secret = match std::fs::read_to_string(&file) {
                Ok(text) => ApiKeySecret::from_external(&text).map_err(|m| {
                    anyhow::anyhow!(
                        "{} exists but is not a usable key ({m}); remove it",
                        file.display()
                    )
                })?,
                Err(_) => ApiKeySecret::generate(),
            };
            write_private_file(&file, secret.expose())?;
            (secret, Bootstrap::WrittenTo(file))
        }
    };
    let name = Name::parse("bootstrap admin").map_err(anyhow::Error::msg)?;
    let metadata = CommandMetadata::local("bootstrap", service.now());
    service
        .create(name, vec![Scope::Admin], None, Some(secret), &metadata)
        .await
        .map_err(|e| anyhow::anyhow!("could not create the bootstrap admin key: {e}"))?;
    Ok(outcome)
}
