"""Every SQL statement the job queue runs, in one place.

The rules live in the schema (sql/001_spine.sql): ``jobs_queueing_lock_todo``
keeps one waiting job per queueing lock, ``jobs_lock_doing`` keeps one running
job per lock. These statements lean on those indexes rather than re-checking.
"""

# $1 task, $2 args, $3 queueing_lock, $4 lock, $5 priority, $6 max_attempts,
# $7 delay seconds, $8 delivery_id. Returns (id, created). When the queueing lock
# is taken by a waiting job, returns that job with created = false in the same
# round trip; no row at all means the waiting twin committed after this
# statement's snapshot (see WAITING_WITH_QUEUEING_LOCK).
ENQUEUE = """
WITH inserted AS (
    INSERT INTO jobs (task, args, queueing_lock, lock, priority, max_attempts,
                      scheduled_at, delivery_id)
    VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7), $8)
    ON CONFLICT (queueing_lock) WHERE status = 'todo' DO NOTHING
    RETURNING id
),
-- A waiting twin that is not due until later (backing off after a failure, or a
-- periodic job) is brought forward to this enqueue's time: new work (a push)
-- must not wait out an old attempt's backoff. The common case, a twin already
-- due, writes nothing.
advanced AS (
    UPDATE jobs SET scheduled_at = now() + make_interval(secs => $7)
     WHERE $3::text IS NOT NULL AND queueing_lock = $3 AND status = 'todo'
       AND scheduled_at > now() + make_interval(secs => $7)
       AND NOT EXISTS (SELECT 1 FROM inserted)
    RETURNING id
)
SELECT id, true AS created FROM inserted
UNION ALL
SELECT id, false FROM jobs
 WHERE $3::text IS NOT NULL AND queueing_lock = $3 AND status = 'todo'
   AND NOT EXISTS (SELECT 1 FROM inserted)
LIMIT 1
"""

# The job already waiting under a queueing lock (enqueue was a no-op).
WAITING_WITH_QUEUEING_LOCK = """
SELECT id FROM jobs WHERE queueing_lock = $1 AND status = 'todo'
"""

# Claim the oldest runnable job: due, of a task this worker knows, and whose
# lock no running job holds. Two workers may still pick two jobs with the same
# lock in the same instant; the unique index then rejects one UPDATE and that
# worker tries again (see Worker._claim).
CLAIM = """
UPDATE jobs
   SET status = 'doing', attempts = attempts + 1, started_at = now(),
       heartbeat_at = now(), worker_id = $1
 WHERE id = (
       SELECT j.id FROM jobs j
        WHERE j.status = 'todo' AND j.scheduled_at <= now() AND j.task = ANY($2::text[])
          AND (j.lock IS NULL OR NOT EXISTS (
                SELECT 1 FROM jobs d WHERE d.lock = j.lock AND d.status = 'doing'))
        ORDER BY j.priority DESC, j.id
        LIMIT 1
          FOR UPDATE SKIP LOCKED)
RETURNING id, task, args, attempts, max_attempts, queueing_lock, lock, delivery_id
"""

# Returns the jobs this worker still holds; one missing was taken over by a peer
# (this worker looked dead) and must stop running here.
HEARTBEAT = """
UPDATE jobs SET heartbeat_at = now() WHERE id = ANY($1::bigint[]) AND worker_id = $2
  AND status = 'doing'
RETURNING id
"""

# Each finishing statement names the claim: worker and attempt,
# so a run that was presumed dead (its job taken over, possibly claimed again by
# the same worker) cannot overwrite the newer run's outcome.
SUCCEED = """
UPDATE jobs SET status = 'succeeded', finished_at = now(), result = $3, last_error = NULL
 WHERE id = $1 AND worker_id = $2 AND attempts = $4 AND status = 'doing'
RETURNING id
"""

FAIL = """
UPDATE jobs SET status = 'failed', finished_at = now(), last_error = $3
 WHERE id = $1 AND worker_id = $2 AND attempts = $4 AND status = 'doing'
RETURNING id
"""

# Back to the queue for another attempt. If a twin is already waiting under the
# same queueing lock the unique index refuses this; see SUPERSEDE.
RETRY = """
UPDATE jobs SET status = 'todo', scheduled_at = now() + make_interval(secs => $3),
       last_error = $4, worker_id = NULL, heartbeat_at = NULL
 WHERE id = $1 AND worker_id = $2 AND attempts = $5 AND status = 'doing'
RETURNING id
"""

# A job that cannot be re-queued because its twin already waits: the twin will
# do the same work (queueing locks name work, not deliveries), so close this one.
# Also a job whose work no longer applies (JobSuperseded): no twin ($4 NULL).
SUPERSEDE = """
UPDATE jobs SET status = 'cancelled', finished_at = now(),
       last_error = coalesce($3, '') || coalesce(' (superseded by job ' || $4::bigint || ')', '')
 WHERE id = $1 AND status = 'doing' AND ($2::text IS NULL OR worker_id = $2)
   AND attempts = $5
RETURNING id
"""

RECORD_ATTEMPT = """
INSERT INTO job_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome, error)
VALUES ($1, $2, $3, $4, now(), $5, $6)
ON CONFLICT (job_id, attempt) DO UPDATE
   SET finished_at = EXCLUDED.finished_at, outcome = EXCLUDED.outcome, error = EXCLUDED.error
"""

# Jobs whose worker stopped heartbeating: the worker died (SIGKILL, lost host).
# $2: the worker asking, whose own jobs are alive whatever their heartbeat says
# (its event loop was merely held up).
# $3: workers known to be gone (their process no longer exists), whose jobs are
# taken back whatever their heartbeat says.
STALLED = """
SELECT id, attempts, max_attempts, queueing_lock, worker_id, started_at
  FROM jobs
 WHERE status = 'doing'
   AND (heartbeat_at < now() - make_interval(secs => $1) OR worker_id = ANY($3::text[]))
   AND worker_id IS DISTINCT FROM $2
 ORDER BY id
   FOR UPDATE SKIP LOCKED
"""

REQUEUE_STALLED = """
UPDATE jobs SET status = 'todo', scheduled_at = now(), worker_id = NULL, heartbeat_at = NULL,
       last_error = $2
 WHERE id = $1
"""

FAIL_STALLED = """
UPDATE jobs SET status = 'failed', finished_at = now(), last_error = $2 || '; no attempts left'
 WHERE id = $1
"""

# Worker processes, for telling on their host that one is gone (sql/009_job_workers.sql).
REGISTER_WORKER = """
INSERT INTO job_workers (worker_id, host, boot_id, pid_ns, pid, pid_start)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (worker_id) DO NOTHING
"""

# Other workers in this boot and pid namespace: the ones whose process we can look up.
LOCAL_WORKERS = """
SELECT worker_id, host, boot_id, pid_ns, pid, pid_start FROM job_workers
 WHERE boot_id = $1 AND pid_ns = $2 AND worker_id <> $3
"""

FORGET_WORKERS = "DELETE FROM job_workers WHERE worker_id = ANY($1::text[])"

# Give back jobs a worker holds when it shuts down without finishing them;
# the attempt does not count against the job.
RELEASE = """
UPDATE jobs SET status = 'todo', scheduled_at = now(), attempts = greatest(attempts - 1, 0),
       worker_id = NULL, heartbeat_at = NULL
 WHERE id = $1 AND worker_id = $2 AND attempts = $3 AND status = 'doing'
RETURNING id
"""

LIST = """
SELECT id, task, status, attempts, max_attempts, queueing_lock, lock, created_at,
       scheduled_at, started_at, finished_at, last_error, args, delivery_id
  FROM jobs
 WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR task = $2)
 ORDER BY id DESC
 LIMIT $3
"""

GET = "SELECT * FROM jobs WHERE id = $1"

ATTEMPTS = "SELECT * FROM job_attempts WHERE job_id = $1 ORDER BY attempt"

# Manual retry of a failed or cancelled job: fresh attempts, due now.
RETRY_FAILED = """
UPDATE jobs SET status = 'todo', attempts = 0, scheduled_at = now(), finished_at = NULL,
       worker_id = NULL
 WHERE id = $1 AND status IN ('failed', 'cancelled')
RETURNING id
"""

FAILED_IDS = "SELECT id FROM jobs WHERE status = 'failed' ORDER BY id"

# Requeue: run a waiting job now (skip its backoff delay).
RUN_NOW = """
UPDATE jobs SET scheduled_at = now() WHERE id = $1 AND status = 'todo' RETURNING id
"""

COUNTS = "SELECT status, count(*) AS n FROM jobs GROUP BY status"
