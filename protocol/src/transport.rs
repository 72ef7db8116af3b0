//! QUIC transport shared by the coordinator and participant drivers (feature
//! `transport`): TLS 1.3 set-up with a certificate pinned by its SHA-256 fingerprint, and
//! frame I/O over a QUIC stream with the wire module's size checks.
//!
//! The coordinator generates a self-signed certificate at start and publishes its
//! fingerprint; participants refuse any server whose certificate does not hash to it.
//! This is the only place either side builds a TLS or QUIC configuration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::wire::{self, WireError, HEADER_BYTES};

/// Server name participants ask for (the pinned fingerprint is what is checked).
pub const SERVER_NAME: &str = "cairn-coordinator";

/// Errors of the transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// TLS or certificate set-up failed.
    #[error("TLS set-up: {0}")]
    Tls(String),
    /// Binding or connecting failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The QUIC connection failed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// Starting a connection failed.
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// Reading a frame failed.
    #[error("read: {0}")]
    Read(#[from] quinn::ReadExactError),
    /// Writing a frame failed.
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    /// A frame broke the wire rules.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The fingerprint given is not 64 hex digits.
    #[error("fingerprint must be 64 hex digits (SHA-256), got {0:?}")]
    BadFingerprint(String),
}

/// The coordinator's TLS identity: a fresh self-signed certificate and its fingerprint.
pub struct ServerIdentity {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    /// Hex SHA-256 of the certificate (DER), what participants pin.
    pub fingerprint: String,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl ServerIdentity {
    /// Generates a new self-signed certificate.
    pub fn generate() -> Result<Self, TransportError> {
        let ck = rcgen::generate_simple_self_signed(vec![
            SERVER_NAME.to_string(),
            "localhost".to_string(),
        ])
        .map_err(|e| TransportError::Tls(e.to_string()))?;
        let cert = ck.cert.der().clone();
        let key = PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der());
        Ok(ServerIdentity {
            fingerprint: fingerprint(&cert),
            cert,
            key,
        })
    }
}

/// Hex SHA-256 of a certificate.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(cert.as_ref()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn transport_config() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    // Local training can take a while: keep the connection alive, but notice a dead peer.
    t.keep_alive_interval(Some(Duration::from_secs(2)));
    t.max_idle_timeout(Some(quinn::IdleTimeout::from(quinn::VarInt::from_u32(
        30_000,
    ))));
    Arc::new(t)
}

/// A QUIC server endpoint bound to `addr` with `identity`, TLS 1.3 only, ALPN `cairn/1`.
pub fn server_endpoint(
    addr: SocketAddr,
    identity: &ServerIdentity,
) -> Result<quinn::Endpoint, TransportError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TransportError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(
            vec![identity.cert.clone()],
            PrivateKeyDer::Pkcs8(identity.key.clone_key()),
        )
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![wire::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    cfg.transport_config(transport_config());
    Ok(quinn::Endpoint::server(cfg, addr)?)
}

/// A QUIC client endpoint that accepts only a server whose certificate hashes to
/// `fingerprint` (hex SHA-256).
pub fn client_endpoint(fingerprint_hex: &str) -> Result<quinn::Endpoint, TransportError> {
    let want = hex::decode(fingerprint_hex.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| TransportError::BadFingerprint(fingerprint_hex.to_string()))?;
    let provider = provider();
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TransportError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCert { want, provider }))
        .with_no_client_auth();
    tls.alpn_protocols = vec![wire::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    cfg.transport_config(transport_config());
    let bind: SocketAddr = "0.0.0.0:0"
        .parse()
        .map_err(|_| TransportError::Tls("bind address".into()))?;
    let mut ep = quinn::Endpoint::client(bind)?;
    ep.set_default_client_config(cfg);
    Ok(ep)
}

/// Certificate pinning: the server's end-entity certificate must hash to `want`; the
/// handshake signature is still verified against that certificate's key.
#[derive(Debug)]
struct PinnedCert {
    want: Vec<u8>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if Sha256::digest(end_entity.as_ref()).as_slice() == self.want.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "coordinator certificate does not match the pinned fingerprint".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not allowed".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Writes one frame.
pub async fn write_frame(send: &mut quinn::SendStream, frame: &[u8]) -> Result<(), TransportError> {
    send.write_all(frame).await?;
    Ok(())
}

/// Reads one frame body (header checked against `limit` before the body is read).
/// Returns `None` when the peer finished the stream cleanly between frames.
pub async fn read_frame(
    recv: &mut quinn::RecvStream,
    limit: usize,
) -> Result<Option<Vec<u8>>, TransportError> {
    let mut header = [0u8; HEADER_BYTES];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = wire::parse_header(&header, limit)?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await?;
    Ok(Some(body))
}
