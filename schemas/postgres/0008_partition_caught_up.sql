-- Assay schema, version 8: idleness is asserted by the partition's owner.
--
-- The replica that owns a partition records, about once a second, whether it has read it to
-- the log end: `caught_up_at` is the last time it confirmed that, NULL while it is behind or
-- nothing is known. A partition counts as idle for the watermark only when its owner saw it
-- caught up for the whole idle timeout after its event time last advanced, and said so
-- recently; a partition nobody reports on (a rebalance in progress, a stalled or dead
-- replica) holds windows open instead of letting them close around unread traces.
ALTER TABLE partition_watermarks ADD COLUMN caught_up_at timestamptz;
