"""The wire between the web tier and the sandbox host: the agent's framed protocol, typed errors, the
client, the web tier's end of a terminal stream and what both ends of a terminal share (the replay
ring, output batching, PTY input). May import only the standard library: it is the one package of
``sandbox`` that ``playground`` may import."""
