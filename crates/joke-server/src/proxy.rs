//! `--proxy-protocol`: the PROXY protocol header (versions 1 and 2) a load balancer such as
//! HAProxy sends before anything else, saying who the real client is.
//!
//! Behind a balancer every connection comes from the balancer's address. With `send-proxy` or
//! `send-proxy-v2` on its server lines, HAProxy opens each connection to us with one header
//! naming the client's address and port, then relays the stream. We read that header before the
//! act writes its joke (the server speaks first in RFC 865, so the header is the only thing a
//! client ever sends before its joke), and use its address for the logs and for
//! `--max-per-address`. The parsing is the `ppp` crate's.
//!
//! Trusting the header is only safe when only the balancer can reach the port: anyone else can
//! write any address in it. So it is off by default, and a connection without a valid header,
//! when it is on, is closed unserved and counted.
//!
//! HAProxy's health checks carry a header too: a version-2 LOCAL command, with no addresses,
//! and then the check closes. LOCAL connections are counted as checks, not as clients or as
//! failures, and they are served like any client (a check that reads the joke gets one).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ppp::{HeaderResult, PartialResult};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The most header bytes read before giving up: a version-1 header is at most 107 bytes; a
/// version-2 one is 16 plus its addresses and optional TLVs, which HAProxy keeps small.
pub(crate) const MAX_HEADER: usize = 4096;

/// What the header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Said {
    /// A relayed client, from this address.
    Client(SocketAddr),
    /// The balancer speaking for itself (v2 LOCAL, or v1 UNKNOWN): a health check.
    Local,
}

/// Why no header was read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeaderError {
    /// The peer closed (or reset) before sending a whole header. Health checks that connect
    /// and close at once look like this: not worth a warning.
    #[error("closed before a whole PROXY header arrived")]
    ClosedEarly,
    /// Not a PROXY header, or a malformed one.
    #[error("not a valid PROXY protocol header: {0}")]
    Invalid(String),
    /// Too slow (`--proxy-header-timeout`).
    #[error("no whole PROXY header within {0:?}")]
    TimedOut(Duration),
}

/// Reads the PROXY header at the start of `socket`, within `timeout`.
///
/// Bytes read past the header (none from a balancer, since the client has nothing to say before
/// its joke) are thrown away, as RFC 865 throws away whatever a client sends.
// ANCHOR: read_header
pub(crate) async fn read_header(
    socket: &mut TcpStream,
    timeout: Duration,
) -> Result<Said, HeaderError> {
    let read = async {
        let mut buffer = Vec::with_capacity(256);
        let mut chunk = [0u8; 512];
        loop {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return Err(HeaderError::ClosedEarly),
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
            let header = HeaderResult::parse(&buffer);
            if header.is_incomplete() && buffer.len() < MAX_HEADER {
                continue;
            }
            return said(&header);
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(HeaderError::TimedOut(timeout)))
}
// ANCHOR_END: read_header

/// The client a parsed header names.
fn said(header: &HeaderResult<'_>) -> Result<Said, HeaderError> {
    use ppp::{v1, v2};
    match header {
        HeaderResult::V1(Ok(header)) => match header.addresses {
            v1::Addresses::Tcp4(ip) => Ok(Said::Client(SocketAddr::from((
                IpAddr::V4(ip.source_address),
                ip.source_port,
            )))),
            v1::Addresses::Tcp6(ip) => Ok(Said::Client(SocketAddr::from((
                IpAddr::V6(ip.source_address),
                ip.source_port,
            )))),
            v1::Addresses::Unknown => Ok(Said::Local),
        },
        HeaderResult::V2(Ok(header)) => {
            match (header.command, header.addresses) {
                (v2::Command::Local, _) => Ok(Said::Local),
                (v2::Command::Proxy, v2::Addresses::IPv4(ip)) => Ok(Said::Client(
                    SocketAddr::from((IpAddr::V4(ip.source_address), ip.source_port)),
                )),
                (v2::Command::Proxy, v2::Addresses::IPv6(ip)) => Ok(Said::Client(
                    SocketAddr::from((IpAddr::V6(ip.source_address), ip.source_port)),
                )),
                (v2::Command::Proxy, other) => Err(HeaderError::Invalid(format!(
                    "a PROXY command for {:?} addresses, not TCP over IP",
                    other.address_family()
                ))),
            }
        }
        HeaderResult::V1(Err(error)) => Err(HeaderError::Invalid(error.to_string())),
        HeaderResult::V2(Err(error)) => Err(HeaderError::Invalid(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Said, HeaderError> {
        said(&HeaderResult::parse(bytes))
    }

    #[test]
    fn version_1_names_the_client() {
        assert_eq!(
            parse(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 12345\r\n").unwrap(),
            Said::Client("192.0.2.7:40000".parse().unwrap())
        );
        assert_eq!(
            parse(b"PROXY TCP6 2001:db8::1 ::1 40000 12345\r\n").unwrap(),
            Said::Client("[2001:db8::1]:40000".parse().unwrap())
        );
        assert_eq!(parse(b"PROXY UNKNOWN\r\n").unwrap(), Said::Local);
    }

    #[test]
    fn version_2_names_the_client_and_local_is_a_check() {
        use ppp::v2::{Builder, Command, Protocol, Version};
        let client: SocketAddr = "198.51.100.4:51000".parse().unwrap();
        let us: SocketAddr = "127.0.0.1:12345".parse().unwrap();
        let proxy = Builder::with_addresses(
            Version::Two | Command::Proxy,
            Protocol::Stream,
            (client, us),
        )
        .build()
        .unwrap();
        assert_eq!(parse(&proxy).unwrap(), Said::Client(client));
        let local = Builder::with_addresses(
            Version::Two | Command::Local,
            Protocol::Unspecified,
            ppp::v2::Addresses::Unspecified,
        )
        .build()
        .unwrap();
        assert_eq!(parse(&local).unwrap(), Said::Local);
    }

    #[test]
    fn anything_else_is_invalid_and_half_a_header_is_incomplete() {
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\n\r\n"),
            Err(HeaderError::Invalid(_))
        ));
        assert!(matches!(
            parse(b"PROXY TCP4 999.0.0.1 127.0.0.1 1 2\r\n"),
            Err(HeaderError::Invalid(_))
        ));
        assert!(HeaderResult::parse(b"PROXY TCP4 192.0").is_incomplete());
        assert!(HeaderResult::parse(b"\r\n\r\n\0\r\nQ").is_incomplete());
    }
}
