//! Pebble, the ACME test server, on loopback: started by the test with a directory certificate
//! from a CA of the test's own, validating challenges against our listeners.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::json;

use super::{TestCa, client_trusting};

/// The `pebble` binary on `PATH` (the Debian package installs `/usr/bin/pebble`).
pub fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("pebble"))
        .find(|candidate| candidate.is_file())
}

/// A running Pebble; killed when dropped.
pub struct Pebble {
    child: Option<Child>,
    dir: tempfile::TempDir,
    listen: SocketAddr,
    management: SocketAddr,
    /// Pebble's two ports, held until it starts: another test binding port 0 meanwhile cannot
    /// be given them. (They are released just before Pebble binds them; it cannot inherit
    /// them.)
    reserved: Vec<std::net::TcpListener>,
    /// The root the test trusts for Pebble's own HTTPS (directory and management).
    directory_ca: TestCa,
}

impl Pebble {
    /// Pebble's ports and its HTTPS certificate, before it starts (our settings need its
    /// address, and it needs ours).
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let directory_ca = TestCa::new("Pebble directory test root");
        let reserved = vec![reserve_port(), reserve_port()];
        let address = |l: &std::net::TcpListener| l.local_addr().expect("its address");
        Self {
            child: None,
            dir,
            listen: address(&reserved[0]),
            management: address(&reserved[1]),
            reserved,
            directory_ca,
        }
    }

    /// Starts Pebble validating TLS-ALPN-01 on `tls_port` and HTTP-01 on `http_port` of the
    /// names it is asked for (`localhost`), and waits until it listens.
    pub async fn start(&mut self, binary: &Path, tls_port: u16, http_port: u16) {
        let leaf = self.directory_ca.leaf();
        let (cert, key) = (self.file("cert.pem"), self.file("key.pem"));
        std::fs::write(&cert, &leaf.cert).expect("write");
        std::fs::write(&key, &leaf.key).expect("write");
        let config = json!({"pebble": {
            "listenAddress": self.listen.to_string(),
            "managementListenAddress": self.management.to_string(),
            "certificate": cert,
            "privateKey": key,
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        let config_path = self.file("pebble-config.json");
        std::fs::write(&config_path, config.to_string()).expect("write");
        let log = std::fs::File::create(self.file("pebble.log")).expect("log file");
        self.reserved.clear();
        let child = Command::new(binary)
            .arg("-config")
            .arg(&config_path)
            // Validate at once, and do not reject nonces at random (a test of the library's
            // retries, not of ours).
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start pebble");
        self.child = Some(child);
        for _ in 0..100 {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("pebble exited ({status}):\n{}", self.log());
            }
            if tokio::net::TcpStream::connect(self.listen).await.is_ok()
                && tokio::net::TcpStream::connect(self.management)
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("pebble did not start:\n{}", self.log());
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn directory_url(&self) -> String {
        format!("https://localhost:{}/dir", self.listen.port())
    }

    /// Pebble's own root, in a file, for `server.tls.acme.directory_ca_file`.
    pub fn directory_ca_file(&self) -> String {
        let path = self.file("directory-root.pem");
        std::fs::write(&path, self.directory_ca.pem()).expect("write");
        path.display().to_string()
    }

    /// The root of the certificates Pebble issues (new at every start of Pebble).
    pub async fn issuing_root(&self) -> String {
        let client = client_trusting(&self.directory_ca.pem(), self.management);
        let url = format!("https://localhost:{}/roots/0", self.management.port());
        let resp = client.get(url).send().await.expect("pebble management");
        assert!(
            resp.status().is_success(),
            "GET /roots/0: {}",
            resp.status()
        );
        resp.text().await.expect("root PEM")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.file("pebble.log")).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
    }
}

fn reserve_port() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port")
}
