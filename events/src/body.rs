//! The bytes of one payload body: bincode with the log's configuration, exactly one value.
//!
//! Both sides of the payload format use it: the catalogue's generated
//! `EventPayload::encode` / `decode_current` for the current schema versions, and the
//! codec's upcasters for older ones. It knows no event kind.

use serde::{de::DeserializeOwned, Serialize};

use crate::CodecError;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encode one payload body with the log's bincode configuration.
pub(crate) fn encode_body<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decode one payload body; trailing bytes are an error (a payload is exactly one value).
pub(crate) fn decode_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) = bincode::serde::decode_from_slice::<T, _>(bytes, config())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if read != bytes.len() {
        return Err(CodecError::Malformed(format!(
            "{} trailing bytes after the payload",
            bytes.len() - read
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_exactly() {
        let mut bytes = encode_body(&("a".to_string(), 7u32)).unwrap();
        assert_eq!(
            decode_body::<(String, u32)>(&bytes).unwrap(),
            ("a".to_string(), 7)
        );
        bytes.push(0);
        assert!(matches!(
            decode_body::<(String, u32)>(&bytes),
            Err(CodecError::Malformed(_))
        ));
    }
}
