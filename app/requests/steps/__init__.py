"""Step types, one module each; ``RUNNERS`` maps a step's ``type`` to its runner.

A runner gets a ``StepContext`` (rendered config, declared outputs, the idempotency key
``<request>/<step>`` sent on every attempt) and returns a ``StepResult``: outputs, or a
ticket to wait on. It raises ``StepFailed`` with a typed error; ``retryable`` ones
(5xx, timeouts, connection errors) are retried with backoff by the job queue.
"""

from __future__ import annotations

from app.requests.steps.base import Runner


def runners() -> dict[str, Runner]:
    # Imported here: step modules import app.requests.steps.base, which runs this package first.
    from app.requests.steps import github_workflow, http_post, manual, terraform_file

    return {"HttpPost": http_post.run, "GitHubWorkflow": github_workflow.run,
            "TerraformFile": terraform_file.run, "manual": manual.run}
