-- Assay schema, version 7: pass-rate regression alerts.
--
-- When a window is first summarised, each scorer's pass rate is tested against its trailing
-- baseline (a one-sided two-proportion z-test, RegressionRule); a regression is recorded here
-- and published as an `alert/v1` event through the outbox. One row per (window, scorer, kind),
-- and the id is a UUIDv5 of the window and the scorer, so testing a window again (a retried
-- pass, another replica) can never publish a second alert.

CREATE TABLE alerts (
    alert_id         uuid PRIMARY KEY,
    window_start_ns  bigint NOT NULL,
    scorer_name      text NOT NULL,
    kind             text NOT NULL,    -- pass_rate_regression
    document         text NOT NULL,    -- the alert/v1 JSON published
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (window_start_ns, scorer_name, kind)
);
