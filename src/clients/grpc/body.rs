//! A gRPC call's response body: the HTTP/2 stream's, or, for a call that
//! failed on the channel's side, nothing but a status.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};

use super::status::Failure;
use crate::clients::h2::H2Body;

/// The body of a response from a [`Channel`](super::Channel).
///
/// It never fails: a stream that breaks off ends with trailers whose
/// `grpc-status` says so (`UNAVAILABLE` when the connection broke), as
/// tonic reports a server's status. The call's place on its connection is
/// given back when the body ends or is dropped.
#[derive(Debug)]
pub struct GrpcBody {
    stream: Option<H2Body>,
}

impl GrpcBody {
    pub(crate) fn empty() -> Self {
        GrpcBody { stream: None }
    }

    pub(crate) fn stream(stream: H2Body) -> Self {
        GrpcBody {
            stream: Some(stream),
        }
    }
}

impl Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let Some(stream) = &mut this.stream else {
            return Poll::Ready(None);
        };
        match Pin::new(stream).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(None) => {
                this.stream = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                this.stream = None;
                let failure = Failure::from_h2("the response stream broke off", &error);
                Poll::Ready(Some(Ok(Frame::trailers(failure.headers()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.stream.as_ref().is_none_or(Body::is_end_stream)
    }
}
