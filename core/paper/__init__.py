"""The paper exchange: a synthetic market, simulated accounts and the engine that fills them."""
