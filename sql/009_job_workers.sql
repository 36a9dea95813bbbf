-- Who each running worker process is, exactly enough for a process on the same
-- host to tell that it is gone, pid reuse included (app/procinfo.py): a worker
-- starting after a SIGKILL takes the dead one's jobs back at once instead of
-- waiting out PAO_JOB_STALL_TIMEOUT. Workers on other hosts keep the heartbeat rule.
CREATE TABLE job_workers (
    worker_id   text PRIMARY KEY,
    host        text NOT NULL,
    boot_id     text NOT NULL,  -- /proc/sys/kernel/random/boot_id
    pid_ns      text NOT NULL,  -- the pid namespace the pid belongs to
    pid         integer NOT NULL,
    pid_start   bigint NOT NULL,  -- the process's start time, clock ticks after boot
    started_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_workers_boot ON job_workers (boot_id, pid_ns);
