-- Conveyor schema, version 11 (PostgreSQL): the pending deliveries of each Subscription
-- by job, for the in-order rule of the due query (the earliest pending delivery of a job).

CREATE INDEX webhook_deliveries_pending_by_job ON webhook_deliveries (webhook_id, job_id, id)
    WHERE state = 'pending';
