-- Process Sentinel, embedded schema v2: the newest change of a tenant's processes, read once when a paged
-- walk of GET /processes begins (its snapshot bound), and the rows changed since then.

CREATE INDEX processes_changed ON processes (tenant_id, updated_at);
