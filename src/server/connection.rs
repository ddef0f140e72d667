//! [`Connection`]: one client socket, plain or TLS, and its framing (i32
//! size prefix, at most `socket.request.max.bytes` per frame). Knows
//! nothing of what the frames mean; writes a response's file regions with
//! `sendfile` on plain sockets and through a buffer on TLS.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;

use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWriteExt, BufWriter, Interest, WriteHalf};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, FramedRead};

use crate::log::FileRegion;
use crate::protocol::{Chunk, ResponseFrame};
use crate::security::tls::TlsStream;

/// The bytes of a file region copied per write on TLS connections.
const TLS_COPY_CHUNK: usize = 64 * 1024;

/// A framed client connection. The frame limit applies to requests only
/// (as Kafka's `socket.request.max.bytes`); responses may be any size.
pub struct Connection {
    reader: FramedRead<Box<dyn AsyncRead + Send + Unpin>, Frames>,
    writer: Writer,
    /// The client's address, for logs.
    pub peer: SocketAddr,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

enum Writer {
    Plain(BufWriter<OwnedWriteHalf>),
    Tls(BufWriter<WriteHalf<TlsStream>>),
}

fn codec(max_frame: usize) -> Frames {
    Frames { max: max_frame }
}

/// Kafka's framing: a big-endian i32 size, then that many bytes. Unlike
/// tokio-util's LengthDelimitedCodec it never reserves room for a frame
/// before its bytes arrive, so a client that announces a large frame and
/// sends nothing costs the broker nothing; a size above the limit (or
/// negative) is refused at once.
#[derive(Debug)]
pub struct Frames {
    max: usize,
}

impl Decoder for Frames {
    type Item = BytesMut;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        let Some(head) = src.get(..4) else {
            return Ok(None);
        };
        let size = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let size = usize::try_from(size)
            .ok()
            .filter(|n| *n <= self.max)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("frame of {size} bytes is over the limit of {}", self.max),
                )
            })?;
        if src.len() - 4 < size {
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(src.split_to(size)))
    }
}

impl Connection {
    /// Wraps an accepted socket; frames above `max_frame` bytes are refused.
    pub fn new(socket: TcpStream, peer: SocketAddr, max_frame: usize) -> Self {
        let _ = socket.set_nodelay(true);
        let (read_half, write_half) = socket.into_split();
        Self {
            reader: FramedRead::new(Box::new(read_half), codec(max_frame)),
            writer: Writer::Plain(BufWriter::new(write_half)),
            peer,
        }
    }

    /// Wraps a socket after its TLS handshake.
    pub fn tls(stream: TlsStream, peer: SocketAddr, max_frame: usize) -> Self {
        let _ = stream.get_ref().0.set_nodelay(true);
        let (read_half, write_half) = tokio::io::split(stream);
        Self {
            reader: FramedRead::new(Box::new(read_half), codec(max_frame)),
            writer: Writer::Tls(BufWriter::new(write_half)),
            peer,
        }
    }

    /// Changes the largest frame accepted (smaller before SASL
    /// authentication completes).
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.reader.decoder_mut().max = max_frame;
    }

    /// Writes `bytes` as one frame with no Kafka header (the raw SASL
    /// tokens that follow a v0 SaslHandshake).
    ///
    /// # Errors
    /// The socket fails.
    pub async fn write_raw_frame(&mut self, bytes: &[u8]) -> io::Result<()> {
        let size = i32::try_from(bytes.len()).map_err(io::Error::other)?;
        self.write_all(&size.to_be_bytes()).await?;
        self.write_all(bytes).await?;
        self.flush().await
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.writer {
            Writer::Plain(w) => w.write_all(bytes).await,
            Writer::Tls(w) => w.write_all(bytes).await,
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match &mut self.writer {
            Writer::Plain(w) => w.flush().await,
            Writer::Tls(w) => w.flush().await,
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
        self.write_all(&size.to_be_bytes()).await?;
        for chunk in &frame.chunks {
            match chunk {
                Chunk::Bytes(bytes) => self.write_all(bytes).await?,
                Chunk::File(region) => {
                    if let Writer::Plain(writer) = &mut self.writer {
                        writer.flush().await?;
                        send_region(writer, region).await?;
                    } else {
                        self.copy_region(region).await?;
                    }
                }
            }
        }
        self.flush().await
    }

    /// Copies a file region through user space (TLS encrypts it).
    async fn copy_region(&mut self, region: &FileRegion) -> io::Result<()> {
        let mut buf = vec![0; TLS_COPY_CHUNK.min(region.len)];
        let mut position = region.position;
        let mut left = region.len;
        while left > 0 {
            let n = left.min(buf.len());
            region.file.read_exact_at(&mut buf[..n], position)?;
            self.write_all(&buf[..n]).await?;
            position += n as u64;
            left -= n;
        }
        Ok(())
    }
}

/// Copies a file region to the socket in the kernel (`sendfile`).
async fn send_region(
    writer: &mut BufWriter<OwnedWriteHalf>,
    region: &FileRegion,
) -> io::Result<()> {
    let socket: &TcpStream = writer.get_ref().as_ref();
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
