-- Assay schema, version 9: a window pass reads its unscored traces from an index, in order.
--
-- A pass takes a window's unscored traces in chunks ordered by (rho, trace_id), continuing
-- after the last chunk's (rho, trace_id). Without an index in that order each chunk was a scan
-- of every unscored trace of the window and a top-N sort, so a pass cost grew with the square
-- of the window's size (about 0.1 s per chunk at 50,000 traces). Only unscored traces are in
-- the index, so it stays the size of the windows still open.
CREATE INDEX traces_unscored_rho_idx ON traces (rho, trace_id) WHERE scored_at IS NULL;
