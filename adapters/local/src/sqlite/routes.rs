//! Routes as the inbound use case and `mailroom routes` keep them ([`RouteStore`]): one row per pattern,
//! its route as JSON, changed in place so fields this version does not know survive.

use chrono::Utc;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

use super::{SqliteStore, serialisation, sql_error, time_text};
use mailroom::ports::{RouteStore, StoreError};
use mailroom::route::{Disabled, Pattern, Route};

impl SqliteStore {
    /// Edits one route's stored JSON in place, so fields this version does not know survive; `edit` returns
    /// false to leave it as it was. Returns whether the route exists and was changed.
    fn edit_route(
        &self,
        pattern: &Pattern,
        edit: impl FnOnce(&mut Value) -> Result<bool, StoreError>,
    ) -> Result<bool, StoreError> {
        let what = "cannot update a route";
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_error(what, e))?;
        let key = pattern.to_string();
        let json: Option<String> = tx
            .query_row(
                "SELECT route FROM routes WHERE pattern = ?1",
                params![key],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| sql_error(what, e))?;
        let Some(json) = json else {
            return Ok(false);
        };
        let mut value: Value = serde_json::from_str(&json).map_err(|e| serialisation(what, e))?;
        if !edit(&mut value)? {
            return Ok(false);
        }
        let json = serde_json::to_string(&value).map_err(|e| serialisation(what, e))?;
        tx.execute(
            "UPDATE routes SET route = ?2 WHERE pattern = ?1",
            params![key, json],
        )
        .map_err(|e| sql_error(what, e))?;
        tx.commit().map_err(|e| sql_error(what, e))?;
        Ok(true)
    }
}

impl RouteStore for SqliteStore {
    async fn routes(&self) -> Result<Vec<Route>, StoreError> {
        let what = "cannot read routes";
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached("SELECT pattern, route FROM routes ORDER BY pattern")
            .map_err(|e| sql_error(what, e))?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(|e| sql_error(what, e))?;
        let mut routes = Vec::new();
        for row in rows {
            let (pattern, json) = row.map_err(|e| sql_error(what, e))?;
            match serde_json::from_str::<Route>(&json) {
                Ok(route) => routes.push(route),
                Err(error) => {
                    // One broken route must not stop all mail; it is reported and skipped.
                    tracing::error!(pattern, error = %error, "a route cannot be read and is skipped");
                }
            }
        }
        Ok(routes)
    }

    async fn put_route(&self, route: &Route) -> Result<(), StoreError> {
        let json =
            serde_json::to_string(route).map_err(|e| serialisation("cannot store a route", e))?;
        self.conn()
            .execute(
                "INSERT INTO routes (pattern, route, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (pattern) DO UPDATE SET route = excluded.route, updated_at = excluded.updated_at",
                params![route.pattern.to_string(), json, time_text(Utc::now())],
            )
            .map_err(|e| sql_error("cannot write a route", e))?;
        Ok(())
    }

    async fn remove_route(&self, pattern: &Pattern) -> Result<bool, StoreError> {
        let removed = self
            .conn()
            .execute(
                "DELETE FROM routes WHERE pattern = ?1",
                params![pattern.to_string()],
            )
            .map_err(|e| sql_error("cannot remove a route", e))?;
        Ok(removed > 0)
    }

    async fn set_webhook_disabled(
        &self,
        pattern: &Pattern,
        disabled: Option<Disabled>,
    ) -> Result<(), StoreError> {
        let disabled = disabled
            .map(|d| serde_json::to_value(d).map_err(|e| serialisation("cannot store a route", e)))
            .transpose()?;
        // The route was removed or lost its webhook meanwhile: nothing to mark.
        self.edit_route(pattern, |route| {
            let Some(webhook) = route.get_mut("webhook").and_then(Value::as_object_mut) else {
                return Ok(false);
            };
            match disabled {
                Some(disabled) => {
                    webhook.insert("disabled".to_owned(), disabled);
                }
                None => {
                    webhook.remove("disabled");
                }
            }
            Ok(true)
        })?;
        Ok(())
    }

    async fn set_enabled(&self, pattern: &Pattern, enabled: bool) -> Result<bool, StoreError> {
        self.edit_route(pattern, |route| match route.as_object_mut() {
            Some(route) => {
                route.insert("enabled".to_owned(), Value::Bool(enabled));
                Ok(true)
            }
            None => Err(StoreError::permanent(format!(
                "the stored route {pattern} is not a JSON object"
            ))),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sqlite::testing::{store, webhook_route};

    fn raw_route(store: &SqliteStore, pattern: &str) -> Value {
        let json: String = store
            .conn()
            .query_row(
                "SELECT route FROM routes WHERE pattern = ?1",
                [pattern],
                |row| row.get(0),
            )
            .unwrap();
        serde_json::from_str(&json).unwrap()
    }

    #[tokio::test]
    async fn routes_round_trip() {
        let store = store();
        let support = webhook_route("support@example.com");
        let domain = Route::new("*@example.com".parse().unwrap());
        store.put_route(&support).await.unwrap();
        store.put_route(&domain).await.unwrap();
        store.put_route(&webhook_route("*")).await.unwrap();
        let patterns: Vec<String> = store
            .routes()
            .await
            .unwrap()
            .iter()
            .map(|r| r.pattern.to_string())
            .collect();
        assert_eq!(patterns, ["*", "*@example.com", "support@example.com"]);

        let pattern = support.pattern.clone();
        let original = raw_route(&store, "support@example.com");
        assert_eq!(original, serde_json::to_value(&support).unwrap());
        let disabled = Disabled {
            at: "2024-11-05T09:14:07Z".parse().unwrap(),
            reason: "the target answered 410 Gone".to_owned(),
        };
        store
            .set_webhook_disabled(&pattern, Some(disabled.clone()))
            .await
            .unwrap();
        let routes = store.routes().await.unwrap();
        let stored = routes.iter().find(|r| r.pattern == pattern).unwrap();
        assert_eq!(stored.webhook.as_ref().unwrap().disabled, Some(disabled));
        let mut expected = original.clone();
        expected["webhook"]["disabled"] = serde_json::json!({"at": "2024-11-05T09:14:07Z", "reason": "the target answered 410 Gone"});
        assert_eq!(raw_route(&store, "support@example.com"), expected);

        store.set_webhook_disabled(&pattern, None).await.unwrap();
        assert_eq!(raw_route(&store, "support@example.com"), original);

        // No webhook, or no route: nothing to mark, and no error.
        let domain_json = raw_route(&store, "*@example.com");
        store
            .set_webhook_disabled(
                &domain.pattern,
                Some(Disabled {
                    at: Utc::now(),
                    reason: "x".into(),
                }),
            )
            .await
            .unwrap();
        assert_eq!(raw_route(&store, "*@example.com"), domain_json);
        let missing: Pattern = "nobody@example.com".parse().unwrap();
        store.set_webhook_disabled(&missing, None).await.unwrap();

        assert!(store.set_enabled(&pattern, false).await.unwrap());
        assert!(
            !store
                .routes()
                .await
                .unwrap()
                .iter()
                .find(|r| r.pattern == pattern)
                .unwrap()
                .enabled
        );
        assert!(store.set_enabled(&pattern, true).await.unwrap());
        assert_eq!(raw_route(&store, "support@example.com"), original);
        assert!(!store.set_enabled(&missing, true).await.unwrap());

        // Replacing keeps one route per pattern.
        let mut changed = support.clone();
        changed.forward = vec!["ops@example.com".to_owned()];
        store.put_route(&changed).await.unwrap();
        assert_eq!(store.routes().await.unwrap().len(), 3);
        assert!(store.routes().await.unwrap().contains(&changed));

        assert!(store.remove_route(&pattern).await.unwrap());
        assert!(!store.remove_route(&pattern).await.unwrap());
        assert_eq!(store.routes().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_broken_route_is_skipped() {
        let store = store();
        store.put_route(&webhook_route("*")).await.unwrap();
        store
            .conn()
            .execute(
                "INSERT INTO routes (pattern, route) VALUES ('x@example.com', '{')",
                [],
            )
            .unwrap();
        assert_eq!(store.routes().await.unwrap().len(), 1);
    }
}
