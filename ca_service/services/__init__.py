"""Policy and workflows, one package per capability (docs/architecture.md)."""
