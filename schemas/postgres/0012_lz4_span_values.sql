-- Assay schema, version 12: span values compressed with LZ4 where the server has it.
--
-- Span inputs and outputs over about 2 kB are compressed when stored (TOAST). PostgreSQL's
-- default method, pglz, was the largest single function of the database's CPU while it
-- stored traces (perf of a 100,000-trace ingest). LZ4 compresses several times faster. The
-- setting applies to rows written from now on; stored rows keep their method, and both read
-- the same. A server built without LZ4 keeps pglz.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE spans ALTER COLUMN inputs SET COMPRESSION lz4,
                          ALTER COLUMN outputs SET COMPRESSION lz4,
                          ALTER COLUMN attributes SET COMPRESSION lz4,
                          ALTER COLUMN events SET COMPRESSION lz4;
    END IF;
END
$$;
