//! The SMTP listener of `mailroom dev`: mailin's session state machine over tokio, with STARTTLS (a
//! self-signed certificate made at first start), SIZE, 8BITMIME and PIPELINING, standing in for SES.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use mailin::{Action, Handler, Response, SessionBuilder};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Largest message accepted, as SES's: 40 MB.
pub const MAX_MESSAGE_BYTES: usize = 40 * 1024 * 1024;

/// [`MAX_MESSAGE_BYTES`] as people read it.
pub const MAX_MESSAGE_MIB: usize = MAX_MESSAGE_BYTES / (1024 * 1024);

/// Longest command line read; longer ones close the connection.
const MAX_LINE_BYTES: usize = 64 * 1024;

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
pub async fn serve(listener: TcpListener, tls: TlsAcceptor, name: String, intake: Arc<dyn Intake>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let tls = tls.clone();
        let intake = intake.clone();
        let name = name.clone();
        tokio::spawn(async move {
            if let Err(error) = connection(stream, peer, tls, name, intake).await {
                tracing::debug!(error = %error, "SMTP connection ended with an error");
            }
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
    too_large: bool,
    // Set by the connection once STARTTLS completes; mailin keeps the handler to itself.
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
        self.too_large = false;
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.data.len() + buf.len() > MAX_MESSAGE_BYTES {
            // Read to the end, keep nothing: the answer at the end says why.
            self.too_large = true;
            self.data = Vec::new();
        } else if !self.too_large {
            self.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if self.too_large {
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
) -> anyhow::Result<()> {
    let tls_done = Arc::new(AtomicBool::new(false));
    let mut session = SessionBuilder::new(name.clone()).enable_start_tls().build(
        peer.ip(),
        Session {
            intake,
            remote_ip: peer.ip(),
            helo: String::new(),
            from: String::new(),
            recipients: Vec::new(),
            data: Vec::new(),
            too_large: false,
            tls: tls_done.clone(),
        },
    );
    let mut plain = BufReader::new(stream);
    plain.write_all(&session.greeting().buffer()?).await?;
    if converse(&mut plain, &mut session, &name, false).await? {
        let tls_stream = tls
            .accept(plain.into_inner())
            .await
            .context("TLS handshake")?;
        session.tls_active();
        tls_done.store(true, Ordering::Relaxed);
        let mut secure = BufReader::new(tls_stream);
        converse(&mut secure, &mut session, &name, true).await?;
    }
    Ok(())
}

/// Runs the conversation; true when the client asked for STARTTLS and the stream must be upgraded.
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    session: &mut mailin::Session<Session>,
    name: &str,
    tls_active: bool,
) -> anyhow::Result<bool> {
    let mut line = Vec::with_capacity(256);
    let mut in_data = false;
    loop {
        line.clear();
        let read = AsyncReadExt::take(&mut *stream, MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if read == 0 {
            return Ok(false);
        }
        if line.len() > MAX_LINE_BYTES && !in_data {
            stream.write_all(b"500 5.5.2 line too long\r\n").await?;
            return Ok(false);
        }
        let command = match if in_data {
            MailFrom::Other
        } else {
            mail_from(&line)
        } {
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
        let is_ehlo = !in_data
            && line
                .get(..4)
                .is_some_and(|c| c.eq_ignore_ascii_case(b"EHLO"));
        let response = session.process(command.as_deref().unwrap_or(&line));
        if response.code == 354 {
            in_data = true;
        } else if in_data && response.action != Action::NoReply {
            in_data = false;
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
                    stream.write_all(&ehlo_response(name, tls_active)).await?;
                } else {
                    stream.write_all(&response.buffer()?).await?;
                }
                stream.flush().await?;
            }
        }
    }
}

/// A TLS acceptor for a self-signed certificate kept in `dir` (made at first start).
pub fn tls_acceptor(dir: &std::path::Path) -> anyhow::Result<TlsAcceptor> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if !cert_path.exists() || !key_path.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .context("cannot make a self-signed certificate")?;
        std::fs::write(&cert_path, certified.cert.pem())?;
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
