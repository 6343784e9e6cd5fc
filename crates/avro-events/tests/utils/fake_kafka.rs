//! A protocol-level fake Kafka broker that speaks just enough (ApiVersions, SaslHandshake,
//! SaslAuthenticate) to record SASL/OAUTHBEARER client-first messages (RFC 7628). After a
//! successful authentication it closes the connection on the next request, so the client
//! reconnects and authenticates again with whatever token it holds by then.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        ApiKey, ApiVersionsResponse, ResponseHeader, SaslAuthenticateRequest,
        SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
        api_versions_response::ApiVersion,
    },
    protocol::{Decodable, Encodable, StrBytes, decode_request_header_from_buffer},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// One SaslAuthenticate request as received.
#[derive(Debug, Clone)]
pub struct SaslMessage {
    pub at: Instant,
    pub raw: Vec<u8>,
}

impl SaslMessage {
    /// The message as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The RFC 7628 key/value pairs after the GS2 header, in order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let text = self.text();
        let body = text.strip_prefix("n,,\u{1}").unwrap_or_default();
        body.split('\u{1}')
            .filter(|kv| !kv.is_empty())
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
            })
            .collect()
    }

    /// The bearer token.
    pub fn token(&self) -> Option<String> {
        self.pairs()
            .into_iter()
            .find(|(k, _)| k == "auth")
            .and_then(|(_, v)| v.strip_prefix("Bearer ").map(str::to_owned))
    }
}

#[derive(Clone)]
pub struct FakeKafka {
    pub bootstrap: String,
    messages: Arc<Mutex<Vec<SaslMessage>>>,
    mechanisms: Arc<Mutex<Vec<String>>>,
}

impl FakeKafka {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Self {
            bootstrap: listener.local_addr().unwrap().to_string(),
            messages: Arc::default(),
            mechanisms: Arc::default(),
        };
        let serving = fake.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let conn = serving.clone();
                tokio::spawn(async move {
                    // Connection errors (the client hanging up) end that connection only.
                    let _ = conn.serve(stream).await;
                });
            }
        });
        fake
    }

    /// Every SaslAuthenticate payload received, oldest first.
    pub fn messages(&self) -> Vec<SaslMessage> {
        self.messages.lock().unwrap().clone()
    }

    /// Mechanisms requested in SaslHandshake.
    pub fn mechanisms(&self) -> Vec<String> {
        self.mechanisms.lock().unwrap().clone()
    }

    async fn serve(&self, mut stream: TcpStream) -> anyhow::Result<()> {
        let mut authenticated = false;
        loop {
            let size = stream.read_i32().await?;
            let mut frame = vec![0u8; usize::try_from(size)?];
            stream.read_exact(&mut frame).await?;
            let mut buf = Bytes::from(frame);
            let header = decode_request_header_from_buffer(&mut buf)?;
            let api_key = ApiKey::try_from(header.request_api_key)
                .map_err(|_| anyhow::anyhow!("unknown api key"))?;
            let version = header.request_api_version;
            let mut body = BytesMut::new();
            match api_key {
                ApiKey::ApiVersions => {
                    let keys = [
                        (ApiKey::ApiVersions, 0, 4),
                        (ApiKey::SaslHandshake, 0, 1),
                        (ApiKey::SaslAuthenticate, 0, 2),
                        (ApiKey::Metadata, 0, 12),
                    ];
                    let response = ApiVersionsResponse::default().with_api_keys(
                        keys.iter()
                            .map(|(k, min, max)| {
                                ApiVersion::default()
                                    .with_api_key(*k as i16)
                                    .with_min_version(*min)
                                    .with_max_version(*max)
                            })
                            .collect(),
                    );
                    response.encode(&mut body, version)?;
                }
                ApiKey::SaslHandshake => {
                    let req = SaslHandshakeRequest::decode(&mut buf, version)?;
                    self.mechanisms
                        .lock()
                        .unwrap()
                        .push(req.mechanism.as_str().to_owned());
                    let error = if req.mechanism.as_str() == "OAUTHBEARER" {
                        0
                    } else {
                        33
                    };
                    SaslHandshakeResponse::default()
                        .with_error_code(error)
                        .with_mechanisms(vec![StrBytes::from_static_str("OAUTHBEARER")])
                        .encode(&mut body, version)?;
                }
                ApiKey::SaslAuthenticate => {
                    let req = SaslAuthenticateRequest::decode(&mut buf, version)?;
                    self.messages.lock().unwrap().push(SaslMessage {
                        at: Instant::now(),
                        raw: req.auth_bytes.to_vec(),
                    });
                    authenticated = true;
                    SaslAuthenticateResponse::default().encode(&mut body, version)?;
                }
                _ if authenticated => return Ok(()),
                other => anyhow::bail!("unexpected {other:?} before authentication"),
            }
            let mut out = BytesMut::new();
            ResponseHeader::default()
                .with_correlation_id(header.correlation_id)
                .encode(&mut out, api_key.response_header_version(version))?;
            out.put(body);
            let mut frame = BytesMut::with_capacity(out.len() + 4);
            frame.put_i32(i32::try_from(out.len())?);
            frame.put(out);
            stream.write_all(frame.chunk()).await?;
        }
    }
}
