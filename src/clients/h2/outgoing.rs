//! A call's request body on its way out: taken whole when it is already
//! complete (a unary call's message), so a stream the server refused can
//! be sent again elsewhere; streamed otherwise. Sent within HTTP/2 flow
//! control.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use h2::SendStream;
use http::HeaderMap;
use http_body::{Body, Frame};

/// Polls of a body that is not yet complete before it is streamed.
const READY_POLLS: usize = 16;

/// What is left to send.
pub(crate) struct Outgoing<B> {
    /// Frames already taken from the body.
    frames: Vec<Frame<Bytes>>,
    /// The rest, when it was not complete at once; `None` once complete
    /// or once handed to a stream.
    rest: Option<Pin<Box<B>>>,
    /// Whether the whole body is in `frames`, so it can be sent again.
    complete: bool,
}

impl<B> Outgoing<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Takes what the body has ready, without waiting; an error of the
    /// body's own is returned as it is.
    pub(crate) fn new(body: B) -> Result<Self, B::Error> {
        let mut body = Box::pin(body);
        let mut frames = Vec::new();
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..READY_POLLS {
            if body.is_end_stream() {
                return Ok(Outgoing::whole(frames));
            }
            match body.as_mut().poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => frames.push(frame),
                Poll::Ready(Some(Err(error))) => return Err(error),
                Poll::Ready(None) => return Ok(Outgoing::whole(frames)),
                Poll::Pending => break,
            }
        }
        Ok(Outgoing {
            frames,
            rest: Some(body),
            complete: false,
        })
    }

    fn whole(frames: Vec<Frame<Bytes>>) -> Self {
        Outgoing {
            frames,
            rest: None,
            complete: true,
        }
    }

    /// Nothing to send: the request's headers end the stream.
    pub(crate) fn is_empty(&self) -> bool {
        self.complete && self.frames.is_empty()
    }

    /// Whether it can be sent once more (the whole body is in hand).
    pub(crate) fn can_resend(&self) -> bool {
        self.complete
    }

    /// Sends the whole body on `stream` at once, if it is whole (a copy:
    /// `Bytes` are shared, so it is cheap, and the body can be sent again):
    /// h2 keeps what the peer's window does not take yet and sends it as
    /// the window opens. Gives the stream back if the body is not whole.
    pub(crate) fn send_whole(&self, mut stream: SendStream<Bytes>) -> Option<SendStream<Bytes>> {
        if !self.complete {
            return Some(stream);
        }
        let last = self.frames.len().saturating_sub(1);
        let mut ended = false;
        for (at, frame) in self.frames.iter().enumerate() {
            let sent = match (frame.data_ref(), frame.trailers_ref()) {
                (Some(data), _) => {
                    ended = at == last;
                    stream.send_data(data.clone(), ended)
                }
                (None, Some(trailers)) => {
                    ended = true;
                    stream.send_trailers(trailers.clone())
                }
                (None, None) => Ok(()),
            };
            // The peer reset or closed the stream: its answer says why.
            if sent.is_err() || ended {
                return None;
            }
        }
        let _ = stream.send_data(Bytes::new(), true);
        None
    }

    /// Streams a body that was not whole at once (after `send_whole` gave
    /// the stream back): the frames already taken, then the rest.
    pub(crate) fn send_on(
        &mut self,
        stream: SendStream<Bytes>,
    ) -> impl Future<Output = ()> + Send + 'static {
        pump(stream, std::mem::take(&mut self.frames), self.rest.take())
    }
}

/// Sends `frames`, then the rest of the body, then ends the stream; a body
/// that fails resets the stream (`CANCEL`), and a stream the peer closed
/// ends the pump.
async fn pump<B>(
    mut stream: SendStream<Bytes>,
    frames: Vec<Frame<Bytes>>,
    rest: Option<Pin<Box<B>>>,
) where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    for frame in frames {
        match send_frame(&mut stream, frame).await {
            Sent::More => {}
            Sent::Ended => return,
        }
    }
    if let Some(mut body) = rest {
        loop {
            let next = match poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
                Some(Ok(frame)) => Some(Ok(frame)),
                Some(Err(error)) => Some(Err(error.into())),
                None => None,
            };
            match next {
                Some(Ok(frame)) => {
                    if let Sent::Ended = send_frame(&mut stream, frame).await {
                        return;
                    }
                }
                Some(Err(error)) => {
                    let error: Box<dyn std::error::Error + Send + Sync> = error;
                    tracing::debug!(%error, "gRPC request body failed: stream cancelled");
                    stream.send_reset(h2::Reason::CANCEL);
                    return;
                }
                None => break,
            }
        }
    }
    let _ = stream.send_data(Bytes::new(), true);
}

enum Sent {
    More,
    Ended,
}

async fn send_frame(stream: &mut SendStream<Bytes>, frame: Frame<Bytes>) -> Sent {
    match frame.into_data() {
        Ok(data) => send_data(stream, data).await,
        Err(frame) => match frame.into_trailers() {
            Ok(trailers) => send_trailers(stream, trailers),
            Err(_) => Sent::More,
        },
    }
}

fn send_trailers(stream: &mut SendStream<Bytes>, trailers: HeaderMap) -> Sent {
    let _ = stream.send_trailers(trailers);
    Sent::Ended
}

/// Sends `data` as the peer's flow-control window allows.
async fn send_data(stream: &mut SendStream<Bytes>, mut data: Bytes) -> Sent {
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let granted = loop {
            let capacity = stream.capacity();
            if capacity > 0 {
                break capacity;
            }
            match poll_fn(|cx| stream.poll_capacity(cx)).await {
                Some(Ok(_)) => {}
                // Reset or closed by the peer: its answer says why.
                Some(Err(_)) | None => return Sent::Ended,
            }
        };
        let chunk = data.split_to(granted.min(data.len()));
        if stream.send_data(chunk, false).is_err() {
            return Sent::Ended;
        }
    }
    Sent::More
}
