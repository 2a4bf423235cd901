-- Assay schema, version 10: windows scored while still open.
--
-- A replica scores a window's traces as they are stored, before the window closes, so that at
-- the close only the traces stored since its last pass (and the summaries) are left. The
-- window's row then exists from the first such pass, in state 'open' and without closed_at; it
-- fixes the monitor version the window is scored under (an update takes effect after the last
-- window that has a row). Closing sets state 'closed' and closed_at.
ALTER TABLE windows ALTER COLUMN closed_at DROP NOT NULL;
COMMENT ON COLUMN windows.state IS 'open | closed | scored | paused';
