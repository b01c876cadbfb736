"""Exchanges behind one Protocol: the ccxt adapter for real venues, the paper exchange offline."""
