-- Assay schema, version 14: several replicas score one window at the same time.
--
-- A window was scored by the one replica holding its lease (`windows.lease_owner`), so however
-- many replicas ran, the window of the moment was scored at one replica's pace. A window now
-- has `scoring_slices` ranges of ρ, fixed when its row is created (1 for a monitor that caps a
-- scorer with `max_per_window`: the cap keeps the lowest-ρ traces, taken in order by one
-- replica). Replicas lease runs of adjacent slices (`window_slice_leases`) and score the traces
-- whose ρ falls in them, each taking about an equal share of the slices: the replicas scoring
-- now are those that recorded themselves in `scoring_replicas` within the last seconds. The
-- window's own lease is now taken only to finish a window (publish its summaries), once no
-- slice is leased and no trace is left.
ALTER TABLE windows ADD COLUMN scoring_slices integer NOT NULL DEFAULT 1 CHECK (scoring_slices BETWEEN 1 AND 64);

CREATE TABLE window_slice_leases (
    window_start_ns  bigint NOT NULL,
    slice            integer NOT NULL,
    lease_owner      text NOT NULL,
    lease_until      timestamptz NOT NULL,
    PRIMARY KEY (window_start_ns, slice)
);

CREATE TABLE scoring_replicas (
    owner    text PRIMARY KEY,
    seen_at  timestamptz NOT NULL
);
