-- Process Sentinel for Oracle 19c+, script 6 of 7: what the web dashboard's live feed asks of every open page.
--
-- "Which of this tenant's processes changed since t" is a range scan of the first index instead of a
-- walk through all of the tenant's rows, and "how many in each status" is counted from the second
-- index alone. Both are asked about twice a second per open processes page.

CREATE INDEX sentinel_processes_changed ON sentinel_processes (tenant_id, updated_at);

CREATE INDEX sentinel_processes_by_status ON sentinel_processes (tenant_id, status);
