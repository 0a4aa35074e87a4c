-- Process Sentinel for Oracle 19c+, script 1 of 7: SQL types.
--
-- Run in order as the schema owner: 001 .. 004 (and 005 on Enterprise Edition), with SQL*Plus
-- (sqlplus owner@db @sql/001_sentinel_types.sql) or with `sentinel migrate --oracle`, which splits
-- the files the way SQL*Plus does.
--
-- The queue carries RAW payloads (one UTF-8 JSON event per message, see 003), so it needs no
-- object type. What the SDK needs is a way for PL/SQL callers to pass key/value attributes --
-- metadata, log details, a result -- without writing JSON by hand:
--
--     sentinel_pkg.update_progress(l_id, 40, 'load', sentinel_pkg.to_json(
--         sentinel_attrs(sentinel_attr('rows', TO_CHAR(l_rows)), sentinel_attr('file', l_file))));
--
-- sentinel_pkg.to_json turns the list into a JSON object with JSON_OBJECTAGG (values are strings).

SET DEFINE OFF
WHENEVER SQLERROR EXIT SQL.SQLCODE

-- FORCE lets a re-run replace the types even after 004 made the package depend on them.
CREATE OR REPLACE TYPE sentinel_attr FORCE AS OBJECT (
    name  VARCHAR2(200),
    value VARCHAR2(4000)
);
/

CREATE OR REPLACE TYPE sentinel_attrs FORCE AS TABLE OF sentinel_attr;
/
