"""MLX Hub: code shared by the services (configuration, event store, NATS bus,
auth, errors, generated stubs, the CLI and the local stack launcher)."""

__version__ = "0.1.0"
