//! The dev store as [`mailroom::usecases::erasure`] needs it ([`AddressRecords`]): records found by address
//! through the indexed columns (by the address, and by the digest standing in for it where a route redacted
//! it), removed or overwritten by key.

use rusqlite::params;

use super::{SqliteStore, sql_error};
use mailroom::feedback::Outbound;
use mailroom::mail::envelope::normalise_address;
use mailroom::ports::{AddressRecords, RecordStore, StoreError};
use mailroom::record::{Delivery, DeliveryKey};

impl AddressRecords for SqliteStore {
    async fn deliveries_naming(&self, address: &str) -> Result<Vec<Delivery>, StoreError> {
        // Indexed lookups; the columns hold the addresses lowercased, or the digests of redacted ones
        // (`?2`: none when no address was ever redacted).
        let digest = self.lookup_key(false)?.map(|key| key.digest(address));
        self.json_rows(
            "cannot read records",
            "SELECT record FROM deliveries WHERE recipient IN (?1, ?2) AND record IS NOT NULL
             UNION
             SELECT record FROM deliveries WHERE sender IN (?1, ?2) AND record IS NOT NULL
             UNION
             SELECT record FROM deliveries WHERE from_header IN (?1, ?2) AND record IS NOT NULL
             UNION
             SELECT record FROM deliveries WHERE reply_to IN (?1, ?2) AND record IS NOT NULL
             UNION
             SELECT record FROM deliveries WHERE forward_to = ?1 AND record IS NOT NULL",
            params![normalise_address(address), digest],
        )
    }

    async fn lookup_digest(&self, address: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lookup_key(false)?.map(|key| key.digest(address)))
    }

    async fn outbound_naming(&self, address: &str) -> Result<Vec<Outbound>, StoreError> {
        self.json_rows(
            "cannot read outbound records",
            "SELECT record FROM outbound WHERE recipient = ?1
             UNION
             SELECT record FROM outbound WHERE sender = ?1
             UNION
             SELECT o.record FROM outbound o JOIN outbound_addresses a ON a.id = o.id
             WHERE a.address = ?1",
            params![normalise_address(address)],
        )
    }

    async fn delete_delivery(&self, key: &DeliveryKey) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "DELETE FROM deliveries WHERE message_id = ?1 AND delivery_id = ?2",
                params![key.message_id, key.delivery_id],
            )
            .map_err(|e| sql_error("cannot delete a record", e))?;
        Ok(())
    }

    async fn overwrite_delivery(&self, record: &Delivery) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "DELETE FROM deliveries WHERE message_id = ?1 AND delivery_id = ?2",
                params![record.message_id, record.delivery_id],
            )
            .map_err(|e| sql_error("cannot replace a record", e))?;
        self.save(record, None).await?;
        Ok(())
    }

    async fn delete_outbound(&self, id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM outbound WHERE id = ?1", params![id])
            .map_err(|e| sql_error("cannot delete an outbound record", e))?;
        self.conn()
            .execute("DELETE FROM outbound_addresses WHERE id = ?1", params![id])
            .map_err(|e| sql_error("cannot delete an outbound record", e))?;
        Ok(())
    }
}
