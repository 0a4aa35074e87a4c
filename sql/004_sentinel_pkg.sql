-- Process Sentinel for Oracle 19c+, script 4 of 7: sentinel_pkg, the PL/SQL SDK.
--
-- A procedure reports its life as events (SPEC section 2) that the package builds with JSON_OBJECT
-- (so every value is escaped properly), stamps with a unique event_id (SYS_GUID) and an RFC 3339
-- timestamp with offset (SYSTIMESTAMP), and enqueues on SENTINEL_QUEUE with a priority by type:
-- ERROR 1, COMPLETED and CANCELLED 2, STARTED 3, PROGRESS 4, LOG 5, HEARTBEAT 6.
--
-- Transactions:
--   * start_process, update_progress, heartbeat, the log_* procedures, fail_process and
--     cancel_process enqueue in an AUTONOMOUS transaction: the event is sent at once and survives a
--     rollback of the caller's work (a failure is usually followed by one);
--   * complete_process enqueues in the CALLER's transaction (visibility ON_COMMIT): COMPLETED is
--     only seen if the work it reports is committed, and disappears with it on rollback.
--
-- Tenant: every event carries a tenant_id. Pass p_tenant_id, or call set_tenant once per session;
-- start_process remembers the tenant of the processes it started in this session, so the calls
-- that follow need only the process id.
--
-- Errors: monitoring must not break the job it monitors, so by default a failure to build or send
-- an event is swallowed and kept in last_error; set_strict(TRUE) makes the calls raise instead. Every
-- public call does all its work inside its own handler, so no argument (an unknown level, text too
-- long, no tenant) raises into the caller outside strict mode.
--
-- Size: one event is at most 32,767 bytes of UTF-8 JSON (a RAW queue message; sentinel._core
-- MAX_EVENT_BYTES). A larger one is trimmed to fit rather than lost: its longest texts are cut and
-- end with " [trimmed]", its largest JSON objects become {"trimmed":true}, the event carries
-- "trimmed": true, and last_error says so.
-- Example (docs/oracle.md has a longer one):
--
--     l_id := sentinel_pkg.start_process(p_process_name => 'Nightly load', p_tenant_id => 'acme');
--     sentinel_pkg.update_progress(l_id, 50, 'transform');
--     sentinel_pkg.log_info(l_id, 'rows loaded: ' || l_rows);
--     sentinel_pkg.complete_process(l_id);
--     COMMIT;

SET DEFINE OFF
WHENEVER SQLERROR EXIT SQL.SQLCODE

CREATE OR REPLACE PACKAGE sentinel_pkg AUTHID DEFINER AS
    -- Queue priority by event type (lower is dequeued first); sentinel._core PRIORITIES agrees.
    c_priority_error     CONSTANT PLS_INTEGER := 1;
    c_priority_completed CONSTANT PLS_INTEGER := 2;
    c_priority_cancelled CONSTANT PLS_INTEGER := 2;
    c_priority_started   CONSTANT PLS_INTEGER := 3;
    c_priority_progress  CONSTANT PLS_INTEGER := 4;
    c_priority_log       CONSTANT PLS_INTEGER := 5;
    c_priority_heartbeat CONSTANT PLS_INTEGER := 6;

    c_queue_name CONSTANT VARCHAR2(128) := 'SENTINEL_QUEUE';

    -- The tenant of this session's events when a call passes none.
    PROCEDURE set_tenant(p_tenant_id IN VARCHAR2);

    -- TRUE: a failure to send raises. FALSE (default): it is kept in last_error and the caller goes on.
    PROCEDURE set_strict(p_strict IN BOOLEAN);

    -- What went wrong in this session's latest call (NULL if nothing did).
    FUNCTION last_error RETURN VARCHAR2;

    -- A JSON object of string values from name/value pairs, for p_metadata, p_details, p_result.
    FUNCTION to_json(p_attrs IN sentinel_attrs) RETURN VARCHAR2;

    -- STARTED, for a process id chosen by the caller.
    PROCEDURE start_process(
        p_process_id     IN VARCHAR2,
        p_process_name   IN VARCHAR2 DEFAULT NULL,
        p_process_type   IN VARCHAR2 DEFAULT NULL,
        p_package_name   IN VARCHAR2 DEFAULT NULL,
        p_procedure_name IN VARCHAR2 DEFAULT NULL,
        p_correlation_id IN VARCHAR2 DEFAULT NULL,
        p_metadata       IN VARCHAR2 DEFAULT NULL,
        p_tenant_id      IN VARCHAR2 DEFAULT NULL
    );

    -- STARTED, for a new process id (32 hex digits) that it returns.
    FUNCTION start_process(
        p_process_name   IN VARCHAR2 DEFAULT NULL,
        p_process_type   IN VARCHAR2 DEFAULT NULL,
        p_package_name   IN VARCHAR2 DEFAULT NULL,
        p_procedure_name IN VARCHAR2 DEFAULT NULL,
        p_correlation_id IN VARCHAR2 DEFAULT NULL,
        p_metadata       IN VARCHAR2 DEFAULT NULL,
        p_tenant_id      IN VARCHAR2 DEFAULT NULL
    ) RETURN VARCHAR2;

    -- PROGRESS: p_percent from 0 to 100 (clamped), p_step the current step's name.
    PROCEDURE update_progress(
        p_process_id IN VARCHAR2,
        p_percent    IN NUMBER DEFAULT NULL,
        p_step       IN VARCHAR2 DEFAULT NULL,
        p_metadata   IN VARCHAR2 DEFAULT NULL,
        p_tenant_id  IN VARCHAR2 DEFAULT NULL
    );

    -- HEARTBEAT: "still alive" for long steps that report no progress.
    PROCEDURE heartbeat(
        p_process_id IN VARCHAR2,
        p_message    IN VARCHAR2 DEFAULT NULL,
        p_tenant_id  IN VARCHAR2 DEFAULT NULL
    );

    -- COMPLETED, in the caller's transaction: sent when the caller commits.
    PROCEDURE complete_process(
        p_process_id IN VARCHAR2,
        p_result     IN VARCHAR2 DEFAULT NULL,
        p_tenant_id  IN VARCHAR2 DEFAULT NULL
    );

    -- ERROR (status FAILED). Called in an exception handler, the defaults report the exception
    -- being handled: its error stack as the message and its backtrace as the stack trace.
    PROCEDURE fail_process(
        p_process_id    IN VARCHAR2,
        p_error_code    IN VARCHAR2 DEFAULT NULL,
        p_error_message IN VARCHAR2 DEFAULT NULL,
        p_stack_trace   IN VARCHAR2 DEFAULT NULL,
        p_tenant_id     IN VARCHAR2 DEFAULT NULL
    );

    -- CANCELLED.
    PROCEDURE cancel_process(
        p_process_id IN VARCHAR2,
        p_reason     IN VARCHAR2 DEFAULT NULL,
        p_tenant_id  IN VARCHAR2 DEFAULT NULL
    );

    -- LOG at any level: TRACE, DEBUG, INFO, WARN, ERROR or FATAL (any case; WARNING is WARN and
    -- CRITICAL is FATAL). Another level is noted in last_error and sent as INFO (strict: raises).
    PROCEDURE log_message(
        p_process_id     IN VARCHAR2,
        p_level          IN VARCHAR2,
        p_message        IN VARCHAR2,
        p_details        IN VARCHAR2 DEFAULT NULL,
        p_component      IN VARCHAR2 DEFAULT NULL,
        p_correlation_id IN VARCHAR2 DEFAULT NULL,
        p_duration_us    IN NUMBER DEFAULT NULL,
        p_tenant_id      IN VARCHAR2 DEFAULT NULL
    );

    PROCEDURE log_debug(
        p_process_id IN VARCHAR2,
        p_message    IN VARCHAR2,
        p_details    IN VARCHAR2 DEFAULT NULL,
        p_component  IN VARCHAR2 DEFAULT NULL,
        p_tenant_id  IN VARCHAR2 DEFAULT NULL
    );

    PROCEDURE log_info(
        p_process_id IN VARCHAR2,
        p_message    IN VARCHAR2,
        p_details    IN VARCHAR2 DEFAULT NULL,
        p_component  IN VARCHAR2 DEFAULT NULL,
        p_tenant_id  IN VARCHAR2 DEFAULT NULL
    );

    PROCEDURE log_warn(
        p_process_id IN VARCHAR2,
        p_message    IN VARCHAR2,
        p_details    IN VARCHAR2 DEFAULT NULL,
        p_component  IN VARCHAR2 DEFAULT NULL,
        p_tenant_id  IN VARCHAR2 DEFAULT NULL
    );

    PROCEDURE log_error(
        p_process_id IN VARCHAR2,
        p_message    IN VARCHAR2,
        p_details    IN VARCHAR2 DEFAULT NULL,
        p_component  IN VARCHAR2 DEFAULT NULL,
        p_tenant_id  IN VARCHAR2 DEFAULT NULL
    );
END sentinel_pkg;
/

CREATE OR REPLACE PACKAGE BODY sentinel_pkg AS
    -- Field limits of SPEC section 2 (characters); longer values are cut, never refused.
    c_max_name CONSTANT PLS_INTEGER := 200;
    c_max_text CONSTANT PLS_INTEGER := 4000;
    c_max_stack CONSTANT PLS_INTEGER := 16000;
    c_max_duration CONSTANT NUMBER := 9223372036854775807;

    -- One serialized event, in UTF-8 bytes: a RAW queue message holds at most this many
    -- (sentinel._core MAX_EVENT_BYTES says the same). An event built larger is trimmed to fit, with a
    -- margin for the count's chunk boundaries: its longest texts are cut and end with c_trim_mark,
    -- its largest JSON objects become c_trimmed_object, and it carries "trimmed": true.
    c_max_event_bytes CONSTANT PLS_INTEGER := 32767;
    c_fit_bytes CONSTANT PLS_INTEGER := c_max_event_bytes - 64;
    c_max_trims CONSTANT PLS_INTEGER := 20;
    c_trim_mark CONSTANT VARCHAR2(20) := ' [trimmed]';
    c_trimmed_object CONSTANT VARCHAR2(20) := '{"trimmed":true}';
    c_chunk CONSTANT PLS_INTEGER := 8000;

    -- Log levels (sentinel._core LEVELS says the same); log_message maps WARNING and CRITICAL.
    c_levels CONSTANT VARCHAR2(100) := 'TRACE, DEBUG, INFO, WARN, ERROR, FATAL';

    -- One event; CLOB for the long texts, which may exceed 4000 bytes when bound into SQL.
    TYPE event_r IS RECORD (
        event_type     VARCHAR2(10),
        priority       PLS_INTEGER,
        process_id     VARCHAR2(400),
        tenant_id      VARCHAR2(200),
        process_name   VARCHAR2(800),
        process_type   VARCHAR2(800),
        package_name   VARCHAR2(800),
        procedure_name VARCHAR2(800),
        correlation_id VARCHAR2(800),
        step           VARCHAR2(800),
        percent        NUMBER,
        log_level      VARCHAR2(5),
        component      VARCHAR2(800),
        duration_us    NUMBER,
        error_code     VARCHAR2(800),
        message        CLOB,
        error_message  CLOB,
        stack_trace    CLOB,
        reason         CLOB,
        metadata       CLOB,
        details        CLOB,
        result         CLOB,
        trimmed        VARCHAR2(5)
    );

    TYPE tenant_map_t IS TABLE OF VARCHAR2(200) INDEX BY VARCHAR2(400);

    g_tenant VARCHAR2(200);
    g_tenants tenant_map_t;
    g_strict BOOLEAN := FALSE;
    g_last_error VARCHAR2(4000);

    -- Keep the error being handled in last_error. Every public call ends in a handler that does
    -- this and re-raises only in strict mode: monitoring never breaks the job it monitors, whatever
    -- the arguments (a bad level, oversized text, no tenant, the queue stopped).
    PROCEDURE failed IS
    BEGIN
        g_last_error := SUBSTR(DBMS_UTILITY.FORMAT_ERROR_STACK, 1, 4000);
    END failed;

    PROCEDURE set_tenant(p_tenant_id IN VARCHAR2) IS
    BEGIN
        g_tenant := SUBSTR(p_tenant_id, 1, 50);
    END set_tenant;

    PROCEDURE set_strict(p_strict IN BOOLEAN) IS
    BEGIN
        g_strict := NVL(p_strict, FALSE);
    END set_strict;

    FUNCTION last_error RETURN VARCHAR2 IS
    BEGIN
        RETURN g_last_error;
    END last_error;

    -- The caller evaluates to_json before any sentinel_pkg call can guard it, so it guards itself:
    -- attributes that do not fit a VARCHAR2 give c_trimmed_object (strict mode: the error).
    FUNCTION to_json(p_attrs IN sentinel_attrs) RETURN VARCHAR2 IS
        l_json CLOB;
    BEGIN
        IF p_attrs IS NULL OR p_attrs.COUNT = 0 THEN
            RETURN '{}';
        END IF;
        SELECT JSON_OBJECTAGG(KEY a.name VALUE a.value RETURNING CLOB)
          INTO l_json
          FROM TABLE(p_attrs) a;
        RETURN l_json;
    EXCEPTION
        WHEN OTHERS THEN
            failed;
            IF g_strict THEN
                RAISE;
            END IF;
            RETURN c_trimmed_object;
    END to_json;

    -- The tenant of an event: the argument, else the one start_process saw for this process in
    -- this session, else the session default.
    FUNCTION tenant_of(p_process_id IN VARCHAR2, p_tenant_id IN VARCHAR2) RETURN VARCHAR2 IS
    BEGIN
        IF p_tenant_id IS NOT NULL THEN
            RETURN p_tenant_id;
        ELSIF p_process_id IS NOT NULL AND g_tenants.EXISTS(p_process_id) THEN
            RETURN g_tenants(p_process_id);
        ELSIF g_tenant IS NOT NULL THEN
            RETURN g_tenant;
        END IF;
        RAISE_APPLICATION_ERROR(
            -20001, 'sentinel_pkg: no tenant for process ' || p_process_id
            || ' (pass p_tenant_id or call sentinel_pkg.set_tenant)'
        );
    END tenant_of;

    -- A level of c_levels (case and blanks ignored; WARNING is WARN, CRITICAL is FATAL). Another
    -- one raises in strict mode; otherwise it is noted in last_error and the line is sent as INFO.
    FUNCTION level_of(p_level IN VARCHAR2) RETURN VARCHAR2 IS
        l_level VARCHAR2(200) := UPPER(TRIM(SUBSTR(p_level, 1, 20)));
    BEGIN
        IF l_level IN ('TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL') THEN
            RETURN l_level;
        ELSIF l_level = 'WARNING' THEN
            RETURN 'WARN';
        ELSIF l_level = 'CRITICAL' THEN
            RETURN 'FATAL';
        END IF;
        IF g_strict THEN
            RAISE_APPLICATION_ERROR(
                -20003, 'sentinel_pkg: level ' || SUBSTR(p_level, 1, 100) || ' is not one of ' || c_levels
            );
        END IF;
        g_last_error := SUBSTR(
            'sentinel_pkg: level ' || SUBSTR(p_level, 1, 100) || ' is not one of ' || c_levels || ' (sent as INFO)',
            1, 4000
        );
        RETURN 'INFO';
    END level_of;

    -- A JSON object argument, or NULL with a note in last_error when it is not one: the event is
    -- still worth sending without it.
    FUNCTION json_object_arg(p_json IN VARCHAR2, p_name IN VARCHAR2) RETURN VARCHAR2 IS
        -- As a CLOB: a VARCHAR2 over 4000 bytes cannot be bound into SQL.
        l_json CLOB := p_json;
        l_valid PLS_INTEGER := 0;
    BEGIN
        IF p_json IS NULL THEN
            RETURN NULL;
        END IF;
        IF SUBSTR(LTRIM(p_json, ' ' || CHR(9) || CHR(10) || CHR(13)), 1, 1) = '{' THEN
            SELECT COUNT(*) INTO l_valid FROM dual WHERE JSON_EXISTS(l_json, '$');
        END IF;
        IF l_valid = 0 THEN
            RAISE_APPLICATION_ERROR(-20002, 'sentinel_pkg: ' || p_name || ' is not a JSON object');
        END IF;
        RETURN p_json;
    EXCEPTION
        WHEN OTHERS THEN
            IF g_strict THEN
                RAISE;
            END IF;
            g_last_error := SUBSTR(SQLERRM || ' (' || p_name || ' left out)', 1, 4000);
            RETURN NULL;
    END json_object_arg;

    -- The event as SPEC section 2 JSON; absent fields are left out rather than sent as null.
    FUNCTION build(p_event IN event_r) RETURN CLOB IS
        l_json CLOB;
    BEGIN
        SELECT JSON_OBJECT(
                   'event_id' VALUE LOWER(RAWTOHEX(SYS_GUID())),
                   'event_type' VALUE p_event.event_type,
                   'process_id' VALUE p_event.process_id,
                   'tenant_id' VALUE p_event.tenant_id,
                   'timestamp' VALUE TO_CHAR(SYSTIMESTAMP, 'YYYY-MM-DD"T"HH24:MI:SS.FF6TZH:TZM'),
                   'process_name' VALUE p_event.process_name,
                   'process_type' VALUE p_event.process_type,
                   'package_name' VALUE p_event.package_name,
                   'procedure_name' VALUE p_event.procedure_name,
                   'correlation_id' VALUE p_event.correlation_id,
                   'step' VALUE p_event.step,
                   'percent' VALUE p_event.percent,
                   'level' VALUE p_event.log_level,
                   'message' VALUE p_event.message,
                   'component' VALUE p_event.component,
                   'duration_us' VALUE p_event.duration_us,
                   'error_code' VALUE p_event.error_code,
                   'error_message' VALUE p_event.error_message,
                   'stack_trace' VALUE p_event.stack_trace,
                   'reason' VALUE p_event.reason,
                   'metadata' VALUE p_event.metadata FORMAT JSON,
                   'details' VALUE p_event.details FORMAT JSON,
                   'result' VALUE p_event.result FORMAT JSON,
                   'trimmed' VALUE p_event.trimmed FORMAT JSON
                   ABSENT ON NULL
                   RETURNING CLOB
               )
          INTO l_json
          FROM dual;
        RETURN l_json;
    END build;

    -- Length of a text in UTF-8 bytes (what the RAW payload holds, whatever the database character
    -- set), counted in chunks that each fit a VARCHAR2 and a RAW.
    FUNCTION utf8_bytes(p_text IN CLOB) RETURN PLS_INTEGER IS
        l_total PLS_INTEGER := 0;
        l_offset PLS_INTEGER := 1;
        l_length PLS_INTEGER := NVL(DBMS_LOB.GETLENGTH(p_text), 0);
    BEGIN
        WHILE l_offset <= l_length LOOP
            l_total := l_total + NVL(
                UTL_RAW.LENGTH(UTL_I18N.STRING_TO_RAW(DBMS_LOB.SUBSTR(p_text, c_chunk, l_offset), 'AL32UTF8')), 0
            );
            l_offset := l_offset + c_chunk;
        END LOOP;
        RETURN l_total;
    END utf8_bytes;

    -- Which long field is longest (characters): 1 message, 2 error_message, 3 stack_trace, 4 reason,
    -- 5 metadata, 6 details, 7 result; 0 when none is longer than what trimming leaves.
    FUNCTION longest(p_event IN event_r) RETURN PLS_INTEGER IS
        l_best PLS_INTEGER := 0;
        l_most PLS_INTEGER := LENGTH(c_trimmed_object);

        PROCEDURE consider(p_field IN PLS_INTEGER, p_value IN CLOB) IS
            l_length PLS_INTEGER := NVL(DBMS_LOB.GETLENGTH(p_value), 0);
        BEGIN
            IF l_length > l_most THEN
                l_best := p_field;
                l_most := l_length;
            END IF;
        END consider;
    BEGIN
        consider(1, p_event.message);
        consider(2, p_event.error_message);
        consider(3, p_event.stack_trace);
        consider(4, p_event.reason);
        consider(5, p_event.metadata);
        consider(6, p_event.details);
        consider(7, p_event.result);
        RETURN l_best;
    END longest;

    -- Cut a text by p_over characters and the mark's length, then mark it: at least p_over UTF-8
    -- bytes shorter, since every character is at least one byte in the JSON.
    PROCEDURE cut(p_text IN OUT NOCOPY CLOB, p_over IN PLS_INTEGER) IS
        l_keep PLS_INTEGER := GREATEST(NVL(DBMS_LOB.GETLENGTH(p_text), 0) - p_over - LENGTH(c_trim_mark), 0);
    BEGIN
        p_text := SUBSTR(p_text, 1, l_keep) || c_trim_mark;
    END cut;

    -- The event's JSON, trimmed to fit one RAW message (see c_max_event_bytes).
    FUNCTION fitted(p_event IN OUT NOCOPY event_r) RETURN CLOB IS
        l_json CLOB := build(p_event);
        l_size PLS_INTEGER := utf8_bytes(l_json);
        l_over PLS_INTEGER;
    BEGIN
        FOR i IN 1 .. c_max_trims LOOP
            EXIT WHEN l_size <= c_fit_bytes;
            l_over := l_size - c_fit_bytes;
            p_event.trimmed := 'true';
            CASE longest(p_event)
                WHEN 1 THEN cut(p_event.message, l_over);
                WHEN 2 THEN cut(p_event.error_message, l_over);
                WHEN 3 THEN cut(p_event.stack_trace, l_over);
                WHEN 4 THEN cut(p_event.reason, l_over);
                WHEN 5 THEN p_event.metadata := c_trimmed_object;
                WHEN 6 THEN p_event.details := c_trimmed_object;
                WHEN 7 THEN p_event.result := c_trimmed_object;
                ELSE EXIT;
            END CASE;
            l_json := build(p_event);
            l_size := utf8_bytes(l_json);
        END LOOP;
        IF l_size > c_fit_bytes THEN
            RAISE_APPLICATION_ERROR(
                -20004, 'sentinel_pkg: the event cannot be trimmed to ' || c_max_event_bytes || ' bytes'
            );
        END IF;
        IF p_event.trimmed IS NOT NULL THEN
            g_last_error := 'sentinel_pkg: event trimmed to fit ' || c_max_event_bytes || ' bytes';
        END IF;
        RETURN l_json;
    END fitted;

    -- Enqueue in the current transaction; the message is visible when that transaction commits.
    PROCEDURE enqueue(p_payload IN RAW, p_priority IN PLS_INTEGER) IS
        l_options DBMS_AQ.ENQUEUE_OPTIONS_T;
        l_properties DBMS_AQ.MESSAGE_PROPERTIES_T;
        l_msgid RAW(16);
    BEGIN
        l_options.visibility := DBMS_AQ.ON_COMMIT;
        l_properties.priority := p_priority;
        DBMS_AQ.ENQUEUE(
            queue_name         => c_queue_name,
            enqueue_options    => l_options,
            message_properties => l_properties,
            payload            => p_payload,
            msgid              => l_msgid
        );
    END enqueue;

    -- Enqueue and commit on its own, whatever the caller's transaction does afterwards.
    PROCEDURE enqueue_autonomous(p_payload IN RAW, p_priority IN PLS_INTEGER) IS
        PRAGMA AUTONOMOUS_TRANSACTION;
    BEGIN
        enqueue(p_payload, p_priority);
        COMMIT;
    EXCEPTION
        WHEN OTHERS THEN
            ROLLBACK;
            RAISE;
    END enqueue_autonomous;

    PROCEDURE send(p_event IN OUT NOCOPY event_r, p_autonomous IN BOOLEAN) IS
        -- At most c_fit_bytes in the database character set too (never more bytes than UTF-8).
        l_text VARCHAR2(32767);
        l_payload RAW(32767);
    BEGIN
        p_event.tenant_id := tenant_of(p_event.process_id, p_event.tenant_id);
        l_text := fitted(p_event);
        l_payload := UTL_I18N.STRING_TO_RAW(l_text, 'AL32UTF8');
        IF p_autonomous THEN
            enqueue_autonomous(l_payload, p_event.priority);
        ELSE
            enqueue(l_payload, p_event.priority);
        END IF;
    EXCEPTION
        WHEN OTHERS THEN
            failed;
            IF g_strict THEN
                RAISE;
            END IF;
    END send;

    -- The process is over: forget its tenant (an associative array takes no NULL key).
    PROCEDURE forget(p_process_id IN VARCHAR2) IS
    BEGIN
        IF p_process_id IS NOT NULL THEN
            g_tenants.DELETE(p_process_id);
        END IF;
    END forget;

    FUNCTION new_event(
        p_event_type IN VARCHAR2, p_priority IN PLS_INTEGER, p_process_id IN VARCHAR2, p_tenant_id IN VARCHAR2
    ) RETURN event_r IS
        l_event event_r;
    BEGIN
        g_last_error := NULL;
        l_event.event_type := p_event_type;
        l_event.priority := p_priority;
        l_event.process_id := SUBSTR(p_process_id, 1, 100);
        l_event.tenant_id := SUBSTR(p_tenant_id, 1, 50);
        RETURN l_event;
    END new_event;

    PROCEDURE start_process(
        p_process_id     IN VARCHAR2,
        p_process_name   IN VARCHAR2 DEFAULT NULL,
        p_process_type   IN VARCHAR2 DEFAULT NULL,
        p_package_name   IN VARCHAR2 DEFAULT NULL,
        p_procedure_name IN VARCHAR2 DEFAULT NULL,
        p_correlation_id IN VARCHAR2 DEFAULT NULL,
        p_metadata       IN VARCHAR2 DEFAULT NULL,
        p_tenant_id      IN VARCHAR2 DEFAULT NULL
    ) IS
        l_event event_r;
    BEGIN
        l_event := new_event('STARTED', c_priority_started, p_process_id, p_tenant_id);
        l_event.process_name := SUBSTR(p_process_name, 1, c_max_name);
        l_event.process_type := SUBSTR(p_process_type, 1, c_max_name);
        l_event.package_name := SUBSTR(p_package_name, 1, c_max_name);
        l_event.procedure_name := SUBSTR(p_procedure_name, 1, c_max_name);
        l_event.correlation_id := SUBSTR(p_correlation_id, 1, c_max_name);
        l_event.metadata := json_object_arg(p_metadata, 'p_metadata');
        send(l_event, TRUE);
        IF l_event.tenant_id IS NOT NULL AND l_event.process_id IS NOT NULL THEN
            g_tenants(l_event.process_id) := l_event.tenant_id;
        END IF;
    EXCEPTION
        WHEN OTHERS THEN
            failed;
            IF g_strict THEN
                RAISE;
            END IF;
    END start_process;

    FUNCTION start_process(
        p_process_name   IN VARCHAR2 DEFAULT NULL,
        p_process_type   IN VARCHAR2 DEFAULT NULL,
        p_package_name   IN VARCHAR2 DEFAULT NULL,
        p_procedure_name IN VARCHAR2 DEFAULT NULL,
        p_correlation_id IN VARCHAR2 DEFAULT NULL,
        p_metadata       IN VARCHAR2 DEFAULT NULL,
        p_tenant_id      IN VARCHAR2 DEFAULT NULL
    ) RETURN VARCHAR2 IS
        l_process_id VARCHAR2(100) := LOWER(RAWTOHEX(SYS_GUID()));
    BEGIN
        start_process(
            p_process_id     => l_process_id,
            p_process_name   => p_process_name,
            p_process_type   => p_process_type,
            p_package_name   => p_package_name,
            p_procedure_name => p_procedure_name,
            p_correlation_id => p_correlation_id,
            p_metadata       => p_metadata,
            p_tenant_id      => p_tenant_id
        );
        RETURN l_process_id;
    END start_process;

    PROCEDURE update_progress(
        p_process_id IN VARCHAR2,
        p_percent    IN NUMBER DEFAULT NULL,
        p_step       IN VARCHAR2 DEFAULT NULL,
        p_metadata   IN VARCHAR2 DEFAULT NULL,
        p_tenant_id  IN VARCHAR2 DEFAULT NULL
    ) IS
        l_event event_r;
    BEGIN
        l_event := new_event('PROGRESS', c_priority_progress, p_process_id, p_tenant_id);
        l_event.percent := LEAST(GREATEST(p_percent, 0), 100);
        l_event.step := SUBSTR(p_step, 1, c_max_name);
        l_event.metadata := json_object_arg(p_metadata, 'p_metadata');
        send(l_event, TRUE);
    EXCEPTION
        WHEN OTHERS THEN
            failed;
            IF g_strict THEN
                RAISE;
            END IF;
    END update_progress;

    PROCEDURE heartbeat(
        p_process_id IN VARCHAR2,
        p_message    IN VARCHAR2 DEFAULT NULL,
        p_tenant_id  IN VARCHAR2 DEFAULT NULL
    ) IS
        l_event event_r;
    BEGIN
        l_event := new_event('HEARTBEAT', c_priority_heartbeat, p_process_id, p_tenant_id);
        l_event.message := SUBSTR(p_message, 1, c_max_text);
        send(l_event, TRUE);
    EXCEPTION
        WHEN OTHERS THEN
            failed;
            IF g_strict THEN
                RAISE;
            END IF;
    END heartbeat;

    PROCEDURE complete_process(
        p_process_id IN VARCHAR2,
        p_result     IN VARCHAR2 DEFAULT NULL,
        p_tenant_id  IN VARCHAR2 DEFAULT NULL
    ) IS
        l_event event_r;
    BEGIN
        l_event := new_event('COMPLETED', c_priority_completed, p_process_id, p_tenant_id);
        l_event.result := json_object_arg(p_result, 'p_result');
        send(l_event, FALSE);
        forget(l_event.process_id);
    EXCEPTION
        WHEN OTHERS THEN
            failed;
            IF g_strict THEN
                RAISE;
            END IF;
    END complete_process;

    PROCEDURE fail_process(
        p_process_id    IN VARCHAR2,
        p_error_code    IN VARCHAR2 DEFAULT NULL,
        p_error_message IN VARCHAR2 DEFAULT NULL,
        p_stack_trace   IN VARCHAR2 DEFAULT NULL,
        p_tenant_id     IN VARCHAR2 DEFAULT NULL
    ) IS
        l_error_stack VARCHAR2(32767);
        l_backtrace VARCHAR2(32767);
        l_event event_r;
    BEGIN
        -- First: they describe the exception the caller is handling, if any.
        l_error_stack := DBMS_UTILITY.FORMAT_ERROR_STACK;
        l_backtrace := DBMS_UTILITY.FORMAT_ERROR_BACKTRACE;
        l_event := new_event('ERROR', c_priority_error, p_process_id, p_tenant_id);
        l_event.error_code := SUBSTR(p_error_code, 1, c_max_name);
        l_event.error_message := SUBSTR(NVL(p_error_message, RTRIM(l_error_stack, CHR(10))), 1, c_max_text);
        l_event.stack_trace := SUBSTR(NVL(p_stack_trace, RTRIM(l_backtrace, CHR(10))), 1, c_max_stack);
        send(l_event, TRUE);
        forget(l_event.process_id);
    EXCEPTION
        WHEN OTHERS THEN
            failed;
            IF g_strict THEN
                RAISE;
            END IF;
    END fail_process;

    PROCEDURE cancel_process(
        p_process_id IN VARCHAR2,
        p_reason     IN VARCHAR2 DEFAULT NULL,
        p_tenant_id  IN VARCHAR2 DEFAULT NULL
    ) IS
        l_event event_r;
    BEGIN
        l_event := new_event('CANCELLED', c_priority_cancelled, p_process_id, p_tenant_id);
        l_event.reason := SUBSTR(p_reason, 1, c_max_text);
        send(l_event, TRUE);
        forget(l_event.process_id);
    EXCEPTION
        WHEN OTHERS THEN
            failed;
            IF g_strict THEN
                RAISE;
            END IF;
    END cancel_process;

    PROCEDURE log_message(
        p_process_id     IN VARCHAR2,
        p_level          IN VARCHAR2,
        p_message        IN VARCHAR2,
        p_details        IN VARCHAR2 DEFAULT NULL,
        p_component      IN VARCHAR2 DEFAULT NULL,
        p_correlation_id IN VARCHAR2 DEFAULT NULL,
        p_duration_us    IN NUMBER DEFAULT NULL,
        p_tenant_id      IN VARCHAR2 DEFAULT NULL
    ) IS
        l_event event_r;
    BEGIN
        l_event := new_event('LOG', c_priority_log, p_process_id, p_tenant_id);
        l_event.log_level := level_of(p_level);
        -- message is required: an empty one (NULL in Oracle) is sent as a single space.
        l_event.message := NVL(SUBSTR(p_message, 1, c_max_text), ' ');
        l_event.details := json_object_arg(p_details, 'p_details');
        l_event.component := SUBSTR(p_component, 1, c_max_name);
        l_event.correlation_id := SUBSTR(p_correlation_id, 1, c_max_name);
        l_event.duration_us := LEAST(TRUNC(GREATEST(p_duration_us, 0)), c_max_duration);
        send(l_event, TRUE);
    EXCEPTION
        WHEN OTHERS THEN
            failed;
            IF g_strict THEN
                RAISE;
            END IF;
    END log_message;

    PROCEDURE log_debug(
        p_process_id IN VARCHAR2,
        p_message    IN VARCHAR2,
        p_details    IN VARCHAR2 DEFAULT NULL,
        p_component  IN VARCHAR2 DEFAULT NULL,
        p_tenant_id  IN VARCHAR2 DEFAULT NULL
    ) IS
    BEGIN
        log_message(p_process_id, 'DEBUG', p_message, p_details, p_component, p_tenant_id => p_tenant_id);
    END log_debug;

    PROCEDURE log_info(
        p_process_id IN VARCHAR2,
        p_message    IN VARCHAR2,
        p_details    IN VARCHAR2 DEFAULT NULL,
        p_component  IN VARCHAR2 DEFAULT NULL,
        p_tenant_id  IN VARCHAR2 DEFAULT NULL
    ) IS
    BEGIN
        log_message(p_process_id, 'INFO', p_message, p_details, p_component, p_tenant_id => p_tenant_id);
    END log_info;

    PROCEDURE log_warn(
        p_process_id IN VARCHAR2,
        p_message    IN VARCHAR2,
        p_details    IN VARCHAR2 DEFAULT NULL,
        p_component  IN VARCHAR2 DEFAULT NULL,
        p_tenant_id  IN VARCHAR2 DEFAULT NULL
    ) IS
    BEGIN
        log_message(p_process_id, 'WARN', p_message, p_details, p_component, p_tenant_id => p_tenant_id);
    END log_warn;

    PROCEDURE log_error(
        p_process_id IN VARCHAR2,
        p_message    IN VARCHAR2,
        p_details    IN VARCHAR2 DEFAULT NULL,
        p_component  IN VARCHAR2 DEFAULT NULL,
        p_tenant_id  IN VARCHAR2 DEFAULT NULL
    ) IS
    BEGIN
        log_message(p_process_id, 'ERROR', p_message, p_details, p_component, p_tenant_id => p_tenant_id);
    END log_error;
END sentinel_pkg;
/

-- For anonymous blocks and direct producers. Stored code in another schema runs without roles: grant
-- EXECUTE on sentinel_pkg, sentinel_attr and sentinel_attrs to its owner directly (docs/oracle.md).
GRANT EXECUTE ON sentinel_pkg TO sentinel_producer;

GRANT EXECUTE ON sentinel_attr TO sentinel_producer;

GRANT EXECUTE ON sentinel_attrs TO sentinel_producer;
