//! Leadership leases in the database: [`SqlStorage::try_lease`] and
//! [`SqlStorage::release_lease`].
//!
//! A lease is one row (`leases` table): who holds it, where the holder
//! serves, its term and when it expires. Taking or renewing it is one
//! conditional upsert, so that two candidates racing for it cannot both
//! win: the row is written only when it is free, expired, or already ours.
//! Expiry is read on the database's clock, so that replicas whose clocks
//! disagree still agree on when a lease is free.

use std::time::Duration;

use super::{Dialect, Pools, SqlStorage, unavailable};
use crate::storage::StorageError;

/// A lease as the database holds it after a [`SqlStorage::try_lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Whether the candidate that asked holds it now.
    pub held: bool,
    /// Who holds it (or last held it, when it has expired).
    pub holder: String,
    /// Where the holder serves the API.
    pub url: String,
    /// The holder's forwarding token (see the migration): never shown.
    pub forward_token: String,
    /// Grows by one each time the lease changes hands, or its holder takes
    /// it back after it expired.
    pub term: i64,
    /// How long it stays valid from now on the database's clock (zero once
    /// expired).
    pub remaining: Duration,
}

impl Dialect {
    /// Milliseconds since the Unix epoch on the database's clock.
    fn now_ms(self) -> &'static str {
        match self {
            Self::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Self::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }
}

/// Takes the lease when it is free or expired, renews it when `$2` holds
/// it, and leaves it alone otherwise.
fn acquire_sql(dialect: Dialect) -> String {
    let now = dialect.now_ms();
    // Still ours: the same holder renews before expiry (same term).
    let kept = format!("leases.holder = excluded.holder AND leases.expires_at_ms >= {now}");
    format!(
        "INSERT INTO leases (name, holder, url, forward_token, term, acquired_at_ms, \
         expires_at_ms) VALUES ($1, $2, $3, $5, 1, {now}, {now} + $4) \
         ON CONFLICT (name) DO UPDATE SET \
         term = CASE WHEN {kept} THEN leases.term ELSE leases.term + 1 END, \
         acquired_at_ms = CASE WHEN {kept} THEN leases.acquired_at_ms \
         ELSE excluded.acquired_at_ms END, \
         holder = excluded.holder, url = excluded.url, \
         forward_token = excluded.forward_token, \
         expires_at_ms = excluded.expires_at_ms \
         WHERE leases.holder = excluded.holder OR leases.expires_at_ms < {now}"
    )
}

fn read_sql(dialect: Dialect) -> String {
    format!(
        "SELECT holder, url, forward_token, term, expires_at_ms - {} FROM leases \
         WHERE name = $1",
        dialect.now_ms()
    )
}

fn release_sql(dialect: Dialect) -> String {
    format!(
        "UPDATE leases SET expires_at_ms = {} - 1 WHERE name = $1 AND holder = $2",
        dialect.now_ms()
    )
}

impl SqlStorage {
    /// Takes or renews the lease `name` for `holder` (serving at `url`, with
    /// its `forward_token`) for `duration`, when it is free, expired or already held by `holder`;
    /// returns the lease as it stands after the attempt, in one transaction.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the database does not answer: the
    /// caller then cannot know whether it still leads, and must stop acting
    /// as the leader once its last renewal's duration has passed.
    pub async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        url: &str,
        forward_token: &str,
        duration: Duration,
    ) -> Result<Lease, StorageError> {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 2);
        let row: (u64, (String, String, String, i64, i64)) = with_pool!(self, |pool, dialect| {
            async {
                let mut tx = pool.begin_with(dialect.write_begin()).await?;
                let written = sqlx::query(sqlx::AssertSqlSafe(acquire_sql(dialect)))
                    .bind(name)
                    .bind(holder)
                    .bind(url)
                    .bind(millis)
                    .bind(forward_token)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let row = sqlx::query_as(sqlx::AssertSqlSafe(read_sql(dialect)))
                    .bind(name)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>((written, row))
            }
            .await
        })
        .map_err(|error| unavailable(&error))?;
        let (written, (current, url, forward_token, term, remaining_ms)) = row;
        Ok(Lease {
            held: written > 0 && current == holder,
            holder: current,
            url,
            forward_token,
            term,
            remaining: Duration::from_millis(u64::try_from(remaining_ms).unwrap_or(0)),
        })
    }

    /// Gives the lease up at once if `holder` holds it (a graceful stop), so
    /// that another candidate takes it without waiting for expiry. Returns
    /// whether it was held.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StorageError> {
        let released = with_pool!(self, |pool, dialect| sqlx::query(sqlx::AssertSqlSafe(
            release_sql(dialect)
        ))
        .bind(name)
        .bind(holder)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
        .map_err(|error| unavailable(&error))?;
        Ok(released > 0)
    }
}
