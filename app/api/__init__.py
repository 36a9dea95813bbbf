"""The REST API under ``/api/v1``: bearer-token auth and JSON errors shared by its modules."""
