//! Instance B of a semi-automatic setup: a credgate serving only the `pairing` plugin
//! for a test sshd (B writes callers' keys into that sshd's authorized_keys and hands
//! out its host keys).

use super::certs::TestCerts;
use super::sshd::{Sshd, login_user};
use super::{Backend, TestApp, TestDb};

/// B: the remote, serving pairing for `sshd` (its own SQLite store).
pub struct Remote {
    pub app: TestApp,
    /// A key with `pairing` only (the admin key when B serves TLS).
    pub pairing_key: String,
    /// A key with `pairing:admin` (the admin key when B serves TLS).
    pub admin_key: String,
    _db: TestDb,
}

pub async fn remote_for(sshd: &Sshd, tls: Option<&TestCerts>) -> Remote {
    let db = TestDb::create(Backend::Sqlite).await;
    let (file, pattern, port) = (sshd.authorized_keys(), sshd.host_key_pattern(), sshd.port);
    let user = login_user();
    let tls = tls.map(|c| credgate::config::TlsSettings {
        cert_file: c.cert.clone(),
        key_file: c.key.clone(),
    });
    let app = TestApp::spawn_with(&db.url, move |s| {
        s.plugins = Some(vec!["pairing".to_owned()]);
        s.pairing.allowed_users = vec![user];
        s.pairing.authorized_keys_path = file.display().to_string();
        s.pairing.host_key_files = vec![pattern];
        s.pairing.ssh_port = port;
        s.tls = tls;
    })
    .await;
    let (pairing_key, admin_key) = if app.base.starts_with("https") {
        (app.admin_key.clone(), app.admin_key.clone())
    } else {
        let pairing = app.create_key("caller credgate", &["pairing"]).await;
        let admin = app.create_key("host admin", &["pairing:admin"]).await;
        (pairing.secret, admin.secret)
    };
    Remote {
        app,
        pairing_key,
        admin_key,
        _db: db,
    }
}
