//! gRPC with UTF-8 text as the message: a codec and a client as tonic's
//! code generator would write them, with no protobuf and no code
//! generation, for the examples', tests' and benches' servers.

#![allow(dead_code)]

use bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Request, Response, Status};

/// UTF-8 text as the message.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextCodec;

impl Codec for TextCodec {
    type Encode = String;
    type Decode = String;
    type Encoder = TextCodec;
    type Decoder = TextCodec;
    fn encoder(&mut self) -> TextCodec {
        TextCodec
    }
    fn decoder(&mut self) -> TextCodec {
        TextCodec
    }
}

impl Encoder for TextCodec {
    type Item = String;
    type Error = Status;
    fn encode(&mut self, item: String, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(item.as_bytes());
        Ok(())
    }
}

impl Decoder for TextCodec {
    type Item = String;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<String>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| Status::invalid_argument("not UTF-8"))
    }
}

/// A client of text methods over any transport a generated tonic client
/// accepts (a tonic `Channel`, ringpool's `clients::grpc::Channel`).
#[derive(Clone)]
pub struct TextClient<T> {
    inner: tonic::client::Grpc<T>,
}

impl<T> TextClient<T>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    pub fn new(inner: T) -> Self {
        TextClient {
            inner: tonic::client::Grpc::new(inner),
        }
    }

    /// A unary call of `path` (`/package.Service/Method`).
    pub async fn unary(
        &mut self,
        path: &'static str,
        request: Request<String>,
    ) -> Result<Response<String>, Status> {
        self.inner
            .ready()
            .await
            .map_err(|e| Status::unknown(format!("service was not ready: {}", e.into())))?;
        let path = http::uri::PathAndQuery::from_static(path);
        self.inner.unary(request, path, TextCodec).await
    }

    /// A server-streaming call of `path`.
    pub async fn server_streaming(
        &mut self,
        path: &'static str,
        request: Request<String>,
    ) -> Result<Response<tonic::codec::Streaming<String>>, Status> {
        self.inner
            .ready()
            .await
            .map_err(|e| Status::unknown(format!("service was not ready: {}", e.into())))?;
        let path = http::uri::PathAndQuery::from_static(path);
        self.inner.server_streaming(request, path, TextCodec).await
    }
}
