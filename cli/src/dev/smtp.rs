//! The SMTP listener of `mailroom dev`: mailin's session state machine over tokio, with STARTTLS (a
//! self-signed certificate made at first start), SIZE, 8BITMIME and PIPELINING, standing in for SES.
//!
//! The message text after DATA is read here, line by line, and only whole lines reach mailin: a line is
//! one line however long it is, so no part of a long line can pass for the end of the message (SMTP
//! smuggling). The end is CRLF `.` CRLF only; a dot line next to a bare LF (`\n.\n`, `\r\n.\n`,
//! `\n.\r\n`), which other servers may read as the end, is refused and the connection closed, as Postfix,
//! Exim and Sendmail now do. Recipients per message, connections at once and idle time are capped.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use mailin::{Action, Handler, Response, SessionBuilder};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// Largest message accepted, as SES's: 40 MB.
pub const MAX_MESSAGE_BYTES: usize = 40 * 1024 * 1024;

/// [`MAX_MESSAGE_BYTES`] as people read it.
pub const MAX_MESSAGE_MIB: usize = MAX_MESSAGE_BYTES / (1024 * 1024);

/// Longest command line read; longer ones close the connection.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Bytes read at once while a DATA line is assembled.
const DATA_CHUNK: usize = 64 * 1024;

/// What one listener allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Recipients of one message; more are answered 452 (RFC 5321's minimum is 100).
    pub max_recipients: usize,
    /// Connections served at once; one more is answered 421 and closed.
    pub max_connections: usize,
    /// How long a client may stay silent, in a command or in the message text, before it is answered 421
    /// and disconnected (RFC 5321 asks at least 5 minutes).
    pub idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_recipients: 100,
            max_connections: 32,
            idle: Duration::from_secs(300),
        }
    }
}

/// What the SMTP conversation said, for the message that was accepted.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The client's address.
    pub remote_ip: IpAddr,
    /// The name the client gave in HELO/EHLO.
    pub helo: String,
    /// MAIL FROM (empty for a null sender).
    pub from: String,
    /// Every RCPT TO.
    pub recipients: Vec<String>,
    /// Whether the message came over STARTTLS.
    pub tls: bool,
}

/// Where accepted mail goes.
pub trait Intake: Send + Sync + 'static {
    /// Whether a route takes this recipient; no route means 550 at RCPT.
    fn accepts(&self, recipient: &str) -> bool;
    /// Stores an accepted message; returns its id for the 250 reply, or why it could not be stored.
    fn receive(&self, envelope: Envelope, data: Vec<u8>) -> Result<String, String>;
}

/// Serves SMTP on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    tls: TlsAcceptor,
    name: String,
    intake: Arc<dyn Intake>,
    limits: Limits,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let Ok((mut stream, peer)) = listener.accept().await else {
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"421 4.7.0 too many connections; try again later\r\n")
                    .await;
                let _ = stream.shutdown().await;
            });
            continue;
        };
        let tls = tls.clone();
        let intake = intake.clone();
        let name = name.clone();
        tokio::spawn(async move {
            if let Err(error) = connection(stream, peer, tls, name, intake, limits).await {
                tracing::debug!(error = %error, "SMTP connection ended with an error");
            }
            drop(slot);
        });
    }
}

struct Session {
    intake: Arc<dyn Intake>,
    remote_ip: IpAddr,
    helo: String,
    from: String,
    recipients: Vec<String>,
    data: Vec<u8>,
    max_recipients: usize,
    // Set by the connection when the message text passes the size limit, which it counts as it reads
    // (what is over is never handed on); mailin keeps the handler to itself.
    too_large: Arc<AtomicBool>,
    // Set by the connection once STARTTLS completes.
    tls: Arc<AtomicBool>,
}

impl Handler for Session {
    fn helo(&mut self, _ip: IpAddr, domain: &str) -> Response {
        self.helo = domain.to_owned();
        mailin::response::OK
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.from = if from == NULL_SENDER {
            String::new()
        } else {
            from.to_owned()
        };
        self.recipients.clear();
        mailin::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        if self.recipients.len() >= self.max_recipients {
            return Response::custom(
                452,
                format!(
                    "4.5.3 too many recipients: at most {} per message",
                    self.max_recipients
                ),
            );
        }
        if self.intake.accepts(to) {
            self.recipients.push(to.to_owned());
            mailin::response::OK
        } else {
            Response::custom(550, format!("5.1.1 <{to}>: no route takes this recipient"))
        }
    }

    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        self.data.clear();
        self.too_large.store(false, Ordering::Relaxed);
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.data.len() + buf.len() > MAX_MESSAGE_BYTES {
            // Read to the end, keep nothing: the answer at the end says why.
            self.too_large.store(true, Ordering::Relaxed);
            self.data = Vec::new();
        } else if !self.too_large.load(Ordering::Relaxed) {
            self.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if self.too_large.load(Ordering::Relaxed) {
            self.data = Vec::new();
            return transaction_over(Response::custom(
                552,
                format!("5.3.4 the message is over the {MAX_MESSAGE_MIB} MiB limit"),
            ));
        }
        let envelope = Envelope {
            remote_ip: self.remote_ip,
            helo: self.helo.clone(),
            from: self.from.clone(),
            recipients: std::mem::take(&mut self.recipients),
            tls: self.tls.load(Ordering::Relaxed),
        };
        match self
            .intake
            .receive(envelope, std::mem::take(&mut self.data))
        {
            Ok(id) => Response::custom(250, format!("2.0.0 Ok: queued as {id}")),
            Err(why) => transaction_over(Response::custom(
                451,
                format!("4.3.0 cannot store the message: {why}"),
            )),
        }
    }
}

/// A refusal at the end of DATA that still ends the transaction. mailin keeps its state on an error
/// answer, which after DATA would swallow every later command as message text; RFC 5321 wants the
/// session back where a new MAIL can start.
fn transaction_over(mut refusal: Response) -> Response {
    refusal.is_error = false;
    refusal
}

/// The answer to EHLO: mailin's extensions plus SIZE and PIPELINING, which its command loop handles (one
/// command per line, answered in order) but does not announce.
fn ehlo_response(name: &str, tls_active: bool) -> Vec<u8> {
    let mut lines = vec![
        format!("{name} greets you"),
        format!("SIZE {MAX_MESSAGE_BYTES}"),
        "8BITMIME".to_owned(),
        "PIPELINING".to_owned(),
    ];
    if !tls_active {
        lines.push("STARTTLS".to_owned());
    }
    let last = lines.len() - 1;
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| format!("250{}{line}\r\n", if i == last { ' ' } else { '-' }))
        .collect::<String>()
        .into_bytes()
}

/// What became of a `MAIL FROM` line before mailin sees it.
#[derive(Debug, PartialEq, Eq)]
enum MailFrom {
    /// Not a MAIL command: pass the line on as it is.
    Other,
    /// The line mailin's parser takes: the path, and `BODY=` when given.
    Rewritten(Vec<u8>),
    /// `SIZE=` declares more than the limit.
    TooLarge,
}

/// Stands in for an empty reverse path, which mailin's parser refuses; an address always has an `@`.
const NULL_SENDER: &str = "null-sender";

/// mailin's parser takes `MAIL FROM:<path>` and an optional `BODY=`, nothing else, and no empty path. Mail
/// servers send `SIZE=` (we announce SIZE), the null sender `<>` (every bounce), and some a space after
/// the colon. This reads the command as RFC 5321 and RFC 1870 have it and hands mailin the part it parses.
fn mail_from(line: &[u8]) -> MailFrom {
    let Some(rest) = line
        .get(..10)
        .filter(|head| head.eq_ignore_ascii_case(b"MAIL FROM:"))
        .and_then(|_| line.get(10..))
    else {
        return MailFrom::Other;
    };
    let rest = String::from_utf8_lossy(rest);
    let rest = rest.trim_start();
    let Some(inner) = rest.strip_prefix('<') else {
        return MailFrom::Other;
    };
    let Some(close) = inner.find('>') else {
        return MailFrom::Other;
    };
    let path = &inner[..close];
    let mut body = None;
    for parameter in inner[close + 1..].split_whitespace() {
        let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        if name.eq_ignore_ascii_case("SIZE") {
            // Digits too many for a u64 are a size over any limit.
            let too_large = match value.parse::<u64>() {
                Ok(size) => size > MAX_MESSAGE_BYTES as u64,
                Err(_) => !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
            };
            if too_large {
                return MailFrom::TooLarge;
            }
        } else if name.eq_ignore_ascii_case("BODY") {
            body = Some(value.to_owned());
        }
    }
    let path = if path.is_empty() { NULL_SENDER } else { path };
    let mut rewritten = format!("MAIL FROM:<{path}>");
    if let Some(body) = body {
        rewritten.push_str(" BODY=");
        rewritten.push_str(&body);
    }
    rewritten.push_str("\r\n");
    MailFrom::Rewritten(rewritten.into_bytes())
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: TlsAcceptor,
    name: String,
    intake: Arc<dyn Intake>,
    limits: Limits,
) -> anyhow::Result<()> {
    let tls_done = Arc::new(AtomicBool::new(false));
    let too_large = Arc::new(AtomicBool::new(false));
    let mut session = SessionBuilder::new(name.clone()).enable_start_tls().build(
        peer.ip(),
        Session {
            intake,
            remote_ip: peer.ip(),
            helo: String::new(),
            from: String::new(),
            recipients: Vec::new(),
            data: Vec::new(),
            max_recipients: limits.max_recipients,
            too_large: too_large.clone(),
            tls: tls_done.clone(),
        },
    );
    let mut plain = BufReader::new(stream);
    plain.write_all(&session.greeting().buffer()?).await?;
    let conversation = Conversation {
        name: &name,
        limits,
        too_large: &too_large,
    };
    if conversation
        .converse(&mut plain, &mut session, false)
        .await?
    {
        let tls_stream = tokio::time::timeout(limits.idle, tls.accept(plain.into_inner()))
            .await
            .context("TLS handshake timed out")?
            .context("TLS handshake")?;
        session.tls_active();
        tls_done.store(true, Ordering::Relaxed);
        let mut secure = BufReader::new(tls_stream);
        conversation
            .converse(&mut secure, &mut session, true)
            .await?;
    }
    Ok(())
}

/// How one line of the message text ended.
#[derive(Debug, PartialEq, Eq)]
enum DataLine {
    /// A whole line (ending in LF, or the last bytes before the stream ended) is in the buffer.
    Whole,
    /// The line was longer than the room left for the message; it was read to its end and dropped.
    Dropped,
    /// The stream ended.
    End,
    /// The client said nothing for the idle limit.
    Idle,
}

/// What stays the same for the whole of one connection.
struct Conversation<'a> {
    name: &'a str,
    limits: Limits,
    too_large: &'a AtomicBool,
}

impl Conversation<'_> {
    /// Runs the conversation; true when the client asked for STARTTLS and the stream must be upgraded.
    async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut BufReader<S>,
        session: &mut mailin::Session<Session>,
        tls_active: bool,
    ) -> anyhow::Result<bool> {
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            let mut limited = AsyncReadExt::take(&mut *stream, MAX_LINE_BYTES as u64 + 1);
            let read = limited.read_until(b'\n', &mut line);
            let read = match tokio::time::timeout(self.limits.idle, read).await {
                Ok(read) => read?,
                Err(_) => return idle(stream).await,
            };
            if read == 0 {
                return Ok(false);
            }
            if line.len() > MAX_LINE_BYTES {
                stream.write_all(b"500 5.5.2 line too long\r\n").await?;
                return Ok(false);
            }
            let command = match mail_from(&line) {
                MailFrom::Other => None,
                MailFrom::Rewritten(command) => Some(command),
                MailFrom::TooLarge => {
                    stream
                        .write_all(
                            format!(
                                "552 5.3.4 the message is over the {MAX_MESSAGE_MIB} MiB limit\r\n"
                            )
                            .as_bytes(),
                        )
                        .await?;
                    stream.flush().await?;
                    continue;
                }
            };
            let is_ehlo = line
                .get(..4)
                .is_some_and(|c| c.eq_ignore_ascii_case(b"EHLO"));
            let mut response = session.process(command.as_deref().unwrap_or(&line));
            if response.code == 354 {
                stream.write_all(&response.buffer()?).await?;
                stream.flush().await?;
                match self.message_text(stream, session).await? {
                    Some(end) => response = end,
                    None => return Ok(false),
                }
            }
            match response.action {
                Action::NoReply => continue,
                Action::Close => {
                    stream.write_all(&response.buffer()?).await?;
                    stream.flush().await?;
                    return Ok(false);
                }
                Action::UpgradeTls => {
                    stream.write_all(&response.buffer()?).await?;
                    stream.flush().await?;
                    return Ok(true);
                }
                Action::Reply => {
                    if is_ehlo && response.code == 250 {
                        stream
                            .write_all(&ehlo_response(self.name, tls_active))
                            .await?;
                    } else {
                        stream.write_all(&response.buffer()?).await?;
                    }
                    stream.flush().await?;
                }
            }
        }
    }

    /// Reads the message text after a 354, whole line by whole line, to the CRLF `.` CRLF that ends it,
    /// handing mailin every line within the size limit and then the end; mailin's answer to the end is
    /// returned. `None` when the connection must close: the stream ended, the client went idle, or a
    /// bare-LF dot was refused (already answered).
    async fn message_text<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut BufReader<S>,
        session: &mut mailin::Session<Session>,
    ) -> anyhow::Result<Option<Response>> {
        let mut line = Vec::with_capacity(1024);
        let mut size = 0usize;
        let mut after_bare_lf = false;
        loop {
            // Room for the rest of the message, and for the end line however full it is.
            let room = MAX_MESSAGE_BYTES.saturating_sub(size).max(3);
            match read_data_line(stream, &mut line, room, self.limits.idle).await? {
                DataLine::Whole => {}
                DataLine::Dropped => {
                    self.too_large.store(true, Ordering::Relaxed);
                    size = MAX_MESSAGE_BYTES;
                    after_bare_lf = false;
                    continue;
                }
                DataLine::End => return Ok(None),
                DataLine::Idle => {
                    idle(stream).await?;
                    return Ok(None);
                }
            }
            let bare_lf = line.ends_with(b"\n") && !line.ends_with(b"\r\n");
            let dot = line == b".\r\n" || line == b".\n";
            if dot && (bare_lf || after_bare_lf) {
                stream
                    .write_all(
                        b"554 5.5.2 a dot line next to a bare LF is no end of data; end the message \
                          with CRLF.CRLF (closing)\r\n",
                    )
                    .await?;
                stream.flush().await?;
                return Ok(None);
            }
            after_bare_lf = bare_lf;
            if line == b".\r\n" {
                return Ok(Some(session.process(&line)));
            }
            size = size.saturating_add(line.len());
            if size > MAX_MESSAGE_BYTES {
                self.too_large.store(true, Ordering::Relaxed);
                continue;
            }
            // A whole line: mailin takes one leading dot off, and nothing here can end the message.
            let response = session.process(&line);
            if response.action != Action::NoReply {
                // mailin could not keep the text: say so, and end the transaction as a reply to DATA.
                return Ok(Some(response));
            }
        }
    }
}

/// Reads one line of the message text into `line`, whole however long it is, keeping at most `room`
/// bytes of it (a longer one is read to its end and dropped).
async fn read_data_line<S: AsyncRead + Unpin>(
    stream: &mut BufReader<S>,
    line: &mut Vec<u8>,
    room: usize,
    idle: Duration,
) -> std::io::Result<DataLine> {
    line.clear();
    let mut dropped = false;
    let mut chunk = Vec::with_capacity(256);
    loop {
        chunk.clear();
        let mut limited = AsyncReadExt::take(&mut *stream, DATA_CHUNK as u64);
        let read = limited.read_until(b'\n', &mut chunk);
        let read = match tokio::time::timeout(idle, read).await {
            Ok(read) => read?,
            Err(_) => return Ok(DataLine::Idle),
        };
        if read == 0 {
            return Ok(DataLine::End);
        }
        if !dropped && line.len() + chunk.len() > room {
            dropped = true;
            *line = Vec::new();
        }
        if !dropped {
            line.extend_from_slice(&chunk);
        }
        if chunk.ends_with(b"\n") {
            return Ok(if dropped {
                DataLine::Dropped
            } else {
                DataLine::Whole
            });
        }
    }
}

/// Tells a silent client the connection is closing.
async fn idle<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
) -> anyhow::Result<bool> {
    stream
        .write_all(b"421 4.4.2 mailroom-dev: idle too long, closing the connection\r\n")
        .await?;
    stream.flush().await?;
    Ok(false)
}

/// A TLS acceptor for a self-signed certificate kept in `dir` (made at first start).
pub fn tls_acceptor(dir: &std::path::Path) -> anyhow::Result<TlsAcceptor> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if !cert_path.exists() || !key_path.exists() {
        mailroom_local::private::create_dir_all(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .context("cannot make a self-signed certificate")?;
        super::write_private(&cert_path, certified.cert.pem().as_bytes())?;
        super::write_private(&key_path, certified.signing_key.serialize_pem().as_bytes())?;
    }
    let cert_pem = std::fs::read(&cert_path)?;
    let key_pem = std::fs::read(&key_path)?;
    let certs = rustls_pki_types::pem::PemObject::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<rustls_pki_types::CertificateDer<'static>>, _>>()
        .context("cannot read the certificate")?;
    let key = <rustls_pki_types::PrivateKeyDer<'static> as rustls_pki_types::pem::PemObject>::from_pem_slice(&key_pem)
        .context("cannot read the private key")?;
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and key do not fit")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ehlo_names_the_extensions() {
        let text = String::from_utf8(ehlo_response("mailroom-dev", false)).unwrap_or_default();
        assert!(text.starts_with("250-mailroom-dev greets you\r\n"));
        assert!(text.contains("250-SIZE 41943040\r\n"));
        assert!(text.contains("250-8BITMIME\r\n"));
        assert!(text.contains("250-PIPELINING\r\n"));
        assert!(text.ends_with("250 STARTTLS\r\n"));
        let secure = String::from_utf8(ehlo_response("x", true)).unwrap_or_default();
        assert!(!secure.contains("STARTTLS"));
        assert!(secure.ends_with("250 PIPELINING\r\n"));
    }

    #[test]
    fn mail_from_is_read_as_rfc_5321_has_it() {
        let rewritten = |line: &[u8]| match mail_from(line) {
            MailFrom::Rewritten(bytes) => String::from_utf8(bytes).unwrap_or_default(),
            other => format!("{other:?}"),
        };
        assert_eq!(
            rewritten(b"MAIL FROM:<a@b> SIZE=1000\r\n"),
            "MAIL FROM:<a@b>\r\n"
        );
        assert_eq!(
            rewritten(b"mail from:<a@b> size=12 BODY=8BITMIME\r\n"),
            "MAIL FROM:<a@b> BODY=8BITMIME\r\n"
        );
        assert_eq!(
            rewritten(b"MAIL FROM:<>\r\n"),
            "MAIL FROM:<null-sender>\r\n"
        );
        assert_eq!(rewritten(b"MAIL FROM: <a@b>\r\n"), "MAIL FROM:<a@b>\r\n");
        assert_eq!(
            mail_from(b"MAIL FROM:<a@b> SIZE=99999999999\r\n"),
            MailFrom::TooLarge
        );
        assert_eq!(
            mail_from(b"MAIL FROM:<a@b> SIZE=999999999999999999999999\r\n"),
            MailFrom::TooLarge
        );
        assert_eq!(mail_from(b"RCPT TO:<a@b>\r\n"), MailFrom::Other);
        assert_eq!(mail_from(b"MAIL FROM:a@b\r\n"), MailFrom::Other);
        assert_eq!(mail_from(b"MAIL\r\n"), MailFrom::Other);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod limit_tests {
    use super::*;

    /// Takes every recipient and every message.
    struct Accepting;

    impl Intake for Accepting {
        fn accepts(&self, _recipient: &str) -> bool {
            true
        }

        fn receive(&self, _envelope: Envelope, _data: Vec<u8>) -> Result<String, String> {
            Ok("m1".to_owned())
        }
    }

    async fn listener(limits: Limits) -> SocketAddr {
        let dir = std::env::temp_dir().join(format!(
            "mailroom-smtp-limits-{}-{}",
            std::process::id(),
            limits.max_connections
        ));
        mailroom_local::private::create_dir_all(&dir).unwrap();
        let tls = tls_acceptor(&dir).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(
            listener,
            tls,
            "mailroom-dev".to_owned(),
            Arc::new(Accepting),
            limits,
        ));
        addr
    }

    async fn said(stream: &mut tokio::net::TcpStream) -> String {
        let mut all = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut all)).await;
        String::from_utf8_lossy(&all).into_owned()
    }

    #[tokio::test]
    async fn a_silent_client_is_told_and_disconnected() {
        let addr = listener(Limits {
            idle: Duration::from_millis(200),
            max_connections: 2,
            ..Limits::default()
        })
        .await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        // Silent in the middle of a message too.
        stream
            .write_all(
                b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\npart of a li",
            )
            .await
            .unwrap();
        let text = said(&mut stream).await;
        assert!(text.contains("354"), "{text}");
        assert!(
            text.ends_with("421 4.4.2 mailroom-dev: idle too long, closing the connection\r\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_connection_past_the_cap_is_refused() {
        let addr = listener(Limits {
            max_connections: 1,
            ..Limits::default()
        })
        .await;
        let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut greeting = [0u8; 64];
        let read = first.read(&mut greeting).await.unwrap();
        assert!(greeting[..read].starts_with(b"220"));
        let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert_eq!(
            said(&mut second).await,
            "421 4.7.0 too many connections; try again later\r\n"
        );
        // Once the first leaves, there is room again.
        first.write_all(b"QUIT\r\n").await.unwrap();
        assert!(said(&mut first).await.starts_with("221"));
        let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
        let read = third.read(&mut greeting).await.unwrap();
        assert!(
            greeting[..read].starts_with(b"220"),
            "{:?}",
            &greeting[..read]
        );
    }
}
