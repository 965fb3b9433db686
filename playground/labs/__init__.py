"""Labs: step-by-step exercises beside the terminal; imports playground.sandboxes, playground.config, sandbox.wire."""
