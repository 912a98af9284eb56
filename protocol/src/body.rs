//! Application bodies: any `serde` type, bincode-encoded, as the rest of a frame.

use serde::{Serialize, de::DeserializeOwned};

use crate::{DECODE_CONFIG, ENCODE_CONFIG, Encoding};

/// A body did not encode or decode as the expected type.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The bytes are not a valid encoding of the expected type (or claim more than
    /// [`DECODE_LIMIT`](crate::DECODE_LIMIT)). The caller answers with a `BAD_BODY` error.
    #[error("body does not decode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    /// The value could not be encoded (a serde type that refuses bincode, such as one that
    /// needs `deserialize_any`). This is a bug in the application type.
    #[error("body does not encode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    /// The bytes decoded, but some were left over: the sender used a different type.
    #[error("body has {0} trailing bytes")]
    Trailing(usize),
    /// A JSON body is not the expected type's JSON form. The caller answers `BAD_BODY`.
    #[error("JSON body: {0}")]
    Json(#[from] serde_json::Error),
}

/// Decodes a body in the connection's encoding: bincode bytes, or JSON text.
pub fn decode_body_as<T: DeserializeOwned>(encoding: Encoding, bytes: &[u8]) -> Result<T, BodyError> {
    match encoding {
        Encoding::Binary => decode_body(bytes),
        Encoding::Json => Ok(serde_json::from_slice(bytes)?),
    }
}

/// Appends `value` encoded for the connection's encoding: bincode bytes, or JSON text.
pub fn encode_body_into_as<T: Serialize + ?Sized>(
    encoding: Encoding,
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), BodyError> {
    match encoding {
        Encoding::Binary => encode_body_into(value, out),
        Encoding::Json => Ok(serde_json::to_writer(out, value)?),
    }
}

/// Encodes `value` as a body.
pub fn encode_body<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    encode_body_into(value, &mut out)?;
    Ok(out)
}

/// Appends the encoding of `value` to `out`, so a frame header and its body share one buffer.
pub fn encode_body_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), BodyError> {
    bincode::serde::encode_into_std_write(value, out, ENCODE_CONFIG)?;
    Ok(())
}

/// Decodes a whole body as `T`, under [`DECODE_LIMIT`](crate::DECODE_LIMIT).
///
/// Trailing bytes are an error: a body is exactly one value.
pub fn decode_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    // Length hints capped at the body's length: see `capped`.
    let seed = crate::capped::CappedSeed::<T>::new(bytes.len());
    let (value, used) = bincode::serde::seed_decode_from_slice(seed, bytes, DECODE_CONFIG)?;
    if used != bytes.len() {
        return Err(BodyError::Trailing(bytes.len() - used));
    }
    Ok(value)
}

/// Decodes a `T` from the start of `bytes`, under [`DECODE_LIMIT`](crate::DECODE_LIMIT), and
/// says how many bytes it took; the rest is left unread. For a reader that needs only the
/// first fields of a large body (a load generator that wants the tick of a state push, say):
/// the prefix of a struct's encoding is the encoding of its first fields (section 3 of
/// `docs/PROTOCOL.md`).
pub fn decode_body_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), BodyError> {
    let seed = crate::capped::CappedSeed::<T>::new(bytes.len());
    Ok(bincode::serde::seed_decode_from_slice(seed, bytes, DECODE_CONFIG)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Move {
        dx: i8,
        dy: i8,
    }

    #[test]
    fn round_trips_a_struct() {
        let bytes = encode_body(&Move { dx: -1, dy: 1 }).expect("encodes");
        assert_eq!(bytes, [0xff, 0x01]);
        assert_eq!(decode_body::<Move>(&bytes).expect("decodes"), Move { dx: -1, dy: 1 });
    }

    #[test]
    fn a_prefix_decodes_and_leaves_the_rest() {
        let bytes = encode_body(&(300u64, vec![1u8, 2, 3])).expect("encodes");
        let (first, used) = decode_body_prefix::<u64>(&bytes).expect("decodes");
        assert_eq!((first, used), (300, 3));
        assert_eq!(decode_body::<Vec<u8>>(&bytes[used..]).expect("the rest"), [1, 2, 3]);
        assert!(decode_body_prefix::<u64>(&bytes[..1]).is_err(), "cut short");
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        assert!(matches!(decode_body::<u8>(&[1, 2]), Err(BodyError::Trailing(1))));
    }

    #[test]
    fn a_huge_claimed_length_is_an_error_not_an_abort() {
        // varint 253 = u64 follows: claims a Vec of 2^62 elements.
        let hostile = [253, 0, 0, 0, 0, 0, 0, 0, 0x40, 1, 2, 3, 4, 5, 6, 7, 8];
        assert!(matches!(decode_body::<Vec<u64>>(&hostile), Err(BodyError::Decode(_))));
        assert!(matches!(decode_body::<String>(&hostile), Err(BodyError::Decode(_))));
    }
}
