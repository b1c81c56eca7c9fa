-- Leadership leases (octrix-http/src/storage/sql/lease.rs). Keep in step
-- with ../sqlite/0002_leases.sql.
--
-- One row per lease name. Instants are milliseconds since the Unix epoch on
-- the database's clock, so that replicas with skewed clocks agree on expiry.
-- `term` grows by one each time the lease changes hands (or its holder takes
-- it back after letting it expire): a new term means "restore first".

CREATE TABLE leases (
    name           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    holder         TEXT COLLATE "C" NOT NULL,
    -- Where the holder serves the API, for followers to forward writes to.
    url            TEXT COLLATE "C" NOT NULL,
    -- The holder's random forwarding token: a follower presents it with the
    -- writes it forwards, so that the holder trusts the client address they
    -- carry (webhook allowlist, rate limit). Readable only with database access.
    forward_token  TEXT COLLATE "C" NOT NULL,
    term           BIGINT NOT NULL,
    acquired_at_ms BIGINT NOT NULL,
    expires_at_ms  BIGINT NOT NULL
);
