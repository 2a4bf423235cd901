-- Assay schema, version 1: every trace (with its spans), dead letters, and the
-- consumer offsets that make ingest exactly-once.
--
-- Runs with search_path set to the Assay schema (`assay` by default), so names are
-- unqualified. Keys are chosen so every table can be distributed (e.g. Citus) by
-- trace_id, and so writes are idempotent: trace_id, (trace_id, span_id), and
-- (topic, partition, offset) for dead letters.

CREATE TABLE traces (
    trace_id              text PRIMARY KEY,           -- as the producer sent it (tr-<hex> for MLflow 3)
    canonical_trace_id    text NOT NULL,              -- 32 lowercase hex when the id is an OTel id; used for sampling
    format                text NOT NULL,              -- mlflow3 | mlflow2
    request_time          timestamptz NOT NULL,       -- event time (microsecond precision)
    request_time_ns       bigint NOT NULL,            -- exact event time, ns since epoch
    execution_duration_ms bigint,
    state                 text NOT NULL,              -- OK | ERROR | IN_PROGRESS | STATE_UNSPECIFIED
    client_request_id     text,
    request_preview       text,
    response_preview      text,
    tags                  jsonb NOT NULL DEFAULT '{}',
    metadata              jsonb NOT NULL DEFAULT '{}',
    span_count            integer NOT NULL,
    root_span_id          text,
    source_topic          text NOT NULL,
    source_partition      integer NOT NULL,
    source_offset         bigint NOT NULL,
    deliveries            integer NOT NULL DEFAULT 1, -- >1 when the same trace id was published again
    ingested_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX traces_request_time_idx ON traces (request_time);

-- One row per span. Inputs, outputs and attributes are JSON-decoded from MLflow's
-- JSON-encoded attribute strings; U+0000 is replaced by U+FFFD (jsonb rejects it).
CREATE TABLE spans (
    trace_id        text NOT NULL,
    span_id         text NOT NULL,                    -- 16 lowercase hex
    parent_span_id  text,                             -- NULL for the root
    name            text NOT NULL,
    span_type       text,                             -- AGENT, CHAIN, RETRIEVER, CHAT_MODEL, TOOL, ...
    start_time_ns   bigint NOT NULL,
    end_time_ns     bigint,
    status_code     text NOT NULL,                    -- UNSET | OK | ERROR
    status_message  text NOT NULL DEFAULT '',
    inputs          jsonb,
    outputs         jsonb,
    attributes      jsonb NOT NULL DEFAULT '{}',
    events          jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX spans_retriever_idx ON spans (trace_id) WHERE span_type = 'RETRIEVER';

-- Messages that are not traces, kept with their bytes, and ranges of offsets lost to
-- retention before Assay read them (reason = 'retention_gap', [source_offset, gap_end_offset)).
CREATE TABLE dead_letters (
    id               bigserial PRIMARY KEY,
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL,
    reason           text NOT NULL,                   -- tombstone | empty_payload | too_large | invalid_json | invalid_shape | unsupported_format | retention_gap
    detail           text NOT NULL,
    payload          bytea,                           -- NULL for tombstones and gaps
    payload_size     integer,
    message_key      bytea,
    headers          jsonb,
    gap_end_offset   bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_topic, source_partition, source_offset)
);
CREATE INDEX dead_letters_created_at_idx ON dead_letters (created_at);

-- The next offset to read per (group, topic, partition). Written in the same
-- transaction as the data; the source of truth for where a consumer starts.
CREATE TABLE consumer_offsets (
    group_id    text NOT NULL,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);
