"""gRPC servicers: validate → convert → call the core → convert. No logic of their own."""
