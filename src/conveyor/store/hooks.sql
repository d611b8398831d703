-- Incoming hook queries, once for both databases: :named parameters, no casts, no
-- dialect functions, every time a parameter. conveyor.store.queries.load_portable
-- adapts them to each dialect. Only whole-line comments: they are dropped before the
-- parameters are rewritten. Receipt reads name their columns: the body is read only
-- by receipt_body.

-- name: insert_hook
INSERT INTO incoming_hooks (tenant_id, name, description, enabled, token_hash, verify,
                            secret, signature_header, delivery_header, task, queue,
                            priority, created_at, updated_at)
VALUES (:tenant_id, :name, :description, :enabled, :token_hash, :verify, :secret,
        :signature_header, :delivery_header, :task, :queue, :priority, :now, :now)
RETURNING *

-- name: get_hook
SELECT * FROM incoming_hooks WHERE tenant_id = :tenant_id AND id = :id

-- name: list_hooks
SELECT * FROM incoming_hooks WHERE tenant_id = :tenant_id ORDER BY id

-- name: update_hook
UPDATE incoming_hooks
SET name = :name, description = :description, enabled = :enabled, verify = :verify,
    secret = :secret, signature_header = :signature_header,
    delivery_header = :delivery_header, task = :task, queue = :queue,
    priority = :priority, updated_at = :now
WHERE tenant_id = :tenant_id AND id = :id
RETURNING *

-- name: set_token
UPDATE incoming_hooks SET token_hash = :token_hash, updated_at = :now
WHERE tenant_id = :tenant_id AND id = :id
RETURNING *

-- name: stored_secret
-- For sealing what was kept before secrets were sealed (conveyor.store.sealing).
SELECT id, secret AS stored FROM incoming_hooks

-- name: seal_secret
UPDATE incoming_hooks SET secret = :sealed_value WHERE id = :id AND secret = :stored
RETURNING id

-- name: delete_hook
DELETE FROM incoming_hooks WHERE tenant_id = :tenant_id AND id = :id RETURNING id

-- name: hook_by_token
-- The receiver's lookup: the token names the hook (and so the tenant), like an API
-- key's hash. Disabled hooks and suspended tenants receive nothing.
SELECT h.* FROM incoming_hooks AS h
JOIN tenants AS t ON t.id = h.tenant_id
WHERE h.token_hash = :token_hash AND h.enabled AND t.status = 'active'

-- name: insert_receipt
-- A redelivery (same hook and delivery id) inserts nothing and returns no row.
INSERT INTO hook_receipts (id, tenant_id, hook_id, delivery_id, method, content_type,
                           headers, body, size, ip, verified, task, received_at)
VALUES (:id, :tenant_id, :hook_id, :delivery_id, :method, :content_type, :headers,
        :body, :size, :ip, :verified, :task, :received_at)
ON CONFLICT (hook_id, delivery_id) DO NOTHING
RETURNING id, tenant_id, hook_id, delivery_id, method, content_type, headers, size, ip,
          verified, task, job_id, received_at

-- name: insert_received_event
-- Only if the receipt above was inserted (in the same transaction).
INSERT INTO events (tenant_id, job_id, type, data, created_at)
SELECT tenant_id, NULL, :type, :data, :now FROM hook_receipts
WHERE tenant_id = :tenant_id AND id = :id

-- name: receipt_by_delivery
SELECT id, tenant_id, hook_id, delivery_id, method, content_type, headers, size, ip,
       verified, task, job_id, received_at
FROM hook_receipts
WHERE tenant_id = :tenant_id AND hook_id = :hook_id AND delivery_id = :delivery_id

-- name: get_receipt
SELECT id, tenant_id, hook_id, delivery_id, method, content_type, headers, size, ip,
       verified, task, job_id, received_at
FROM hook_receipts
WHERE tenant_id = :tenant_id AND hook_id = :hook_id AND id = :id

-- name: receipt_body
SELECT body FROM hook_receipts
WHERE tenant_id = :tenant_id AND hook_id = :hook_id AND id = :id

-- name: list_receipts
-- Newest first; a page continues below the cursor's (received_at, id).
SELECT r.id, r.tenant_id, r.hook_id, r.delivery_id, r.method, r.content_type, r.headers,
       r.size, r.ip, r.verified, r.task, r.job_id, r.received_at
FROM hook_receipts AS r
WHERE r.tenant_id = :tenant_id AND r.hook_id = :hook_id
  AND (:any_delivery OR r.delivery_id = :delivery_id)
  AND r.received_at >= :since AND r.received_at < :until
  AND (:first_page OR r.received_at < (SELECT c.received_at FROM hook_receipts AS c
                                        WHERE c.tenant_id = :tenant_id AND c.id = :before)
       OR (r.received_at = (SELECT c.received_at FROM hook_receipts AS c
                            WHERE c.tenant_id = :tenant_id AND c.id = :before)
           AND r.id < :before))
ORDER BY r.received_at DESC, r.id DESC
LIMIT :limit

-- name: set_receipt_job
UPDATE hook_receipts SET job_id = :job_id
WHERE tenant_id = :tenant_id AND id = :id
RETURNING id, tenant_id, hook_id, delivery_id, method, content_type, headers, size, ip,
          verified, task, job_id, received_at

-- name: prune_receipts
-- Every tenant's: the retention period is the server's.
DELETE FROM hook_receipts
WHERE id IN (SELECT id FROM hook_receipts WHERE received_at < :before LIMIT :limit)
RETURNING id

-- name: unenqueued_receipts
-- Every tenant's: receipts whose job was to be enqueued but never recorded (the
-- enqueue after the receipt's commit failed), oldest first, for the pruner to retry.
SELECT id, tenant_id, hook_id, delivery_id, method, content_type, headers, size, ip,
       verified, task, job_id, received_at
FROM hook_receipts
WHERE task IS NOT NULL AND job_id IS NULL
  AND received_at >= :since AND received_at < :before
ORDER BY received_at, id
LIMIT :limit
