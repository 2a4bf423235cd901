-- Assay schema, version 5: OTLP traces assembled from spans.
--
-- OTLP delivers a trace's spans in pieces, possibly on several partitions. Spans are stored
-- as they arrive (idempotent by (trace_id, span_id)); trace_assembly remembers each trace
-- being put together. The traces row is written when the root span has ended, or, with the
-- trace flagged incomplete, after a quiet timeout without its root.

CREATE TABLE trace_assembly (
    trace_id            text PRIMARY KEY,
    resource_attributes jsonb NOT NULL DEFAULT '{}',
    first_seen_at       timestamptz NOT NULL DEFAULT now(),
    last_span_at        timestamptz NOT NULL DEFAULT now(),
    source_topic        text NOT NULL,
    source_partition    integer NOT NULL,
    source_offset       bigint NOT NULL,
    completed_at        timestamptz,
    incomplete          boolean NOT NULL DEFAULT false
);
CREATE INDEX trace_assembly_pending_idx ON trace_assembly (last_span_at) WHERE completed_at IS NULL;

-- Spans that arrived after the trace was scored are stored; the trace says so.
ALTER TABLE traces ADD COLUMN updated_after_scoring boolean NOT NULL DEFAULT false;
