//! A response body read from an HTTP/2 stream within flow control,
//! holding the request's place on its connection until the stream ends.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use h2::RecvStream;
use http_body::{Body, Frame};
use tokio::task::JoinHandle;

use super::manager::H2Manager;
use crate::shared::Lease;

/// The body of a response over a shared HTTP/2 connection.
///
/// The request's place on its connection is given back when the body ends
/// or is dropped, and a request body still being sent is stopped then. A
/// stream that breaks off ends the body with the h2 error; if the
/// connection itself broke (or the server is closing it), the connection
/// takes no more requests.
pub struct H2Body {
    state: State,
    lease: Option<Lease<H2Manager>>,
    /// The request body's sender, stopped when the exchange ends.
    sender: Option<JoinHandle<()>>,
}

enum State {
    Data(RecvStream),
    Trailers(RecvStream),
    Done,
}

impl std::fmt::Debug for H2Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Body")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl H2Body {
    pub(crate) fn new(
        recv: RecvStream,
        lease: Lease<H2Manager>,
        sender: Option<JoinHandle<()>>,
    ) -> Self {
        let ended = recv.is_end_stream();
        let mut body = H2Body {
            state: State::Data(recv),
            lease: Some(lease),
            sender,
        };
        if ended {
            body.end();
        }
        body
    }

    fn end(&mut self) {
        self.state = State::Done;
        self.lease = None;
        if let Some(sender) = self.sender.take() {
            sender.abort();
        }
    }

    fn broke(&mut self, error: h2::Error) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if let (true, Some(lease)) = (error.is_io() || error.is_go_away(), &self.lease) {
            lease.close();
            lease.drain();
        }
        self.end();
        Poll::Ready(Some(Err(error)))
    }
}

impl Drop for H2Body {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            sender.abort();
        }
    }
}

impl Body for H2Body {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
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
                    Poll::Ready(Some(Err(error))) => return this.broke(error),
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
                    Poll::Ready(Err(error)) => return this.broke(error),
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }
}
