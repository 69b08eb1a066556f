"""Examples for the bank's teams: they use the CA only through its HTTP API and EST."""
