"""The event log, below every service: services record events here, operations and transports read them."""
