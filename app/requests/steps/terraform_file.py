"""``TerraformFile`` steps: not supported yet; they fail so ``on_failure: manual`` can take over."""

from __future__ import annotations

from app.requests.steps import StepContext, StepFailed, StepResult


async def run(ctx: StepContext) -> StepResult:
    raise StepFailed("not_supported", "TerraformFile steps are not supported yet; "
                     "on_failure: manual opens the item's ticket instead",
                     {"repository": ctx.config.get("repository"), "path": ctx.config.get("path")})
