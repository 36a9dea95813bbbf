"""E-mail tickets: one message to the template's ``to`` over SMTP (PAO_SMTP_*).

Mail cannot be looked up afterwards, so the step waits for an operator's ``complete``.
The Message-ID is derived from the request and step: a resend after a crash between
sending and recording carries the same id, so mail clients thread or drop the duplicate.
"""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
from email.message import EmailMessage
from email.utils import formatdate

from app.requests.config import RequestSettings
from app.requests.steps.base import StepContext, StepFailed, Ticket
from app.requests.tickets import ticket_text

KNOWN = ("summary", "to", "cc", "body", "description")


def build_message(settings: RequestSettings, ctx: StepContext) -> EmailMessage:
    template = ctx.config.get("template") or {}
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = str(template["to"])
    if template.get("cc"):
        msg["Cc"] = str(template["cc"])
    msg["Subject"] = str(template["summary"]).replace("\n", " ")[:200]
    msg["Date"] = formatdate(localtime=False)
    digest = hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:24]
    domain = settings.smtp_from.rpartition("@")[2] or "pao.invalid"
    msg["Message-ID"] = f"<{digest}@{domain}>"
    msg["X-PAO-Request"] = ctx.idempotency_key
    msg.set_content(ticket_text(ctx, str(template.get("body") or template.get("description") or ""),
                                KNOWN) + "\n")
    return msg


def _send(settings: RequestSettings, msg: EmailMessage) -> None:
    with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=settings.http_timeout) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        smtp.send_message(msg)


async def open_ticket(ctx: StepContext) -> Ticket:
    settings = ctx.settings
    if not settings.smtp_host:
        raise StepFailed("not_configured", "the item's manual system is email and PAO_SMTP_HOST is unset")
    msg = build_message(settings, ctx)
    try:
        await asyncio.to_thread(_send, settings, msg)
    except smtplib.SMTPRecipientsRefused as exc:
        raise StepFailed("ticket_error", f"the mail server refused the recipients "
                         f"{', '.join(exc.recipients)}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise StepFailed("ticket_error", f"could not send mail: {type(exc).__name__}",
                         retryable=True) from None
    return Ticket("email", str(msg["Message-ID"]).strip("<>"), None)
