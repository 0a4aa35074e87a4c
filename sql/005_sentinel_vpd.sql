-- Process Sentinel for Oracle 19c+, script 5 of 7 (optional, Enterprise Edition): row-level security.
--
-- Sentinel already filters every read on the caller's tenant with a bind variable. This script adds a
-- second, independent wall in the database itself (Virtual Private Database, DBMS_RLS):
--
--   * the application context SENTINEL_CTX can only be set through the trusted package
--     sentinel_ctx_pkg (grant EXECUTE on it to the Sentinel service user, to nobody else);
--   * a policy on the tenant tables adds "tenant_id = SYS_CONTEXT('SENTINEL_CTX', 'TENANT_ID')" to
--     every query and DML; with no tenant in the context it adds "1 = 0", so a session that forgot to
--     set it sees and changes nothing (fails closed);
--   * the ingest consumer and housekeeping work across tenants: they call set_service_scope, which
--     lifts the filter for their session; dead letters and secrets are visible only in that scope.
--
-- Sentinel detects this package at start-up and then sets the tenant (or the service scope) on a
-- pooled connection before each use and clears it before giving the connection back.
-- People querying the tables directly see no rows until they call
--     EXEC sentinel_ctx_pkg.set_service_scope
-- (or hold EXEMPT ACCESS POLICY). The blocks check what exists first, so the script can be re-run.
-- Needs: CREATE ANY CONTEXT, EXECUTE on DBMS_RLS; Enterprise Edition (ORA-00439 elsewhere, in which
-- case `sentinel migrate --oracle` reports the script as skipped).

SET DEFINE OFF
WHENEVER SQLERROR EXIT SQL.SQLCODE

CREATE OR REPLACE PACKAGE sentinel_ctx_pkg AUTHID DEFINER AS
    -- Scope the session to one tenant.
    PROCEDURE set_tenant(p_tenant_id IN VARCHAR2);

    -- Lift the tenant filter for this session: the ingest consumer and housekeeping only.
    PROCEDURE set_service_scope;

    -- Back to no scope at all: every Sentinel table looks empty.
    PROCEDURE clear_context;

    -- DBMS_RLS policy functions.
    FUNCTION tenant_predicate(p_schema IN VARCHAR2, p_object IN VARCHAR2) RETURN VARCHAR2;

    FUNCTION service_predicate(p_schema IN VARCHAR2, p_object IN VARCHAR2) RETURN VARCHAR2;
END sentinel_ctx_pkg;
/

-- Only sentinel_ctx_pkg may set SENTINEL_CTX. sqlfluff's grammar has no CREATE CONTEXT. (No comment
-- may follow a terminator: SQL*Plus would not end the statement there.)
CREATE OR REPLACE CONTEXT sentinel_ctx -- noqa: PRS
USING sentinel_ctx_pkg;

CREATE OR REPLACE PACKAGE BODY sentinel_ctx_pkg AS
    c_namespace CONSTANT VARCHAR2(30) := 'SENTINEL_CTX';

    PROCEDURE set_tenant(p_tenant_id IN VARCHAR2) IS
    BEGIN
        -- Any non-empty value: one that no row carries simply matches no row.
        IF p_tenant_id IS NULL THEN
            RAISE_APPLICATION_ERROR(-20010, 'sentinel_ctx_pkg: tenant_id is required');
        END IF;
        DBMS_SESSION.CLEAR_ALL_CONTEXT(c_namespace);
        DBMS_SESSION.SET_CONTEXT(c_namespace, 'TENANT_ID', p_tenant_id);
    END set_tenant;

    PROCEDURE set_service_scope IS
    BEGIN
        DBMS_SESSION.CLEAR_ALL_CONTEXT(c_namespace);
        DBMS_SESSION.SET_CONTEXT(c_namespace, 'SCOPE', 'SERVICE');
    END set_service_scope;

    PROCEDURE clear_context IS
    BEGIN
        DBMS_SESSION.CLEAR_ALL_CONTEXT(c_namespace);
    END clear_context;

    FUNCTION tenant_predicate(p_schema IN VARCHAR2, p_object IN VARCHAR2) RETURN VARCHAR2 IS
    BEGIN
        IF SYS_CONTEXT(c_namespace, 'SCOPE') = 'SERVICE' THEN
            RETURN NULL;
        ELSIF SYS_CONTEXT(c_namespace, 'TENANT_ID') IS NOT NULL THEN
            RETURN 'tenant_id = SYS_CONTEXT(''SENTINEL_CTX'', ''TENANT_ID'')';
        END IF;
        RETURN '1 = 0';
    END tenant_predicate;

    FUNCTION service_predicate(p_schema IN VARCHAR2, p_object IN VARCHAR2) RETURN VARCHAR2 IS
    BEGIN
        IF SYS_CONTEXT(c_namespace, 'SCOPE') = 'SERVICE' THEN
            RETURN NULL;
        END IF;
        RETURN '1 = 0';
    END service_predicate;
END sentinel_ctx_pkg;
/

DECLARE
    PROCEDURE protect(p_table IN VARCHAR2, p_function IN VARCHAR2) IS
        l_count PLS_INTEGER;
    BEGIN
        SELECT COUNT(*)
          INTO l_count
          FROM user_policies
         WHERE object_name = p_table AND policy_name = 'SENTINEL_TENANT_POLICY';
        IF l_count = 0 THEN
            DBMS_RLS.ADD_POLICY(
                object_schema   => SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA'),
                object_name     => p_table,
                policy_name     => 'SENTINEL_TENANT_POLICY',
                function_schema => SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA'),
                policy_function => p_function,
                statement_types => 'SELECT, INSERT, UPDATE, DELETE',
                update_check    => TRUE,
                policy_type     => DBMS_RLS.CONTEXT_SENSITIVE
            );
        END IF;
    END protect;
BEGIN
    protect('SENTINEL_PROCESSES', 'SENTINEL_CTX_PKG.TENANT_PREDICATE');
    protect('SENTINEL_LOGS', 'SENTINEL_CTX_PKG.TENANT_PREDICATE');
    protect('SENTINEL_DEDUPE', 'SENTINEL_CTX_PKG.TENANT_PREDICATE');
    protect('SENTINEL_DEAD_LETTERS', 'SENTINEL_CTX_PKG.SERVICE_PREDICATE');
    protect('SENTINEL_META', 'SENTINEL_CTX_PKG.SERVICE_PREDICATE');
END;
/
