"""Who may call: API clients and their tokens, console operators, the bad-token throttle."""
