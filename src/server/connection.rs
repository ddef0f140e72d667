//! [`Connection`]: one client socket and its framing (i32 size prefix,
//! at most `socket.request.max.bytes` per frame). Knows nothing of what
//! the frames mean.

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// A framed client connection.
#[derive(Debug)]
pub struct Connection {
    framed: Framed<TcpStream, LengthDelimitedCodec>,
    /// The client's address, for logs.
    pub peer: SocketAddr,
}

impl Connection {
    /// Wraps an accepted socket; frames above `max_frame` bytes are refused.
    pub fn new(socket: TcpStream, peer: SocketAddr, max_frame: usize) -> Self {
        // Kafka's size prefix is a big-endian i32 counting the bytes after it,
        // which is LengthDelimitedCodec's default layout.
        let codec = LengthDelimitedCodec::builder()
            .max_frame_length(max_frame)
            .new_codec();
        let _ = socket.set_nodelay(true);
        Self {
            framed: Framed::new(socket, codec),
            peer,
        }
    }

    /// The next frame, or `None` when the client closed the connection
    /// between frames.
    ///
    /// # Errors
    /// A frame over the limit, a connection closed mid-frame, or a socket error.
    pub async fn read_frame(&mut self) -> io::Result<Option<Bytes>> {
        match self.framed.next().await {
            Some(Ok(frame)) => Ok(Some(frame.freeze())),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }

    /// Writes one frame (the size prefix is added here) and flushes.
    ///
    /// # Errors
    /// The socket fails.
    pub async fn write_frame(&mut self, frame: Bytes) -> io::Result<()> {
        self.framed.send(frame).await
    }
}
