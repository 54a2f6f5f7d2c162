"""Alert delivery's errors: what a receiver raises when a message we must not lose is at risk."""

from __future__ import annotations


class DeliveryError(Exception):
    """Kafka refused or lost a message we must not lose."""
