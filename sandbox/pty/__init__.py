"""The agent's terminals: a PTY master per shell, its replay ring and its viewers. May import
``sandbox.wire``."""
