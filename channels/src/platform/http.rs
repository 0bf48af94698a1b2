//! HTTP pieces every adapter of an HTTP service shares.

use super::AdapterError;

/// Read a response body of at most `cap` bytes, chunk by chunk, stopping at the first
/// chunk past the cap (a file above the media cap is never held whole). `what` names the
/// request in errors: a dropped body is a link down (the URL left out, since some carry
/// a token), a body past the cap refuses this one file.
pub async fn read_capped(
    resp: &mut reqwest::Response,
    what: &str,
    cap: u64,
) -> Result<Vec<u8>, AdapterError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| AdapterError::Link(format!("{what}: {}", e.without_url())))?
    {
        if out.len() as u64 + chunk.len() as u64 > cap {
            return Err(AdapterError::Refused(format!(
                "{what}: larger than the {cap}-byte cap"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
