//! `mailroom dev`'s stand-in for SES sending: every message goes to a folder as an `.eml` file, named by
//! the id the sender returns, and nowhere else.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use mailroom::ports::{MailSender, SendMailError, SendOptions, Sent};

/// The outbox folder.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    /// Writes into `dir`, made when the first message is sent.
    pub fn new(dir: impl Into<PathBuf>) -> Outbox {
        Outbox { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a sent message with this id is in.
    pub fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.eml"))
    }

    fn write(&self, id: &str, raw: &[u8]) -> std::io::Result<()> {
        super::private::create_dir_all(&self.dir)?;
        // Written aside and renamed, so a reader never sees half a message.
        let partial = self.dir.join(format!(".{id}.partial"));
        let mut file = super::private::create(&partial)?;
        file.write_all(raw)?;
        file.sync_all()?;
        std::fs::rename(&partial, self.path_of(id))
    }
}

/// A new id: the time, so files sort in the order they were sent, and a random part.
fn new_id() -> String {
    let mut random = [0u8; 6];
    let _ = getrandom::fill(&mut random);
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{suffix}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
    )
}

impl MailSender for Outbox {
    async fn send_raw(
        &self,
        _from: &str,
        _to: &[String],
        raw: Bytes,
        options: &SendOptions,
    ) -> Result<Sent, SendMailError> {
        let id = new_id();
        self.write(&id, &raw).map_err(|e| {
            SendMailError::Retryable(format!(
                "cannot write to the outbox {}: {e}",
                self.dir.display()
            ))
        })?;
        Ok(Sent {
            message_id: id,
            configuration_set: Some(dev_configuration_set(options).to_owned()),
        })
    }
}

/// The name `mailroom dev` records for the tracking a message asked for, as if the stack's sets were
/// there: nothing is tracked locally; opens and clicks are simulated.
pub fn dev_configuration_set(options: &SendOptions) -> &'static str {
    match (options.track_opens, options.track_clicks) {
        (true, true) => "dev-tracked",
        (true, false) => "dev-opens",
        (false, true) => "dev-clicks",
        (false, false) => "dev-sending",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sent_messages_land_in_the_folder_byte_for_byte() {
        let dir = std::env::temp_dir().join(format!("mailroom-outbox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let outbox = Outbox::new(&dir);
        let raw = Bytes::from_static(b"From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n");
        let first = outbox
            .send_raw(
                "a@example.com",
                &["b@example.net".to_owned()],
                raw.clone(),
                &SendOptions::default(),
            )
            .await
            .unwrap()
            .message_id;
        let second = outbox
            .send_raw(
                "a@example.com",
                &["b@example.net".to_owned()],
                raw.clone(),
                &SendOptions::default(),
            )
            .await
            .unwrap()
            .message_id;
        assert_ne!(first, second);
        assert_eq!(std::fs::read(outbox.path_of(&first)).unwrap(), &raw[..]);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().all(|n| n.ends_with(".eml")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
