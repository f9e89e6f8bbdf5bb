//! PROXY protocol version 2: the header a load balancer puts in front of a connection to
//! say who the client really is (<https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>).
//!
//! Only a peer configured as a trusted proxy is read this way: from any other peer the
//! first bytes are the TLS handshake and nothing a client writes can change the address
//! the access decision sees. From a trusted proxy the header is required.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _};

/// The 12 bytes every version-2 header starts with.
pub const SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];
/// Longest address block (addresses and TLVs) we accept.
pub const MAX_LENGTH: usize = 4096;
/// Time a trusted proxy has to send its header.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a PROXY header was refused (the connection is then closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The first 12 bytes are not the version-2 signature.
    #[error("no PROXY protocol v2 signature")]
    Signature,
    /// A version other than 2, or a command other than LOCAL or PROXY.
    #[error("unsupported PROXY version or command byte {0:#04x}")]
    Version(u8),
    /// An address family other than unspecified, IPv4 or IPv6.
    #[error("unsupported PROXY address family byte {0:#04x}")]
    Family(u8),
    /// The address block is too short for its family, or longer than [`MAX_LENGTH`].
    #[error("PROXY address block of {0} bytes does not fit")]
    Length(usize),
    /// The header did not arrive in time, or the connection ended inside it.
    #[error("PROXY header not received: {0}")]
    Io(String),
}

/// What a header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `LOCAL` (the proxy's own health check) or an unspecified family: the TCP peer is
    /// the caller.
    Local,
    /// `PROXY` with the client's address.
    Client(SocketAddr),
}

/// Parses the 16-byte fixed part; the length of the address block that follows.
///
/// # Errors
/// [`ProxyError`] for anything but a version-2 header of a known command and family.
pub fn parse_fixed(fixed: &[u8; 16]) -> Result<(u8, u8, usize), ProxyError> {
    let [signature @ .., version_command, family, high, low] = *fixed;
    if signature != SIGNATURE {
        return Err(ProxyError::Signature);
    }
    if version_command >> 4 != 2 || version_command & 0x0F > 1 {
        return Err(ProxyError::Version(version_command));
    }
    if !matches!(family >> 4, 0..=2) {
        return Err(ProxyError::Family(family));
    }
    let length = usize::from(u16::from_be_bytes([high, low]));
    if length > MAX_LENGTH {
        return Err(ProxyError::Length(length));
    }
    Ok((version_command, family, length))
}

/// Parses the address block after the fixed part.
///
/// # Errors
/// [`ProxyError::Length`] if it is too short for its family.
pub fn parse_addresses(
    version_command: u8,
    family: u8,
    block: &[u8],
) -> Result<Source, ProxyError> {
    if version_command & 0x0F == 0 {
        return Ok(Source::Local);
    }
    let short = || ProxyError::Length(block.len());
    match family >> 4 {
        1 => {
            let [a, b, c, d, _, _, _, _, p0, p1, _, _] =
                *block.first_chunk::<12>().ok_or_else(short)?;
            Ok(Source::Client(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
                u16::from_be_bytes([p0, p1]),
            )))
        }
        2 => {
            let addresses = block.first_chunk::<36>().ok_or_else(short)?;
            let (source, rest) = addresses.split_first_chunk::<16>().ok_or_else(short)?;
            let ports = rest.get(16..18).ok_or_else(short)?;
            let port = u16::from_be_bytes(ports.try_into().map_err(|_| short())?);
            Ok(Source::Client(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(*source)),
                port,
            )))
        }
        _ => Ok(Source::Local),
    }
}

/// Reads one header from `stream` (a connection from a trusted proxy), within
/// [`HEADER_TIMEOUT`].
///
/// # Errors
/// [`ProxyError`]; the caller closes the connection.
pub async fn read_header<R: AsyncRead + Unpin>(stream: &mut R) -> Result<Source, ProxyError> {
    let read = async {
        let mut fixed = [0u8; 16];
        stream
            .read_exact(&mut fixed)
            .await
            .map_err(|e| ProxyError::Io(e.to_string()))?;
        let (version_command, family, length) = parse_fixed(&fixed)?;
        let mut block = vec![0u8; length];
        stream
            .read_exact(&mut block)
            .await
            .map_err(|e| ProxyError::Io(e.to_string()))?;
        parse_addresses(version_command, family, &block)
    };
    tokio::time::timeout(HEADER_TIMEOUT, read)
        .await
        .map_err(|_| ProxyError::Io("timed out".into()))?
}

/// Encodes a `PROXY` header for `client` (what a load balancer sends; for tests and the
/// benchmark's proxy mode).
pub fn encode(client: SocketAddr, server: SocketAddr) -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    out.push(0x21);
    match (client, server) {
        (SocketAddr::V4(c), SocketAddr::V4(s)) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&c.ip().octets());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&c.port().to_be_bytes());
            out.extend_from_slice(&s.port().to_be_bytes());
        }
        (c, s) => {
            let v6 = |a: SocketAddr| match a.ip() {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(c).octets());
            out.extend_from_slice(&v6(s).octets());
            out.extend_from_slice(&c.port().to_be_bytes());
            out.extend_from_slice(&s.port().to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;

    async fn read(bytes: &[u8]) -> Result<Source, ProxyError> {
        let mut cursor = bytes;
        read_header(&mut cursor).await
    }

    #[tokio::test]
    async fn v4_and_v6_headers_give_the_client() {
        let client: SocketAddr = "10.1.2.3:51000".parse().unwrap();
        let server: SocketAddr = "192.168.0.1:18443".parse().unwrap();
        assert_eq!(
            read(&encode(client, server)).await.unwrap(),
            Source::Client(client)
        );
        let client6: SocketAddr = "[fd00::7]:4000".parse().unwrap();
        let server6: SocketAddr = "[fd00::1]:18443".parse().unwrap();
        assert_eq!(
            read(&encode(client6, server6)).await.unwrap(),
            Source::Client(client6)
        );
        // TLVs after the addresses are skipped.
        let mut with_tlv = encode(client, server);
        with_tlv[15] = 12 + 5;
        with_tlv.extend_from_slice(&[0x04, 0x00, 0x02, 0xAB, 0xCD]);
        assert_eq!(read(&with_tlv).await.unwrap(), Source::Client(client));
    }

    #[tokio::test]
    async fn local_and_unspecified_use_the_peer() {
        let mut local = SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
        assert_eq!(read(&local).await.unwrap(), Source::Local);
    }

    #[tokio::test]
    async fn malformed_headers_are_refused() {
        let client: SocketAddr = "10.1.2.3:51000".parse().unwrap();
        let server: SocketAddr = "192.168.0.1:18443".parse().unwrap();
        let good = encode(client, server);
        // A TLS ClientHello is not a PROXY header.
        assert_eq!(
            read(&[
                0x16, 0x03, 0x01, 0x02, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
            ])
            .await,
            Err(ProxyError::Signature)
        );
        // The text form (version 1) is not accepted.
        assert_eq!(
            read(b"PROXY TCP4 10.1.2.3 10.0.0.1 1 2\r\n").await,
            Err(ProxyError::Signature)
        );
        let mut version = good.clone();
        version[12] = 0x31;
        assert_eq!(read(&version).await, Err(ProxyError::Version(0x31)));
        let mut family = good.clone();
        family[13] = 0x31;
        assert_eq!(read(&family).await, Err(ProxyError::Family(0x31)));
        let mut short = good.clone();
        short[15] = 4;
        short.truncate(16 + 4);
        assert_eq!(read(&short).await, Err(ProxyError::Length(4)));
        let mut huge = good.clone();
        huge[14] = 0xFF;
        assert!(matches!(read(&huge).await, Err(ProxyError::Length(_))));
        assert!(matches!(read(&good[..20]).await, Err(ProxyError::Io(_))));
    }
}
