//! [`Connection`]: one client socket and its framing (i32 size prefix,
//! at most `socket.request.max.bytes` per frame). Knows nothing of what
//! the frames mean.

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

/// A framed client connection. The frame limit applies to requests only
/// (as Kafka's `socket.request.max.bytes`); responses may be any size.
#[derive(Debug)]
pub struct Connection {
    reader: FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    writer: BufWriter<OwnedWriteHalf>,
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
        let (read_half, write_half) = socket.into_split();
        Self {
            reader: FramedRead::new(read_half, codec),
            writer: BufWriter::new(write_half),
            peer,
        }
    }

    /// The next frame, or `None` when the client closed the connection
    /// between frames.
    ///
    /// # Errors
    /// A frame over the limit, a connection closed mid-frame, or a socket error.
    pub async fn read_frame(&mut self) -> io::Result<Option<Bytes>> {
        match self.reader.next().await {
            Some(Ok(frame)) => Ok(Some(frame.freeze())),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }

    /// Writes one frame (the size prefix is added here) and flushes.
    ///
    /// # Errors
    /// The socket fails, or the frame is over 2 GiB.
    pub async fn write_frame(&mut self, frame: Bytes) -> io::Result<()> {
        let size = i32::try_from(frame.len()).map_err(io::Error::other)?;
        self.writer.write_all(&size.to_be_bytes()).await?;
        self.writer.write_all(&frame).await?;
        self.writer.flush().await
    }
}
