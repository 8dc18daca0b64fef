//! A call's response body: the server's HTTP/2 stream, read within flow
//! control, holding the call's place on its connection until the stream
//! ends; or, for a call that failed on the channel's side, nothing but a
//! status.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use h2::RecvStream;
use http_body::{Body, Frame};
use tokio::task::JoinHandle;

use super::manager::GrpcManager;
use super::status::Failure;
use crate::shared::Lease;

/// The body of a response from a [`Channel`](super::Channel).
///
/// It never fails: a stream that breaks off ends with trailers whose
/// `grpc-status` says so (`UNAVAILABLE` when the connection broke), as
/// tonic reports a server's status. The call's place on its connection is
/// given back when the body ends or is dropped.
pub struct GrpcBody {
    state: State,
    lease: Option<Lease<GrpcManager>>,
    /// The request body's sender, stopped when the call ends.
    sender: Option<JoinHandle<()>>,
}

enum State {
    Data(RecvStream),
    Trailers(RecvStream),
    Done,
}

impl std::fmt::Debug for GrpcBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcBody")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl GrpcBody {
    pub(crate) fn empty() -> Self {
        GrpcBody {
            state: State::Done,
            lease: None,
            sender: None,
        }
    }

    pub(crate) fn stream(
        recv: RecvStream,
        lease: Lease<GrpcManager>,
        sender: Option<JoinHandle<()>>,
    ) -> Self {
        let state = match recv.is_end_stream() {
            true => State::Done,
            false => State::Data(recv),
        };
        let mut body = GrpcBody {
            state,
            lease: Some(lease),
            sender,
        };
        if let State::Done = body.state {
            body.end();
        }
        body
    }

    /// The stream broke: the call ends with the status it means, and a
    /// connection that broke takes no more calls.
    fn broke(&mut self, error: &h2::Error) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let (true, Some(lease)) = (error.is_io() || error.is_go_away(), &self.lease) {
            lease.close();
            lease.drain();
        }
        let failure = Failure::from_h2("the response stream broke off", error);
        self.end();
        Poll::Ready(Some(Ok(Frame::trailers(failure.headers()))))
    }

    fn end(&mut self) {
        self.state = State::Done;
        self.lease = None;
        if let Some(sender) = self.sender.take() {
            sender.abort();
        }
    }
}

impl Drop for GrpcBody {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            sender.abort();
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
        loop {
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Data(recv) => match recv.poll_data(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(data))) => {
                        // Read: the server may send as much again.
                        let _ = recv.flow_control().release_capacity(data.len());
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Poll::Ready(Some(Err(error))) => return this.broke(&error),
                    Poll::Ready(None) => {
                        let State::Data(recv) = std::mem::replace(&mut this.state, State::Done)
                        else {
                            unreachable!("matched Data above")
                        };
                        this.state = State::Trailers(recv);
                    }
                },
                State::Trailers(recv) => match recv.poll_trailers(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(Some(trailers))) => {
                        this.end();
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                    Poll::Ready(Ok(None)) => {
                        this.end();
                        return Poll::Ready(None);
                    }
                    Poll::Ready(Err(error)) => return this.broke(&error),
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }
}
