//! A throwaway CA and a server certificate for 127.0.0.1 signed by it (openssl).

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TestCerts {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Writes `ca.pem`, `cert.pem` and `key.pem` (P-256, valid one day) into `dir`.
pub fn ca_and_leaf(dir: &Path) -> TestCerts {
    let path = |name: &str| dir.join(name);
    let (ca, cert, key) = (path("ca.pem"), path("cert.pem"), path("key.pem"));
    std::fs::write(
        path("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    // A throwaway CA, and a server certificate for 127.0.0.1 signed by it.
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-days",
            "1",
            "-subj",
            "/CN=credgate test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        &ec,
    );
    openssl(
        dir,
        &[
            "req",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ],
        &ec,
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ],
        &[],
    );

    TestCerts { ca, cert, key }
}

fn openssl(dir: &Path, args: &[&str], extra: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .args(extra)
        .output()
        .expect("openssl runs (scripts/test installs it)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
