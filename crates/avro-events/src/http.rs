//! The library's HTTP clients (the Schema Registry's, the identity provider's): built without
//! the platform's trust roots when every URL they call is `http://`, and with the cause of a
//! failed build in the error.

/// Builds `builder` for `urls`. Without an `https://` URL among them no TLS connection is ever
/// made, so the platform's trust roots are not loaded: reqwest's rustls verifier reads every
/// system certificate when the client is built (millions of instructions at start) and fails
/// when the system has none, as in a minimal container image. A redirect to `https://` is then
/// refused as untrusted.
///
/// # Errors
/// The reason the client cannot be built, reqwest's causes included (it says only
/// "builder error" itself), e.g. no trust roots for an `https://` URL.
pub(crate) fn build<'a>(
    builder: reqwest::ClientBuilder,
    urls: impl IntoIterator<Item = &'a reqwest::Url>,
) -> Result<reqwest::Client, String> {
    let mut builder = builder;
    if urls.into_iter().all(|url| url.scheme() == "http") {
        builder = builder.tls_certs_only([]);
    }
    builder.build().map_err(|e| {
        let mut reason = format!("cannot build the HTTP client: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            reason.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        reason
    })
}
