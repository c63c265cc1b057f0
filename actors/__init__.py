"""The product: thread actors, contact resolution, settings, ingress routes, CLI, composition."""

__all__: list[str] = []
