-- Assay schema, version 3: LLM judges. Traces a judge's per-window budget left unscored are
-- counted per (window, scorer); each judged assessment records its call's latency and
-- tokens, which the window summary aggregates (p50/p95 latency, token sums).

ALTER TABLE window_summaries ADD COLUMN budget_skipped integer NOT NULL DEFAULT 0;
ALTER TABLE assessments ADD COLUMN judge_latency_ms double precision;  -- NULL for code scorers and cache hits
ALTER TABLE assessments ADD COLUMN judge_input_tokens integer;
ALTER TABLE assessments ADD COLUMN judge_output_tokens integer;
