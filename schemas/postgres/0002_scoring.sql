-- Assay schema, version 2: windows, sampling and scoring.
--
-- rho is the sampling key (DESIGN invariant 4), stored at ingest so a window's sampled set
-- is an index range scan. scored_at marks traces a window pass has handled; the partial
-- index keeps only unhandled traces, so finding work stays cheap as the table grows.

ALTER TABLE traces ADD COLUMN rho double precision;
-- Traces stored before this migration: the same rho the ingest computes (first 8 bytes of
-- SHA-256 of the canonical id, big-endian, divided by 2^64).
UPDATE traces SET rho = (
    ('x' || substr(encode(sha256(convert_to(canonical_trace_id, 'UTF8')), 'hex'), 1, 16))::bit(64)::bigint::numeric
    + CASE WHEN ('x' || substr(encode(sha256(convert_to(canonical_trace_id, 'UTF8')), 'hex'), 1, 16))::bit(64)::bigint < 0
           THEN 18446744073709551616 ELSE 0 END
) / 18446744073709551616.0;
ALTER TABLE traces ALTER COLUMN rho SET NOT NULL;
ALTER TABLE traces ADD COLUMN scored_at timestamptz;           -- when a window pass handled it
ALTER TABLE traces ADD COLUMN late boolean NOT NULL DEFAULT false; -- stored after its window closed
CREATE INDEX traces_unscored_idx ON traces (request_time_ns) WHERE scored_at IS NULL;
CREATE INDEX traces_window_rho_idx ON traces (request_time_ns, rho);

-- Per partition, the newest event time seen and when it last advanced (for idleness).
CREATE TABLE partition_watermarks (
    topic              text NOT NULL,
    partition          integer NOT NULL,
    max_event_time_ns  bigint NOT NULL,
    advanced_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- Monitor documents, versioned; a version is never changed once written.
CREATE TABLE monitor_configs (
    version     bigint PRIMARY KEY,
    document    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per closed window. Any replica may process a window; the lease says who does now.
CREATE TABLE windows (
    window_start_ns  bigint PRIMARY KEY,
    window_end_ns    bigint NOT NULL,
    config_version   bigint NOT NULL,
    closed_at        timestamptz NOT NULL DEFAULT now(),  -- traces stored after this are late
    state            text NOT NULL DEFAULT 'closed',      -- closed | scored
    scored_at        timestamptz,
    lease_owner      text,
    lease_until      timestamptz,
    late_traces      integer NOT NULL DEFAULT 0
);

-- Every assessment, keyed by its UUIDv5 id. `document` is the exact JSON published, so a
-- republish after a crash sends the same bytes.
CREATE TABLE assessments (
    assessment_id    uuid PRIMARY KEY,
    trace_id         text NOT NULL,
    span_id          text,
    assessment_name  text NOT NULL,
    scorer_name      text NOT NULL,
    window_start_ns  bigint NOT NULL,
    config_version   bigint NOT NULL,
    source_type      text NOT NULL,
    outcome          text NOT NULL,    -- pass | fail | value | not_applicable | error
    value            text,             -- the feedback value as JSON text
    rationale        text,
    error_code       text,
    late             boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    document         text NOT NULL
);
CREATE INDEX assessments_trace_idx ON assessments (trace_id);
CREATE INDEX assessments_window_idx ON assessments (window_start_ns, scorer_name);

-- One row per (window, scorer): the denominators of DESIGN invariant 10. Late traces add to
-- it; each change bumps `revision` and publishes the summary again.
CREATE TABLE window_summaries (
    window_start_ns  bigint NOT NULL,
    scorer_name      text NOT NULL,
    window_end_ns    bigint NOT NULL,
    config_version   bigint NOT NULL,
    eligible         integer NOT NULL DEFAULT 0,
    filtered_out     integer NOT NULL DEFAULT 0,
    sampled_out      integer NOT NULL DEFAULT 0,
    not_applicable   integer NOT NULL DEFAULT 0,
    errored          integer NOT NULL DEFAULT 0,
    scored           integer NOT NULL DEFAULT 0,
    passed           integer NOT NULL DEFAULT 0,
    late_scored      integer NOT NULL DEFAULT 0,
    selected         integer NOT NULL DEFAULT 0,   -- traces chosen for scoring (counts toward max_per_window)
    revision         integer NOT NULL DEFAULT 0,
    needs_publish    boolean NOT NULL DEFAULT false,
    document         text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (window_start_ns, scorer_name)
);

-- Messages to publish to the assessments topic, in order; published_at is set after the
-- broker acknowledged them.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    message_key   text NOT NULL,
    schema_name   text NOT NULL,   -- assessment/v1 | window-summary/v1
    payload       text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
