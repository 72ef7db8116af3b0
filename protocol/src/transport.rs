//! QUIC transport shared by the coordinator and participant drivers (feature
//! `transport`): mutual TLS 1.3 set-up and frame I/O over a QUIC stream with the wire
//! module's size checks. This is the only place either side builds a TLS or QUIC
//! configuration.
//!
//! - The coordinator generates a self-signed certificate at start and publishes its
//!   SHA-256 fingerprint; participants refuse any server whose certificate does not hash
//!   to it ([`client_endpoint`]).
//! - Each participant presents a self-signed certificate for its Ed25519 identity key
//!   ([`ClientIdentity`]). The coordinator requires one ([`server_endpoint`]): it reads
//!   the key out of the certificate, refuses the handshake unless its [`Enrolment`]
//!   admits the key (an allow-list, or open for demos with fresh keys), and checks the
//!   handshake signature, which proves the participant holds the secret key. After the
//!   handshake [`peer_identity`] gives the driver the connection's key, which the job
//!   binds to the participant's Hello.
//!
//! A refused handshake reaches the participant as [`TransportError::Refused`], with the
//! coordinator's reason (e.g. the key that is not on the allow-list).
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cairn_crypto::sign::{IdentityKey, IdentityPublic};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer,
    UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use crate::enrolment::Enrolment;
use crate::enrolment::{identity_from_cert, CertificateError, EnrolmentError};
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
    Connection(quinn::ConnectionError),
    /// The TLS handshake was refused (by the peer, or by us): a certificate that is not
    /// pinned, an identity key that is not allow-listed, no client certificate. `reason`
    /// is the refusing side's explanation.
    #[error("TLS handshake refused (alert {alert}): {reason}")]
    Refused {
        /// The TLS alert code (e.g. 46 certificate_unknown, 116 certificate_required).
        alert: u8,
        /// Why, as the refusing side put it.
        reason: String,
    },
    /// Starting a connection failed.
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// Reading a frame failed.
    #[error("read: {0}")]
    Read(quinn::ReadExactError),
    /// Writing a frame failed.
    #[error("write: {0}")]
    Write(quinn::WriteError),
    /// A frame broke the wire rules.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The fingerprint given is not 64 hex digits.
    #[error("fingerprint must be 64 hex digits (SHA-256), got {0:?}")]
    BadFingerprint(String),
    /// The peer's certificate carries no usable identity key.
    #[error("peer certificate: {0}")]
    PeerCertificate(#[from] CertificateError),
    /// The connection has no peer certificate (a server without client authentication).
    #[error("the peer presented no certificate")]
    NoPeerCertificate,
    /// The peer did not take a step in time (handshake, opening its stream, its Hello).
    #[error("timed out: {0}")]
    Timeout(String),
}

/// A TLS alert in a QUIC close: crypto error codes are 0x100 + the alert (RFC 9001 §4.8).
fn crypto_alert(code: quinn::TransportErrorCode) -> Option<u8> {
    u64::from(code)
        .checked_sub(0x100)
        .and_then(|a| u8::try_from(a).ok())
}

impl From<quinn::ConnectionError> for TransportError {
    fn from(e: quinn::ConnectionError) -> Self {
        let refused = match &e {
            // The peer closed the connection with a TLS alert.
            quinn::ConnectionError::ConnectionClosed(c) => crypto_alert(c.error_code)
                .map(|alert| (alert, String::from_utf8_lossy(&c.reason).into_owned())),
            // Our side's TLS refused the peer.
            quinn::ConnectionError::TransportError(t) => {
                crypto_alert(t.code).map(|alert| (alert, t.reason.clone()))
            }
            _ => None,
        };
        match refused {
            Some((alert, reason)) => TransportError::Refused { alert, reason },
            None => TransportError::Connection(e),
        }
    }
}

impl From<quinn::ReadExactError> for TransportError {
    fn from(e: quinn::ReadExactError) -> Self {
        match e {
            quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(c)) => {
                match TransportError::from(c) {
                    r @ TransportError::Refused { .. } => r,
                    TransportError::Connection(c) => TransportError::Read(
                        quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(c)),
                    ),
                    other => other,
                }
            }
            e => TransportError::Read(e),
        }
    }
}

impl From<quinn::WriteError> for TransportError {
    fn from(e: quinn::WriteError) -> Self {
        match e {
            quinn::WriteError::ConnectionLost(c) => match TransportError::from(c) {
                r @ TransportError::Refused { .. } => r,
                TransportError::Connection(c) => {
                    TransportError::Write(quinn::WriteError::ConnectionLost(c))
                }
                other => other,
            },
            e => TransportError::Write(e),
        }
    }
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

    /// The coordinator's transcript-sealing key ([`crate::transcript::Entry::Finished`]):
    /// an Ed25519 key derived from its TLS private key, so that a coordinator that keeps
    /// its identity across restarts (same fingerprint) also keeps its sealing key.
    pub fn seal_key(&self) -> IdentityKey {
        let mut h = Sha256::new();
        h.update(b"cairn/transcript-seal-key/v1");
        h.update(self.key.secret_pkcs8_der());
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(h.finalize().into());
        IdentityKey::from_seed(&seed)
    }

    /// The certificate and key as text (`cert <hex DER>` and `key <hex PKCS#8 DER>`, one
    /// line each), for [`ServerIdentity::from_text`]: a coordinator that keeps its identity
    /// across restarts keeps its fingerprint, so holders reconnect to it.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "cert {}\nkey {}\n",
            hex::encode(self.cert.as_ref()),
            hex::encode(self.key.secret_pkcs8_der())
        ))
    }

    /// Reads what [`ServerIdentity::to_text`] wrote.
    pub fn from_text(text: &str) -> Result<Self, TransportError> {
        let field = |name: &str| -> Result<Vec<u8>, TransportError> {
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .ok_or_else(|| TransportError::Tls(format!("server identity: no `{name}` line")))?;
            hex::decode(line.trim())
                .map_err(|e| TransportError::Tls(format!("server identity: `{name}`: {e}")))
        };
        let cert = CertificateDer::from(field("cert")?);
        let key = PrivatePkcs8KeyDer::from(field("key")?);
        // The key must be one rustls can use, and the certificate's.
        rustls::crypto::ring::sign::any_supported_type(&PrivateKeyDer::Pkcs8(key.clone_key()))
            .map_err(|e| TransportError::Tls(format!("server identity: key: {e}")))?;
        Ok(ServerIdentity {
            fingerprint: fingerprint(&cert),
            cert,
            key,
        })
    }
}

/// A participant's TLS identity: a self-signed X.509 certificate whose subject key is its
/// Ed25519 identity key, and that key in PKCS#8 (built from the 32-byte seed).
pub struct ClientIdentity {
    cert: CertificateDer<'static>,
    key: Zeroizing<Vec<u8>>,
    public: IdentityPublic,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("identity", &hex::encode(self.public.0))
            .finish_non_exhaustive()
    }
}

/// PKCS#8 v1 (RFC 5958, RFC 8410) of an Ed25519 secret seed: the fixed 16-byte prefix
/// `SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32) } }`
/// followed by the seed.
fn ed25519_pkcs8(seed: &[u8; 32]) -> Zeroizing<Vec<u8>> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = Zeroizing::new(Vec::with_capacity(48));
    der.extend_from_slice(&PREFIX);
    der.extend_from_slice(seed);
    der
}

impl ClientIdentity {
    /// The certificate of `key` (self-signed with it; its common name carries the key's
    /// first hex digits, for logs only: the key itself is what the coordinator checks).
    pub fn new(key: &IdentityKey) -> Result<Self, TransportError> {
        let tls = |e: rcgen::Error| TransportError::Tls(e.to_string());
        let pkcs8 = ed25519_pkcs8(&key.to_seed());
        let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
            &rcgen::PKCS_ED25519,
        )
        .map_err(tls)?;
        let public = key.public();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("cairn participant {}", &hex::encode(public.0)[..16]),
        );
        let cert = params.self_signed(&pair).map_err(tls)?.der().clone();
        // The certificate must carry exactly this key (the coordinator reads it back).
        if identity_from_cert(&cert)? != public {
            return Err(TransportError::Tls(
                "the generated certificate does not carry the identity key".into(),
            ));
        }
        Ok(Self {
            cert,
            key: pkcs8,
            public,
        })
    }

    /// The identity key the certificate carries.
    pub fn public(&self) -> IdentityPublic {
        self.public
    }

    /// The certificate (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert
    }
}

/// The identity key of the peer of an established connection (the coordinator's side:
/// the key of the participant's certificate, which its [`Enrolment`] admitted).
pub fn peer_identity(conn: &quinn::Connection) -> Result<IdentityPublic, TransportError> {
    let certs = conn
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or(TransportError::NoPeerCertificate)?;
    let cert = certs.first().ok_or(TransportError::NoPeerCertificate)?;
    Ok(identity_from_cert(cert)?)
}

/// Hex SHA-256 of a certificate.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(cert.as_ref()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    // Local training can take a while: keep the connection alive, but notice a dead peer.
    t.keep_alive_interval(Some(Duration::from_secs(2)));
    t.max_idle_timeout(Some(quinn::IdleTimeout::from(quinn::VarInt::from_u32(
        30_000,
    ))));
    t
}

/// Application close code of a coordinator that is running no job: it completes the
/// handshake (so a holder with a wrong fingerprint learns that, not "unreachable") and
/// closes with this code at once; the holder calls again later.
pub const CLOSE_NO_JOB: u32 = 5;

/// What one connection may make the coordinator hold: the protocol uses one
/// bidirectional stream per connection, opened by the coordinator (it speaks first, with
/// the job's offer), so a peer may open none (quinn's default is 100 bidirectional and 100
/// unidirectional streams, each with a 1.25 MB window: one handshaken peer could make the
/// coordinator buffer ~250 MB).
pub const SERVER_STREAM_WINDOW: u32 = 1 << 20;
/// The connection-wide receive window of the coordinator (its one stream's, and slack).
pub const SERVER_CONNECTION_WINDOW: u32 = 2 << 20;

fn server_transport_config() -> Arc<quinn::TransportConfig> {
    let mut t = transport_config();
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(0));
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    t.stream_receive_window(quinn::VarInt::from_u32(SERVER_STREAM_WINDOW));
    t.receive_window(quinn::VarInt::from_u32(SERVER_CONNECTION_WINDOW));
    Arc::new(t)
}

fn client_transport_config() -> Arc<quinn::TransportConfig> {
    let mut t = transport_config();
    // The coordinator opens the connection's one stream; the participant opens none.
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(1));
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    Arc::new(t)
}

/// A QUIC server endpoint bound to `addr` with `identity`, TLS 1.3 only, ALPN [`wire::ALPN`].
/// Every client must present a self-signed certificate for an Ed25519 identity key that
/// `enrolment` admits; any other handshake is refused with the reason.
pub fn server_endpoint(
    addr: SocketAddr,
    identity: &ServerIdentity,
    enrolment: &Enrolment,
) -> Result<quinn::Endpoint, TransportError> {
    // Stateless resets keyed by the identity: a coordinator restarted with the same
    // identity (and port) resets the connections of its previous life as soon as their
    // holders send anything, so they reconnect at once instead of waiting out the idle
    // timeout.
    let secret: [u8; 32] = Sha256::new()
        .chain_update(b"cairn/quic-endpoint-keys/v1")
        .chain_update(identity.key.secret_pkcs8_der())
        .finalize()
        .into();
    let reset = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
    let mut config = quinn::EndpointConfig::new(Arc::new(reset));
    // Connection ids carry a keyed check that the endpoint verifies before anything else
    // (packets failing it are dropped unanswered): the key must outlive the process too,
    // or the restarted coordinator would not even answer its old connections' packets.
    let cid_key = u64::from_le_bytes(secret[..8].try_into().unwrap_or_default());
    config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    let socket = udp_socket(addr, SERVER_SOCKET_BUFFER)?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no async runtime for the QUIC endpoint"))?;
    Ok(quinn::Endpoint::new(
        config,
        Some(server_config(identity, enrolment)?),
        socket,
        runtime,
    )?)
}

/// The server side of [`server_endpoint`]: TLS 1.3 with `identity`'s certificate, client
/// certificates admitted by `enrolment`. A coordinator that runs jobs one after another
/// installs each job's with `Endpoint::set_server_config`.
pub fn server_config(
    identity: &ServerIdentity,
    enrolment: &Enrolment,
) -> Result<quinn::ServerConfig, TransportError> {
    let provider = provider();
    let verifier = Arc::new(IdentityVerifier {
        enrolment: enrolment.clone(),
        provider: provider.clone(),
    });
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TransportError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![identity.cert.clone()],
            PrivateKeyDer::Pkcs8(identity.key.clone_key()),
        )
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![wire::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    cfg.transport_config(server_transport_config());
    Ok(cfg)
}

/// A QUIC client endpoint that accepts only a server whose certificate hashes to
/// `fingerprint` (hex SHA-256), presenting `identity`'s certificate. Without an identity
/// the client offers no certificate, which every cairn coordinator refuses (kept for
/// tests of exactly that).
pub fn client_endpoint(
    fingerprint_hex: &str,
    identity: Option<&ClientIdentity>,
) -> Result<quinn::Endpoint, TransportError> {
    let want = hex::decode(fingerprint_hex.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| TransportError::BadFingerprint(fingerprint_hex.to_string()))?;
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TransportError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCert { want, provider }));
    let mut tls = match identity {
        Some(id) => builder
            .with_client_auth_cert(
                vec![id.cert.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key.to_vec())),
            )
            .map_err(|e| TransportError::Tls(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![wire::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    cfg.transport_config(client_transport_config());
    let bind: SocketAddr = "0.0.0.0:0"
        .parse()
        .map_err(|_| TransportError::Tls("bind address".into()))?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no async runtime for the QUIC endpoint"))?;
    let mut ep = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        udp_socket(bind, CLIENT_SOCKET_BUFFER)?,
        runtime,
    )?;
    ep.set_default_client_config(cfg);
    Ok(ep)
}

/// Kernel receive and send buffer the coordinator asks for on its UDP socket. Hundreds of
/// holders sending their masked inputs at once overflow Linux's default (208 KiB): every
/// datagram dropped there costs QUIC a loss-recovery delay. The kernel caps the request at
/// `net.core.rmem_max` / `wmem_max` (raise those on a coordinator of a large federation).
pub const SERVER_SOCKET_BUFFER: usize = 16 << 20;
/// The same for a participant's socket (it receives the round's spec, with the model).
pub const CLIENT_SOCKET_BUFFER: usize = 2 << 20;

/// A UDP socket bound to `addr` with (up to) `buffer` bytes of kernel buffers each way.
fn udp_socket(addr: SocketAddr, buffer: usize) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a kernel that refuses keeps its default.
    let _ = socket.set_recv_buffer_size(buffer);
    let _ = socket.set_send_buffer_size(buffer);
    socket.bind(&addr.into())?;
    Ok(socket.into())
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

/// The coordinator's client authentication: a certificate is mandatory, its key must be
/// an Ed25519 identity key its [`Enrolment`] admits, and the handshake signature must
/// verify under that key (proof of possession). Names, dates and the certificate's own
/// signature do not matter: the key is the identity.
/// DER of an Ed25519 SubjectPublicKeyInfo up to the key (RFC 8410):
/// `SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits) ...`.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A refused client certificate as a TLS error. `Error::Other` keeps the message readable
/// (`other error: identity key … is not on this job's allow-list`): quinn sends the
/// error's text to the participant with the handshake_failure alert (40), while
/// `InvalidCertificate(Other(_))` would print the error's `Debug` form.
fn refusal(e: EnrolmentError) -> rustls::Error {
    rustls::Error::Other(rustls::OtherError(Arc::new(e)))
}

#[derive(Debug)]
struct IdentityVerifier {
    enrolment: Enrolment,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ClientCertVerifier for IdentityVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.enrolment.admit(end_entity) {
            Ok(_) => Ok(ClientCertVerified::assertion()),
            Err(e) => Err(refusal(e)),
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
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(rustls::Error::General(
                "participants sign the handshake with their Ed25519 identity key".into(),
            ));
        }
        // Verify under the very key read out of the certificate (and admitted), not a
        // second parse of it.
        let key = identity_from_cert(cert).map_err(|e| refusal(e.into()))?;
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(&key.0);
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(spki.as_slice()),
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Writes one frame.
pub async fn write_frame(send: &mut quinn::SendStream, frame: &[u8]) -> Result<(), TransportError> {
    send.write_all(frame).await?;
    Ok(())
}

/// Reads one frame body (header checked against `limit` before the body is read).
/// Returns `None` when the peer finished the stream cleanly between frames.
///
/// The body grows as its bytes arrive, [`READ_CHUNK`] at a time: a peer that declares a
/// frame of `limit` bytes and sends nothing more holds one chunk of the reader's memory,
/// not `limit`.
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
    let mut body = Vec::with_capacity(len.min(READ_CHUNK));
    while body.len() < len {
        let start = body.len();
        body.resize(start + (len - start).min(READ_CHUNK), 0);
        recv.read_exact(&mut body[start..]).await?;
    }
    Ok(Some(body))
}

/// How much of a frame [`read_frame`] allocates ahead of its bytes.
pub const READ_CHUNK: usize = 64 * 1024;
