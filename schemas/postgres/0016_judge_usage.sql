-- Assay schema, version 16: the judge's per-window budget is shared by the replicas.
--
-- `max_calls_per_window` and `max_tokens_per_window` were counted in each replica's memory. Since
-- version 14 several replicas score one window at once, so N of them could spend N times the
-- budget; a restarted replica also started its count again. Each replica now adds what its judge
-- spent on a window to this row after every chunk it scores, and counts the rest of the total
-- (other replicas, and itself before a restart) against the budget with its own use.
CREATE TABLE judge_usage (
    window_start_ns  bigint PRIMARY KEY,
    calls            bigint NOT NULL DEFAULT 0,
    input_tokens     bigint NOT NULL DEFAULT 0,
    output_tokens    bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE judge_usage IS 'judge calls and tokens spent per window by all replicas (live scoring; backfill keeps its own count)';
