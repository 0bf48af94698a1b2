//! WhatsApp's media and version requests through our reqwest client (the crate's own
//! client is ureq; one HTTP stack per process is enough).

use std::time::Duration;

use whatsapp_rust::anyhow;
use whatsapp_rust::async_trait;
use whatsapp_rust::http::{HttpClient, HttpRequest, HttpResponse};

/// How long one media request may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Media transfers are refused above this (WhatsApp's own cap on documents is 2 GB;
/// the media store's cap applies to what is kept).
const MAX_BODY: u64 = 256 * 1024 * 1024;

/// An [`HttpClient`] on reqwest: every completed exchange is `Ok` whatever its status,
/// as the crate requires (it reads 401/404 to refresh media hosts).
#[derive(Clone)]
pub struct ReqwestHttp {
    http: reqwest::Client,
}

impl ReqwestHttp {
    /// A client trusting the public roots.
    pub fn new() -> Result<Self, crate::platform::AdapterError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| crate::platform::AdapterError::Config(format!("HTTP client: {e}")))?;
        Ok(ReqwestHttp { http })
    }
}

#[async_trait]
impl HttpClient for ReqwestHttp {
    async fn execute(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())?;
        let mut req = self.http.request(method, &request.url);
        for (k, v) in &request.headers {
            req = req.header(k, v);
        }
        if let Some(body) = request.body {
            req = req.body(body.to_vec());
        }
        let mut resp = req.send().await?;
        let status_code = resp.status().as_u16();
        let body = crate::platform::http::read_capped(&mut resp, "WhatsApp media", MAX_BODY)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(HttpResponse { status_code, body })
    }
}
