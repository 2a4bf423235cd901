-- Assay schema, version 15: one outbox row per scored chunk, not per assessment.
--
-- Each assessment had its own outbox row: written by a COPY, locked and read by the publisher,
-- then rewritten by the UPDATE that marks it published. In scoring that was about a third of
-- PostgreSQL's statement time, and the outbox grew by one row per assessment. A chunk's
-- assessments now share one row: `assessment_ids` lists them in the order they are published,
-- and each message's key is its assessment's trace id (`message_key` is NULL on such a row).
-- `message_count` says how many messages a row holds, so the publisher can size its batches
-- without reading the lists. Rows written before this version (one payload, or one
-- `assessment_id`) are published as they are.
--
-- A chunk's row carries an empty `payload` on purpose. During a rolling upgrade, replicas from
-- before this version are still running: their publisher reads `coalesce(payload, document of
-- assessment_id)` and `message_key`. With a NULL payload it would take such a row for an
-- assessment deleted by hand and mark it published without sending anything; with the empty
-- payload it finds no key, fails (as for any row it cannot read), rolls back and retries, and
-- the row waits for a replica of this version.
ALTER TABLE outbox ADD COLUMN assessment_ids uuid[];
ALTER TABLE outbox ADD COLUMN message_count integer NOT NULL DEFAULT 1;
ALTER TABLE outbox ALTER COLUMN message_key DROP NOT NULL;
ALTER TABLE outbox DROP CONSTRAINT outbox_payload_or_assessment;
-- One message (a key, and a payload or an assessment) or a chunk's list (no key, the empty
-- payload, the right count). NOT VALID: checking the rows already there would read the whole
-- outbox while the migration holds its lock.
ALTER TABLE outbox ADD CONSTRAINT outbox_one_kind CHECK (
    CASE WHEN assessment_ids IS NULL
        THEN num_nonnulls(payload, assessment_id) = 1 AND message_key IS NOT NULL AND message_count = 1
        ELSE payload IS NOT NULL AND payload = '' AND assessment_id IS NULL AND message_key IS NULL
             AND message_count = cardinality(assessment_ids) AND message_count > 0
    END
) NOT VALID;
COMMENT ON COLUMN outbox.assessment_ids IS 'assessment/v1 messages of one scored chunk: the assessments whose documents are published, in this order';
COMMENT ON COLUMN outbox.message_count IS 'messages in this row: the length of assessment_ids, else 1';
COMMENT ON COLUMN outbox.payload IS 'the message (window-summary/v1, alert/v1, assessments queued before schema version 13); empty on a row of assessment_ids';
COMMENT ON COLUMN outbox.message_key IS 'the Kafka key (NULL on a row of assessment_ids: each message is keyed by its assessment''s trace id)';

-- Every message with its key and payload, as the publisher sends them, in (id, position) order.
-- The columns of version 13 keep their places (views built on it keep working); two are added.
CREATE OR REPLACE VIEW outbox_messages AS
SELECT o.id, coalesce(o.message_key, a.trace_id) AS message_key, o.schema_name,
       CASE WHEN o.assessment_ids IS NULL THEN coalesce(o.payload, a.document) ELSE a.document END AS payload,
       o.created_at, o.published_at, m.position, m.assessment_id
FROM outbox o
CROSS JOIN LATERAL unnest(coalesce(o.assessment_ids, ARRAY[o.assessment_id])) WITH ORDINALITY AS m(assessment_id, position)
LEFT JOIN assessments a ON a.assessment_id = m.assessment_id;
