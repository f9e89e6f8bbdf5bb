//! Frames of the HSM link as the client writes and reads them.
//!
//! A request is encoded once, without its id, when the caller hands it over; each
//! attempt (on whichever connection it lands) prepends the frame header and the id
//! field. In proto3 an id of 0 is not written at all, so `Request { id: 0, op }` is
//! exactly the request's bytes minus field 1, and protobuf decoders accept fields in
//! any order: `08 <varint id>` followed by those bytes is `Request { id, op }`. Retries
//! therefore neither clone the operation (blobs, plaintexts) nor re-encode it.

use strongroom_proto::hsm::v1::error::Code;
use strongroom_proto::hsm::v1::response;
use strongroom_proto::hsm::{self as frames, FRAME_HEADER_LEN, Request, Response};

use crate::backend::{Op, Reply};
use crate::error::{HsmError, Result};

/// The tag of `Request.id` (field 1, varint).
const ID_TAG: u8 = 0x08;
/// A tag byte plus the longest varint of a u64.
const MAX_ID_FIELD_LEN: usize = 1 + 10;

/// One request, encoded without its id.
#[derive(Debug)]
pub(crate) struct EncodedRequest {
    /// A whole frame of `Request { id: 0, op }`: header, then body.
    frame: Vec<u8>,
    /// The operation's name, for logs.
    kind: &'static str,
}

impl EncodedRequest {
    /// Encodes `op`, refusing a request that would exceed `max_frame_len` once it
    /// carries an id.
    pub(crate) fn new(op: Op, max_frame_len: usize) -> Result<Self> {
        let kind = op_name(&op);
        let request = Request {
            id: 0,
            op: Some(op),
        };
        let mut frame = Vec::new();
        frames::encode_frame(
            &request,
            max_frame_len.saturating_sub(MAX_ID_FIELD_LEN),
            &mut frame,
        )
        .map_err(|e| HsmError::invalid(format!("{kind} request: {e}")))?;
        Ok(Self { frame, kind })
    }

    /// The operation's name, e.g. `Encrypt`.
    pub(crate) fn kind(&self) -> &'static str {
        self.kind
    }

    /// The frame for request `id`, appended to `out`.
    pub(crate) fn write_frame(&self, id: u64, out: &mut Vec<u8>) -> Result<()> {
        let body = self.frame.get(FRAME_HEADER_LEN..).unwrap_or_default();
        let mut id_field = [0u8; MAX_ID_FIELD_LEN];
        let id_len = encode_id_field(id, &mut id_field);
        let len = u32::try_from(body.len().saturating_add(id_len))
            .map_err(|_| HsmError::invalid("request too large"))?;
        out.reserve(FRAME_HEADER_LEN + id_len + body.len());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(id_field.get(..id_len).unwrap_or_default());
        out.extend_from_slice(body);
        Ok(())
    }
}

/// Writes `08 <varint id>` into `out`; returns its length. An id of 0 writes nothing
/// (proto3 omits default values), though the client never uses 0.
fn encode_id_field(id: u64, out: &mut [u8; MAX_ID_FIELD_LEN]) -> usize {
    if id == 0 {
        return 0;
    }
    let mut len = 0;
    let mut push = |byte: u8| {
        if let Some(slot) = out.get_mut(len) {
            *slot = byte;
            len += 1;
        }
    };
    push(ID_TAG);
    let mut rest = id;
    loop {
        let low = u8::try_from(rest & 0x7f).unwrap_or(0);
        rest >>= 7;
        if rest == 0 {
            push(low);
            break;
        }
        push(low | 0x80);
    }
    len
}

/// What a response means to the caller: its result, or the node's error.
pub(crate) fn into_result(response: Response) -> Result<Reply> {
    match response.result {
        Some(response::Result::Error(e)) => Err(HsmError::new(
            Code::try_from(e.code).unwrap_or(Code::Internal),
            e.message,
        )),
        Some(result) => Ok(result),
        None => Err(HsmError::internal("the HSM node sent an empty response")),
    }
}

/// The operation's name, for logs and errors.
pub(crate) fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Status(_) => "Status",
        Op::GenerateKey(_) => "GenerateKey",
        Op::GenerateWrappingKey(_) => "GenerateWrappingKey",
        Op::UnwrapKeyMaterial(_) => "UnwrapKeyMaterial",
        Op::GetPublicKey(_) => "GetPublicKey",
        Op::Encrypt(_) => "Encrypt",
        Op::Decrypt(_) => "Decrypt",
        Op::Sign(_) => "Sign",
        Op::Verify(_) => "Verify",
        Op::GenerateDataKey(_) => "GenerateDataKey",
        Op::GenerateDataKeyPair(_) => "GenerateDataKeyPair",
        Op::GenerateRandom(_) => "GenerateRandom",
        Op::Hash(_) => "Hash",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use strongroom_proto::hsm::v1 as pb;
    use strongroom_proto::hsm::{DEFAULT_MAX_FRAME_LEN, body_len, decode_body};

    use super::*;

    fn hash_op() -> Op {
        Op::Hash(pb::Hash {
            algorithm: "SM3".into(),
            message: b"abc".to_vec(),
        })
    }

    #[test]
    fn the_id_is_spliced_into_the_encoded_request() {
        let encoded = EncodedRequest::new(hash_op(), DEFAULT_MAX_FRAME_LEN).unwrap();
        assert_eq!(encoded.kind(), "Hash");
        for id in [1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut frame = Vec::new();
            encoded.write_frame(id, &mut frame).unwrap();
            let header: [u8; 4] = frame[..4].try_into().unwrap();
            assert_eq!(
                body_len(header, DEFAULT_MAX_FRAME_LEN).unwrap(),
                frame.len() - 4
            );
            let request: Request = decode_body(&frame[4..]).unwrap();
            assert_eq!(
                request,
                Request {
                    id,
                    op: Some(hash_op())
                }
            );
        }
    }

    #[test]
    fn requests_over_the_limit_are_refused_when_encoded() {
        let big = Op::Hash(pb::Hash {
            algorithm: String::new(),
            message: vec![0; 200],
        });
        let err = EncodedRequest::new(big, 100).unwrap_err();
        assert_eq!(err.code, Code::InvalidParameter);
    }

    #[test]
    fn error_responses_become_errors() {
        let reply = pb::Error::reply(3, Code::NotSynced, "later");
        assert_eq!(
            into_result(reply).unwrap_err(),
            HsmError::new(Code::NotSynced, "later")
        );
        let unknown = Response {
            id: 3,
            result: Some(response::Result::Error(pb::Error {
                code: 999,
                message: "new".into(),
            })),
        };
        assert_eq!(into_result(unknown).unwrap_err().code, Code::Internal);
        assert_eq!(
            into_result(Response {
                id: 3,
                result: None
            })
            .unwrap_err()
            .code,
            Code::Internal
        );
    }
}
