//! [`SqlStorage`]: the [`Storage`] on SQLite (embedded, the default) or
//! PostgreSQL (shared by several replicas), through sqlx.
//!
//! The design (why one type over two pools, how listings match the core
//! exactly, what is durable when) is documented on [`SqlStorage`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use octrix_core::Timestamp;
use octrix_core::incident::{
    Incident, IncidentFilter, IncidentId, IncidentPage, IncidentQuery, IncidentStatus,
    IncidentStore, SortDirection, SortKey, StoreError,
};
use sqlx::AssertSqlSafe;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::checkpoint;
use super::{Document, DocumentKind, Storage, StorageError};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Joins the lowercased fields of the text-search column.
///
/// U+2160 ROMAN NUMERAL ONE is an uppercase character: no character's
/// lowercase mapping contains it (a test checks every character), so it
/// never occurs in a lowercased field or in a lowercased needle.
pub(crate) const SEARCH_SEPARATOR: char = '\u{2160}';

/// Incidents per `INSERT` statement in [`Storage::put_incidents`]: 17
/// parameters each stays far below both databases' limits (SQLite 32 766,
/// PostgreSQL 65 535).
const ROWS_PER_INSERT: usize = 500;

/// Rows per round trip when exporting.
const EXPORT_PAGE: i64 = 1000;

/// Which database a [`SqlStorage`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlBackend {
    /// SQLite, embedded: one file (or memory) in this process.
    Sqlite,
    /// PostgreSQL, a server that several replicas can share.
    Postgres,
}

impl SqlBackend {
    /// The backend a database URL names: `sqlite:` (`sqlite://path`,
    /// `sqlite::memory:`) or `postgres://` / `postgresql://`.
    pub fn of_url(url: &str) -> Result<Self, StorageError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            // Only the scheme: the rest may hold a password.
            let scheme = url.split(':').next().unwrap_or_default();
            Err(StorageError::Unavailable(format!(
                "unsupported database URL scheme {scheme:?}: use sqlite:// or postgres://"
            )))
        }
    }

    /// The backend's name: `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// How a [`SqlStorage`] connects. The defaults suit the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlStorageOptions {
    /// Most connections in the pool (an in-memory SQLite database always
    /// has exactly one: each connection would otherwise see its own).
    pub max_connections: u32,
    /// How long an operation waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// How long a SQLite statement waits for another connection's lock.
    pub sqlite_busy_timeout: Duration,
    /// SQLite `synchronous=FULL` instead of `NORMAL`: every commit waits for
    /// the disk, so that it also survives a power loss (at a cost in
    /// throughput).
    pub sqlite_full_sync: bool,
}

impl Default for SqlStorageOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
            sqlite_busy_timeout: Duration::from_secs(5),
            sqlite_full_sync: false,
        }
    }
}

/// The [`Storage`] on SQLite or PostgreSQL, chosen by the database URL.
///
/// Cloning is cheap and shares the pool.
///
/// # One driver, two pools
///
/// sqlx is the one driver for both databases. [`SqlStorage`] holds either a
/// SQLite or a PostgreSQL pool (a private enum) rather than sqlx's `Any`
/// driver, because:
///
/// * SQLite is configured through its typed options (WAL, `synchronous`,
///   busy timeout, foreign keys, create if missing, one connection for an
///   in-memory database) instead of URL parameters and pragmas sent after
///   connecting;
/// * each backend keeps its native types (`Any` maps everything to a small
///   common set) and its own migrations, run with sqlx's typed migrator;
/// * transactions start the way each database needs: `BEGIN IMMEDIATE` for
///   SQLite writes (the write lock is taken at once, so a writer waits for
///   the busy timeout instead of failing on a lock upgrade), `REPEATABLE
///   READ` for PostgreSQL listings (the count and the page see one snapshot);
/// * nothing is installed process-wide (`Any` needs its drivers registered).
///
/// The price, code written once per backend, is paid by a macro: each
/// operation is one block of code, compiled once for each pool, with the
/// same SQL text. The dialects agree on almost everything used here (`$n`
/// placeholders, which SQLite accepts too; `INSERT .. ON CONFLICT .. DO
/// UPDATE`; row-value comparisons; `LIMIT .. OFFSET`). The only difference
/// in queries is the substring test of the text filter (`instr` against
/// `strpos`); the schemas differ in column types and collations (see the
/// migrations in `octrix-http/migrations/{sqlite,postgres}`, run at
/// connect).
///
/// # Exactly the core's listing semantics
///
/// [`IncidentStore::list`] returns what [`IncidentQuery::apply`] returns on
/// the same incidents (a property test checks it on both backends):
///
/// * instants are stored as (seconds floored, nanoseconds) pairs, so every
///   [`Timestamp`] orders and round-trips exactly;
/// * text columns compare byte-wise (SQLite's `BINARY`, PostgreSQL's
///   `COLLATE "C"`), which is Rust's `str` order, whatever the database's
///   default collation is;
/// * the text filter runs on a column holding the searched fields, each
///   lowercased by Rust (as the core does: SQL's `lower` is ASCII-only or
///   locale-dependent) and joined by U+2160 (an uppercase character that
///   no lowercase mapping produces): a lowercased needle can then only match
///   inside one field, never across two.
///
/// # Durability
///
/// SQLite runs in WAL mode with `synchronous=NORMAL` by default: a committed
/// transaction survives a crash of the process; after a power loss or an OS
/// crash the last transactions before it may be lost (the database stays
/// consistent). [`SqlStorageOptions::sqlite_full_sync`] makes every commit
/// wait for the disk. PostgreSQL commits follow the server's settings.
/// A SQLite file's WAL is checkpointed by a task of its own rather than by
/// the committing connection, so that no commit waits for a checkpoint
/// (see `storage/checkpoint.rs`).
///
/// PostgreSQL cannot store the character U+0000 in text: incidents or
/// documents whose indexed strings contain it are refused with
/// [`StorageError::Unavailable`] there (the JSON bodies escape it and are
/// fine).
#[derive(Debug, Clone)]
pub struct SqlStorage {
    pool: Pools,
    /// Checkpoints a SQLite file's WAL off the commit path (see
    /// [`checkpoint`]); stops with the last clone.
    _checkpointer: Option<Arc<checkpoint::Checkpointer>>,
}

#[derive(Debug, Clone)]
enum Pools {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs a block of code with `$pool` bound to the concrete pool (and
/// `$dialect` to its [`Dialect`]): one text, compiled once per backend.
macro_rules! with_pool {
    ($storage:expr, |$pool:ident| $body:expr) => {
        match &$storage.pool {
            Pools::Sqlite($pool) => $body,
            Pools::Postgres($pool) => $body,
        }
    };
    ($storage:expr, |$pool:ident, $dialect:ident| $body:expr) => {
        match &$storage.pool {
            Pools::Sqlite($pool) => {
                let $dialect = Dialect::Sqlite;
                $body
            }
            Pools::Postgres($pool) => {
                let $dialect = Dialect::Postgres;
                $body
            }
        }
    };
}

/// Binds a [`Statement`]'s arguments to a sqlx query of either backend.
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Text(value) => query.bind(value.as_str()),
                Arg::BigInt(value) => query.bind(*value),
                Arg::Int(value) => query.bind(*value),
            };
        }
        query
    }};
}

impl SqlStorage {
    /// Connects to the database a URL names (`sqlite://path`,
    /// `sqlite::memory:`, `postgres://user:password@host/db`) with the
    /// default options, creating a SQLite file (and its directory) if
    /// missing, and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        Self::connect_with(url, SqlStorageOptions::default()).await
    }

    /// [`SqlStorage::connect`] with options.
    pub async fn connect_with(url: &str, options: SqlStorageOptions) -> Result<Self, StorageError> {
        match SqlBackend::of_url(url)? {
            SqlBackend::Sqlite => {
                let connect = SqliteConnectOptions::from_str(url)
                    .map_err(|error| configuration("SQLite", &error))?;
                Self::sqlite(connect, sqlite_url_is_in_memory(url), &options).await
            }
            SqlBackend::Postgres => {
                let connect = PgConnectOptions::from_str(url)
                    .map_err(|error| configuration("PostgreSQL", &error))?;
                Self::postgres(connect, &options).await
            }
        }
    }

    /// Opens (creating if missing) the SQLite database in the file `path`,
    /// without going through a URL (so any file name works).
    pub async fn open_sqlite(
        path: impl AsRef<Path>,
        options: SqlStorageOptions,
    ) -> Result<Self, StorageError> {
        let connect = SqliteConnectOptions::new().filename(path.as_ref());
        Self::sqlite(connect, false, &options).await
    }

    async fn sqlite(
        connect: SqliteConnectOptions,
        in_memory: bool,
        options: &SqlStorageOptions,
    ) -> Result<Self, StorageError> {
        if !in_memory
            && let Some(dir) = connect.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            tokio::fs::create_dir_all(dir).await.map_err(|error| {
                StorageError::Unavailable(format!(
                    "cannot create the database directory {}: {error}",
                    dir.display()
                ))
            })?;
        }
        let connect = connect
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.sqlite_full_sync {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(options.sqlite_busy_timeout)
            .foreign_keys(true);
        let connect = if in_memory {
            connect
        } else {
            let (key, value) = checkpoint::AUTOCHECKPOINT_OFF;
            connect.pragma(key, value)
        };
        let pool_options = SqlitePoolOptions::new().acquire_timeout(options.acquire_timeout);
        let pool_options = if in_memory {
            // The database lives as long as its one connection does.
            pool_options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            pool_options.max_connections(options.max_connections.max(1))
        };
        let pool = pool_options
            .connect_with(connect)
            .await
            .map_err(|error| unavailable(&error))?;
        SQLITE_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|error| StorageError::Unavailable(format!("migrations failed: {error}")))?;
        let checkpointer = (!in_memory).then(|| checkpoint::Checkpointer::start(pool.clone()));
        Ok(Self {
            pool: Pools::Sqlite(pool),
            _checkpointer: checkpointer,
        })
    }

    async fn postgres(
        connect: PgConnectOptions,
        options: &SqlStorageOptions,
    ) -> Result<Self, StorageError> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|error| unavailable(&error))?;
        // The migrator holds an advisory lock: replicas starting together
        // migrate once.
        POSTGRES_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|error| StorageError::Unavailable(format!("migrations failed: {error}")))?;
        Ok(Self {
            pool: Pools::Postgres(pool),
            _checkpointer: None,
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> SqlBackend {
        match self.pool {
            Pools::Sqlite(_) => SqlBackend::Sqlite,
            Pools::Postgres(_) => SqlBackend::Postgres,
        }
    }

    /// Closes every connection (waiting for those in use to come back);
    /// later operations fail with [`StorageError::Unavailable`].
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }

    /// Runs a fixed statement, for tests that damage the database on purpose.
    #[cfg(test)]
    pub(crate) async fn execute_raw(&self, sql: &'static str) -> Result<u64, StorageError> {
        with_pool!(self, |pool| sqlx::raw_sql(sql)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .map_err(|error| unavailable(&error))
    }

    /// SQLite's `journal_mode`, `synchronous`, `foreign_keys` and
    /// `busy_timeout` as one connection sees them (`None` on PostgreSQL).
    #[cfg(test)]
    pub(crate) async fn sqlite_settings(&self) -> Option<(String, i64, i64, i64)> {
        let Pools::Sqlite(pool) = &self.pool else {
            return None;
        };
        let mut connection = pool.acquire().await.expect("a SQLite connection");
        let journal_mode = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *connection)
            .await
            .expect("journal_mode");
        let mut int = async |pragma: &'static str| -> i64 {
            sqlx::query_scalar(pragma)
                .fetch_one(&mut *connection)
                .await
                .expect(pragma)
        };
        let synchronous = int("PRAGMA synchronous").await;
        let foreign_keys = int("PRAGMA foreign_keys").await;
        let busy_timeout = int("PRAGMA busy_timeout").await;
        Some((journal_mode, synchronous, foreign_keys, busy_timeout))
    }

    async fn fetch_incidents(&self, statement: Statement) -> Result<Vec<Incident>, StorageError> {
        let Statement { sql, args } = statement;
        let rows: Vec<(String, String)> = with_pool!(self, |pool| bind_args!(
            sqlx::query_as(AssertSqlSafe(sql)),
            &args
        )
        .fetch_all(pool)
        .await)
        .map_err(|error| unavailable(&error))?;
        rows.iter()
            .map(|(id, body)| decode_incident(id, body))
            .collect()
    }
}

#[async_trait]
impl IncidentStore for SqlStorage {
    async fn put(&self, incident: Incident) -> Result<(), StoreError> {
        self.put_incidents(std::slice::from_ref(&incident))
            .await
            .map_err(store_error)
    }

    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        let body: Option<String> = with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT body FROM incidents WHERE id = $1"
        )
        .bind(id.as_str())
        .fetch_optional(pool)
        .await)
        .map_err(|error| store_error(unavailable(&error)))?;
        body.map(|body| decode_incident(id.as_str(), &body))
            .transpose()
            .map_err(store_error)
    }

    async fn list(&self, query: &IncidentQuery) -> Result<IncidentPage, StoreError> {
        query.validate()?;
        let dialect = match self.backend() {
            SqlBackend::Sqlite => Dialect::Sqlite,
            SqlBackend::Postgres => Dialect::Postgres,
        };
        let mut count = Statement::new("SELECT COUNT(*) FROM incidents");
        push_filter(&mut count, &query.filter, dialect);
        let mut page = Statement::new("SELECT id, body FROM incidents");
        push_filter(&mut page, &query.filter, dialect);
        push_order(&mut page, query.sort, query.direction);
        page.push(" LIMIT ")
            .bind(Arg::BigInt(clamp_to_i64(query.limit)))
            .push(" OFFSET ")
            .bind(Arg::BigInt(clamp_to_i64(query.offset)));

        let (total, rows): (i64, Vec<(String, String)>) = with_pool!(self, |pool, dialect| {
            async {
                // One snapshot for the count and the page.
                let mut tx = pool.begin_with(dialect.read_begin()).await?;
                let total = bind_args!(sqlx::query_scalar(AssertSqlSafe(count.sql)), &count.args)
                    .fetch_one(&mut *tx)
                    .await?;
                let rows = bind_args!(sqlx::query_as(AssertSqlSafe(page.sql)), &page.args)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>((total, rows))
            }
            .await
        })
        .map_err(|error| store_error(unavailable(&error)))?;

        let items = rows
            .iter()
            .map(|(id, body)| decode_incident(id, body))
            .collect::<Result<Vec<_>, _>>()
            .map_err(store_error)?;
        Ok(IncidentPage {
            items,
            total: usize::try_from(total).unwrap_or(0),
            offset: query.offset,
            limit: query.limit,
        })
    }
}

#[async_trait]
impl Storage for SqlStorage {
    async fn put_incidents(&self, incidents: &[Incident]) -> Result<(), StorageError> {
        let rows = incident_rows(incidents)?;
        if rows.is_empty() {
            return Ok(());
        }
        with_pool!(self, |pool, dialect| {
            async {
                let mut tx = pool.begin_with(dialect.write_begin()).await?;
                for chunk in rows.chunks(ROWS_PER_INSERT) {
                    let mut query =
                        sqlx::query(AssertSqlSafe(upsert_incidents_sql(chunk.len(), dialect)));
                    for row in chunk {
                        query = query
                            .bind(row.id)
                            .bind(row.status)
                            .bind(row.severity)
                            .bind(row.severity_rank)
                            .bind(row.category)
                            .bind(row.service)
                            .bind(row.environment)
                            .bind(row.namespace)
                            .bind(row.first_seen.0)
                            .bind(row.first_seen.1)
                            .bind(row.last_seen.0)
                            .bind(row.last_seen.1)
                            .bind(row.resolved_at.map(|at| at.0))
                            .bind(row.resolved_at.map(|at| at.1))
                            .bind(row.title)
                            .bind(row.search_text.as_str())
                            .bind(row.body.as_str());
                    }
                    query.execute(&mut *tx).await?;
                }
                tx.commit().await
            }
            .await
        })
        .map_err(|error| unavailable(&error))
    }

    async fn active_incidents(&self) -> Result<Vec<Incident>, StorageError> {
        let mut statement = Statement::new("SELECT id, body FROM incidents WHERE status IN ");
        statement.bind_list(
            IncidentStatus::ALL
                .into_iter()
                .filter(|status| status.is_active())
                .map(|status| Arg::Text(status.as_str().to_owned())),
        );
        statement.push(" ORDER BY first_seen_sec, first_seen_nsec, id");
        self.fetch_incidents(statement).await
    }

    async fn resolved_incidents_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<Incident>, StorageError> {
        let (sec, nsec) = split_instant(since);
        // The literal 'resolved' lets the planner use the partial index.
        let mut statement = Statement::new(
            "SELECT id, body FROM incidents WHERE status = 'resolved' \
             AND (resolved_at_sec, resolved_at_nsec) >= (",
        );
        statement
            .bind(Arg::BigInt(sec))
            .push(", ")
            .bind(Arg::Int(nsec))
            .push(") ORDER BY first_seen_sec, first_seen_nsec, id");
        self.fetch_incidents(statement).await
    }

    async fn highest_incident_id(&self) -> Result<Option<IncidentId>, StorageError> {
        // A scan, run once at start-up: no index orders by length.
        let id: Option<String> = with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT id FROM incidents ORDER BY length(id) DESC, id DESC LIMIT 1"
        )
        .fetch_optional(pool)
        .await)
        .map_err(|error| unavailable(&error))?;
        Ok(id.map(IncidentId::new))
    }

    async fn put_document(&self, document: &Document) -> Result<(), StorageError> {
        let (sec, nsec) = split_instant(document.updated_at);
        let body = document.body.to_string();
        with_pool!(self, |pool| sqlx::query(
            "INSERT INTO documents (kind, id, updated_at_sec, updated_at_nsec, body) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (kind, id) DO UPDATE SET updated_at_sec = excluded.updated_at_sec, \
             updated_at_nsec = excluded.updated_at_nsec, body = excluded.body"
        )
        .bind(document.kind.as_str())
        .bind(document.id.as_str())
        .bind(sec)
        .bind(nsec)
        .bind(body.as_str())
        .execute(pool)
        .await
        .map(drop))
        .map_err(|error| unavailable(&error))
    }

    async fn get_document(
        &self,
        kind: DocumentKind,
        id: &str,
    ) -> Result<Option<Document>, StorageError> {
        let row: Option<(i64, i32, String)> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT updated_at_sec, updated_at_nsec, body FROM documents \
             WHERE kind = $1 AND id = $2"
        )
        .bind(kind.as_str())
        .bind(id)
        .fetch_optional(pool)
        .await)
        .map_err(|error| unavailable(&error))?;
        row.map(|(sec, nsec, body)| decode_document(kind, id.to_owned(), sec, nsec, &body))
            .transpose()
    }

    async fn list_documents(
        &self,
        kind: DocumentKind,
        limit: usize,
    ) -> Result<Vec<Document>, StorageError> {
        let rows: Vec<(String, i64, i32, String)> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT id, updated_at_sec, updated_at_nsec, body FROM documents WHERE kind = $1 \
             ORDER BY updated_at_sec DESC, updated_at_nsec DESC, id LIMIT $2"
        )
        .bind(kind.as_str())
        .bind(clamp_to_i64(limit))
        .fetch_all(pool)
        .await)
        .map_err(|error| unavailable(&error))?;
        rows.into_iter()
            .map(|(id, sec, nsec, body)| decode_document(kind, id, sec, nsec, &body))
            .collect()
    }

    async fn delete_document(&self, kind: DocumentKind, id: &str) -> Result<bool, StorageError> {
        let deleted = with_pool!(self, |pool| sqlx::query(
            "DELETE FROM documents WHERE kind = $1 AND id = $2"
        )
        .bind(kind.as_str())
        .bind(id)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
        .map_err(|error| unavailable(&error))?;
        Ok(deleted > 0)
    }

    async fn apply_retention(&self, cutoff: Timestamp) -> Result<u64, StorageError> {
        let (sec, nsec) = split_instant(cutoff);
        with_pool!(self, |pool, dialect| {
            async {
                let mut tx = pool.begin_with(dialect.write_begin()).await?;
                // The literal 'resolved' lets the planner use the partial index.
                let incidents = sqlx::query(
                    "DELETE FROM incidents WHERE status = 'resolved' \
                     AND (resolved_at_sec, resolved_at_nsec) < ($1, $2)",
                )
                .bind(sec)
                .bind(nsec)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let documents = sqlx::query(
                    "DELETE FROM documents WHERE kind IN ($1, $2) \
                     AND (updated_at_sec, updated_at_nsec) < ($3, $4)",
                )
                .bind(DocumentKind::ChaosRun.as_str())
                .bind(DocumentKind::ActionRecord.as_str())
                .bind(sec)
                .bind(nsec)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok::<_, sqlx::Error>(incidents + documents)
            }
            .await
        })
        .map_err(|error| unavailable(&error))
    }

    async fn export_incidents_jsonl(&self) -> Result<String, StorageError> {
        let mut out = String::new();
        // Keyset pages in (first_seen, id) order, so that no page is
        // re-sorted from the start and memory stays at one page of rows.
        let mut after: Option<(i64, i32, String)> = None;
        loop {
            let rows: Vec<(i64, i32, String, String)> = with_pool!(self, |pool| match &after {
                None =>
                    sqlx::query_as(
                        "SELECT first_seen_sec, first_seen_nsec, id, body FROM incidents \
                     ORDER BY first_seen_sec, first_seen_nsec, id LIMIT $1",
                    )
                    .bind(EXPORT_PAGE)
                    .fetch_all(pool)
                    .await,
                Some((sec, nsec, id)) =>
                    sqlx::query_as(
                        "SELECT first_seen_sec, first_seen_nsec, id, body FROM incidents \
                     WHERE (first_seen_sec, first_seen_nsec, id) > ($1, $2, $3) \
                     ORDER BY first_seen_sec, first_seen_nsec, id LIMIT $4",
                    )
                    .bind(*sec)
                    .bind(*nsec)
                    .bind(id.as_str())
                    .bind(EXPORT_PAGE)
                    .fetch_all(pool)
                    .await,
            })
            .map_err(|error| unavailable(&error))?;
            let Some((sec, nsec, id, _)) = rows.last() else {
                break;
            };
            after = Some((*sec, *nsec, id.clone()));
            for (_, _, id, body) in &rows {
                let incident = decode_incident(id, body)?;
                let line = serde_json::to_string(&incident)
                    .map_err(|error| corrupt(format!("incident {id}"), &error))?;
                out.push_str(&line);
                out.push('\n');
            }
            if rows.len() < EXPORT_PAGE as usize {
                break;
            }
        }
        Ok(out)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        with_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(drop))
        .map_err(|error| unavailable(&error))
    }
}

mod lease;
pub use lease::Lease;

/// Where the two SQL dialects differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Starts a transaction that writes.
    fn write_begin(self) -> &'static str {
        match self {
            // Take the write lock now: a deferred transaction that reads
            // first could not wait for it later.
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN",
        }
    }

    /// Starts a transaction whose statements all see one snapshot.
    fn read_begin(self) -> &'static str {
        match self {
            // In WAL mode a read transaction keeps its snapshot.
            Self::Sqlite => "BEGIN",
            Self::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }

    /// `column` contains the text of placeholder `$n` (byte-wise).
    fn contains(self, column: &str, n: usize) -> String {
        match self {
            Self::Sqlite => format!("instr({column}, ${n}) > 0"),
            Self::Postgres => format!("strpos({column}, ${n}) > 0"),
        }
    }
}

/// A statement under construction: SQL text with `$n` placeholders and the
/// arguments they stand for.
#[derive(Debug, Default)]
struct Statement {
    sql: String,
    args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Arg {
    Text(String),
    BigInt(i64),
    Int(i32),
}

impl Statement {
    fn new(sql: &str) -> Self {
        Self {
            sql: sql.to_owned(),
            args: Vec::new(),
        }
    }

    fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder for `arg`.
    fn bind(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        let n = self.args.len();
        // Writing to a String cannot fail.
        let _ = write!(self.sql, "${n}");
        self
    }

    /// Appends `(p1, p2, ..)`.
    fn bind_list(&mut self, args: impl IntoIterator<Item = Arg>) -> &mut Self {
        self.sql.push('(');
        for (i, arg) in args.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.bind(arg);
        }
        self.sql.push(')');
        self
    }
}

/// Appends the `WHERE` clause of `filter` (nothing when it matches all).
fn push_filter(statement: &mut Statement, filter: &IncidentFilter, dialect: Dialect) {
    // Destructured, so that a new filter field fails to compile here
    // instead of being silently ignored.
    let IncidentFilter {
        statuses,
        severities,
        categories,
        service,
        environment,
        opened,
        text,
    } = filter;
    let mut first = true;
    let mut and = |statement: &mut Statement| {
        statement.push(if first { " WHERE " } else { " AND " });
        first = false;
    };
    if !statuses.is_empty() {
        and(statement);
        statement.push("status IN ").bind_list(
            statuses
                .iter()
                .map(|status| Arg::Text(status.as_str().to_owned())),
        );
    }
    if !severities.is_empty() {
        and(statement);
        statement.push("severity IN ").bind_list(
            severities
                .iter()
                .map(|severity| Arg::Text(severity.as_str().to_owned())),
        );
    }
    if !categories.is_empty() {
        and(statement);
        statement.push("category IN ").bind_list(
            categories
                .iter()
                .map(|category| Arg::Text(category.as_str().to_owned())),
        );
    }
    if let Some(service) = service {
        and(statement);
        statement
            .push("service = ")
            .bind(Arg::Text(service.clone()));
    }
    if let Some(environment) = environment {
        and(statement);
        statement
            .push("environment = ")
            .bind(Arg::Text(environment.clone()));
    }
    if let Some(start) = opened.start {
        let (sec, nsec) = split_instant(start);
        and(statement);
        statement
            .push("(first_seen_sec, first_seen_nsec) >= (")
            .bind(Arg::BigInt(sec))
            .push(", ")
            .bind(Arg::Int(nsec))
            .push(")");
    }
    if let Some(end) = opened.end {
        let (sec, nsec) = split_instant(end);
        and(statement);
        statement
            .push("(first_seen_sec, first_seen_nsec) < (")
            .bind(Arg::BigInt(sec))
            .push(", ")
            .bind(Arg::Int(nsec))
            .push(")");
    }
    if let Some(text) = text {
        and(statement);
        statement.args.push(Arg::Text(text.to_lowercase()));
        let n = statement.args.len();
        statement.sql.push_str(&dialect.contains("search_text", n));
    }
}

/// Appends the `ORDER BY` of a sort, ties broken by id in the same
/// direction (as [`IncidentQuery::apply`] does).
fn push_order(statement: &mut Statement, sort: SortKey, direction: SortDirection) {
    let columns: &[&str] = match sort {
        SortKey::FirstSeen => &["first_seen_sec", "first_seen_nsec", "id"],
        SortKey::LastSeen => &["last_seen_sec", "last_seen_nsec", "id"],
        SortKey::Severity => &["severity_rank", "id"],
        SortKey::Id => &["id"],
    };
    let direction = match direction {
        SortDirection::Ascending => "ASC",
        SortDirection::Descending => "DESC",
    };
    statement.push(" ORDER BY ");
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            statement.push(", ");
        }
        statement.push(column).push(" ").push(direction);
    }
}

/// `INSERT .. ON CONFLICT (id) DO UPDATE` of `rows` incidents.
fn upsert_incidents_sql(rows: usize, dialect: Dialect) -> String {
    const COLUMNS: [&str; 17] = [
        "id",
        "status",
        "severity",
        "severity_rank",
        "category",
        "service",
        "environment",
        "namespace",
        "first_seen_sec",
        "first_seen_nsec",
        "last_seen_sec",
        "last_seen_nsec",
        "resolved_at_sec",
        "resolved_at_nsec",
        "title",
        "search_text",
        "body",
    ];
    let mut sql = format!("INSERT INTO incidents ({}) VALUES ", COLUMNS.join(", "));
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..COLUMNS.len() {
            if column > 0 {
                sql.push_str(", ");
            }
            match dialect {
                // Anonymous placeholders, bound in order: SQLite looks a
                // named one (`$n`) up in a list of every name in the
                // statement, and sqlx asks for each parameter's name, which
                // made an insert of 500 rows (8,500 parameters) spend most of
                // its time there (quadratic in the parameters).
                Dialect::Sqlite => sql.push('?'),
                Dialect::Postgres => {
                    let _ = write!(sql, "${}", row * COLUMNS.len() + column + 1);
                }
            }
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (id) DO UPDATE SET ");
    for (i, column) in COLUMNS.iter().skip(1).enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let _ = write!(sql, "{column} = excluded.{column}");
    }
    sql
}

/// An incident as its table's columns.
#[derive(Debug)]
struct IncidentRow<'a> {
    id: &'a str,
    status: &'static str,
    severity: &'static str,
    severity_rank: i32,
    category: &'static str,
    service: Option<&'a str>,
    environment: Option<&'a str>,
    namespace: Option<&'a str>,
    first_seen: (i64, i32),
    last_seen: (i64, i32),
    resolved_at: Option<(i64, i32)>,
    title: &'a str,
    search_text: String,
    body: String,
}

impl<'a> IncidentRow<'a> {
    fn new(incident: &'a Incident) -> Result<Self, StorageError> {
        let body = serde_json::to_string(incident)
            .map_err(|error| corrupt(format!("incident {}", incident.id), &error))?;
        Ok(Self {
            id: incident.id.as_str(),
            status: incident.status.as_str(),
            severity: incident.severity.as_str(),
            // At most 3.
            severity_rank: incident.severity.rank() as i32,
            category: incident.category.as_str(),
            service: incident.service.as_deref(),
            environment: incident.environment.as_deref(),
            namespace: incident.namespace.as_deref(),
            first_seen: split_instant(incident.first_seen),
            last_seen: split_instant(incident.last_seen),
            resolved_at: incident.resolved_at.map(split_instant),
            title: &incident.title,
            search_text: search_text(incident),
            body,
        })
    }
}

/// The rows of a batch: one per id, the last occurrence winning (as if the
/// incidents were written one after the other), in first-occurrence order.
fn incident_rows(incidents: &[Incident]) -> Result<Vec<IncidentRow<'_>>, StorageError> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(incidents.len());
    for (i, incident) in incidents.iter().enumerate() {
        last.insert(incident.id.as_str(), i);
    }
    incidents
        .iter()
        .enumerate()
        .filter(|(i, incident)| last.get(incident.id.as_str()) == Some(i))
        .map(|(_, incident)| IncidentRow::new(incident))
        .collect()
}

/// The text-search column: every field the core's text filter looks at
/// (`IncidentFilter::matches`), each lowercased, joined by
/// [`SEARCH_SEPARATOR`].
pub(crate) fn search_text(incident: &Incident) -> String {
    let optional = [
        incident.description.as_deref(),
        incident.service.as_deref(),
        incident.environment.as_deref(),
        incident.namespace.as_deref(),
        incident
            .resource
            .as_ref()
            .map(|resource| resource.name.as_str()),
        incident.assignee.as_deref(),
    ];
    let fields = [
        incident.id.as_str(),
        incident.title.as_str(),
        incident.fingerprint.as_str(),
    ]
    .into_iter()
    .chain(optional.into_iter().flatten())
    .chain(incident.labels.values().map(String::as_str));
    let mut text = String::new();
    for (i, field) in fields.enumerate() {
        if i > 0 {
            text.push(SEARCH_SEPARATOR);
        }
        text.push_str(&field.to_lowercase());
    }
    text
}

/// An instant as (whole seconds floored, nanoseconds in `0..1e9`).
pub(crate) fn split_instant(at: Timestamp) -> (i64, i32) {
    const NANOS: i128 = 1_000_000_000;
    let nanos = at.as_nanosecond();
    // |seconds| < 2.6e11 and 0 <= rest < 1e9 over jiff's whole range.
    (
        nanos.div_euclid(NANOS) as i64,
        nanos.rem_euclid(NANOS) as i32,
    )
}

/// The instant a (seconds, nanoseconds) pair stands for.
pub(crate) fn join_instant(sec: i64, nsec: i32) -> Result<Timestamp, jiff::Error> {
    Timestamp::from_nanosecond(i128::from(sec) * 1_000_000_000 + i128::from(nsec))
}

fn decode_incident(id: &str, body: &str) -> Result<Incident, StorageError> {
    let incident: Incident =
        serde_json::from_str(body).map_err(|error| corrupt(format!("incident {id}"), &error))?;
    if incident.id.as_str() != id {
        return Err(StorageError::Corrupt {
            what: format!("incident {id}"),
            reason: format!("its body holds incident {}", incident.id),
        });
    }
    Ok(incident)
}

fn decode_document(
    kind: DocumentKind,
    id: String,
    sec: i64,
    nsec: i32,
    body: &str,
) -> Result<Document, StorageError> {
    let what = || format!("document {}/{id}", kind.as_str());
    let body = serde_json::from_str(body).map_err(|error| corrupt(what(), &error))?;
    let updated_at = join_instant(sec, nsec).map_err(|error| corrupt(what(), &error))?;
    Ok(Document {
        kind,
        id,
        updated_at,
        body,
    })
}

fn clamp_to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Whether a `sqlite:` URL names an in-memory database.
fn sqlite_url_is_in_memory(url: &str) -> bool {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:" || params.split('&').any(|param| param == "mode=memory")
}

fn unavailable(error: &sqlx::Error) -> StorageError {
    StorageError::Unavailable(error.to_string())
}

fn configuration(backend: &str, error: &sqlx::Error) -> StorageError {
    StorageError::Unavailable(format!("invalid {backend} database URL: {error}"))
}

fn corrupt(what: String, error: &dyn std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        what,
        reason: error.to_string(),
    }
}

/// A [`StorageError`] as the core's [`StoreError`], keeping it as the source.
pub(crate) fn store_error(error: StorageError) -> StoreError {
    StoreError::Backend {
        message: error.to_string(),
        source: Some(Box::new(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_lowercase_mapping_produces_the_search_separator() {
        assert_ne!(
            SEARCH_SEPARATOR.to_lowercase().collect::<String>(),
            SEARCH_SEPARATOR.to_string(),
            "the separator must itself disappear when lowercased"
        );
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            assert!(
                !c.to_lowercase().any(|lower| lower == SEARCH_SEPARATOR),
                "{c:?} lowercases to the separator"
            );
        }
    }

    #[test]
    fn instants_split_floored_and_join_back() {
        let cases = [
            (Timestamp::UNIX_EPOCH, (0, 0)),
            (
                Timestamp::from_nanosecond(1_500_000_000).unwrap(),
                (1, 500_000_000),
            ),
            (Timestamp::from_nanosecond(-1).unwrap(), (-1, 999_999_999)),
            (
                Timestamp::from_nanosecond(-1_500_000_000).unwrap(),
                (-2, 500_000_000),
            ),
        ];
        for (at, split) in cases {
            assert_eq!(split_instant(at), split, "{at}");
            assert_eq!(join_instant(split.0, split.1).unwrap(), at);
        }
        for at in [Timestamp::MIN, Timestamp::MAX] {
            let (sec, nsec) = split_instant(at);
            assert!((0..1_000_000_000).contains(&nsec));
            assert_eq!(join_instant(sec, nsec).unwrap(), at);
        }
        assert!(join_instant(i64::MAX, 0).is_err());
    }

    #[test]
    fn upsert_numbers_placeholders_row_by_row() {
        let sql = upsert_incidents_sql(2, Dialect::Postgres);
        assert!(sql.contains("($1, $2, $3,"), "{sql}");
        assert!(sql.contains("$17), ($18, $19,"), "{sql}");
        assert!(sql.ends_with("body = excluded.body"), "{sql}");
        assert!(!sql.contains("id = excluded.id"), "{sql}");
        // SQLite binds anonymous placeholders in order.
        let sql = upsert_incidents_sql(2, Dialect::Sqlite);
        assert_eq!(sql.matches('?').count(), 34, "{sql}");
        assert!(!sql.contains('$'), "{sql}");
    }

    #[test]
    fn backends_are_chosen_by_url_scheme() {
        assert_eq!(
            SqlBackend::of_url("sqlite::memory:").unwrap(),
            SqlBackend::Sqlite
        );
        assert_eq!(
            SqlBackend::of_url("sqlite://data/octrix.db").unwrap(),
            SqlBackend::Sqlite
        );
        assert_eq!(
            SqlBackend::of_url("postgres://a@h/db").unwrap(),
            SqlBackend::Postgres
        );
        assert_eq!(
            SqlBackend::of_url("postgresql://a@h/db").unwrap(),
            SqlBackend::Postgres
        );
        let error = SqlBackend::of_url("mysql://root:hunter2@h/db").unwrap_err();
        assert!(error.to_string().contains("\"mysql\""), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(sqlite_url_is_in_memory("sqlite::memory:"));
        assert!(sqlite_url_is_in_memory("sqlite://:memory:"));
        assert!(sqlite_url_is_in_memory("sqlite://x.db?mode=memory"));
        assert!(!sqlite_url_is_in_memory("sqlite://x.db?mode=rwc"));
        assert!(!sqlite_url_is_in_memory("sqlite:///tmp/octrix.db"));
    }

    #[test]
    fn the_retention_statement_names_the_resolved_status() {
        // apply_retention spells the status out for the partial index.
        assert_eq!(IncidentStatus::Resolved.as_str(), "resolved");
    }

    #[tokio::test]
    async fn sqlite_commits_leave_the_wal_to_the_checkpoint_task() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("octrix.db");
        let storage = SqlStorage::open_sqlite(&file, SqlStorageOptions::default())
            .await
            .unwrap();
        let Pools::Sqlite(pool) = &storage.pool else {
            panic!("not SQLite");
        };
        for _ in 0..4 {
            // Every pooled connection, not only the first.
            let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(pages, 0, "a commit must not checkpoint the WAL itself");
        }
        sqlx::query("CREATE TABLE filler (body TEXT)")
            .execute(pool)
            .await
            .unwrap();
        for _ in 0..40 {
            sqlx::query("INSERT INTO filler VALUES (?)")
                .bind("x".repeat(100_000))
                .execute(pool)
                .await
                .unwrap();
        }
        // The task copies the 4 MB from the WAL into the database file.
        let mut size = 0;
        for _ in 0..100 {
            size = std::fs::metadata(&file).unwrap().len();
            if size >= 4_000_000 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(size >= 4_000_000, "database file still {size} bytes");
        // A round copies the whole log when no one writes.
        crate::storage::checkpoint::checkpoint(pool).await.unwrap();
        let (_, log, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(copied, log);
    }
}
