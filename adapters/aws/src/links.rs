//! Presigned GETs of the bucket's linkable objects, for the link endpoint.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;

use super::store_error;
use mailroom::ports::{Presigner, StoreError};

/// One bucket's objects, presigned with the function role's credentials.
#[derive(Debug, Clone)]
pub struct S3Presigner {
    client: Client,
    bucket: String,
}

impl S3Presigner {
    /// Uses a client built once at init.
    pub fn new(client: Client, bucket: impl Into<String>) -> S3Presigner {
        S3Presigner {
            client,
            bucket: bucket.into(),
        }
    }
}

impl Presigner for S3Presigner {
    async fn presign(&self, key: &str, valid_for: Duration) -> Result<Option<String>, StoreError> {
        // A link outliving its object (the lifecycle removed it) must end in the same 404 as a bad token,
        // not in S3's own error page.
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => {}
            Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found()) => {
                return Ok(None);
            }
            Err(error) => return Err(store_error("cannot look up a linked object", error)),
        }
        let config = PresigningConfig::expires_in(valid_for).map_err(|e| StoreError {
            what: format!("cannot presign: {e}"),
            retryable: false,
            source: Some(Box::new(e)),
        })?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| store_error("cannot presign a linked object", e))?;
        Ok(Some(request.uri().to_owned()))
    }
}
