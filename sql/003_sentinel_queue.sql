-- Process Sentinel for Oracle 19c+, script 3 of 7: the event queue.
--
-- A classic AQ queue with RAW payloads: each message is one UTF-8 JSON event (SPEC section 2).
-- RAW works on 19c, in python-oracledb's thin mode (no Instant Client), and with array dequeue
-- (Queue.deqmany), which Sentinel uses to fetch a whole batch in one round trip.
--
--   * sort_list PRIORITY,ENQ_TIME: lower priority numbers first (sentinel_pkg enqueues ERROR=1,
--     COMPLETED/CANCELLED=2, STARTED=3, PROGRESS=4, LOG=5, HEARTBEAT=6), then arrival order.
--   * Sentinel dequeues with visibility ON_COMMIT: the dequeue is part of the transaction that
--     stores the batch. A failed batch rolls back, the messages return to the queue after
--     retry_delay seconds (state WAIT meanwhile), and when a message's retry count exceeds
--     max_retries (the sixth rollback) it moves to the exception queue AQ$_SENTINEL_QUEUE_TAB_E,
--     which is started for dequeue so an operator can inspect or replay it (docs/oracle.md).
--   * Producers need only the ENQUEUE privilege (through the role sentinel_producer) or, for
--     PL/SQL, EXECUTE on sentinel_pkg (granted to the role in 004; stored code in another schema
--     needs it, and EXECUTE on the two types, granted directly: roles do not reach stored code).
--
-- The names here are the defaults: if you set SENTINEL_QUEUE_NAME, create the queue under that name.
-- The blocks check what exists first, so the script can be re-run.

SET DEFINE OFF
WHENEVER SQLERROR EXIT SQL.SQLCODE

DECLARE
    l_count PLS_INTEGER;
BEGIN
    SELECT COUNT(*) INTO l_count FROM user_queue_tables WHERE queue_table = 'SENTINEL_QUEUE_TAB';
    IF l_count = 0 THEN
        DBMS_AQADM.CREATE_QUEUE_TABLE(
            queue_table        => 'SENTINEL_QUEUE_TAB',
            queue_payload_type => 'RAW',
            sort_list          => 'PRIORITY,ENQ_TIME',
            multiple_consumers => FALSE
        );
    END IF;

    SELECT COUNT(*) INTO l_count FROM user_queues WHERE name = 'SENTINEL_QUEUE';
    IF l_count = 0 THEN
        DBMS_AQADM.CREATE_QUEUE(
            queue_name     => 'SENTINEL_QUEUE',
            queue_table    => 'SENTINEL_QUEUE_TAB',
            max_retries    => 5,
            retry_delay    => 5,
            retention_time => 0
        );
    END IF;

    DBMS_AQADM.START_QUEUE(queue_name => 'SENTINEL_QUEUE');
    -- The exception queue of the queue table: no enqueue, dequeue for inspection and replay.
    DBMS_AQADM.START_QUEUE(queue_name => 'AQ$_SENTINEL_QUEUE_TAB_E', enqueue => FALSE, dequeue => TRUE);
END;
/

-- Producers outside PL/SQL (or enqueuing directly) get this role; sentinel_pkg is granted to it
-- in 004. `sentinel migrate --oracle` tolerates "role already exists" when re-run.
CREATE ROLE sentinel_producer;

BEGIN
    DBMS_AQADM.GRANT_QUEUE_PRIVILEGE(
        privilege    => 'ENQUEUE',
        queue_name   => 'SENTINEL_QUEUE',
        grantee      => 'SENTINEL_PRODUCER',
        grant_option => FALSE
    );
END;
/

-- Variant: a Transactional Event Queue (TxEventQ) instead of the classic queue. Same RAW payload and
-- the same client calls (python-oracledb thin mode supports RAW TxEventQ on 19c+); it scales better
-- on RAC and under high enqueue rates. Use it INSTEAD of the first block above (not tested here).
-- On 19c the procedure is DBMS_AQADM.CREATE_SHARDED_QUEUE with the same parameters.
--
-- DECLARE
--     l_props DBMS_AQADM.QUEUE_PROPS_T;
-- BEGIN
--     l_props.retry_delay := 5;
--     l_props.sort_list   := 'PRIORITY,ENQ_TIME';
--     DBMS_AQADM.CREATE_TRANSACTIONAL_EVENT_QUEUE(
--         queue_name         => 'SENTINEL_QUEUE',
--         multiple_consumers => FALSE,
--         max_retries        => 5,
--         queue_payload_type => 'RAW',
--         queue_properties   => l_props
--     );
--     DBMS_AQADM.START_QUEUE(queue_name => 'SENTINEL_QUEUE');
-- END;
-- /
