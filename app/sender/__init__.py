"""Sender: send jobs, the queueing round (budget reservation, credit consumption, self-pause), dispatch
to providers with leases and receipts (`service`), the providers themselves (`providers`). Highest
domain.
"""
