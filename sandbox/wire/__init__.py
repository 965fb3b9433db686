"""The wire between the web tier and the sandbox host, and what every layer shares: the agent's
framed protocol, typed errors, the client, the web tier's end of a terminal stream, what both ends
of a terminal share (the replay ring, output batching, PTY input), the strict environment parsers
and the settings both tiers read, and the id range of every sandbox's user namespace. May import
only the standard library: it is the one package of ``sandbox`` that ``playground`` may import."""
