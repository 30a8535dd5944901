//! A long link in front of a server on 127.0.0.1: a TCP proxy that delivers every byte, in
//! either direction, half a round trip after it was written, and lets each direction of a
//! connection hold at most `window` bytes that are not acknowledged yet (an acknowledgement
//! comes back half a round trip after delivery). So a connection moves at most
//! `window / rtt` bytes a second, and a request waits a whole round trip for its answer: the
//! bandwidth-delay behaviour of TCP over a far link, which a per-request sleep would not
//! give. Not modelled: loss, slow start, a bandwidth cap shared by all connections.
//!
//! For `imgport sim --wan-rtt-ms` (the WAN bench, scripts/bench-wan.sh) and the tests that
//! need a far server without `tc netem`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

/// Bytes read at once from either side.
const CHUNK: usize = 64 << 10;

/// The link a [`WanProxy`] emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WanLink {
    /// Round-trip time added between the client and the server.
    pub rtt: Duration,
    /// Bytes each direction of a connection may have on the way and not acknowledged (a TCP
    /// window; Linux grows its windows to a few MiB).
    pub window: usize,
}

impl Default for WanLink {
    fn default() -> Self {
        Self {
            rtt: Duration::ZERO,
            window: 4 << 20,
        }
    }
}

/// A listening proxy to one upstream address.
pub struct WanProxy {
    listener: TcpListener,
    upstream: SocketAddr,
    link: WanLink,
}

impl WanProxy {
    /// Listens on `listen` for connections to forward to `upstream` over `link`.
    pub async fn bind(
        listen: SocketAddr,
        upstream: SocketAddr,
        link: WanLink,
    ) -> std::io::Result<WanProxy> {
        let link = WanLink {
            window: link.window.max(CHUNK),
            ..link
        };
        Ok(WanProxy {
            listener: TcpListener::bind(listen).await?,
            upstream,
            link,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Forwards connections until the task is dropped.
    pub async fn serve(self) {
        loop {
            let Ok((client, _)) = self.listener.accept().await else {
                continue;
            };
            let (upstream, link) = (self.upstream, self.link);
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::join!(carry(cr, sw, link), carry(sr, cw, link));
            });
        }
    }
}

/// Carries one direction: reads while the window has room, delivers each chunk half a round
/// trip after it was read, and frees its room half a round trip after delivery. The end of
/// the stream is passed on after the last byte.
async fn carry(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    link: WanLink,
) {
    let half = link.rtt / 2;
    let room = Arc::new(Semaphore::new(link.window));
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<(Instant, usize)>();
    let reader = {
        let room = room.clone();
        async move {
            loop {
                let Ok(permit) = room.acquire_many(CHUNK as u32).await else {
                    break;
                };
                permit.forget();
                let mut buf = vec![0u8; CHUNK];
                let n = match from.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                room.add_permits(CHUNK - n);
                buf.truncate(n);
                if tx.send((Instant::now() + half, buf)).is_err() {
                    break;
                }
            }
            drop(tx);
        }
    };
    let writer = async move {
        while let Some((due, data)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&data).await.is_err() {
                break;
            }
            let _ = ack_tx.send((Instant::now() + half, data.len()));
        }
        let _ = to.shutdown().await;
        drop(ack_tx);
    };
    let acks = async move {
        while let Some((due, n)) = ack_rx.recv().await {
            tokio::time::sleep_until(due).await;
            room.add_permits(n);
        }
    };
    tokio::join!(reader, writer, acks);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on 127.0.0.1.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    // Lower bounds only: a delay can only make these longer, never shorter.
    #[tokio::test]
    async fn a_round_trip_takes_the_rtt_and_a_window_per_rtt_is_the_most() {
        let link = WanLink {
            rtt: Duration::from_millis(100),
            window: 1 << 20,
        };
        let proxy = WanProxy::bind("127.0.0.1:0".parse().unwrap(), echo().await, link)
            .await
            .unwrap();
        let addr = proxy.addr();
        tokio::spawn(proxy.serve());
        let mut s = TcpStream::connect(addr).await.unwrap();
        // One byte there and back: a round trip.
        let t0 = Instant::now();
        s.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"x");
        assert!(t0.elapsed() >= Duration::from_millis(100));
        // 8 MiB through a 1 MiB window: each window's room is free again only a round trip
        // after it was read, so the last byte leaves after seven round trips and comes back
        // after one more.
        let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
        let (mut r, mut w) = s.into_split();
        let sent = data.clone();
        let t0 = Instant::now();
        let writer = tokio::spawn(async move { w.write_all(&sent).await });
        let mut got = vec![0u8; data.len()];
        r.read_exact(&mut got).await.unwrap();
        writer.await.unwrap().unwrap();
        assert!(got == data, "the bytes came back changed");
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(800), "{took:?}");
    }
}
