//! The AWS SDK's HTTPS client: the SDK's own (hyper + rustls on aws-lc, its timeouts and
//! error classification) told which roots to trust instead of loading the system's CA
//! certificates.
//!
//! Why: with its default trust store the SDK reads and parses the system bundle and every
//! file of `/etc/ssl/certs` while `aws_config` loads, about 2.5 ms of every cold start
//! (docs/benchmarks.md), for roots no AWS call of the connector needs.
//!
//! What it trusts:
//! - the five Amazon Trust Services roots ([`AMAZON_ROOTS`], compiled in): every AWS service
//!   endpoint's certificate chains to one of them since AWS moved its endpoints to its own CA
//!   (S3, the last, in 2022). They are the same certificates as in the Mozilla set the Zoom
//!   client trusts (`webpki-roots`); a unit test holds them to it;
//! - plus, when the operator sets [`CA_BUNDLE_ENV`] (`AWS_CA_BUNDLE`, the variable the AWS CLI
//!   and other SDKs read), every certificate of that PEM file: a private CA of a TLS-inspecting
//!   proxy in front of VPC endpoints, or the platform's own bundle to trust what the system
//!   does. Unlike the AWS CLI, the file adds to the Amazon roots rather than replacing them.
//!
//! The SDK's API takes roots as PEM only and parses them when a client first connects: five
//! roots cost microseconds there; the whole Mozilla set (118 roots) would cost about 0.4 ms of
//! base64 decoding on the first AWS request of every container, which is why the default is
//! the Amazon roots and not the full set.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Names a PEM file whose certificates the AWS SDK trusts besides [`AMAZON_ROOTS`].
pub const CA_BUNDLE_ENV: &str = "AWS_CA_BUNDLE";

/// The roots of Amazon Trust Services (<https://www.amazontrust.com/repository/>), as PEM:
/// (common name, certificate).
pub const AMAZON_ROOTS: [(&str, &str); 5] = [
    (
        "Amazon Root CA 1",
        include_str!("roots/Amazon_Root_CA_1.pem"),
    ),
    (
        "Amazon Root CA 2",
        include_str!("roots/Amazon_Root_CA_2.pem"),
    ),
    (
        "Amazon Root CA 3",
        include_str!("roots/Amazon_Root_CA_3.pem"),
    ),
    (
        "Amazon Root CA 4",
        include_str!("roots/Amazon_Root_CA_4.pem"),
    ),
    (
        "Starfield Services Root Certificate Authority - G2",
        include_str!("roots/Starfield_Services_Root_Certificate_Authority_-_G2.pem"),
    ),
];

/// A CA bundle named by [`CA_BUNDLE_ENV`] that cannot be used: the function fails its init
/// rather than failing every AWS call later.
#[derive(Debug, thiserror::Error)]
pub enum CaBundleError {
    #[error("{CA_BUNDLE_ENV}={path}: cannot read it: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{CA_BUNDLE_ENV}={path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The extra roots of a PEM file, checked the way the TLS client will take them (each one a
/// parsable trust anchor), so a bad file is an error now rather than a failed handshake (or
/// the SDK's panic on an unparsable root) on the first AWS call.
pub fn read_ca_bundle(path: &Path) -> Result<Vec<u8>, CaBundleError> {
    let pem = std::fs::read(path).map_err(|source| CaBundleError::Read {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |reason: String| CaBundleError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("not a PEM file of certificates: {e}")))?;
    if certificates.is_empty() {
        return Err(invalid("holds no certificate".into()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, certificate) in certificates.into_iter().enumerate() {
        roots
            .add(certificate)
            .map_err(|e| invalid(format!("certificate {} is not usable: {e}", i + 1)))?;
    }
    Ok(pem)
}

/// What the SDK trusts: [`AMAZON_ROOTS`] plus the certificates of `extra_pem` (a bundle read
/// by [`read_ca_bundle`]). Never the system's store.
pub fn trust_store(extra_pem: Option<&[u8]>) -> TrustStore {
    let mut trust = TrustStore::empty().with_native_roots(false);
    for (_, pem) in AMAZON_ROOTS {
        trust = trust.with_pem_certificate(pem.as_bytes());
    }
    if let Some(pem) = extra_pem {
        trust = trust.with_pem_certificate(pem);
    }
    trust
}

/// The SDK's default HTTPS client (rustls, aws-lc) on `trust`, building its TLS connector
/// (and parsing the roots) when the first request needs it; see [`ConnectOnFirstUse`].
pub fn https_client(trust: TrustStore) -> SharedHttpClient {
    // A fallback here would be the default context, on the system's roots: never that.
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("a TLS context from a trust store");
    SharedHttpClient::new(ConnectOnFirstUse(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(context)
            .build_https(),
    ))
}

/// The SDK's hyper client without its check at client construction. That check builds a
/// whole TLS connector and drops it, "so that native certs load at client initialization
/// time" (aws-smithy-http-client): with the system's certificates it warmed a process-wide
/// cache; with roots given as PEM nothing is cached, and every SDK client built at init paid
/// for a connector (PEM decoding, trust anchors, hyper builder) that no request used. The
/// first request builds, and keeps, the connector it uses either way.
#[derive(Debug)]
struct ConnectOnFirstUse(SharedHttpClient);

impl HttpClient for ConnectOnFirstUse {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The bundle named by `AWS_CA_BUNDLE`, read and checked once per process (`None` when the
/// variable is unset or empty). `lambda::init` calls it first, so a bad bundle is an init
/// error.
pub fn ca_bundle_from_env() -> Result<Option<&'static [u8]>, &'static CaBundleError> {
    static BUNDLE: OnceLock<Result<Option<Vec<u8>>, CaBundleError>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| match std::env::var_os(CA_BUNDLE_ENV) {
            Some(path) if !path.is_empty() => read_ca_bundle(Path::new(&path)).map(Some),
            _ => Ok(None),
        })
        .as_ref()
        .map(Option::as_deref)
}

/// The SDK's HTTPS client of a process: [`AMAZON_ROOTS`] plus `AWS_CA_BUNDLE`'s certificates.
/// A bad bundle is logged and left out here (the Lambda functions have already failed their
/// init on it, see [`ca_bundle_from_env`]).
pub fn https_client_from_env() -> SharedHttpClient {
    let extra = match ca_bundle_from_env() {
        Ok(extra) => extra,
        Err(e) => {
            tracing::error!(error = %e, "the extra CA bundle is not used");
            None
        }
    };
    https_client(trust_store(extra))
}

#[cfg(test)]
#[path = "https_tests.rs"]
mod tests;
