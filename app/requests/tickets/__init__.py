"""Ticket systems for manual fulfillment, one module each (``open_ticket(ctx) -> Ticket``)."""
