-- Assay schema, version 4: monitor versions take effect at a window boundary.
--
-- effective_from_ns is the event time from which a version applies: the next boundary
-- shared by the old and the new window width after the update, so no window is ever scored
-- half under one version and half under another. The first version applies to all history.

ALTER TABLE monitor_configs ADD COLUMN window_ns bigint;
ALTER TABLE monitor_configs ADD COLUMN allowed_lateness_ns bigint;
ALTER TABLE monitor_configs ADD COLUMN effective_from_ns bigint;
ALTER TABLE monitor_configs ADD COLUMN note text;   -- who or what wrote it (api, cli, serve --monitor)
-- Versions stored before this migration: the document's window (the JSON is canonical,
-- durations like "15m"), effective from the start of history.
UPDATE monitor_configs SET
    window_ns = (regexp_match(document, '"window":"([0-9]+)([smh])"'))[1]::bigint
        * CASE (regexp_match(document, '"window":"([0-9]+)([smh])"'))[2] WHEN 's' THEN 1000000000 WHEN 'm' THEN 60000000000 ELSE 3600000000000 END,
    allowed_lateness_ns = (regexp_match(document, '"allowed_lateness":"([0-9]+)([smh])"'))[1]::bigint
        * CASE (regexp_match(document, '"allowed_lateness":"([0-9]+)([smh])"'))[2] WHEN 's' THEN 1000000000 WHEN 'm' THEN 60000000000 ELSE 3600000000000 END,
    effective_from_ns = -9223372036854775808;
ALTER TABLE monitor_configs ALTER COLUMN window_ns SET NOT NULL;
ALTER TABLE monitor_configs ALTER COLUMN allowed_lateness_ns SET NOT NULL;
ALTER TABLE monitor_configs ALTER COLUMN effective_from_ns SET NOT NULL;
CREATE INDEX monitor_configs_effective_idx ON monitor_configs (effective_from_ns, version);

-- A partition a replica was assigned but has not yet read a trace from holds the watermark
-- back (NULL event time) until it delivers one or goes idle, so a backlog on a partition
-- that is read later cannot make its traces late.
ALTER TABLE partition_watermarks ALTER COLUMN max_event_time_ns DROP NOT NULL;
