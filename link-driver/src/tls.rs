//! rustls settings for link (the `ring` provider everywhere): client configurations
//! for `wss://` and server identities for `HubServer`. Runtime-independent; each
//! adapter wraps sockets with its own rustls stream type.

use crate::error::Error;
use crate::transport::TransportError;
use std::sync::Arc;

/// rustls client settings trusting the webpki (Mozilla) roots, with the `ring` provider.
pub fn default_tls_config() -> Result<Arc<rustls::ClientConfig>, TransportError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    tls_config_with_roots(roots)
}

/// rustls client settings trusting the webpki (Mozilla) roots and the certificates
/// in the PEM file `ca_pem` (a private CA, or a hub's self-signed certificate).
pub fn tls_config_trusting(
    ca_pem: impl AsRef<std::path::Path>,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let path = ca_pem.as_ref();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::Io(format!("CA certificates {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Io(format!(
            "CA certificates {}: no certificate in the file",
            path.display()
        )));
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| Error::Io(format!("CA certificate {}: {e}", path.display())))?;
    }
    tls_config_with_roots(roots).map_err(|e| Error::Io(e.to_string()))
}

/// rustls client settings trusting exactly `roots` (e.g. a test CA), `ring` provider.
pub fn tls_config_with_roots(
    roots: rustls::RootCertStore,
) -> Result<Arc<rustls::ClientConfig>, TransportError> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TransportError::Connect(format!("tls: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Load a PEM certificate chain and private key into a rustls server configuration
/// (`ring` provider).
pub fn load_tls_config(
    cert_pem: impl AsRef<std::path::Path>,
    key_pem: impl AsRef<std::path::Path>,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert_pem.as_ref())
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::Io(format!("certificate {}: {e}", cert_pem.as_ref().display())))?;
    let key = PrivateKeyDer::from_pem_file(key_pem.as_ref())
        .map_err(|e| Error::Io(format!("private key {}: {e}", key_pem.as_ref().display())))?;
    server_tls_config(certs, key)
}

/// A rustls server configuration from DER certificates and key (`ring` provider).
pub fn server_tls_config(
    certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Io(format!("tls: {e}")))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| Error::Io(format!("tls: {e}")))?;
    Ok(Arc::new(config))
}
