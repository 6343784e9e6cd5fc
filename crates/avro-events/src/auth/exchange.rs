//! The HTTP exchange with an OAuth2 token endpoint: oauth2's async client over reqwest, and how
//! a failed exchange is described without quoting the answer's body or the client secret.

use std::{future::Future, pin::Pin};

use oauth2::RequestTokenError;

/// Describes a failed token request, and whether asking again later may succeed. Never quotes
/// the answer's body (a non-OAuth error page may echo the request, a malformed answer may carry
/// a token) or the credentials: only the HTTP status and, for an RFC 6749 error answer, its
/// `error` code and a short `error_description` when that is plain text without the secret.
pub(super) fn describe_token_error(
    e: RequestTokenError<HttpError, oauth2::basic::BasicErrorResponse>,
    client_secret: &str,
) -> (String, bool) {
    match e {
        RequestTokenError::ServerResponse(answer) => {
            let answer = OAuthErrorAnswer::sanitized(
                answer.error().as_ref(),
                answer.error_description().map(String::as_str),
            );
            let transient = answer.as_ref().is_some_and(OAuthErrorAnswer::is_transient);
            let text = format!(
                "the endpoint refused the request{}",
                describe_answer(answer.as_ref(), client_secret)
            );
            (text, transient)
        }
        RequestTokenError::Request(HttpError::Transport(t)) => {
            let transient = t.is_connect() || t.is_timeout() || t.is_request() || t.is_body();
            let t = t.without_url();
            let mut text = format!("unreachable: {t}");
            let mut source = std::error::Error::source(&t);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            (text, transient)
        }
        RequestTokenError::Request(HttpError::Status { status, answer }) => {
            let transient = matches!(status, 408 | 429 | 500..)
                || answer.as_ref().is_some_and(OAuthErrorAnswer::is_transient);
            let what = if answer.is_some() {
                "the endpoint refused the request"
            } else {
                "unexpected answer"
            };
            let text = format!(
                "{what} (HTTP {status}){}",
                describe_answer(answer.as_ref(), client_secret)
            );
            (text, transient)
        }
        RequestTokenError::Parse(e, _body) => {
            let inner = e.inner();
            let text = format!(
                "malformed token answer: {:?} error at `{}` (line {}, column {})",
                inner.classify(),
                e.path(),
                inner.line(),
                inner.column()
            );
            (text, false)
        }
        RequestTokenError::Other(reason) => (
            format!("unexpected answer: {}", printable(&reason, 120)),
            false,
        ),
    }
}

/// The part of a message describing an error answer. A description that quotes the client
/// secret anywhere (looked for in the whole description, before it is cut short) is left out.
fn describe_answer(answer: Option<&OAuthErrorAnswer>, client_secret: &str) -> String {
    let Some(answer) = answer else {
        return " (body not shown: not an OAuth error answer)".into();
    };
    let mut text = format!(": OAuth error `{}`", answer.code);
    let Some(description) = &answer.description else {
        return text;
    };
    let shown_secret = printable(client_secret, usize::MAX);
    let quotes_secret = !client_secret.is_empty()
        && (description.contains(client_secret)
            || (!shown_secret.is_empty()
                && printable(description, usize::MAX).contains(&shown_secret)));
    if quotes_secret {
        text.push_str(" (description not shown: it quotes the client secret)");
    } else {
        let shown = printable(description, MAX_ERROR_DESCRIPTION);
        if !shown.trim().is_empty() {
            text.push_str(" (");
            text.push_str(&shown);
            text.push(')');
        }
    }
    text
}

/// Longest `error` code kept from an answer.
const MAX_ERROR_CODE: usize = 64;
/// Longest `error_description` shown from an answer.
const MAX_ERROR_DESCRIPTION: usize = 120;
/// Longest `error_description` kept from an answer to be checked for the secret (longer ones
/// are not shown at all).
const MAX_KEPT_DESCRIPTION: usize = 4096;

/// The parts of an RFC 6749 §5.2 error answer the library shows.
#[derive(Debug)]
pub(crate) struct OAuthErrorAnswer {
    code: String,
    description: Option<String>,
}

impl OAuthErrorAnswer {
    /// The answer in `body` when it is a JSON object with a string `error` made of the
    /// characters RFC 6749 allows for it.
    fn parse(body: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let code = value.get("error")?.as_str()?;
        let description = value
            .get("error_description")
            .and_then(serde_json::Value::as_str);
        Self::sanitized(code, description)
    }

    /// The answer when `code` looks like an RFC 6749 error code (short, printable, no space);
    /// the description whole (it is checked for the secret before it is cut short and kept to
    /// printable ASCII for a message), unless it is longer than 4 KiB: then it is dropped.
    fn sanitized(code: &str, description: Option<&str>) -> Option<Self> {
        let code_ok = !code.is_empty()
            && code.len() <= MAX_ERROR_CODE
            && code
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !code_ok {
            return None;
        }
        let description = description
            .filter(|d| d.len() <= MAX_KEPT_DESCRIPTION && !d.trim().is_empty())
            .map(str::to_owned);
        Some(Self {
            code: code.to_owned(),
            description,
        })
    }

    fn is_transient(&self) -> bool {
        matches!(
            self.code.as_str(),
            "temporarily_unavailable" | "server_error"
        )
    }
}

/// `text` with only printable ASCII kept, cut to `max` characters.
fn printable(text: &str, max: usize) -> String {
    let mut kept = text.chars().filter(|c| c.is_ascii_graphic() || *c == ' ');
    let mut out: String = kept.by_ref().take(max).collect();
    if kept.next().is_some() {
        out.push('…');
    }
    out
}

/// Failures of the HTTP exchange itself.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("{0}")]
    Transport(reqwest::Error),
    /// A non-success status, with the answer when it is an OAuth error object. The body itself
    /// is never kept.
    #[error("HTTP {status} from the endpoint")]
    Status {
        status: u16,
        answer: Option<OAuthErrorAnswer>,
    },
}

/// oauth2's async HTTP client over the workspace's reqwest 0.13.
pub(super) struct HttpClient(pub(super) reqwest::Client);

type HttpFuture<'c> =
    Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send + 'c>>;

impl<'c> oauth2::AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = HttpFuture<'c>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(HttpError::Transport)?;
            let response = self
                .0
                .execute(request)
                .await
                .map_err(HttpError::Transport)?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(HttpError::Transport)?;
            if !status.is_success() {
                return Err(HttpError::Status {
                    status: status.as_u16(),
                    answer: OAuthErrorAnswer::parse(&body),
                });
            }
            let mut out = oauth2::http::Response::new(body.to_vec());
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok(out)
        })
    }
}
