//! [`Connection`]: one client socket and its framing (i32 size prefix,
//! at most `socket.request.max.bytes` per frame). Knows nothing of what
//! the frames mean; writes a response's file regions with `sendfile`.

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncWriteExt, BufWriter, Interest};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

use crate::log::FileRegion;
use crate::protocol::{Chunk, ResponseFrame};

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
    /// The socket fails, the frame is over 2 GiB, or a file region is
    /// shorter on disk than the frame says (the client then gets a cut frame
    /// and the caller closes the connection).
    pub async fn write_frame(&mut self, frame: ResponseFrame) -> io::Result<()> {
        let size = i32::try_from(frame.len()).map_err(io::Error::other)?;
        self.writer.write_all(&size.to_be_bytes()).await?;
        for chunk in &frame.chunks {
            match chunk {
                Chunk::Bytes(bytes) => self.writer.write_all(bytes).await?,
                Chunk::File(region) => {
                    self.writer.flush().await?;
                    self.send_region(region).await?;
                }
            }
        }
        self.writer.flush().await
    }

    /// Copies a file region to the socket in the kernel (`sendfile`).
    async fn send_region(&mut self, region: &FileRegion) -> io::Result<()> {
        let socket: &TcpStream = self.writer.get_ref().as_ref();
        let mut offset = i64::try_from(region.position).map_err(io::Error::other)?;
        let mut left = region.len;
        while left > 0 {
            socket.writable().await?;
            let sent = socket.try_io(Interest::WRITABLE, || {
                nix::sys::sendfile::sendfile64(socket, &*region.file, Some(&mut offset), left)
                    .map_err(io::Error::from)
            });
            match sent {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "segment file shorter than its index",
                    ))
                }
                Ok(n) => left = left.saturating_sub(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
