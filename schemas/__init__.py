"""Pydantic models for everything that crosses Kafka, HTTP or a file."""
