//! A proxy's URL, parsed (`http://`, `socks5://`, `socks5h://`), and the
//! tunnels opened through it: HTTP CONNECT and the SOCKS5 handshake. Its
//! password is never shown ([`ProxyUrl::redacted`]).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest proxy answer to a CONNECT (the status line and headers).
const CONNECT_REPLY_MAX: usize = 8 << 10;

/// How a proxy is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// HTTP proxy: a `CONNECT host:port` tunnel.
    Http,
    /// SOCKS5, names resolved here (`socks5://`).
    Socks5,
    /// SOCKS5, names resolved by the proxy (`socks5h://`).
    Socks5h,
}

/// A parsed proxy URL. `Debug` and [`Self::redacted`] never show the password.
#[derive(Clone)]
pub struct ProxyUrl {
    /// How it is spoken to.
    pub kind: ProxyKind,
    /// Proxy host (an IPv6 address without brackets).
    pub host: String,
    /// Proxy port.
    pub port: u16,
    /// User name and password, percent-decoded.
    pub(super) auth: Option<(String, String)>,
    /// The URL as configured (with its password: for reqwest only).
    raw: String,
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl ProxyUrl {
    /// Parses `http://[user:pass@]host:port`, `socks5://…`, `socks5h://…`.
    /// The error never repeats the password.
    pub fn parse(url: &str) -> Result<ProxyUrl, String> {
        let shown = crate::util::redact_url(url);
        let parsed = reqwest::Url::parse(url.trim()).map_err(|e| format!("`{shown}` is not a URL ({e})"))?;
        let kind = match parsed.scheme() {
            "http" => ProxyKind::Http,
            "socks5" => ProxyKind::Socks5,
            "socks5h" => ProxyKind::Socks5h,
            "https" => return Err(format!("`{shown}`: TLS to the proxy itself is not supported; use http:// (the CONNECT tunnel carries Google's TLS end to end)")),
            other => return Err(format!("`{shown}`: unsupported scheme `{other}`; expected http://, socks5:// or socks5h://")),
        };
        let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| format!("`{shown}` names no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = parsed.port().unwrap_or(match kind {
            ProxyKind::Http => 80,
            _ => 1080,
        });
        if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
            return Err(format!("`{shown}`: a proxy URL is scheme://[user:pass@]host:port, without a path"));
        }
        let decode = |s: &str| percent_decode(s);
        let auth = (!parsed.username().is_empty()).then(|| (decode(parsed.username()), decode(parsed.password().unwrap_or(""))));
        Ok(ProxyUrl { kind, host, port, auth, raw: url.trim().to_string() })
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> String {
        crate::util::redact_url(&self.raw)
    }

    /// `scheme://host:port`, for messages.
    pub fn endpoint(&self) -> String {
        let scheme = match self.kind {
            ProxyKind::Http => "http",
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Socks5h => "socks5h",
        };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    /// A reqwest proxy for every scheme (credentials from the URL).
    pub fn reqwest_proxy(&self) -> reqwest::Result<reqwest::Proxy> {
        reqwest::Proxy::all(self.raw.as_str())
    }

    /// A TCP stream to `host:port` through the proxy, its handshake done
    /// within `timeout`.
    pub async fn open(&self, host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
        match tokio::time::timeout(timeout, self.open_inner(host, port)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("proxy {} did not open a tunnel to {host}:{port} within {}s", self.endpoint(), timeout.as_secs()))),
        }
    }

    async fn open_inner(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        let mut s = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("cannot reach proxy {}: {e}", self.endpoint())))?;
        s.set_nodelay(true)?;
        match self.kind {
            ProxyKind::Http => self.http_connect(&mut s, host, port).await?,
            ProxyKind::Socks5 | ProxyKind::Socks5h => self.socks5_connect(&mut s, host, port).await?,
        }
        Ok(s)
    }

    async fn http_connect(&self, s: &mut TcpStream, host: &str, port: u16) -> io::Result<()> {
        use base64::Engine;
        let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some((user, pass)) = &self.auth {
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            req.push_str(&format!("Proxy-Authorization: Basic {b64}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await?;
        // Byte by byte up to the blank line: nothing of the tunnel is read.
        let mut head = Vec::with_capacity(256);
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).await? == 0 || head.len() > CONNECT_REPLY_MAX {
                return Err(io::Error::new(io::ErrorKind::ConnectionAborted, format!("proxy {} closed the connection before answering CONNECT", self.endpoint())));
            }
            head.push(b[0]);
        }
        let line = String::from_utf8_lossy(&head);
        let line = line.lines().next().unwrap_or("");
        let status = line.split_whitespace().nth(1).and_then(|c| c.parse::<u16>().ok()).unwrap_or(0);
        if !(200..300).contains(&status) {
            return Err(io::Error::new(io::ErrorKind::ConnectionRefused, format!("proxy {} refused CONNECT {authority}: {}", self.endpoint(), crate::util::truncate_utf8(line.trim(), 200))));
        }
        Ok(())
    }

    async fn socks5_connect(&self, s: &mut TcpStream, host: &str, port: u16) -> io::Result<()> {
        let fail = |what: String| io::Error::new(io::ErrorKind::ConnectionRefused, format!("proxy {}: {what}", self.endpoint()));
        // Greeting: no authentication, and user/password when we have them.
        let greeting: &[u8] = if self.auth.is_some() { &[5, 2, 0, 2] } else { &[5, 1, 0] };
        s.write_all(greeting).await?;
        let mut reply = [0u8; 2];
        s.read_exact(&mut reply).await?;
        if reply[0] != 5 {
            return Err(fail("not a SOCKS5 proxy".into()));
        }
        match reply[1] {
            0 => {}
            2 => {
                let (user, pass) = self.auth.as_ref().ok_or_else(|| fail("asks for a user and password; none configured".into()))?;
                if user.len() > 255 || pass.len() > 255 {
                    return Err(fail("user or password longer than 255 bytes".into()));
                }
                let mut m = vec![1, user.len() as u8];
                m.extend_from_slice(user.as_bytes());
                m.push(pass.len() as u8);
                m.extend_from_slice(pass.as_bytes());
                s.write_all(&m).await?;
                let mut r = [0u8; 2];
                s.read_exact(&mut r).await?;
                if r[1] != 0 {
                    return Err(fail("refused the user and password".into()));
                }
            }
            _ => return Err(fail("accepts none of our authentication methods".into())),
        }
        let mut req = vec![5, 1, 0];
        match host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => {
                req.push(1);
                req.extend_from_slice(&ip.octets());
            }
            Ok(std::net::IpAddr::V6(ip)) => {
                req.push(4);
                req.extend_from_slice(&ip.octets());
            }
            Err(_) if self.kind == ProxyKind::Socks5h => {
                if host.len() > 255 {
                    return Err(fail("host name longer than 255 bytes".into()));
                }
                req.push(3);
                req.push(host.len() as u8);
                req.extend_from_slice(host.as_bytes());
            }
            Err(_) => {
                let addr = tokio::net::lookup_host((host, port))
                    .await?
                    .next()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address")))?;
                match addr.ip() {
                    std::net::IpAddr::V4(ip) => {
                        req.push(1);
                        req.extend_from_slice(&ip.octets());
                    }
                    std::net::IpAddr::V6(ip) => {
                        req.push(4);
                        req.extend_from_slice(&ip.octets());
                    }
                }
            }
        }
        req.extend_from_slice(&port.to_be_bytes());
        s.write_all(&req).await?;
        let mut head = [0u8; 4];
        s.read_exact(&mut head).await?;
        if head[1] != 0 {
            let why = match head[1] {
                1 => "general failure",
                2 => "not allowed by its rules",
                3 => "network unreachable",
                4 => "host unreachable",
                5 => "connection refused",
                6 => "TTL expired",
                7 => "command not supported",
                8 => "address type not supported",
                _ => "unknown error",
            };
            return Err(fail(format!("could not connect to {host}:{port}: {why}")));
        }
        let skip = match head[3] {
            1 => 4,
            4 => 16,
            3 => s.read_u8().await? as usize,
            _ => return Err(fail("malformed reply".into())),
        };
        let mut rest = vec![0u8; skip + 2];
        s.read_exact(&mut rest).await?;
        Ok(())
    }
}

/// `%XX` escapes decoded (a user name or password in a proxy URL).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
