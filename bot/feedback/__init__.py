"""Feedback: what opsloop saw of rollouts and incidents, kept per service (history.py), turned
into DORA's delivery figures (dora.py) for `/ops dora` and the weekly digest (service.py)."""
