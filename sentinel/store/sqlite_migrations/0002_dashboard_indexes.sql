-- Process Sentinel, embedded schema v2: "which of this tenant's processes changed since t" (a range, not a
-- scan of the tenant's rows) for the dashboard's live feed and for a paged walk of GET /processes (its
-- snapshot bound and the rows changed since), and "how many of them in each status" (counted from the
-- index alone).

CREATE INDEX processes_changed ON processes (tenant_id, updated_at);
CREATE INDEX processes_by_status ON processes (tenant_id, status);
