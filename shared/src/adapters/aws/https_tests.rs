//! The trust decision of the AWS SDK's HTTPS client, on loopback: a DynamoDB call through the
//! client [`https_client`] builds reaches a TLS server whose certificate chains (through an
//! intermediate, as AWS endpoints' do) to a root added the way operators add one
//! (`AWS_CA_BUNDLE`'s file, [`read_ca_bundle`]); a server of an unknown CA is refused, and so
//! is the first one without the bundle (the system's store is not consulted). The test CA
//! and certificates are made here.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A CA: its certificate (PEM) and what signs with it.
struct TestCa {
    pem: String,
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Test Trust Services");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn root_ca(common_name: &str) -> TestCa {
    let key = KeyPair::generate().unwrap();
    let params = ca_params(common_name);
    let cert = params.self_signed(&key).unwrap();
    TestCa {
        pem: cert.pem(),
        der: cert.der().clone(),
        issuer: Issuer::new(params, key),
    }
}

fn intermediate_ca(common_name: &str, parent: &TestCa) -> TestCa {
    let key = KeyPair::generate().unwrap();
    let params = ca_params(common_name);
    let cert = params.signed_by(&key, &parent.issuer).unwrap();
    TestCa {
        pem: cert.pem(),
        der: cert.der().clone(),
        issuer: Issuer::new(params, key),
    }
}

/// A server certificate for 127.0.0.1 signed by `ca`: (chain as served, private key).
fn server_certificate(
    ca: &TestCa,
    chain_rest: &[&TestCa],
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())];
    params
        .distinguished_name
        .push(DnType::CommonName, "dynamodb.test");
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let mut chain = vec![cert.der().clone()];
    chain.extend(chain_rest.iter().map(|c| c.der.clone()));
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (chain, key)
}

/// A TLS server on loopback answering every request with DynamoDB's empty `ListTables`.
struct Server {
    port: u16,
    /// Requests read after a completed handshake.
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Server {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counted = counted.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                while read_request(&mut tls).await {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let body = r#"{"TableNames":[]}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
                         x-amzn-requestid: test\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if tls.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Server {
        port,
        requests,
        task,
    }
}

/// Reads one HTTP/1.1 request (headers and a `content-length` body); false at the end.
async fn read_request(stream: &mut (impl AsyncReadExt + Unpin)) -> bool {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                return true;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A DynamoDB client as `load_sdk_config` makes them, on `http`, pointed at the server.
fn dynamodb(http: SharedHttpClient, port: u16) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .http_client(http)
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .endpoint_url(format!("https://127.0.0.1:{port}"))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// The whole error chain of a failed call, for what the TLS layer said.
fn chain_text(error: &dyn std::error::Error) -> String {
    let mut text = format!("{error:?}");
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(" / {e}"));
        source = e.source();
    }
    text
}

fn bundle_file(pem: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), pem).unwrap();
    file
}

#[tokio::test]
async fn a_server_chaining_to_an_added_root_is_accepted_and_an_unknown_ca_refused() {
    // The analogue of Amazon Root CA 1 → Amazon RSA 2048 M01 → the endpoint.
    let root = root_ca("Test Amazon Root CA 1");
    let intermediate = intermediate_ca("Test Amazon RSA 2048 M01", &root);
    let (chain, key) = server_certificate(&intermediate, &[&intermediate]);
    let trusted = serve(chain, key).await;

    let bundle = bundle_file(&root.pem);
    let extra = read_ca_bundle(bundle.path()).unwrap();
    let http = https_client(trust_store(Some(&extra)));

    let tables = dynamodb(http.clone(), trusted.port)
        .list_tables()
        .send()
        .await
        .expect("a server chaining to the added root is trusted");
    assert!(tables.table_names().is_empty());
    assert_eq!(trusted.requests.load(Ordering::SeqCst), 1);

    // Another CA, unknown to the client: the handshake fails, no request is sent.
    let stranger = root_ca("Test Unknown Root CA");
    let (chain, key) = server_certificate(&stranger, &[]);
    let untrusted = serve(chain, key).await;
    let error = dynamodb(http, untrusted.port)
        .list_tables()
        .send()
        .await
        .expect_err("a server of an unknown CA is refused");
    assert!(
        matches!(error, aws_sdk_dynamodb::error::SdkError::DispatchFailure(_)),
        "{error:?}"
    );
    let text = chain_text(&error);
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert_eq!(untrusted.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn without_the_bundle_only_the_amazon_roots_are_trusted() {
    let root = root_ca("Test Amazon Root CA 1");
    let (chain, key) = server_certificate(&root, &[]);
    let server = serve(chain, key).await;
    let error = dynamodb(https_client(trust_store(None)), server.port)
        .list_tables()
        .send()
        .await
        .expect_err("a root not added is not trusted");
    let text = chain_text(&error);
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert_eq!(server.requests.load(Ordering::SeqCst), 0);
}

/// The compiled-in roots are the Amazon Trust Services roots, by subject, and the very
/// certificates of the Mozilla set (`webpki-roots`) the Zoom client trusts.
#[test]
fn the_default_roots_are_the_amazon_trust_services_roots() {
    let mut found = Vec::new();
    for (name, pem) in AMAZON_ROOTS {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let mut store = rustls::RootCertStore::empty();
        store.add(der).unwrap();
        let anchor = &store.roots[0];
        let subject: &[u8] = anchor.subject.as_ref();
        let organization: &[u8] = if name.starts_with("Amazon") {
            b"Amazon"
        } else {
            b"Starfield Technologies, Inc."
        };
        for part in [name.as_bytes(), organization] {
            assert!(
                subject.windows(part.len()).any(|w| w == part),
                "{name}: subject lacks {}",
                String::from_utf8_lossy(part)
            );
        }
        assert!(
            webpki_roots::TLS_SERVER_ROOTS.iter().any(|mozilla| {
                mozilla.subject.as_ref() == subject
                    && mozilla.subject_public_key_info.as_ref()
                        == anchor.subject_public_key_info.as_ref()
            }),
            "{name} is not the Mozilla set's"
        );
        found.push(name);
    }
    assert_eq!(
        found,
        [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ]
    );
}

#[test]
fn a_bundle_that_cannot_be_used_is_an_error() {
    let missing = std::path::Path::new("/nonexistent/ca-bundle.pem");
    assert!(matches!(
        read_ca_bundle(missing),
        Err(CaBundleError::Read { .. })
    ));
    let empty = bundle_file("no certificate here\n");
    assert!(matches!(
        read_ca_bundle(empty.path()),
        Err(CaBundleError::Invalid { .. })
    ));
    let broken = bundle_file("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    let error = read_ca_bundle(broken.path()).unwrap_err();
    assert!(error.to_string().starts_with("AWS_CA_BUNDLE="), "{error}");
    // A bundle of the platform's kind (several roots, comments between them) is taken whole.
    let two = format!(
        "# first\n{}\n# second\n{}",
        root_ca("One").pem,
        root_ca("Two").pem
    );
    let bundle = bundle_file(&two);
    assert_eq!(read_ca_bundle(bundle.path()).unwrap(), two.as_bytes());
}
