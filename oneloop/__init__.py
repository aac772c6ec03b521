"""OneLoop: one customer, one ID, one loop across marketing, sales and service."""

__version__ = "0.1.0"
