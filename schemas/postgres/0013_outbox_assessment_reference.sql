-- Assay schema, version 13: an assessment's outbox message points at its stored document.
--
-- Each assessment's JSON was written three times: into `assessments.document`, into
-- `outbox.payload`, and once more when the publisher marked the row published (an UPDATE
-- writes the whole row again). An assessment's message now names its assessment instead, and
-- the publisher reads the document from `assessments`, which is never changed once stored: the
-- bytes published are the stored ones, as before. Window summaries and alerts keep their
-- payload in the row (their documents change with each revision). Rows queued before this
-- version keep their payload and are published as they are.
ALTER TABLE outbox ADD COLUMN assessment_id uuid;
ALTER TABLE outbox ALTER COLUMN payload DROP NOT NULL;
-- Exactly one of the two. NOT VALID: rows written before this version all have a payload, and
-- checking them would read the whole outbox while the migration holds its lock.
ALTER TABLE outbox ADD CONSTRAINT outbox_payload_or_assessment
    CHECK ((payload IS NULL) <> (assessment_id IS NULL)) NOT VALID;
COMMENT ON COLUMN outbox.assessment_id IS 'assessment/v1 messages: the assessment whose document is the payload';
COMMENT ON COLUMN outbox.payload IS 'the message (window-summary/v1, alert/v1, and assessments queued before schema version 13)';

-- Every message with its payload, as the publisher sends it.
CREATE VIEW outbox_messages AS
SELECT o.id, o.message_key, o.schema_name, coalesce(o.payload, a.document) AS payload, o.created_at, o.published_at
FROM outbox o LEFT JOIN assessments a ON a.assessment_id = o.assessment_id;
