//! Stored mail in S3: the objects SES's receipt rule writes under `inbound/`.

use aws_sdk_s3::Client;
use bytes::Bytes;

use super::store_error;
use mailroom::ports::{FetchError, MailLocation, MailStore, StoreError};

/// Reads raw messages from S3.
#[derive(Debug, Clone)]
pub struct S3MailStore {
    client: Client,
}

impl S3MailStore {
    /// Uses a client built once at init.
    pub fn new(client: Client) -> S3MailStore {
        S3MailStore { client }
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl MailStore for S3MailStore {
    async fn fetch(&self, location: &MailLocation) -> Result<Bytes, FetchError> {
        let where_ = format!("s3://{}/{}", location.bucket, location.key);
        let output = match self
            .client
            .get_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Err(FetchError::NotFound(where_));
            }
            Err(error) => return Err(store_error(format!("cannot read {where_}"), error).into()),
        };
        // Read into one buffer of the announced size: collecting the chunks first and joining them after
        // would hold the message twice at the peak.
        let expected = output
            .content_length()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0);
        let mut raw = bytes::BytesMut::with_capacity(expected);
        let mut body = output.body;
        while let Some(chunk) = body.try_next().await.map_err(|error| {
            FetchError::Store(StoreError::retryable(
                format!("reading {where_} was cut short"),
                error,
            ))
        })? {
            raw.extend_from_slice(&chunk);
        }
        Ok(raw.freeze())
    }
}

impl mailroom::ports::ObjectStore for S3MailStore {
    async fn object_size(&self, location: &MailLocation) -> Result<Option<u64>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .send()
            .await
        {
            Ok(head) => Ok(head.content_length().and_then(|n| u64::try_from(n).ok())),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(error) => Err(store_error(
                format!("cannot look up s3://{}/{}", location.bucket, location.key),
                error,
            )),
        }
    }

    async fn put_object(
        &self,
        location: &MailLocation,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), StoreError> {
        // The bucket's default encryption (SSE-KMS with the stack key) applies to every object.
        self.client
            .put_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .content_type(content_type)
            .body(bytes.into())
            .send()
            .await
            .map_err(|e| {
                store_error(
                    format!("cannot store s3://{}/{}", location.bucket, location.key),
                    e,
                )
            })?;
        Ok(())
    }
}
