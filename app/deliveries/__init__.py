"""Missed-delivery recovery: ask GitHub to redeliver the webhook deliveries PAO missed.

GitHub never redelivers a failed delivery by itself. In App mode a periodic job
(``tasks.py``) and ``pao deliveries recover`` (``cli.py``) list the App's recent
deliveries, pick those that failed or that PAO has no record of (``select.py``,
pure), and request one redelivery each, never twice (``recovery.py``).
"""
