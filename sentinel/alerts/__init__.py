"""Alerts: rules per tenant, a transactional outbox written with the status change that caused it, and
one sender per database delivering to webhooks, Slack and Alertmanager (see ``engine`` and ``sender``)."""
