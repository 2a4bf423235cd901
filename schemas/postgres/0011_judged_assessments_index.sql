-- Assay schema, version 11: a window's judge figures without reading its other assessments.
--
-- The summaries published at a window's close carry judge latency percentiles and token sums,
-- computed from the window's judged assessments. Through assessments_window_idx that read every
-- assessment of the window, code scorers' included: 2.2 s of a 2.4 s close at 100,000 traces
-- already scored while the window was open. This index holds the judged assessments only.
CREATE INDEX assessments_judged_idx ON assessments (window_start_ns, scorer_name)
    INCLUDE (judge_latency_ms, judge_input_tokens, judge_output_tokens)
    WHERE judge_latency_ms IS NOT NULL OR judge_input_tokens IS NOT NULL OR judge_output_tokens IS NOT NULL;
