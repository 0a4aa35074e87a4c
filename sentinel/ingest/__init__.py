"""Ingest: queue -> compiled core -> store."""
