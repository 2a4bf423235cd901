-- Assay schema, version 6: resumable backfills.
--
-- `assay backfill` scores the stored traces of past windows with the current monitor
-- version. Its progress is kept here, so an interrupted run resumes at the window it was
-- working on; assessment ids make the repeated part idempotent.

CREATE TABLE backfill_runs (
    id                bigserial PRIMARY KEY,
    from_ns           bigint NOT NULL,
    to_ns             bigint NOT NULL,
    config_version    bigint NOT NULL,
    scorers           text NOT NULL,             -- comma-separated names, '' for all
    sample_rate       double precision,          -- override, NULL for the configured rates
    next_window_ns    bigint NOT NULL,           -- the first window not yet done
    assessments       bigint NOT NULL DEFAULT 0, -- new assessments written so far
    started_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);
