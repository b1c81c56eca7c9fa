-- Octrix storage, PostgreSQL dialect. Keep in step with ../sqlite/0001_initial.sql.
--
-- Instants are stored as two integers, whole seconds since the Unix epoch
-- (floored) and nanoseconds within that second (0..1e9), so that every
-- timestamp the model allows (years -9999..9999, nanosecond precision)
-- round-trips and orders exactly (timestamptz has microseconds and a
-- narrower range); `*_sec, *_nsec` pairs compare as row values.
--
-- Every text column is COLLATE "C": byte-wise order and equality, which is
-- Rust's `str` order, whatever the database's default collation is.
--
-- Bodies are JSON kept as text, not jsonb: jsonb rejects the escape \u0000
-- and does not keep the text as written.

CREATE TABLE incidents (
    id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    status          TEXT COLLATE "C" NOT NULL,
    severity        TEXT COLLATE "C" NOT NULL,
    -- Severity::rank: low 0 .. critical 3, for sorting.
    severity_rank   INTEGER NOT NULL,
    category        TEXT COLLATE "C" NOT NULL,
    service         TEXT COLLATE "C",
    environment     TEXT COLLATE "C",
    namespace       TEXT COLLATE "C",
    first_seen_sec  BIGINT  NOT NULL,
    first_seen_nsec INTEGER NOT NULL,
    last_seen_sec   BIGINT  NOT NULL,
    last_seen_nsec  INTEGER NOT NULL,
    resolved_at_sec  BIGINT,
    resolved_at_nsec INTEGER,
    title           TEXT COLLATE "C" NOT NULL,
    -- The lowercased fields the text filter searches, joined by a character
    -- lowercasing never produces (see storage::sql::search_text).
    search_text     TEXT COLLATE "C" NOT NULL,
    -- The whole incident, as serde_json wrote it.
    body            TEXT COLLATE "C" NOT NULL
);

-- Sorts (each ends with the id tie-break) and the opened-range filter.
CREATE INDEX incidents_last_seen ON incidents (last_seen_sec, last_seen_nsec, id);
CREATE INDEX incidents_first_seen ON incidents (first_seen_sec, first_seen_nsec, id);
CREATE INDEX incidents_severity ON incidents (severity_rank, id);
-- Equality filters, most recent first.
CREATE INDEX incidents_status ON incidents (status, last_seen_sec, last_seen_nsec);
CREATE INDEX incidents_service ON incidents (service, last_seen_sec, last_seen_nsec);
CREATE INDEX incidents_environment ON incidents (environment, last_seen_sec, last_seen_nsec);
CREATE INDEX incidents_category ON incidents (category, last_seen_sec, last_seen_nsec);
-- Retention.
CREATE INDEX incidents_resolved_at ON incidents (resolved_at_sec, resolved_at_nsec)
    WHERE status = 'resolved';

CREATE TABLE documents (
    kind            TEXT COLLATE "C" NOT NULL,
    id              TEXT COLLATE "C" NOT NULL,
    updated_at_sec  BIGINT  NOT NULL,
    updated_at_nsec INTEGER NOT NULL,
    body            TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (kind, id)
);

CREATE INDEX documents_kind_updated_at ON documents (kind, updated_at_sec, updated_at_nsec);
