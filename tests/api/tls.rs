//! HTTPS served by the service itself: from certificate files (reloaded when they change), with
//! a plain-HTTP listener that redirects to it, and from an ACME CA (Pebble, the ACME test
//! server, when installed).
use std::{net::SocketAddr, path::Path, time::Duration};

use figment::{Figment, providers::Serialized};
use ironquill::config::{AppEnv, Settings};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use reqwest::{StatusCode, Version};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    helpers::{TestApp, build_app, run_app, spawn_app_with, test_figment},
    slow_clients::pings_until_closed,
};

mod pebble;

/// A CA of our own, for the certificates the tests serve.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf certificate and its key, in PEM.
pub struct Leaf {
    pub cert: String,
    pub key: String,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("CA certificate");
        Self { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `localhost` and 127.0.0.1.
    pub fn leaf(&self) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("leaf certificate");
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A client that trusts this CA only and reaches `localhost` at `addr`.
    pub fn client(&self, addr: SocketAddr) -> reqwest::Client {
        client_trusting(&self.pem(), addr)
    }
}

pub fn client_trusting(root_pem: &str, addr: SocketAddr) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(root_pem.as_bytes()).expect("root PEM");
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .resolve("localhost", addr)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("https client")
}

/// Certificate files in a temporary directory, as an operator (or certbot) keeps them.
struct CertDir {
    dir: tempfile::TempDir,
}

impl CertDir {
    fn with(leaf: &Leaf) -> Self {
        let dir = Self {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        dir.write(leaf);
        dir
    }

    fn cert(&self) -> String {
        self.dir.path().join("cert.pem").display().to_string()
    }

    fn key(&self) -> String {
        self.dir.path().join("key.pem").display().to_string()
    }

    /// Replaces both files, each by a rename as renewal tools do.
    fn write(&self, leaf: &Leaf) {
        replace(Path::new(&self.key()), &leaf.key);
        replace(Path::new(&self.cert()), &leaf.cert);
    }

    fn settings(&self, figment: Figment) -> Figment {
        figment
            .merge(Serialized::default("server.tls.cert_file", self.cert()))
            .merge(Serialized::default("server.tls.key_file", self.key()))
    }
}

fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn addr_of(app: &TestApp) -> SocketAddr {
    app.address
        .trim_start_matches("https://")
        .parse()
        .expect("the app's address")
}

fn https(app: &TestApp, path: &str) -> String {
    format!("https://localhost:{}{path}", addr_of(app).port())
}

/// Whether a request from `client` to `url` succeeds within `within`, retried meanwhile.
async fn answers_within(client: &reqwest::Client, url: &str, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if client.get(url).send().await.is_ok() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The app serving HTTPS from certificate files issued by a CA of the test's own.
struct HttpsApp {
    ca: TestCa,
    files: CertDir,
    app: TestApp,
}

/// Spawns the app on HTTPS, with settings adjusted by `customize`.
async fn spawn_https_app(customize: impl FnOnce(Figment) -> Figment) -> HttpsApp {
    let ca = TestCa::new("ironquill test root");
    let files = CertDir::with(&ca.leaf());
    let app = spawn_app_with(|f| customize(files.settings(f))).await;
    HttpsApp { ca, files, app }
}

impl HttpsApp {
    fn addr(&self) -> SocketAddr {
        addr_of(&self.app)
    }

    /// A new client (new connections) that trusts the app's CA.
    fn client(&self) -> reqwest::Client {
        self.ca.client(self.addr())
    }

    fn url(&self, path: &str) -> String {
        https(&self.app, path)
    }

    /// The status of `GET /healthz` on a new connection; `None` when that fails.
    async fn healthz(&self) -> Option<StatusCode> {
        let resp = self.client().get(self.url("/healthz")).send().await;
        resp.ok().map(|r| r.status())
    }
}

fn with(key: &str, value: impl serde::Serialize) -> impl FnOnce(Figment) -> Figment {
    let value = serde_json::to_value(value).expect("a JSON value");
    move |f| f.merge(Serialized::default(key, value))
}

#[tokio::test]
async fn https_from_certificate_files_serves_http2_to_a_client_that_trusts_the_root() {
    let https = spawn_https_app(|f| f).await;
    assert!(https.app.address.starts_with("https://"));

    let resp = https
        .client()
        .get(https.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), Version::HTTP_2, "h2 chosen by ALPN");
    // Outside production, TLS alone sends no HSTS (server.hsts is off in the test settings).
    assert!(!resp.headers().contains_key("strict-transport-security"));

    // A client that offers HTTP/1.1 only is served too.
    let http1 = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(https.ca.pem().as_bytes()).unwrap())
        .resolve("localhost", https.addr())
        .http1_only()
        .build()
        .unwrap();
    let resp = http1.get(https.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), Version::HTTP_11);

    // A client that does not trust the root refuses the certificate, and plain HTTP on the
    // HTTPS port gets no answer.
    let stranger = TestCa::new("another root").client(https.addr());
    assert!(stranger.get(https.url("/healthz")).send().await.is_err());
    let plain = format!("http://{}/healthz", https.addr());
    assert!(reqwest::get(plain).await.is_err());
}

#[tokio::test]
async fn a_replaced_certificate_file_is_served_without_a_restart() {
    let https = spawn_https_app(with("server.tls.reload_interval_secs", 1)).await;
    let renewed = TestCa::new("renewing root");
    let url = https.url("/healthz");
    let renewed_client = renewed.client(https.addr());
    assert_eq!(https.healthz().await, Some(StatusCode::OK));
    assert!(renewed_client.get(&url).send().await.is_err());

    https.files.write(&renewed.leaf());
    assert!(
        answers_within(&renewed_client, &url, Duration::from_secs(10)).await,
        "the renewed certificate is served"
    );
    assert_eq!(https.healthz().await, None, "the old one is not");

    // A broken renewal (a new key, a certificate that is not one) is refused and the current
    // certificate kept, over several checks...
    let third = TestCa::new("third root");
    let fixed = third.leaf();
    replace(Path::new(&https.files.key()), &fixed.key);
    replace(Path::new(&https.files.cert()), "not a certificate");
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let resp = renewed.client(https.addr()).get(&url).send().await;
        assert_eq!(resp.map(|r| r.status()).ok(), Some(StatusCode::OK));
    }
    // ...while the watcher kept looking: the certificate that completes the pair is served.
    replace(Path::new(&https.files.cert()), &fixed.cert);
    assert!(
        answers_within(&third.client(https.addr()), &url, Duration::from_secs(10)).await,
        "the repaired pair is served"
    );
}

#[tokio::test]
async fn metrics_show_when_the_served_certificate_expires() {
    let https = spawn_https_app(with("metrics.listen", "127.0.0.1:0")).await;
    let pem = std::fs::read(https.files.cert()).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("PEM");
    let not_after = pem
        .parse_x509()
        .expect("X.509")
        .validity()
        .not_after
        .timestamp();

    #[allow(clippy::cast_precision_loss)]
    let expected = not_after as f64;
    assert_eq!(
        served_certificate_expiry(&https.app, "files").await,
        expected
    );
}

/// `tls_certificate_expiry_timestamp_seconds` of `source`, as `/metrics` shows it.
async fn served_certificate_expiry(app: &TestApp, source: &str) -> f64 {
    let metrics = app.metrics_address.as_ref().expect("metrics on");
    let url = format!("{metrics}/metrics");
    let text = app
        .client
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!(r#"tls_certificate_expiry_timestamp_seconds{{source="{source}"}} "#);
    text.lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .unwrap_or_else(|| panic!("no expiry gauge in:\n{text}"))
        .parse()
        .expect("a number")
}

/// Why `settings` do not start, as the operator reads it.
async fn start_up_error(customize: impl FnOnce(Figment) -> Figment) -> String {
    let figment = customize(test_figment().await);
    let settings = match Settings::from_figment(figment, AppEnv::Test) {
        Ok(settings) => settings,
        Err(err) => return err.to_string(),
    };
    match ironquill::app::Application::build(settings).await {
        Ok(_) => panic!("the application started"),
        Err(err) => format!("{err:#}"),
    }
}

#[tokio::test]
async fn start_up_refuses_missing_mismatched_or_incomplete_tls_settings() {
    let ca = TestCa::new("root");
    let (leaf, other) = (ca.leaf(), ca.leaf());
    let files = CertDir::with(&leaf);

    let missing = start_up_error(|f| {
        f.merge(Serialized::default(
            "server.tls.cert_file",
            "/nonexistent/cert.pem",
        ))
        .merge(Serialized::default("server.tls.key_file", files.key()))
    })
    .await;
    assert!(
        missing.contains("server.tls.cert_file") && missing.contains("/nonexistent/cert.pem"),
        "{missing}"
    );

    // The key of another certificate.
    replace(Path::new(&files.key()), &other.key);
    let mismatched = start_up_error(|f| files.settings(f)).await;
    assert!(
        mismatched.contains("server.tls.key_file does not belong"),
        "{mismatched}"
    );
    // A key file that is not a key: named, and never quoted.
    replace(Path::new(&files.key()), &leaf.cert);
    let not_a_key = start_up_error(|f| files.settings(f)).await;
    assert!(
        not_a_key.contains("server.tls.key_file") && !not_a_key.contains("BEGIN"),
        "{not_a_key}"
    );

    let half = start_up_error(with("server.tls.cert_file", "c.pem")).await;
    assert!(
        half.contains("cert_file and key_file go together"),
        "{half}"
    );
    let acme = |acme: serde_json::Value| with("server.tls.acme", acme);
    let both = start_up_error(|f| {
        acme(json!({"domains": ["blog.example.com"], "cache_dir": "data/acme"}))(files.settings(f))
    })
    .await;
    assert!(both.contains("not both"), "{both}");
    let redirect_alone = start_up_error(with("server.tls.redirect_http", "127.0.0.1:0")).await;
    assert!(
        redirect_alone.contains("server.tls.redirect_http"),
        "{redirect_alone}"
    );
    let wildcard = start_up_error(acme(
        json!({"domains": ["*.example.com"], "cache_dir": "data/acme"}),
    ))
    .await;
    assert!(wildcard.contains("server.tls.acme.domains"), "{wildcard}");
    let http01_without_port_80 = start_up_error(acme(
        json!({"domains": ["blog.example.com"], "cache_dir": "data/acme", "challenge": "http-01"}),
    ))
    .await;
    assert!(
        http01_without_port_80.contains("set server.tls.redirect_http"),
        "{http01_without_port_80}"
    );
    let plain_public_url =
        start_up_error(|f| with("server.public_url", "http://blog.example.com")(files.settings(f)))
            .await;
    assert!(
        plain_public_url.contains("server.public_url"),
        "{plain_public_url}"
    );
    // A redirect from every address needs a public URL to name its target.
    let redirect_to_nowhere = start_up_error(|f| {
        files
            .settings(f)
            .merge(Serialized::default("server.host", "0.0.0.0"))
            .merge(Serialized::default(
                "server.tls.redirect_http",
                "127.0.0.1:0",
            ))
    })
    .await;
    assert!(
        redirect_to_nowhere.contains("server.public_url")
            && redirect_to_nowhere.contains("redirect_http"),
        "{redirect_to_nowhere}"
    );
    // With ACME, the public host must be one the certificate is ordered for.
    let other_host = start_up_error(|f| {
        acme(json!({"domains": ["blog.example.com"], "cache_dir": "data/acme"}))(f).merge(
            Serialized::default("server.public_url", "https://www.example.com"),
        )
    })
    .await;
    assert!(
        other_host.contains("server.public_url") && other_host.contains("acme.domains"),
        "{other_host}"
    );
}

#[tokio::test]
async fn the_redirect_listener_sends_every_request_to_the_same_path_on_the_https_url() {
    let https = spawn_https_app(|f| {
        f.merge(Serialized::default(
            "server.tls.redirect_http",
            "127.0.0.1:0",
        ))
        .merge(Serialized::default(
            "server.public_url",
            "https://blog.example.com",
        ))
    })
    .await;
    let plain = https
        .app
        .redirect_address
        .clone()
        .expect("a redirect listener");
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let resp = https
            .app
            .client
            .request(method.clone(), format!("{plain}/public/acme/posts?limit=5"))
            // The target comes from the configured public URL, never from the request.
            .header("host", "evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT, "{method}");
        assert_eq!(
            resp.headers()["location"],
            "https://blog.example.com/public/acme/posts?limit=5",
            "{method}"
        );
    }
    // The HTTPS listener itself serves as usual.
    assert_eq!(https.healthz().await, Some(StatusCode::OK));
}

#[tokio::test]
async fn without_a_public_url_the_redirect_goes_to_the_https_listener_itself() {
    let https = spawn_https_app(with("server.tls.redirect_http", "127.0.0.1:0")).await;
    let plain = https
        .app
        .redirect_address
        .clone()
        .expect("a redirect listener");
    let resp = https
        .app
        .client
        .get(format!("{plain}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("{}/healthz", https.app.address));
    // Followed by a client that trusts the certificate, it lands on the service.
    let resp = https.client().get(location).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn in_production_hsts_is_sent_when_tls_is_on_even_if_not_configured() {
    let ca = TestCa::new("root");
    let files = CertDir::with(&ca.leaf());
    let figment = files
        .settings(test_figment().await)
        .merge(Serialized::default("server.hsts", false))
        .merge(Serialized::default(
            "server.public_url",
            "https://blog.example.com",
        ));
    let settings =
        Settings::from_figment(figment, AppEnv::Production).expect("production settings");
    let app = run_app(build_app(settings).await);
    let resp = ca
        .client(addr_of(&app))
        .get(https(&app, "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=63072000; includeSubDomains")
    );
}

#[tokio::test]
async fn a_tls_handshake_that_never_finishes_is_cut_off() {
    let https = spawn_https_app(with("server.header_read_timeout_secs", 1)).await;
    // The start of a ClientHello record that announces 512 bytes, then a byte now and then:
    // enough traffic to keep an idle timer happy, never a finished handshake.
    let mut stalled = TcpStream::connect(https.addr()).await.unwrap();
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    hello.extend([0u8; 40]);
    stalled.write_all(&hello).await.unwrap();
    let drip = async {
        loop {
            if stalled.write_all(&[0]).await.is_err() {
                return;
            }
            let mut buf = [0u8; 64];
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_millis(100), stalled.read(&mut buf)).await
            {
                return;
            }
        }
    };
    assert!(
        tokio::time::timeout(Duration::from_secs(5), drip)
            .await
            .is_ok(),
        "the stalled handshake was closed"
    );
    // A prompt client is served.
    assert_eq!(https.healthz().await, Some(StatusCode::OK));
}

/// A TLS connection to `addr` that negotiated HTTP/2 by ALPN, trusting `root_pem`.
async fn h2_over_tls(
    root_pem: &str,
    addr: SocketAddr,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(root_pem.as_bytes()).expect("root PEM"))
        .expect("root");
    let mut config = rustls::ClientConfig::builder_with_provider(ironquill::http::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    stream
}

#[tokio::test]
async fn an_http2_connection_that_never_sends_a_request_is_closed_though_it_pings() {
    let https = spawn_https_app(with("server.header_read_timeout_secs", 1)).await;
    let mut h2 = h2_over_tls(&https.ca.pem(), https.addr()).await;
    // The header-read timeout (1 s) to the GOAWAY, as long again for a client that does not
    // answer its PING, and a margin.
    assert!(
        pings_until_closed(&mut h2, Duration::from_secs(4)).await,
        "the connection is still open"
    );
    // A client that asks something is served.
    assert_eq!(https.healthz().await, Some(StatusCode::OK));
}

#[tokio::test]
async fn the_connection_cap_per_address_applies_to_https() {
    let https = spawn_https_app(with("server.max_connections_per_ip", 2)).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(TcpStream::connect(https.addr()).await.unwrap());
    }
    let mut extra = TcpStream::connect(https.addr()).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "the connection over the cap is closed: {read:?}"
    );
    // A freed slot serves again (once the server has noticed the close).
    drop(open);
    drop(extra);
    assert!(
        answers_within(
            &https.client(),
            &https.url("/healthz"),
            Duration::from_secs(5)
        )
        .await,
        "a freed slot serves"
    );
}

/// The ACME settings for `pebble`, challenge `challenge`, caching in `cache`.
fn acme_settings(pebble: &pebble::Pebble, challenge: &str, cache: &Path) -> serde_json::Value {
    json!({
        "domains": ["localhost"],
        "contact": ["mailto:ops@example.com"],
        "directory_url": pebble.directory_url(),
        "directory_ca_file": pebble.directory_ca_file(),
        "cache_dir": cache.display().to_string(),
        "challenge": challenge,
    })
}

/// Orders a certificate from Pebble with `challenge`, serves with it, and after a restart with
/// Pebble gone serves the cached one (so a restart does not order anew).
async fn acme_end_to_end(challenge: &str) {
    let Some(binary) = pebble::binary() else {
        eprintln!(
            "SKIPPED: the ACME test did not run: `pebble` is not installed \
             (apt-get install pebble; .ci/run installs it)"
        );
        return;
    };
    let volume = tempfile::tempdir().expect("temp dir");
    // Created by the app, so with the mode it chooses.
    let cache = volume.path().join("acme");
    let mut pebble = pebble::Pebble::new();
    let acme = acme_settings(&pebble, challenge, &cache);
    let settings = || async {
        let figment = test_figment()
            .await
            .merge(Serialized::default("server.tls.acme", acme.clone()))
            .merge(Serialized::default(
                "server.tls.redirect_http",
                "127.0.0.1:0",
            ))
            .merge(Serialized::default("metrics.listen", "127.0.0.1:0"));
        Settings::from_figment(figment, AppEnv::Test).expect("ACME settings")
    };
    let app = build_app(settings().await).await;
    let redirect = app.redirect_addr().expect("redirect listener");
    pebble
        .start(&binary, app.addr().port(), redirect.port())
        .await;
    let app = run_app(app);

    let root = pebble.issuing_root().await;
    let client = client_trusting(&root, addr_of(&app));
    let url = https(&app, "/healthz");
    assert!(
        answers_within(&client, &url, Duration::from_secs(60)).await,
        "no certificate from Pebble; its log:\n{}",
        pebble.log()
    );
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_cache_is_private(&cache).await;
    // The issued certificate's expiry is exported (the two ACME tests share the gauge, so
    // only that it lies ahead).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(served_certificate_expiry(&app, "acme").await > now);

    // Restarted without a CA to ask: the cached certificate is served.
    app.shutdown().await.expect("clean shutdown");
    pebble.stop();
    let again = run_app(build_app(settings().await).await);
    let client = client_trusting(&root, addr_of(&again));
    assert!(
        answers_within(&client, &https(&again, "/healthz"), Duration::from_secs(10)).await,
        "the cached certificate is served after a restart"
    );
}

/// The account key and the certificate (with its key) are in `cache`, written whole and
/// readable by this user only.
async fn assert_cache_is_private(cache: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(cache), 0o700, "the cache directory");
    // The certificate is stored just after it is deployed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let names = loop {
        let names: Vec<String> = std::fs::read_dir(cache)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        if names.iter().any(|n| n.starts_with("cached_cert_"))
            || tokio::time::Instant::now() >= deadline
        {
            break names;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        names.iter().any(|n| n.starts_with("cached_account_")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("cached_cert_")),
        "{names:?}"
    );
    for name in &names {
        assert!(!name.ends_with(".tmp"), "a temporary file was left: {name}");
        assert_eq!(mode(&cache.join(name)), 0o600, "{name}");
    }
}

#[tokio::test]
async fn start_up_refuses_an_acme_cache_dir_other_users_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let acme = json!({"domains": ["localhost"], "cache_dir": cache.path().display().to_string()});
    let error = start_up_error(with("server.tls.acme", acme)).await;
    assert!(
        error.contains("server.tls.acme.cache_dir") && error.contains("chmod 700"),
        "{error}"
    );
}

#[tokio::test]
async fn acme_obtains_a_certificate_by_tls_alpn_01_from_pebble_and_caches_it() {
    acme_end_to_end("tls-alpn-01").await;
}

#[tokio::test]
async fn acme_obtains_a_certificate_by_http_01_on_the_redirect_listener() {
    acme_end_to_end("http-01").await;
}
